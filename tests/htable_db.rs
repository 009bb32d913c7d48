//! htable database persistence (Kamailio's `dbtable`/`dbmode`, ht_db.c) through the real binary,
//! on an SQLite file and on a throwaway PostgreSQL cluster: rows written into the database before
//! start are visible through the `htable.*` RPC commands (int values, array keys, expired rows
//! skipped with `db_expires`), values set at run time are in the database after a graceful stop
//! (SIGTERM) and come back after a restart, `htable.reload` picks up rows added while running, a
//! `dbmode=0` table is never saved, custom column names are honoured, and a PostgreSQL server that
//! is down at start leaves an empty table that is not saved over the rows it never loaded.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use common::pg::PgCluster;
use common::*;

/// How long a graceful stop (saving the tables included) may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the rows live.
enum Backend<'a> {
    Sqlite(PathBuf),
    Pg(&'a PgCluster, String),
}

impl Backend<'_> {
    fn url(&self) -> String {
        match self {
            Backend::Sqlite(p) => format!("sqlite://{}", p.display()),
            Backend::Pg(pg, db) => pg.url(db),
        }
    }

    /// Run statements (no result).
    fn exec(&self, sql: &str) {
        match self {
            Backend::Sqlite(p) => rusqlite::Connection::open(p)
                .and_then(|c| c.execute_batch(sql))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Backend::Pg(pg, db) => {
                pg.psql(db, sql);
            }
        }
    }

    /// The rows of a query, each as its columns joined by `|` (psql's unaligned output), sorted
    /// here so that collations do not matter.
    fn rows(&self, sql: &str) -> Vec<String> {
        let mut out: Vec<String> = match self {
            Backend::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut st = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = st.column_count();
                st.query_map([], |r| {
                    let cols: Vec<String> = (0..n)
                        .map(|i| match r.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Null => String::new(),
                            rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                            rusqlite::types::ValueRef::Real(v) => v.to_string(),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                        })
                        .collect();
                    Ok(cols.join("|"))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            Backend::Pg(pg, db) => pg.psql(db, sql).lines().map(String::from).collect(),
        };
        out.sort();
        out
    }

    /// `CREATE TABLE name` with the shape of Kamailio's `htable` table, under other column names.
    fn create_htable_like(&self, name: &str, cols: [&str; 5]) {
        let id = match self {
            Backend::Sqlite(_) => "INTEGER PRIMARY KEY",
            Backend::Pg(..) => "SERIAL PRIMARY KEY",
        };
        let [k, kt, vt, v, e] = cols;
        self.exec(&format!(
            "CREATE TABLE {name} (id {id}, {k} VARCHAR(64) NOT NULL DEFAULT '', \
             {kt} INTEGER NOT NULL DEFAULT 0, {vt} INTEGER NOT NULL DEFAULT 0, \
             {v} VARCHAR(128) NOT NULL DEFAULT '', {e} INTEGER NOT NULL DEFAULT 0)"
        ));
    }
}

/// The PostgreSQL cluster shared by the tests that keep it running. It is started from a thread
/// that never ends, so its death signal fires only when the test process exits.
fn shared_pg() -> &'static PgCluster {
    static PG: OnceLock<&'static PgCluster> = OnceLock::new();
    PG.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pg: &'static PgCluster = Box::leak(Box::new(PgCluster::start()));
            tx.send(pg).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("PostgreSQL cluster failed to start")
    })
}

fn sqlite_backend(dir: &TempDir) -> Backend<'static> {
    Backend::Sqlite(dir.path().join("ht.db"))
}

fn pg_backend(name: &str) -> Backend<'static> {
    let pg = shared_pg();
    pg.create_db(name);
    Backend::Pg(pg, name.to_string())
}

