//! Storage (src/db) against real databases: SQLite files in temp dirs and a throwaway PostgreSQL
//! cluster (tests/common/pg.rs). Covers `ksrd db init` (schema identical to Kamailio's own SQL
//! files, version rows, idempotence), `ksrd subscriber add|passwd|rm|list` (ha1/ha1b checked with
//! md5sum), databases made by Kamailio's SQL opened unchanged, the typed Storage API on both
//! backends, and the PostgreSQL pool recovering by itself after the server was restarted.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::pg::PgCluster;
use common::{ksrd_cmd, wait_until, Ksrd, TempDir};
use ksrd::db::{Db, DbConfig, DbError, DbUrl, Location, Subscriber, Value};

/// The `version` rows Kamailio 5.6's `kamdbctl create` writes for these tables.
const KAMAILIO_VERSIONS: &[(&str, i64)] = &[
    ("htable", 2),
    ("location", 9),
    ("location_attrs", 1),
    ("subscriber", 7),
    ("uacreg", 5),
    ("version", 1),
];
const TABLES: &[&str] = &[
    "version",
    "subscriber",
    "location",
    "location_attrs",
    "htable",
    "uacreg",
];
/// Kamailio's SQL files that create those tables.
const KAMAILIO_FILES: &[&str] = &["standard", "auth_db", "usrloc", "htable", "uac"];

// ------------------------------------------------------------------------------------------------
// helpers

/// Kamailio's schema files for `dialect` (`db_sqlite` or `postgres`): $KSRD_KAMAILIO_SQL (set by
/// scripts/test.sh, which unpacks them from the Debian packages) or an installed Kamailio.
fn kamailio_sql(dialect: &str) -> Option<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("KSRD_KAMAILIO_SQL") {
        dirs.push(PathBuf::from(d).join(dialect));
    }
    dirs.push(Path::new("/usr/share/kamailio").join(dialect));
    let found = dirs.into_iter().find(|d| {
        KAMAILIO_FILES
            .iter()
            .all(|f| d.join(format!("{f}-create.sql")).is_file())
    });
    if found.is_none() {
        eprintln!("Kamailio's {dialect} SQL files not found: comparison skipped (scripts/test.sh unpacks them)");
    }
    found
}

fn write_config(dir: &Path, db_url: &str, extra: &str) -> PathBuf {
    let p = dir.join("ksrd.toml");
    std::fs::write(&p, format!("db_url = \"{db_url}\"\n{extra}\n")).unwrap();
    p
}

