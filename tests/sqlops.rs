//! sqlops (`KSR.sqlops.*`, `$dbr`, `$xavp` rows) over real sockets, on an SQLite file and on a
//! throwaway PostgreSQL database: every scenario runs on both stores. A scenario route runs one
//! Python case per request (header `X-Case`) and answers with its results as JSON in `X-R`.
//! Also: the parameterised variants store a hostile value verbatim and drop nothing, a slow
//! query in one worker does not stop another (GIL released), sqlcon config errors, and the two
//! example routes routes/honeypot.py and routes/check_blacklist.py.
mod common;
use common::pg;
use common::*;
use ksrd::db::{Db, DbConfig, DbUrl, Value};
use serde_json::{json, Value as J};
use std::time::Duration;

const ROUTE: &str = r#"import json
import time

import KSR

S = KSR.sqlops
EVIL = "O'Brien'; DROP TABLE t;--"


def q(sql, res="ra"):
    return S.sql_query("ca", sql, res)


def case_setup():
    return [
        q("DROP TABLE IF EXISTS t"),
        q("CREATE TABLE t (id INTEGER, name VARCHAR(64), score DOUBLE PRECISION, note VARCHAR(64))"),
        q("INSERT INTO t VALUES (1, 'alice', 2.5, NULL)"),
        q("INSERT INTO t VALUES (2, 'bob', NULL, 'x')"),
    ]


def case_getters():
    o = {"rc": q("SELECT id, name, score, note FROM t ORDER BY id")}
    KSR.pvx.var_seti("i", 1)
    for k, (r, c) in {"v00": (0, 0), "v01": (0, 1), "v02": (0, 2), "v03": (0, 3), "v12": (1, 2), "oob": (9, 0)}.items():
        o[k] = S.sql_result_get("ra", r, c)
    o.update(
        rows=S.sql_num_rows("ra"), cols=S.sql_num_columns("ra"),
        e03=S.sql_result_gete("ra", 0, 3), z03=S.sql_result_getz("ra", 0, 3),
        null03=S.sql_is_null("ra", 0, 3), null01=S.sql_is_null("ra", 0, 1), null_oob=S.sql_is_null("ra", 5, 0),
        dbr_rows=KSR.pv.get("$dbr(ra=>rows)"), dbr_cols=KSR.pv.get("$dbr(ra=>cols)"),
        dbr_11=KSR.pv.get("$dbr(ra=>[1,1])"), dbr_colname=KSR.pv.get("$dbr(ra=>colname[1])"),
        dbr_var=KSR.pv.get("$dbr(ra=>[$var(i),0])"), dbr_null=KSR.pv.get("$dbr(ra=>[0,3])"),
        dbr_oob=KSR.pv.get("$dbr(ra=>[7,0])"), dbr_never=KSR.pv.get("$dbr(never=>rows)"),
    )
    o["free"] = S.sql_result_free("ra")
    o["rows_after_free"] = S.sql_num_rows("ra")
    q("SELECT id FROM t")
    o["update"] = q("UPDATE t SET note = 'y' WHERE id = 2")
    o["rows_after_update"] = S.sql_num_rows("ra")
    q("SELECT id FROM t")
    o["anonymous"] = q("UPDATE t SET note = note WHERE id = 99", "")
    o["bad_sql"] = q("SELEC nonsense")
    o["rows_after_error"] = S.sql_num_rows("ra")
    o["types_rc"] = q("SELECT CAST(1.5 AS DOUBLE PRECISION) AS d, CAST(7 AS BIGINT) AS b, 'txt' AS s, NULL AS n", "rt")
    o["types"] = [S.sql_result_get("rt", 0, c) for c in range(4)]
    o["count"] = q("SELECT COUNT(*) FROM t", "rc") == 0 and S.sql_result_get("rc", 0, 0)
    return o