/// `ksrd db init` on the backend's database.
fn db_init(b: &Backend, dir: &TempDir) {
    let cfg = dir.path().join("init.toml");
    std::fs::write(&cfg, format!("db_url = \"{}\"\n", b.url())).unwrap();
    let out = ksrd_cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["db", "init"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "db init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn start(b: &Backend, htable_toml: &str) -> Ksrd {
    Ksrd::start(
        DEFAULT_TEST_ROUTE,
        &format!("db_url = \"{}\"\n{htable_toml}", b.url()),
    )
}

/// SIGTERM, then wait for the process to exit (it saves the tables first); its log.
fn stop(k: &mut Ksrd) -> String {
    unsafe {
        libc::kill(k.pid() as i32, libc::SIGTERM);
    }
    let mut status = None;
    let exited = wait_until(STOP_TIMEOUT, || {
        status = k.child.try_wait().ok().flatten();
        status.is_some()
    });
    let log = k.log();
    assert!(exited, "ksrd did not exit after SIGTERM; log:\n{log}");
    let status = status.unwrap();
    assert!(status.success(), "ksrd exited with {status}; log:\n{log}");
    log
}

fn result(v: &Value) -> &Value {
    v.get("result")
        .unwrap_or_else(|| panic!("no result in {v}"))
}

/// name -> value of every live item of a table (`htable.dump`).
fn items(k: &Ksrd, table: &str) -> BTreeMap<String, Value> {
    let r = k.rpc("htable.dump", json!([table]));
    let mut out = BTreeMap::new();
    for slot in result(&r).as_array().unwrap() {
        for it in slot["slot"].as_array().unwrap() {
            let name = it["name"].as_str().unwrap().to_string();
            assert!(out.insert(name, it["value"].clone()).is_none(), "{r}");
        }
    }
    out
}

fn map(kv: &[(&str, Value)]) -> BTreeMap<String, Value> {
    kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

const TABLES: &str = r#"
[modparam.htable]
htable = [
    "t=>size=4;autoexpire=7200;dbtable=htable;dbmode=1",
    "ro=>size=2;dbtable=htable_ro",
    "mem=>size=2",
]
db_expires = 1
"#;

const HT_COLS: [&str; 5] = ["key_name", "key_type", "value_type", "key_value", "expires"];

fn load_save_reload_restart(b: &Backend, dir: &TempDir) {
    db_init(b, dir);
    b.create_htable_like("htable_ro", HT_COLS);
    let t0 = now();
    let (old, later) = (t0 - 100, t0 + 1000);
    b.exec(&format!(
        "INSERT INTO htable (key_name, key_type, value_type, key_value, expires) VALUES
           ('alice', 0, 0, 'pw1', 0), ('count', 0, 1, '12', 0),
           ('gw', 1, 0, 'sip:a', 0), ('gw', 1, 0, 'sip:b', 0),
           ('old', 0, 0, 'x', {old}), ('later', 0, 0, 'y', {later});
         INSERT INTO htable_ro (key_name, key_type, value_type, key_value) VALUES ('ro', 0, 0, 'keep');"
    ));

    // --- first run: what the database holds is loaded
    let mut k = start(b, TABLES);
    let got = items(&k, "t");
    let gw: Vec<&Value> = ["gw[0]", "gw[1]"]
        .iter()
        .filter_map(|n| got.get(*n))
        .collect();
    // the order of rows with the same key_name is the database's (as in Kamailio)
    assert!(
        gw == [&json!("sip:a"), &json!("sip:b")] || gw == [&json!("sip:b"), &json!("sip:a")],
        "{got:?}"
    );
    let mut rest = got.clone();
    rest.remove("gw[0]");
    rest.remove("gw[1]");
    assert_eq!(
        rest,
        map(&[
            ("alice", json!("pw1")),
            ("count", json!(12)),
            ("gw::size", json!(2)),
            ("later", json!("y")),
        ]),
        "{}",
        k.log_tail(20)
    );
    let count = k.rpc("htable.get", json!(["t", "count"]));
    assert_eq!(result(&count)["item"]["value"], 12);
    assert_eq!(result(&count)["item"]["flags"], 0, "an int item");
    // with db_expires the row's own expiry is kept: sooner than a fresh item's autoexpire
    let exp = |key: &str| {
        let r = k.rpc("htable.get", json!(["t", key]));
        result(&r)["item"]["expire"].as_str().unwrap().to_string()
    };
    let (later_exp, alice_exp) = (exp("later"), exp("alice"));
    assert!(
        later_exp != "NEVER" && later_exp < alice_exp,
        "{later_exp} vs {alice_exp}"
    );
    assert_eq!(items(&k, "ro"), map(&[("ro", json!("keep"))]));
    assert!(k.log().contains("htable: loaded from the database"));

    // htable.reload picks up a row added while running
    b.exec("INSERT INTO htable (key_name, key_type, value_type, key_value) VALUES ('fresh', 0, 0, 'new')");
    assert!(!items(&k, "t").contains_key("fresh"));
    let r = k.rpc("htable.reload", json!(["t"]));
    assert_eq!(result(&r), "Ok. Htable reloaded.", "{r}");
    let reloaded = items(&k, "t");
    assert_eq!(reloaded.get("fresh"), Some(&json!("new")), "{reloaded:?}");
    assert_eq!(reloaded.len(), 7, "{reloaded:?}");

    // run-time changes
    for (m, p) in [
        ("htable.seti", json!(["t", "n1", 42])),
        ("htable.sets", json!(["t", "s1", "hello world"])),
        ("htable.delete", json!(["t", "alice"])),
        ("htable.seti", json!(["ro", "extra", 1])),
        ("htable.sets", json!(["mem", "m", "x"])),
    ] {
        let r = k.rpc(m, json!(p));
        assert!(r.get("result").is_some(), "{m}: {r}");
    }
    let log = stop(&mut k);
    assert_eq!(
        log.matches("htable: saved to the database").count(),
        1,
        "{log}"
    );

    // --- the database after the graceful stop: t saved, ro (dbmode=0) untouched
    // gw[0]/gw[1] hold sip:a/sip:b in whichever order they were loaded
    let got_t: Vec<String> = b
        .rows("SELECT key_name, key_type, value_type, key_value FROM htable")
        .into_iter()
        .map(|r| match r.starts_with("gw[") {
            true => r.replace("sip:a", "sip:?").replace("sip:b", "sip:?"),
            false => r,
        })
        .collect();
    assert_eq!(
        got_t,
        [
            "count|0|1|12",
            "fresh|0|0|new",
            "gw::size|0|1|2",
            "gw[0]|0|0|sip:?",
            "gw[1]|0|0|sip:?",
            "later|0|0|y",
            "n1|0|1|42",
            "s1|0|0|hello world",
        ]
    );
    let gw = b.rows("SELECT key_value FROM htable WHERE key_name LIKE 'gw[%'");
    assert_eq!(gw, ["sip:a", "sip:b"]);
    // expires are saved (db_expires): the loaded one as it was, the others autoexpire from now
    assert_eq!(
        b.rows("SELECT expires FROM htable WHERE key_name = 'later'"),
        [later.to_string()]
    );
    let stale = b.rows(&format!(
        "SELECT key_name FROM htable WHERE expires <= {t0} OR expires > {}",
        now() + 7200
    ));
    assert!(stale.is_empty(), "{stale:?}");
    assert_eq!(
        b.rows("SELECT key_name, key_value FROM htable_ro"),
        ["ro|keep"]
    );

    // --- restart: the saved items come back (array items as the plain keys Kamailio saves)
    let mut k = start(b, TABLES);
    let got = items(&k, "t");
    assert_eq!(got.len(), 8, "{got:?}");
    assert_eq!(got["n1"], json!(42));
    assert_eq!(got["s1"], json!("hello world"));
    assert_eq!(got["gw::size"], json!(2));
    assert_eq!(got["fresh"], json!("new"));
    assert!(!got.contains_key("alice"));
    assert_eq!(items(&k, "ro"), map(&[("ro", json!("keep"))]));
    assert!(items(&k, "mem").is_empty());
    stop(&mut k);
}

#[test]
fn sqlite_load_save_reload_restart() {
    let dir = TempDir::new("htdb-sqlite");
    load_save_reload_restart(&sqlite_backend(&dir), &dir);
}

#[test]
fn postgres_load_save_reload_restart() {
    let dir = TempDir::new("htdb-pg");
    load_save_reload_restart(&pg_backend("htdb_main"), &dir);
}

const CUSTOM: &str = r##"
[modparam.htable]
htable = ["c=>size=2;autoexpire=600;dbtable=kv;dbmode=1"]
key_name_column = "name"
key_type_column = "kt"
value_type_column = "vt"
key_value_column = "val"
expires_column = "exp"
array_size_suffix = "#n"
db_expires = 1
"##;

fn custom_columns(b: &Backend, dir: &TempDir) {
    db_init(b, dir);
    b.create_htable_like("kv", ["name", "kt", "vt", "val", "exp"]);
    let t0 = now();
    let (s_exp, gone) = (t0 + 300, t0 - 5);
    b.exec(&format!(
        "INSERT INTO kv (name, kt, vt, val, exp) VALUES
           ('arr', 1, 1, '7', 0), ('arr', 1, 1, '7', 0), ('s', 0, 0, 'v', {s_exp}),
           ('gone', 0, 0, 'z', {gone})"
    ));
    let mut k = start(b, CUSTOM);
    assert_eq!(
        items(&k, "c"),
        map(&[
            ("arr[0]", json!(7)),
            ("arr[1]", json!(7)),
            ("arr#n", json!(2)),
            ("s", json!("v")),
        ]),
        "{}",
        k.log_tail(20)
    );
    let r = k.rpc("htable.seti", json!(["c", "n", 3]));
    assert!(r.get("result").is_some(), "{r}");
    stop(&mut k);
    assert_eq!(
        b.rows("SELECT name, kt, vt, val FROM kv"),
        [
            "arr#n|0|1|2",
            "arr[0]|0|1|7",
            "arr[1]|0|1|7",
            "n|0|1|3",
            "s|0|0|v"
        ]
    );
    assert_eq!(
        b.rows("SELECT exp FROM kv WHERE name = 's'"),
        [s_exp.to_string()]
    );
}

#[test]
fn sqlite_custom_column_names() {
    let dir = TempDir::new("htdb-cols-sqlite");
    custom_columns(&sqlite_backend(&dir), &dir);
}

#[test]
fn postgres_custom_column_names() {
    let dir = TempDir::new("htdb-cols-pg");
    custom_columns(&pg_backend("htdb_cols"), &dir);
}

#[test]
fn postgres_down_at_start_leaves_an_empty_table_that_is_not_saved() {
    // its own cluster: this test stops it
    let pg = PgCluster::start();
    pg.create_db("htdown");
    let b = Backend::Pg(&pg, "htdown".into());
    let dir = TempDir::new("htdb-down");
    db_init(&b, &dir);
    b.exec(
        "INSERT INTO htable (key_name, key_type, value_type, key_value) VALUES ('k', 0, 1, '7')",
    );
    let tables = "[modparam.htable]\nhtable = [\"t=>size=2;dbtable=htable;dbmode=1\"]\n";

    // down at start: a clear error, an empty table, a running server
    pg.stop();
    let mut k = start(&b, tables);
    assert!(k.is_running());
    let log = k.log();
    assert!(
        log.contains("htable: loading from the database failed")
            && log.contains("database unavailable"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(items(&k, "t").is_empty());
    // back up: the shutdown save would replace rows this server never loaded, so it is skipped
    pg.start_server();
    assert!(k
        .rpc("htable.seti", json!(["t", "x", 1]))
        .get("result")
        .is_some());
    let log = stop(&mut k);
    assert!(log.contains("htable: not saved to the database"), "{log}");
    assert!(!log.contains("htable: saved to the database"), "{log}");
    assert_eq!(b.rows("SELECT key_name, key_value FROM htable"), ["k|7"]);

    // down at start, then htable.reload once it is back: loaded, and saved at shutdown
    pg.stop();
    let mut k = start(&b, tables);
    assert!(items(&k, "t").is_empty());
    pg.start_server();
    let mut last = Value::Null;
    assert!(
        wait_until(Duration::from_secs(15), || {
            last = k.rpc("htable.reload", json!(["t"]));
            last.get("result").is_some()
        }),
        "reload kept failing: {last}; log:\n{}",
        k.log_tail(20)
    );
    assert_eq!(items(&k, "t"), map(&[("k", json!(7))]));
    assert!(k
        .rpc("htable.seti", json!(["t", "y", 2]))
        .get("result")
        .is_some());
    let log = stop(&mut k);
    assert!(log.contains("htable: saved to the database"), "{log}");
    assert_eq!(
        b.rows("SELECT key_name, key_value FROM htable"),
        ["k|7", "y|2"]
    );
}

/// RPC answers before start-up ends; a SIGTERM then must still save. Many workers make the end
/// of start-up long enough that a signal handler installed last (the bug this guards against)
/// is usually missed here.
#[test]
fn sigterm_as_soon_as_rpc_answers_still_saves() {
    let dir = TempDir::new("htdb-early");
    let b = sqlite_backend(&dir);
    db_init(&b, &dir);
    let mut k = Ksrd::start_opts(StartOpts {
        route_src: Some(DEFAULT_TEST_ROUTE.into()),
        extra_toml: format!(
            "workers = 32\ndb_url = \"{}\"\n[modparam.htable]\nhtable = [\"t=>size=2;dbtable=htable;dbmode=1\"]\n",
            b.url()
        ),
        no_wait: true,
        ..Default::default()
    });
    // the earliest moment a client can act on ksrd: its RPC answers
    assert!(
        wait_until(START_TIMEOUT, || k
            .try_rpc("htable.seti", json!(["t", "early", 1]))
            .is_ok_and(|r| r.get("result").is_some())),
        "{}",
        k.log()
    );
    let log = stop(&mut k);
    assert!(log.contains("htable: saved to the database"), "{log}");
    assert_eq!(
        b.rows("SELECT key_name, key_value FROM htable"),
        ["early|1"]
    );
}