/// `ksrd --config CFG ARGS...` run from `/` (so relative paths must come from the config):
/// (exit code, stdout, stderr).
fn ksrd_cli(cfg: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut c = ksrd_cmd();
    c.arg("--config")
        .arg(cfg)
        .args(args)
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c.spawn().expect("run ksrd");
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(r: (i32, String, String)) -> String {
    assert_eq!(r.0, 0, "ksrd failed: stdout {:?} stderr {:?}", r.1, r.2);
    r.1
}

/// MD5 hex of `s` computed by coreutils' md5sum, the way kamctl does it.
fn md5sum(s: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", "printf %s \"$1\" | md5sum", "sh", s])
        .output()
        .expect("run md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Unix time of a local-time `YYYY-MM-DD HH:MM:SS` (`date -u` when `utc`), computed by date(1).
fn date_to_unix(s: &str, utc: bool) -> i64 {
    let mut c = Command::new("date");
    if utc {
        c.arg("-u");
    }
    let out = c.args(["-d", s, "+%s"]).output().expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn db_config(url: &str, base: &Path) -> DbConfig {
    DbConfig {
        url: Some(DbUrl::parse(url, base).unwrap()),
        timeout: Duration::from_secs(3),
        ..DbConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Open a database on `rt` (the Db keeps using that runtime for its I/O).
fn open(rt: &tokio::runtime::Runtime, url: &str, base: &Path) -> Db {
    rt.block_on(Db::open(&db_config(url, base))).unwrap()
}

// ---- SQLite introspection

type Shape = BTreeMap<String, Vec<String>>;

/// Columns (name, type, not null, default, pk) and indexes (name, unique, columns) per table.
fn sqlite_shape(path: &Path) -> Shape {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut out = Shape::new();
    for t in TABLES {
        let mut lines = Vec::new();
        let mut st = c
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
            .unwrap();
        let rows = st
            .query_map([t], |r| {
                Ok(format!(
                    "col {} {} notnull={} default={:?} pk={}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?
                ))
            })
            .unwrap();
        lines.extend(rows.map(|r| r.unwrap()));
        let mut st = c
            .prepare("SELECT name, \"unique\" FROM pragma_index_list(?1) ORDER BY name")
            .unwrap();
        let idx: Vec<(String, i64)> = st
            .query_map([t], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for (name, unique) in idx {
            let mut st = c
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap();
            let cols: Vec<String> = st
                .query_map([&name], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            lines.push(format!("index {name} unique={unique} ({})", cols.join(",")));
        }
        out.insert(t.to_string(), lines);
    }
    out
}

fn sqlite_versions(path: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT table_name, table_version FROM version ORDER BY table_name")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn sqlite_master(path: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare(
            "SELECT type || ' ' || name || ' ' || ifnull(sql, '') FROM sqlite_master ORDER BY name",
        )
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A database made by Kamailio's own SQL files for SQLite.
fn kamailio_sqlite_db(dir: &Path, path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    for f in KAMAILIO_FILES {
        let sql = std::fs::read_to_string(dir.join(format!("{f}-create.sql"))).unwrap();
        c.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{f}-create.sql: {e}"));
    }
}

// ---- PostgreSQL introspection

/// Columns and indexes per table as PostgreSQL describes them.
fn pg_shape(pg: &PgCluster, db: &str) -> String {
    let cols = pg.psql(
        db,
        "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default \
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    );
    let idx = pg.psql(
        db,
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname",
    );
    format!("{cols}\n{idx}")
}

fn pg_versions(pg: &PgCluster, db: &str) -> Vec<(String, i64)> {
    pg.psql(
        db,
        "SELECT table_name, table_version FROM version ORDER BY table_name",
    )
    .lines()
    .filter_map(|l| {
        let (t, v) = l.split_once('|')?;
        Some((t.to_string(), v.parse().ok()?))
    })
    .collect()
}

fn expected_versions() -> Vec<(String, i64)> {
    KAMAILIO_VERSIONS
        .iter()
        .map(|(t, v)| (t.to_string(), *v))
        .collect()
}

fn pg_db(tag: &str) -> (&'static PgCluster, String) {
    common::pg::shared_db(tag)
}

// ------------------------------------------------------------------------------------------------
// the Storage API, the same checks on both backends

async fn exercise(db: &Db) {
    // schema
    let report = db.init_schema(true).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(db.table_version("location").await.unwrap(), Some(9));
    assert_eq!(db.table_version("nosuch").await.unwrap(), None);

    // subscriber
    let alice = Subscriber::with_password("alice", "example.com", "secret", true);
    db.subscriber_add("subscriber", &alice).await.unwrap();
    let err = db.subscriber_add("subscriber", &alice).await.unwrap_err();
    assert!(matches!(err, DbError::Duplicate(_)), "{err:?}");
    let bob = Subscriber::with_password("bob", "example.org", "pw", false);
    db.subscriber_add("subscriber", &bob).await.unwrap();
    assert_eq!(
        db.subscriber_get("subscriber", "alice", Some("example.com"))
            .await
            .unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        db.subscriber_get("subscriber", "alice", None)
            .await
            .unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        db.subscriber_get("subscriber", "alice", Some("example.org"))
            .await
            .unwrap(),
        None
    );
    let alice2 = Subscriber::with_password("alice", "example.com", "new", false);
    assert!(db.subscriber_update("subscriber", &alice2).await.unwrap());
    let nobody = Subscriber::with_password("nobody", "example.com", "x", false);
    assert!(!db.subscriber_update("subscriber", &nobody).await.unwrap());
    let list = db.subscriber_list("subscriber").await.unwrap();
    assert_eq!(list, vec![alice2.clone(), bob.clone()]);
    let got = db
        .select_strings(
            "subscriber",
            &["ha1", "password", "id"],
            &[("username", "alice"), ("domain", "example.com")],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0].as_deref(), Some(alice2.ha1.as_str()));
    assert_eq!(got[0][1].as_deref(), Some(""));
    assert!(got[0][2]
        .as_deref()
        .is_some_and(|id| id.parse::<i64>().is_ok()));
    assert!(db
        .subscriber_remove("subscriber", "bob", "example.org")
        .await
        .unwrap());
    assert!(!db
        .subscriber_remove("subscriber", "bob", "example.org")
        .await
        .unwrap());

    // errors
    let e = db.subscriber_get("nosuch", "a", None).await.unwrap_err();
    assert!(
        matches!(&e, DbError::MissingTable(t) if t == "nosuch"),
        "{e:?}"
    );
    let e = db
        .subscriber_get("subscriber; drop table x", "a", None)
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::BadIdentifier(_)), "{e:?}");
    let e = db
        .select_strings("subscriber", &["ha1"], &[("user name", "a")])
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::BadIdentifier(_)), "{e:?}");

    // location
    let now = ksrd::db::time::now();
    let full = Location {
        ruid: "uloc-1".into(),
        username: "alice".into(),
        domain: Some("example.com".into()),
        contact: "sip:alice@192.0.2.10:5060;transport=udp".into(),
        received: Some("sip:198.51.100.7:34567".into()),
        path: Some("<sip:edge.example.com;lr>".into()),
        expires: now + 3600,
        q: 0.5,
        callid: "call-1@host".into(),
        cseq: 42,
        last_modified: now,
        flags: 1,
        cflags: 64,
        user_agent: "test-phone/1.0".into(),
        socket: Some("udp:127.0.0.1:5060".into()),
        methods: Some(-1),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>".into()),
        reg_id: 1,
        server_id: 2,
        connection_id: -1,
        keepalive: 1,
        partition: 3,
    };
    let permanent = Location {
        ruid: "uloc-2".into(),
        username: "alice".into(),
        domain: Some("example.com".into()),
        contact: "sip:alice@192.0.2.11".into(),
        expires: 0,
        ..Location::default()
    };
    let expired = Location {
        ruid: "uloc-3".into(),
        username: "bob".into(),
        domain: None,
        contact: "sip:bob@192.0.2.12".into(),
        expires: now - 10,
        last_modified: now - 100,
        ..Location::default()
    };
    db.location_upsert(
        "location",
        &[full.clone(), permanent.clone(), expired.clone()],
    )
    .await
    .unwrap();
    let mut alice_b = db
        .location_get("location", "alice", Some("example.com"))
        .await
        .unwrap();
    alice_b.sort_by(|a, b| a.ruid.cmp(&b.ruid));
    assert_eq!(alice_b, vec![full.clone(), permanent.clone()]);
    assert_eq!(
        db.location_get("location", "bob", None).await.unwrap(),
        vec![expired.clone()]
    );
    // refresh: same ruid, new cseq/expires
    let refreshed = Location {
        cseq: 43,
        expires: now + 7200,
        ..full.clone()
    };
    db.location_upsert("location", std::slice::from_ref(&refreshed))
        .await
        .unwrap();
    let all = db.location_load("location").await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.contains(&refreshed));
    assert_eq!(
        db.location_remove_expired("location", now).await.unwrap(),
        1,
        "only the expired binding goes; the permanent one stays"
    );
    assert_eq!(
        db.location_remove("location", &["uloc-2".into(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.location_remove_aor("location", "alice", Some("example.com"))
            .await
            .unwrap(),
        1
    );
    assert!(db.location_load("location").await.unwrap().is_empty());

    // generic rows (htable persistence): DELETE + batched INSERTs, read back by the first column
    let cols = ["key_name", "key_type", "value_type", "key_value", "expires"];
    let row = |k: &str, v: Value, e: i64| {
        vec![
            Value::Str(k.into()),
            Value::Int(0),
            Value::Int(1),
            v,
            Value::Int(e),
        ]
    };
    // more rows than one batch holds, given in reverse order
    let mut rows: Vec<Vec<Value>> = (0..1200)
        .rev()
        .map(|i| row(&format!("k{i:04}"), Value::Str(i.to_string()), now + i))
        .collect();
    rows.push(row("a", Value::Str("it's \u{fc} \\ %".into()), 0));
    // an Int lands in the VARCHAR column as its text
    rows.push(row("b", Value::Int(-42), i32::MAX as i64));
    db.rows_replace("htable", &cols, rows.clone())
        .await
        .unwrap();
    let got = db.rows_select("htable", &cols).await.unwrap();
    assert_eq!(got.len(), 1202);
    assert_eq!(got[0], row("a", Value::Str("it's \u{fc} \\ %".into()), 0));
    assert_eq!(got[1], row("b", Value::Str("-42".into()), i32::MAX as i64));
    assert_eq!(got[2], row("k0000", Value::Str("0".into()), now));
    assert_eq!(
        got[1201],
        row("k1199", Value::Str("1199".into()), now + 1199)
    );
    let mut want = rows.clone();
    want[1201][3] = Value::Str("-42".into());
    want.sort_by_key(|r| match &r[0] {
        Value::Str(k) => k.clone(),
        other => panic!("{other:?}"),
    });
    assert_eq!(got, want);
    // a column subset, ordered by its own first column
    let got = db
        .rows_select("htable", &["expires", "key_name"])
        .await
        .unwrap();
    assert_eq!(got[0], vec![Value::Int(0), Value::Str("a".into())]);
    assert_eq!(got[1], vec![Value::Int(now), Value::Str("k0000".into())]);
    // a row failing in a later batch (NULL in a NOT NULL column) rolls the whole call back
    let mut bad: Vec<Vec<Value>> = (0..700)
        .map(|i| row(&format!("n{i}"), Value::Str("x".into()), 0))
        .collect();
    bad[699][0] = Value::Null;
    let err = db.rows_replace("htable", &cols, bad).await.unwrap_err();
    assert!(matches!(err, DbError::Query(_)), "{err:?}");
    assert_eq!(db.rows_select("htable", &cols).await.unwrap(), want);
    db.rows_replace(
        "htable",
        &cols,
        vec![row("only", Value::Str("1".into()), 0)],
    )
    .await
    .unwrap();
    assert_eq!(
        db.rows_select("htable", &cols).await.unwrap(),
        [row("only", Value::Str("1".into()), 0)]
    );
    // NULLs read back as Null, integer columns as Int
    let lcols = [
        "ruid",
        "username",
        "contact",
        "user_agent",
        "domain",
        "methods",
    ];
    let s = |x: &str| Value::Str(x.into());
    let lrows = vec![
        vec![
            s("r1"),
            s("u"),
            s("sip:u@h"),
            s("ua"),
            Value::Null,
            Value::Null,
        ],
        vec![
            s("r2"),
            s("u"),
            s("sip:u@h2"),
            s("ua"),
            s("d"),
            Value::Int(3),
        ],
    ];
    db.rows_replace("location", &lcols, lrows.clone())
        .await
        .unwrap();
    assert_eq!(db.rows_select("location", &lcols).await.unwrap(), lrows);
    db.rows_replace("location", &lcols, Vec::new())
        .await
        .unwrap();
    assert!(db.location_load("location").await.unwrap().is_empty());
    // names are checked, rows must have one value per column
    assert!(matches!(
        db.rows_select("htable; drop table x", &cols).await,
        Err(DbError::BadIdentifier(_))
    ));
    assert!(matches!(
        db.rows_select("htable", &["key_name", "1=1"]).await,
        Err(DbError::BadIdentifier(_))
    ));
    assert!(matches!(
        db.rows_select("htable", &[]).await,
        Err(DbError::BadIdentifier(_))
    ));
    assert!(matches!(
        db.rows_replace("htable", &cols, vec![vec![Value::Int(1)]])
            .await,
        Err(DbError::RowWidth {
            row: 0,
            got: 1,
            want: 5
        })
    ));
    assert_eq!(db.rows_select("htable", &cols).await.unwrap().len(), 1);

    assert!(db.uacreg_load("uacreg").await.unwrap().is_empty());
}

// ------------------------------------------------------------------------------------------------
// SQLite

#[test]
fn sqlite_storage_api() {
    let dir = TempDir::new("db-api");
    let rt = runtime();
    let db = open(&rt, "sqlite://sub/dir/api.db", dir.path());
    assert!(dir.path().join("sub/dir/api.db").is_file());
    rt.block_on(exercise(&db));
}

#[test]
fn wait_runs_calls_from_plain_threads_and_refuses_runtime_threads() {
    let dir = TempDir::new("db-wait");
    let rt = runtime();
    let db = open(&rt, "sqlite://w.db", dir.path());
    db.wait(db.init_schema(true)).unwrap();
    let s = Subscriber::with_password("carol", "example.net", "pw", false);
    // from this (non-runtime) thread, as a SIP worker would: the query runs inline
    db.wait(db.subscriber_add("subscriber", &s)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let got = db
                        .wait(db.subscriber_get("subscriber", "carol", Some("example.net")))
                        .unwrap();
                    assert_eq!(got.unwrap().ha1, md5sum("carol:example.net:pw"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let on_runtime = rt.block_on(async { db.wait(db.subscriber_list("subscriber")) });
    assert!(matches!(on_runtime, Err(DbError::WouldBlock)));
}

#[test]
fn sqlite_db_init_matches_kamailio_and_is_idempotent() {
    let dir = TempDir::new("db-init");
    let cfg = write_config(dir.path(), "sqlite://ksrd.db", "");
    let out = ok(ksrd_cli(&cfg, &["db", "init"], None));
    let db = dir.path().join("ksrd.db");
    assert!(
        db.is_file(),
        "the relative db_url resolves against the config's directory"
    );
    for (t, v) in [
        ("subscriber", 7),
        ("location", 9),
        ("htable", 2),
        ("uacreg", 5),
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains(t) && l.contains(&format!("created (version {v})"))),
            "{out}"
        );
    }
    assert_eq!(sqlite_versions(&db), expected_versions());
    let before = sqlite_master(&db);
    let out = ok(ksrd_cli(&cfg, &["db", "init"], None));
    assert_eq!(out.matches("present").count(), TABLES.len(), "{out}");
    assert_eq!(sqlite_master(&db), before);
    assert_eq!(sqlite_versions(&db), expected_versions());

    if let Some(kdir) = kamailio_sql("db_sqlite") {
        let kdb = dir.path().join("kamailio.db");
        kamailio_sqlite_db(&kdir, &kdb);
        let (ours, theirs) = (sqlite_shape(&db), sqlite_shape(&kdb));
        for t in TABLES {
            assert_eq!(ours[*t], theirs[*t], "table {t} differs from Kamailio's");
        }
        assert_eq!(sqlite_versions(&kdb), sqlite_versions(&db));
    }
}

#[test]
fn sqlite_subscriber_commands() {
    let dir = TempDir::new("db-sub");
    let cfg = write_config(dir.path(), "sqlite://subs.db", "");
    let db = dir.path().join("subs.db");
    // no `db init` first: like the server, the command creates the SQLite schema
    let out = ok(ksrd_cli(
        &cfg,
        &["subscriber", "add", "alice@example.com", "s3cret"],
        None,
    ));
    assert!(out.contains("alice@example.com added"), "{out}");
    let (code, _, err) = ksrd_cli(
        &cfg,
        &["subscriber", "add", "alice@example.com", "other"],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "add", "bob@example.com", "-"],
        Some("from stdin\n"),
    ));
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "add", "zed@a.example", "z"],
        None,
    ));
    let list = ok(ksrd_cli(&cfg, &["subscriber", "list"], None));
    assert_eq!(
        list, "zed@a.example\nalice@example.com\nbob@example.com\n",
        "ordered by domain, then user"
    );

    let row = |user: &str| -> (String, String, String) {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row(
            "SELECT password, ha1, ha1b FROM subscriber WHERE username = ?1 AND domain = 'example.com'",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!(
        row("alice"),
        (
            String::new(),
            md5sum("alice:example.com:s3cret"),
            md5sum("alice@example.com:example.com:s3cret")
        ),
        "no plaintext unless configured"
    );
    assert_eq!(row("bob").1, md5sum("bob:example.com:from stdin"));

    let out = ok(ksrd_cli(
        &cfg,
        &["subscriber", "passwd", "alice@example.com", "n3w"],
        None,
    ));
    assert!(out.contains("changed"), "{out}");
    assert_eq!(row("alice").1, md5sum("alice:example.com:n3w"));
    let (code, _, err) = ksrd_cli(
        &cfg,
        &["subscriber", "passwd", "carol@example.com", "x"],
        None,
    );
    assert_eq!(
        (code, err.contains("no subscriber carol@example.com")),
        (1, true),
        "{err}"
    );

    // plaintext only with [db] store_plaintext_password = true
    let cfg2 = write_config(
        dir.path(),
        "sqlite://subs.db",
        "[db]\nstore_plaintext_password = true",
    );
    ok(ksrd_cli(
        &cfg2,
        &["subscriber", "passwd", "alice@example.com", "plain"],
        None,
    ));
    assert_eq!(row("alice").0, "plain");
    assert_eq!(
        row("alice").2,
        md5sum("alice@example.com:example.com:plain")
    );

    let out = ok(ksrd_cli(
        &cfg,
        &["subscriber", "rm", "alice@example.com"],
        None,
    ));
    assert!(out.contains("removed"), "{out}");
    let (code, _, _) = ksrd_cli(&cfg, &["subscriber", "rm", "alice@example.com"], None);
    assert_eq!(code, 1);
    assert_eq!(
        ok(ksrd_cli(&cfg, &["subscriber", "list"], None)),
        "zed@a.example\nbob@example.com\n"
    );

    // usage errors: exit 2
    for args in [
        &["subscriber", "add", "alice", "pw"][..],
        &["subscriber", "add", "alice@example.com"][..],
        &["subscriber", "frobnicate"][..],
        &["db", "drop"][..],
        &["subscriber", "add", "a@example.com", ""][..],
    ] {
        let (code, _, err) = ksrd_cli(&cfg, args, None);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // no database configured
    let none = dir.path().join("none.toml");
    std::fs::write(&none, "").unwrap();
    let (code, _, err) = ksrd_cli(&none, &["subscriber", "list"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no db_url"), "{err}");
}

#[test]
fn sqlite_database_made_by_kamailio_works_unchanged() {
    let Some(kdir) = kamailio_sql("db_sqlite") else {
        return;
    };
    let dir = TempDir::new("db-kam");
    let path = dir.path().join("kamailio.db");
    kamailio_sqlite_db(&kdir, &path);
    // rows as kamctl and Kamailio's db_sqlite write them: timestamps are Julian day numbers,
    // 0.5 s early (db_sqlite's timet_to_sqlite)
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO subscriber (username, domain, ha1, ha1b, password) VALUES ('dave', 'example.com', '{}', '{}', 'pw');
             INSERT INTO location (ruid, username, domain, contact, expires, q, callid, cseq, last_modified, user_agent)
               VALUES ('uloc-k', 'dave', 'example.com', 'sip:dave@192.0.2.20', julianday('2031-01-02 03:04:05') - 0.5/86400.0,
                       -1, 'cid', 7, julianday('2026-01-01 00:00:00') - 0.5/86400.0, 'kamailio');
             INSERT INTO htable (key_name, key_type, value_type, key_value, expires) VALUES ('k1', 0, 1, '3', 0);
             INSERT INTO uacreg (l_uuid, l_username, l_domain, r_username, r_domain, realm, auth_username, auth_password, auth_proxy, expires)
               VALUES ('acc1', 'l', 'ld', 'r', 'rd', 'realm', 'au', 'ap', 'sip:proxy', 360);",
            md5sum("dave:example.com:pw"),
            md5sum("dave@example.com:example.com:pw"),
        ))
        .unwrap();
    }
    let before = sqlite_master(&path);
    let cfg = write_config(dir.path(), &format!("sqlite://{}", path.display()), "");
    let out = ok(ksrd_cli(&cfg, &["db", "init"], None));
    assert_eq!(out.matches("present").count(), TABLES.len(), "{out}");
    assert_eq!(sqlite_master(&path), before, "db init changed nothing");
    assert_eq!(
        ok(ksrd_cli(&cfg, &["subscriber", "list"], None)),
        "dave@example.com\n"
    );

    let rt = runtime();
    let db = open(&rt, &format!("sqlite://{}", path.display()), dir.path());
    let locs = rt.block_on(db.location_load("location")).unwrap();
    assert_eq!(locs.len(), 1);
    assert_eq!(locs[0].expires, date_to_unix("2031-01-02 03:04:05", true));
    assert_eq!(
        locs[0].last_modified,
        date_to_unix("2026-01-01 00:00:00", true)
    );
    assert_eq!((locs[0].q, locs[0].cseq), (-1.0, 7));
    let s = rt
        .block_on(db.subscriber_get("subscriber", "dave", Some("example.com")))
        .unwrap()
        .unwrap();
    assert_eq!(s.password, "pw");
    let ht = rt
        .block_on(db.rows_select("htable", &["key_name", "value_type", "key_value"]))
        .unwrap();
    assert_eq!(
        ht,
        [vec![
            Value::Str("k1".into()),
            Value::Int(1),
            Value::Str("3".into())
        ]]
    );
    let uac = rt.block_on(db.uacreg_load("uacreg")).unwrap();
    assert_eq!((uac[0].l_uuid.as_str(), uac[0].expires), ("acc1", 360));
    // what ksrd writes, Kamailio's db_sqlite reads back as the same time
    let mut l = locs[0].clone();
    l.ruid = "uloc-w".into();
    l.expires = 1_950_000_000;
    rt.block_on(db.location_upsert("location", &[l])).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let jd: f64 = c
        .query_row(
            "SELECT expires FROM location WHERE ruid = 'uloc-w'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // bit for bit what db_sqlite's timet_to_sqlite() writes for that time
    assert_eq!(jd, (1_950_000_000f64 - 0.5) / 86400.0 + 2440587.5);
    // (db_sqlite's sqlite_to_timet() truncates, so Kamailio itself may read its own value 1 s early)
    assert!(((86400.0 * (jd - 2440587.5) + 0.5) as i64 - 1_950_000_000).abs() <= 1);
    drop(db);
    drop(rt);

    // and the server starts on it without touching the schema
    let k = Ksrd::start(
        common::DEFAULT_TEST_ROUTE,
        &format!("db_url = \"sqlite://{}\"", path.display()),
    );
    assert!(
        k.wait_log("database ready", Duration::from_secs(5)),
        "{}",
        k.log()
    );
    assert!(!k.log().contains("created Kamailio schema"), "{}", k.log());
    assert!(!k.log().contains("WARN"), "{}", k.log());
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "a Kamailio file keeps its journal mode");
}

#[test]
fn server_creates_the_sqlite_schema_on_first_start() {
    // the harness points db_url at ksrd.db in the server's temp dir
    let k = Ksrd::start(common::DEFAULT_TEST_ROUTE, "");
    assert!(
        k.wait_log("database ready", Duration::from_secs(5)),
        "{}",
        k.log()
    );
    let db = k.dir.path().join("ksrd.db");
    assert_eq!(sqlite_versions(&db), expected_versions());
    assert!(
        k.log().contains("created Kamailio schema tables"),
        "{}",
        k.log()
    );
}

#[test]
fn server_refuses_an_sqlite_file_it_cannot_use() {
    let k = Ksrd::start_opts(common::StartOpts {
        route_src: Some(common::DEFAULT_TEST_ROUTE.into()),
        extra_toml: "db_url = \"sqlite:///proc/ksrd-cannot-be-here/x.db\"".into(),
        no_wait: true,
        ..Default::default()
    });
    assert!(
        wait_until(Duration::from_secs(10), || k.exited().is_some()),
        "ksrd should stop: {}",
        k.log()
    );
    assert!(k.log().contains("/proc/ksrd-cannot-be-here"), "{}", k.log());
}

// ------------------------------------------------------------------------------------------------
// PostgreSQL

#[test]
fn postgres_storage_api() {
    let (pg, name) = pg_db("api");
    let rt = runtime();
    let db = open(&rt, &pg.socket_url(&name), Path::new("."));
    rt.block_on(exercise(&db));
}

#[test]
fn postgres_db_init_matches_kamailio_and_is_idempotent() {
    let (pg, name) = pg_db("init");
    let dir = TempDir::new("db-pginit");
    // TCP with password authentication, as a production URL would be
    let cfg = write_config(dir.path(), &pg.url(&name), "");
    // before the schema exists, the commands say what to do
    let (code, _, err) = ksrd_cli(&cfg, &["subscriber", "list"], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ksrd db init"), "{err}");
    assert!(
        !err.contains(common::pg::PASSWORD),
        "password leaked: {err}"
    );
    let out = ok(ksrd_cli(&cfg, &["db", "init"], None));
    assert_eq!(out.matches("created").count(), TABLES.len(), "{out}");
    assert_eq!(pg_versions(pg, &name), expected_versions());
    let shape = pg_shape(pg, &name);
    let out = ok(ksrd_cli(&cfg, &["db", "init"], None));
    assert_eq!(out.matches("present").count(), TABLES.len(), "{out}");
    assert_eq!(pg_shape(pg, &name), shape, "second init changed the schema");
    assert_eq!(pg_versions(pg, &name), expected_versions());

    if let Some(kdir) = kamailio_sql("postgres") {
        let (_, kname) = pg_db("kam");
        for f in KAMAILIO_FILES {
            pg.psql_file(&kname, &kdir.join(format!("{f}-create.sql")));
        }
        assert_eq!(
            pg_shape(pg, &kname),
            shape,
            "schema differs from Kamailio's"
        );
        assert_eq!(pg_versions(pg, &kname), expected_versions());
    }
}

#[test]
fn postgres_subscriber_commands() {
    let (pg, name) = pg_db("sub");
    let dir = TempDir::new("db-pgsub");
    let cfg = write_config(dir.path(), &pg.socket_url(&name), "");
    ok(ksrd_cli(&cfg, &["db", "init"], None));
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "add", "alice@example.com", "s3cret"],
        None,
    ));
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "add", "bob@example.com", "pw"],
        None,
    ));
    let (code, _, err) = ksrd_cli(&cfg, &["subscriber", "add", "bob@example.com", "x"], None);
    assert_eq!((code, err.contains("already exists")), (1, true), "{err}");
    assert_eq!(
        ok(ksrd_cli(&cfg, &["subscriber", "list"], None)),
        "alice@example.com\nbob@example.com\n"
    );
    let row = |u: &str| {
        pg.psql(
            &name,
            &format!("SELECT password, ha1, ha1b FROM subscriber WHERE username = '{u}' AND domain = 'example.com'"),
        )
        .trim()
        .to_string()
    };
    assert_eq!(
        row("alice"),
        format!(
            "|{}|{}",
            md5sum("alice:example.com:s3cret"),
            md5sum("alice@example.com:example.com:s3cret")
        )
    );
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "passwd", "alice@example.com", "n3w"],
        None,
    ));
    assert!(row("alice").contains(&md5sum("alice:example.com:n3w")));
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "rm", "bob@example.com"],
        None,
    ));
    let (code, _, _) = ksrd_cli(&cfg, &["subscriber", "rm", "bob@example.com"], None);
    assert_eq!(code, 1);
    assert_eq!(
        ok(ksrd_cli(&cfg, &["subscriber", "list"], None)),
        "alice@example.com\n"
    );
}