def case_xquery():
    o = {"rc": S.sql_xquery("ca", "SELECT id, name, note FROM t ORDER BY id", "x")}
    for k in ["x=>id", "x=>name", "x[1]=>name", "x=>note", "x[1]=>note", "x[2]=>name", "x=>nosuch"]:
        o[k] = KSR.pv.get("$xavp(" + k + ")")
    KSR.pvx.evalx("$var(out)", "[$xavp(x[1]=>name)]")
    o["evalx"] = KSR.pvx.var_get("out")
    o["empty_rc"] = S.sql_xquery("ca", "SELECT id FROM t WHERE id = 99", "y")
    o["empty"] = KSR.pv.get("$xavp(y=>id)")
    o["bad_rc"] = S.sql_xquery("ca", "SELECT nosuchcol FROM t", "z")
    return o


def case_pvquery():
    KSR.pvx.var_seti("id", 1)
    o = {"rc": S.sql_pvquery("ca", "SELECT id, name, note FROM t WHERE id = $var(id)", "$var(a), $avp(b), $var(c)")}
    o.update(a=KSR.pvx.var_get("a"), b=KSR.pvx.avp_get("b"), c=KSR.pvx.var_get("c"))
    o["none"] = S.sql_pvquery("ca", "SELECT id FROM t WHERE id = 99", "$var(a)")
    o["short"] = S.sql_pvquery("ca", "SELECT id, name FROM t", "$var(a)")
    o["readonly"] = S.sql_pvquery("ca", "SELECT id FROM t WHERE id = 1", "$si")
    o["badpv"] = S.sql_pvquery("ca", "SELECT id FROM t", "$nosuch")
    S.sql_pvquery("ca", "SELECT name FROM t ORDER BY id", "$avp(n)")
    o["avp_top"] = KSR.pvx.avp_get("n")
    return o


def case_params():
    o = {"ins": S.sql_query_params("ca", "INSERT INTO t (id, name, score, note) VALUES (?, ?, ?, ?)", [3, EVIL, 1.25, None], "ra")}
    o["sel"] = S.sql_query_params("ca", "SELECT name, score, note, id FROM t WHERE name = $1 AND id = $2", [EVIL, 3], "ra")
    o["row"] = [S.sql_result_get("ra", 0, c) for c in range(4)] if S.sql_num_rows("ra") == 1 else None
    q("SELECT COUNT(*) FROM t", "rc")
    o["count"] = S.sql_result_get("rc", 0, 0)
    o["x"] = S.sql_xquery_params("ca", "SELECT name FROM t WHERE id = ?", ["3"], "p")
    o["xname"] = KSR.pv.get("$xavp(p=>name)")
    o["literal_rc"] = S.sql_query_params("ca", "SELECT '?' AS q, ? AS v", ["a"], "rq")
    o["literal"] = [S.sql_result_get("rq", 0, 0), S.sql_result_get("rq", 0, 1)]
    o["missing_param"] = S.sql_query_params("ca", "SELECT id FROM t WHERE id = ? AND name = ?", [1], "ra")
    try:
        S.sql_query_params("ca", "SELECT ?", [object()], "ra")
        o["bad_type"] = "accepted"
    except TypeError as e:
        o["bad_type"] = "TypeError"
    return o


def case_unknown():
    return {
        "q": S.sql_query("nope", "SELECT 1", "ra"),
        "qp": S.sql_query_params("nope", "SELECT ?", [1], "ra"),
        "x": S.sql_xquery("nope", "SELECT 1", "x"),
        "pv": S.sql_pvquery("nope", "SELECT 1", "$var(a)"),
        "async": S.sql_query_async("nope", "SELECT 1"),
    }


def case_async():
    return {"rc": S.sql_query_async("ca", "INSERT INTO t (id, name) VALUES (10, 'async')")}


def case_count10():
    q("SELECT COUNT(*) FROM t WHERE id = 10", "rc")
    return {"n": S.sql_result_get("rc", 0, 0)}


def case_multi():
    return {"rc": q("INSERT INTO t (id) VALUES (20); INSERT INTO t (id) VALUES (21)")}