#[test]
fn postgres_database_made_by_kamailio_works_unchanged() {
    let Some(kdir) = kamailio_sql("postgres") else {
        return;
    };
    let (pg, name) = pg_db("kamdb");
    for f in KAMAILIO_FILES {
        pg.psql_file(&name, &kdir.join(format!("{f}-create.sql")));
    }
    // Kamailio's srdb1 writes timestamps as local-time text
    pg.psql(
        &name,
        &format!(
            "INSERT INTO subscriber (username, domain, ha1, ha1b, password) VALUES ('dave', 'example.com', '{}', '', '');
             INSERT INTO location (ruid, username, domain, contact, expires, last_modified, q, cseq)
               VALUES ('uloc-k', 'dave', 'example.com', 'sip:dave@192.0.2.20', '2031-01-02 03:04:05', '2026-01-01 00:00:00', 0.5, 9);",
            md5sum("dave:example.com:pw")
        ),
    );
    let shape = pg_shape(pg, &name);
    let dir = TempDir::new("db-pgkam");
    let cfg = write_config(dir.path(), &pg.url(&name), "");
    let out = ok(ksrd_cli(&cfg, &["db", "init"], None));
    assert_eq!(out.matches("present").count(), TABLES.len(), "{out}");
    assert_eq!(pg_shape(pg, &name), shape);
    assert_eq!(
        ok(ksrd_cli(&cfg, &["subscriber", "list"], None)),
        "dave@example.com\n"
    );
    let rt = runtime();
    let db = open(&rt, &pg.url(&name), Path::new("."));
    let locs = rt.block_on(db.location_load("location")).unwrap();
    assert_eq!(locs[0].expires, date_to_unix("2031-01-02 03:04:05", false));
    assert_eq!(
        locs[0].last_modified,
        date_to_unix("2026-01-01 00:00:00", false)
    );
    assert_eq!((locs[0].q, locs[0].cseq), (0.5, 9));
    let s = rt
        .block_on(db.subscriber_get("subscriber", "dave", Some("example.com")))
        .unwrap()
        .unwrap();
    assert_eq!(s.ha1, md5sum("dave:example.com:pw"));
    // written by ksrd, stored as Kamailio writes it
    let mut l = locs[0].clone();
    l.ruid = "uloc-w".into();
    l.expires = date_to_unix("2032-02-03 04:05:06", false);
    rt.block_on(db.location_upsert("location", &[l])).unwrap();
    assert_eq!(
        pg.psql(&name, "SELECT expires FROM location WHERE ruid = 'uloc-w'")
            .trim(),
        "2032-02-03 04:05:06"
    );
}