def case_pgtypes():
    rc = q("SELECT CAST('2020-01-01 00:00:00+00' AS timestamptz), CAST(12.50 AS numeric), CAST(-0.0012 AS numeric), "
           "CAST(123456.789 AS numeric), true, CAST('{\"a\": 1}' AS jsonb), CAST('ab' AS bytea)", "pt")
    return {"rc": rc, "v": [S.sql_result_get("pt", 0, c) for c in range(7)],
            "inet": q("SELECT CAST('10.0.0.1' AS inet)", "pi"), "inet_text": q("SELECT CAST('10.0.0.1' AS inet)::text", "pi")}


def case_maxsize():
    return [S.sql_num_rows(r) for r in ["r1", "r2", "r3", "r4"]]


def case_slow():
    KSR.info("slow query starts\n")
    rc = q("SELECT pg_sleep(0.5)", "slow")
    return {"rc": rc, "rows": S.sql_num_rows("slow")}


def case_ping():
    # Is the other worker's pg_sleep still running in the database? Asked a few times, since
    # the log line comes just before the query is sent. If that worker held the GIL while
    # waiting, this route could only run after the sleep ended and would never see it.
    for _ in range(40):
        q("SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(0.5)'", "act")
        if S.sql_result_getz("act", 0, 0) > 0:
            return {"pong": 1, "slow_running": 1}
        time.sleep(0.01)
    return {"pong": 1, "slow_running": 0}


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        case = KSR.pv.gete("$hdr(X-Case)")
        try:
            out = globals()["case_" + case]()
        except Exception as e:
            out = {"exception": repr(e)}
        KSR.hdr.append_to_reply("X-R: " + json.dumps(out) + "\r\n")
        KSR.sl.sl_send_reply(200, "OK")
        return 1
"#;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Store {
    Sqlite,
    Postgres,
}

/// A database for one test: its URL, and the directory that holds an SQLite file.
struct TestDb {
    url: String,
    _dir: TempDir,
}

fn test_db(store: Store) -> TestDb {
    let dir = TempDir::new("sqlops");
    let url = match store {
        Store::Sqlite => format!("sqlite://{}", dir.path().join("sqlops.db").display()),
        Store::Postgres => {
            let (pg, name) = pg::shared_db("sqlops");
            pg.url(&name)
        }
    };
    TestDb { url, _dir: dir }
}

fn sqlcon(name: &str, url: &str, extra: &str) -> String {
    format!("[modparam.sqlops]\nsqlcon = [\"{name}=>{url}\"]\n{extra}")
}

/// ksrd with the scenario route and connection `ca`, the table `t` created.
fn start(store: Store) -> (Ksrd, TestDb) {
    let db = test_db(store);
    let k = Ksrd::start(ROUTE, &sqlcon("ca", &db.url, ""));
    assert_eq!(run(&k, "setup"), json!([0, 0, 0, 0]), "{}", k.log_tail(20));
    (k, db)
}

/// Run one case; its JSON result.
fn run(k: &Ksrd, case: &str) -> J {
    let c = k.udp();
    let r = c.request(&options(k.port, c.addr()).set("X-Case", case).build());
    parse_result(k, &r)
}

fn parse_result(k: &Ksrd, r: &SipMsg) -> J {
    let h = r
        .header("X-R")
        .unwrap_or_else(|| panic!("no X-R in {}\n{}", r.text(), k.log_tail(20)));
    let v: J = serde_json::from_str(h).unwrap_or_else(|e| panic!("{e}: {h}"));
    assert!(v.get("exception").is_none(), "{v}\n{}", k.log_tail(20));
    v
}

fn query_results_getters_and_dbr(store: Store) {
    let (k, _db) = start(store);
    let o = run(&k, "getters");
    let expect = json!({
        // KEMI sql_query: 0 on success (sqlops_do_query), -1 on error.
        "rc": 0, "rows": 2, "cols": 4,
        "v00": 1, "v01": "alice", "v02": "2.5", "v03": null, "v12": null, "oob": null,
        "e03": "", "z03": 0, "null03": 1, "null01": 0, "null_oob": -1,
        "dbr_rows": 2, "dbr_cols": 4, "dbr_11": "bob", "dbr_colname": "name",
        "dbr_var": 2, "dbr_null": null, "dbr_oob": null, "dbr_never": 0,
        "free": 1, "rows_after_free": 0,
        "update": 0, "rows_after_update": 0,
        "anonymous": 0, "bad_sql": -1, "rows_after_error": 0,
        "types_rc": 0, "types": ["1.5", 7, "txt", null],
        "count": 2,
    });
    assert_eq!(o, expect, "{store:?}\n{}", k.log_tail(20));
}