/// Log lines of this test binary (the recovery test checks what an outage logs).
fn captured_log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(b.clone()))
            .try_init();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn postgres_pool_recovers_after_a_restart() {
    let log = captured_log();
    let logged = |s: &str| String::from_utf8_lossy(&log.lock().unwrap()).contains(s);
    // its own cluster: this test stops it
    let pg = PgCluster::start();
    pg.create_db("recover");
    let rt = runtime();
    let db = open(&rt, &pg.url("recover"), Path::new("."));
    db.wait(db.init_schema(true)).unwrap();
    let s = Subscriber::with_password("erin", "example.com", "pw", false);
    db.wait(db.subscriber_add("subscriber", &s)).unwrap();
    let get = || db.wait(db.subscriber_get("subscriber", "erin", Some("example.com")));
    assert_eq!(get().unwrap(), Some(s.clone()));

    pg.stop();
    let err = get().unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(logged("database unavailable"), "no log line for the outage");
    // still down: a clear error every time, no panic, bounded by the timeout
    let t0 = std::time::Instant::now();
    assert!(get().unwrap_err().is_unavailable());
    assert!(t0.elapsed() < Duration::from_secs(4));

    pg.start_server();
    assert!(
        wait_until(Duration::from_secs(20), || get().is_ok()),
        "the pool did not reconnect: {:?}",
        get()
    );
    assert_eq!(get().unwrap(), Some(s));
    assert!(logged("database is reachable again"));
}