fn xquery_rows_in_xavp(store: Store) {
    let (k, _db) = start(store);
    let o = run(&k, "xquery");
    let expect = json!({
        "rc": 1,
        "x=>id": 1, "x=>name": "alice", "x[1]=>name": "bob", "x=>note": null, "x[1]=>note": "x",
        "x[2]=>name": null, "x=>nosuch": null,
        "evalx": "[bob]",
        "empty_rc": 1, "empty": null,
        "bad_rc": -1,
    });
    assert_eq!(o, expect, "{store:?}\n{}", k.log_tail(20));
}

fn pvquery_assigns_variables(store: Store) {
    let (k, _db) = start(store);
    let o = run(&k, "pvquery");
    let expect = json!({
        "rc": 1, "a": 1, "b": "alice", "c": 0,
        "none": 2, "short": -1, "readonly": -1, "badpv": -1,
        // rows are assigned last to first: row 0 ends on top of the AVP stack
        "avp_top": "alice",
    });
    assert_eq!(o, expect, "{store:?}\n{}", k.log_tail(20));
}

fn params_bind_values_verbatim_and_drop_nothing(store: Store) {
    let (k, _db) = start(store);
    let o = run(&k, "params");
    let expect = json!({
        "ins": 0, "sel": 0,
        "row": ["O'Brien'; DROP TABLE t;--", "1.25", null, 3],
        "count": 3,
        "x": 1, "xname": "O'Brien'; DROP TABLE t;--",
        "literal_rc": 0, "literal": ["?", "a"],
        "missing_param": -1,
        "bad_type": "TypeError",
    });
    assert_eq!(o, expect, "{store:?}\n{}", k.log_tail(20));
    // The table is still there with its three rows.
    assert_eq!(run(&k, "getters")["count"], json!(3));
}

fn unknown_connection_is_minus_one_and_logged(store: Store) {
    let (k, _db) = start(store);
    let o = run(&k, "unknown");
    assert_eq!(
        o,
        json!({"q": -1, "qp": -1, "x": -1, "pv": -1, "async": -1}),
        "{store:?}"
    );
    assert!(
        k.wait_log("invalid connection [nope]", Duration::from_secs(2)),
        "{}",
        k.log_tail(20)
    );
}

fn async_query_runs_after_the_call(store: Store) {
    let (k, _db) = start(store);
    assert_eq!(run(&k, "async"), json!({"rc": 1}));
    assert!(
        wait_until(Duration::from_secs(5), || run(&k, "count10")["n"]
            == json!(1)),
        "{}",
        k.log_tail(20)
    );
}

fn several_statements_in_one_text(store: Store) {
    let (k, _db) = start(store);
    let rc = run(&k, "multi")["rc"].clone();
    match store {
        // db_postgres runs every statement of the text (simple query protocol)
        Store::Postgres => assert_eq!(rc, json!(0)),
        // db_sqlite would silently run only the first; ksrd refuses the text instead
        Store::Sqlite => assert_eq!(rc, json!(-1)),
    }
}

/// PostgreSQL column types: timestamps as Unix time, numerics as exact text, booleans as int;
/// a type ksrd cannot read fails the query until it is cast to text.
#[test]
fn postgres_column_types() {
    let (k, _db) = start(Store::Postgres);
    assert_eq!(
        run(&k, "pgtypes"),
        json!({"rc": 0, "v": [1577836800, "12.50", "-0.0012", "123456.789", 1, "{\"a\": 1}", "ab"], "inet": -1, "inet_text": 0})
    );
}

// ---- the example routes

/// The test's own handle on a database, to prepare and inspect tables.
struct Direct {
    rt: tokio::runtime::Runtime,
    db: Db,
}

impl Direct {
    fn open(url: &str) -> Direct {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cfg = DbConfig {
            url: Some(DbUrl::parse(url, std::path::Path::new("/")).unwrap()),
            ..DbConfig::default()
        };
        let db = rt.block_on(Db::open(&cfg)).unwrap();
        Direct { rt, db }
    }
    fn query(&self, sql: &str, params: &[Value]) -> Vec<Vec<Value>> {
        self.rt
            .block_on(self.db.raw_query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn honeypot_counts_hits_per_source(store: Store) {
    let db = test_db(store);
    let k = Ksrd::start_with_route_file("routes/honeypot.py", &sqlcon("honeypot", &db.url, ""));
    let ua = "friendly-scanner'; DROP TABLE baddies;--";
    let a = k.udp();
    for _ in 0..3 {
        let r = a.request(&options(k.port, a.addr()).set("User-Agent", ua).build());
        assert_eq!(r.code, 200, "{}", k.log_tail(20));
    }
    let b = UdpClient::bind("127.0.0.2:0", k.port);
    let r = b.request(
        &options(k.port, b.addr())
            .set("User-Agent", "sipcli")
            .build(),
    );
    assert_eq!(r.code, 200);
    let d = Direct::open(&db.url);
    let rows = d.query(
        "SELECT ip, hits, ua, country, city FROM baddies ORDER BY ip",
        &[],
    );
    // The start-up probes of the harness came from 127.0.0.1 too: at least 3 hits there.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], s("127.0.0.1"));
    assert!(matches!(rows[0][1], Value::Int(n) if n >= 3), "{rows:?}");
    assert_eq!(rows[0][2], s(ua));
    assert_eq!(rows[0][3], s(""));
    assert_eq!(
        rows[1],
        vec![s("127.0.0.2"), Value::Int(1), s("sipcli"), s(""), s("")]
    );
    let seen = d.query(
        "SELECT last_seen FROM baddies WHERE ip = ?",
        &[s("127.0.0.2")],
    );
    assert!(
        matches!(seen[0][0], Value::Int(t) if t > 1_700_000_000),
        "{seen:?}"
    );
}

fn check_blacklist_drops_listed_sources(store: Store) {
    let db = test_db(store);
    let d = Direct::open(&db.url);
    let ddl = std::fs::read_to_string(repo_path("routes/sql/baddies.sql")).unwrap();
    d.query(&ddl, &[]);
    d.query(
        "INSERT INTO baddies (ip, hits) VALUES (?, ?)",
        &[s("127.0.0.2"), Value::Int(5)],
    );
    let k = Ksrd::start_with_route_file(
        "routes/check_blacklist.py",
        &sqlcon("honeypot", &db.url, ""),
    );
    let bad = UdpClient::bind("127.0.0.2:0", k.port);
    bad.send(&options(k.port, bad.addr()).build());
    // One worker: the listed request was routed before this one is answered.
    let good = k.udp();
    let r = good.request(&options(k.port, good.addr()).build());
    assert_eq!(r.code, 200, "{}", k.log_tail(20));
    let r = good.request(&Req::new("INVITE", "sip:bob@localhost", good.addr()).build());
    assert_eq!(r.code, 404);
    bad.expect_silence(Duration::from_millis(300));
}

macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Store::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Store::Postgres) } )*
        }
    };
}

on_every_store!(
    query_results_getters_and_dbr,
    xquery_rows_in_xavp,
    pvquery_assigns_variables,
    params_bind_values_verbatim_and_drop_nothing,
    unknown_connection_is_minus_one_and_logged,
    async_query_runs_after_the_call,
    several_statements_in_one_text,
    honeypot_counts_hits_per_source,
    check_blacklist_drops_listed_sources,
);