#[test]
fn server_starts_while_postgres_is_down() {
    let port = common::free_tcp_port();
    let k = Ksrd::start(
        common::DEFAULT_TEST_ROUTE,
        &format!("db_url = \"postgres://ksrd:pw@127.0.0.1:{port}/ksrd\""),
    );
    assert!(
        k.wait_log("database unavailable", Duration::from_secs(10)),
        "{}",
        k.log()
    );
    assert!(
        !k.log().contains(":pw@"),
        "password in the log: {}",
        k.log()
    );
    assert!(k.is_running());
}

/// Kamailio's binary and module directory, when Kamailio and its SQLite module are installed
/// (bench/install.sh installs them).
fn kamailio_install() -> Option<(&'static str, PathBuf)> {
    let bin = ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
        .into_iter()
        .find(|b| Path::new(b).is_file())?;
    let mpath = [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|d| d.join("db_sqlite.so").is_file() && d.join("usrloc.so").is_file())?;
    Some((bin, mpath))
}

#[test]
fn kamailio_accepts_a_database_made_by_ksrd() {
    let Some((kamailio, mpath)) = kamailio_install() else {
        eprintln!("Kamailio with db_sqlite not installed: skipped (bench/install.sh installs it)");
        return;
    };
    let dir = TempDir::new("db-kamd");
    let path = dir.path().join("ksrd.db");
    let cfg = write_config(dir.path(), "sqlite://ksrd.db", "");
    ok(ksrd_cli(&cfg, &["db", "init"], None));
    ok(ksrd_cli(
        &cfg,
        &["subscriber", "add", "alice@example.com", "pw"],
        None,
    ));
    let expires = date_to_unix("2031-01-01 00:00:00", true);
    {
        let rt = runtime();
        let db = open(&rt, "sqlite://ksrd.db", dir.path());
        let l = Location {
            ruid: "ksrd-1".into(),
            username: "alice".into(),
            domain: Some("example.com".into()),
            contact: "sip:alice@192.0.2.1:5060".into(),
            expires,
            q: 0.5,
            callid: "cid-1".into(),
            cseq: 3,
            last_modified: expires - 3600,
            ..Location::default()
        };
        rt.block_on(db.location_upsert("location", &[l])).unwrap();
        let h = vec![
            Value::Str("k1".into()),
            Value::Int(0),
            Value::Int(1),
            Value::Str("5".into()),
            Value::Int(0),
        ];
        let cols = ["key_name", "key_type", "value_type", "key_value", "expires"];
        rt.block_on(db.rows_replace("htable", &cols, vec![h]))
            .unwrap();
    }
    // Kamailio checks the version rows at start-up (usrloc, htable, uac) and loads the rows;
    // its sqlite URL needs four slashes for an absolute path.
    let url = format!("sqlite:///{}", path.display());
    let port = common::free_port();
    let kcfg = dir.path().join("kamailio.cfg");
    std::fs::write(
        &kcfg,
        format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
mpath="{mpath}/"
loadmodule "db_sqlite.so"
loadmodule "xlog.so"
loadmodule "kex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "htable.so"
loadmodule "uac.so"
modparam("usrloc", "db_url", "{url}")
modparam("usrloc", "db_mode", 2)
modparam("auth_db", "db_url", "{url}")
modparam("htable", "db_url", "{url}")
modparam("htable", "htable", "ipban=>size=8;dbtable=htable;dbmode=1")
modparam("uac", "reg_db_url", "{url}")
modparam("uac", "reg_contact_addr", "127.0.0.1:{port}")
event_route[htable:mod-init] {{
  xlog("L_ERR", "HTCHECK k1=$sht(ipban=>k1)\n");
}}
event_route[core:worker-one-init] {{
  if (reg_fetch_contacts("location", "sip:alice@example.com", "c")) {{
    xlog("L_ERR", "ULCHECK addr=$(ulc(c=>addr)) expires=$(ulc(c=>expires)) q=$(ulc(c=>q))\n");
  }} else {{ xlog("L_ERR", "ULCHECK none\n"); }}
}}
request_route {{
  if (!auth_check("$fd", "subscriber", "1")) {{ auth_challenge("$fd", "0"); exit; }}
  save("location");
}}
"#,
            mpath = mpath.display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("kamailio.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // Kamailio forks its worker processes: run it in its own process group and end the whole
    // group (also when the test fails half-way).
    struct Group(std::process::Child);
    impl Drop for Group {
        fn drop(&mut self) {
            let pg = self.0.id() as i32;
            unsafe {
                libc::kill(-pg, libc::SIGTERM);
            }
            if !wait_until(Duration::from_secs(5), || {
                matches!(self.0.try_wait(), Ok(Some(_)))
            }) {
                unsafe {
                    libc::kill(-pg, libc::SIGKILL);
                }
            }
            let _ = self.0.wait();
            // the workers may outlive the main process for a moment
            wait_until(
                Duration::from_secs(5),
                || unsafe { libc::kill(-pg, 0) } != 0,
            );
            unsafe {
                libc::kill(-pg, libc::SIGKILL);
            }
        }
    }
    use std::os::unix::process::CommandExt;
    let child = Command::new(kamailio)
        .process_group(0)
        .arg("-f")
        .arg(&kcfg)
        .args(["-DD", "-E", "-w"])
        .arg(dir.path())
        .arg("-P")
        .arg(dir.path().join("k.pid"))
        .arg("-Y")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run kamailio");
    let mut k = Group(child);
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let done = wait_until(Duration::from_secs(15), || {
        // Both lines: they come from different Kamailio processes, in no fixed order.
        let out = read();
        (out.contains("ULCHECK") && out.contains("HTCHECK"))
            || matches!(k.0.try_wait(), Ok(Some(_)))
    });
    // Read before stopping Kamailio: its shutdown logs errors of its own (epoll_wait after
    // SIGTERM) that say nothing about the database.
    let out = read();
    drop(k);
    assert!(done, "kamailio did not start: {out}");
    assert!(
        !out.contains("invalid version"),
        "version check failed: {out}"
    );
    assert!(!out.contains(" ERROR: <core>"), "{out}");
    assert!(out.contains("HTCHECK k1=5"), "{out}");
    let ul = out
        .lines()
        .find(|l| l.contains("ULCHECK"))
        .unwrap_or_default();
    assert!(ul.contains("addr=sip:alice@192.0.2.1:5060"), "{out}");
    assert!(ul.contains("q=500"), "{ul}");
    let got: i64 = ul
        .split("expires=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{ul}"));
    // db_sqlite truncates when it reads a Julian day, so it may land 1 s early
    assert!((got - expires).abs() <= 1, "{got} vs {expires}");
}

#[test]
fn wait_releases_the_gil_and_a_locked_database_times_out() {
    use pyo3::types::PyAnyMethods;
    let log = captured_log();
    let logged = |s: &str| String::from_utf8_lossy(&log.lock().unwrap()).contains(s);
    let dir = TempDir::new("db-gil");
    let rt = runtime();
    let mut cfg = db_config("sqlite://g.db", dir.path());
    cfg.timeout = Duration::from_millis(1500);
    let db = rt.block_on(Db::open(&cfg)).unwrap();
    db.wait(db.init_schema(true)).unwrap();

    // another process-like connection holds the write lock
    let locker = rusqlite::Connection::open(dir.path().join("g.db")).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    ksrd::script::host::init_python();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let db = db.clone();
        std::thread::spawn(move || {
            // a SIP worker in a KSR function: holds the GIL, then waits for the database
            pyo3::Python::attach(|_py| {
                tx.send(()).unwrap();
                let s = Subscriber::with_password("gil", "example.com", "pw", false);
                db.wait(db.subscriber_add("subscriber", &s))
            })
        })
    };
    rx.recv().unwrap();
    // the GIL is free while that call waits: another thread runs Python meanwhile
    let v: i64 = pyo3::Python::attach(|py| {
        py.eval(c"6 * 7", None, None)
            .and_then(|r| r.extract())
            .unwrap()
    });
    assert_eq!(v, 42);
    assert!(
        !worker.is_finished(),
        "the database call should still be waiting"
    );
    let r = worker.join().unwrap();
    assert!(matches!(r, Err(DbError::Timeout(_))), "{r:?}");
    assert!(logged("database unavailable"));

    locker.execute_batch("ROLLBACK").unwrap();
    let s = Subscriber::with_password("gil", "example.com", "pw", false);
    db.wait(db.subscriber_add("subscriber", &s)).unwrap();
    assert!(logged("database is reachable again"));
}