/// A slow query in one worker does not stop the other: the OPTIONS sent while the first
/// worker waits for `pg_sleep` is answered before that query ends (the GIL is released).
#[test]
fn slow_query_does_not_hold_the_gil() {
    let db = test_db(Store::Postgres);
    let k = Ksrd::start(
        ROUTE,
        &format!("workers = 2\n{}", sqlcon("ca", &db.url, "")),
    );
    // Both requests from one socket: their replies arrive in the order ksrd sent them.
    let c = k.udp();
    c.send(&options(k.port, c.addr()).set("X-Case", "slow").build());
    assert!(
        k.wait_log("slow query starts", Duration::from_secs(5)),
        "{}",
        k.log_tail(20)
    );
    c.send(&options(k.port, c.addr()).set("X-Case", "ping").build());
    let first = c.recv_final(Duration::from_secs(5)).expect("a reply");
    let second = c.recv_final(Duration::from_secs(5)).expect("another reply");
    // Ordering, not timing: the other worker's route ran while the query was still active in
    // the database, and its answer went out before the slow request's.
    assert_eq!(
        parse_result(&k, &first),
        json!({"pong": 1, "slow_running": 1}),
        "the ping waited for the slow query:\n{}",
        k.log_tail(20)
    );
    // pg_sleep returns one row with a void (NULL) column.
    assert_eq!(parse_result(&k, &second), json!({"rc": 0, "rows": 1}));
}

/// Kamailio's sql_get_result: a new container once more than results_maxsize exist is refused.
#[test]
fn results_maxsize_limits_containers() {
    let db = test_db(Store::Sqlite);
    let k = Ksrd::start(ROUTE, &sqlcon("ca", &db.url, "results_maxsize = 2\n"));
    assert_eq!(run(&k, "maxsize"), json!([0, 0, 0, -1]));
}

// ---- configuration

fn check_config(extra: &str) -> (std::process::Output, String) {
    let dir = TempDir::new("sqlops-cfg");
    std::fs::create_dir_all(dir.path().join("routes")).unwrap();
    std::fs::write(dir.path().join("routes/r.py"), ROUTE).unwrap();
    let cfg = dir.path().join("sqlops-test.toml");
    let text = Ksrd::config_text(
        free_port(),
        free_tcp_port(),
        dir.path(),
        "routes/r.py",
        false,
        extra,
    );
    std::fs::write(&cfg, text).unwrap();
    let o = ksrd_check(&cfg);
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, t)
}

#[test]
fn bad_sqlcon_is_a_config_error_naming_key_and_file() {
    for (value, why) in [
        ("ca=>mysql://u@h/db", "unsupported database URL scheme"),
        ("no arrow here", "expected name=>url"),
        ("ca=>postgres:///db", "no host"),
    ] {
        let (o, t) = check_config(&format!(
            "[modparam.sqlops]\nsqlcon = [\"ok=>sqlite://x.db\", \"{value}\"]\n"
        ));
        assert!(!o.status.success(), "{value}: must fail:\n{t}");
        assert!(
            t.contains("modparam.sqlops.sqlcon[1]"),
            "{value}: names the key:\n{t}"
        );
        assert!(
            t.contains("sqlops-test.toml"),
            "{value}: names the file:\n{t}"
        );
        assert!(t.contains(why), "{value}: says why ({why}):\n{t}");
    }
    let (o, t) =
        check_config("[modparam.sqlops]\nsqlcon = [\"a=>sqlite://x.db\", \"a=>sqlite://y.db\"]\n");
    assert!(
        !o.status.success() && t.contains("duplicate connection name"),
        "{t}"
    );
    let (o, t) = check_config("[modparam.sqlops]\nsqlkon = \"a=>sqlite://x.db\"\n");
    assert!(
        !o.status.success() && t.contains("modparam.sqlops.sqlkon"),
        "{t}"
    );
}

#[test]
fn sqlcon_takes_one_value_or_a_list_and_kamailio_params() {
    let (o, t) = check_config(
        "[modparam.sqlops]\nsqlcon = \"a=>sqlite://x.db\"\nsqlres = \"ra\"\nresults_maxsize = 8\ntr_buf_size = 4096\nlog_buf_size = 256\nconnect_mode = 1\n",
    );
    assert!(o.status.success(), "{t}");
}
