//! htable (Kamailio src/modules/htable): `KSR.htable.*`, `$sht(...)` and friends through
//! `KSR.pv`, the `htable.*` RPC commands, autoexpire, config errors and concurrent workers,
//! driven through the real binary over UDP. Return codes follow htable.c
//! `sr_kemi_htable_exports`; RPC shapes follow htable.c `htable_rpc[]` (kemi-spec §4.2).
//!
//! The route runs the Python code carried in the request body and reports values with
//! `R(name, value)`: a reply header `X-R-<name>: repr(value)`.
mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

const ROUTE: &str = r#"import KSR
import textwrap
import time

def R(name, value):
    return KSR.hdr.append_to_reply("X-R-%s: %s\r\n" % (name, repr(value)))

def mod_init():
    return kamailio()

class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.hdr.get("Content-Type") == "application/x-python":
            code = textwrap.dedent(KSR.pv.get("$rb"))
            exec(code, {"KSR": KSR, "R": R, "time": time})
        KSR.sl.sl_send_reply(200, "OK")
        return 1
"#;

/// No database: persistence is tested in tests/htable_db.rs; here "db" only shows what a table
/// with `dbtable` does without one.
const TABLES: &str = r#"db_url = ""
[modparam.htable]
htable = [
    "ipban=>size=8;autoexpire=300;initval=0",
    "auth=>size=4",
    "cnt=>size=4;initval=0",
    "exp=>size=2;autoexpire=1",
    "keep=>size=2;autoexpire=60;updateexpire=0",
    "db=>size=2;dbtable=htable;dbmode=1",
    "scratch=>size=2;initval=0",
]
timer_interval = 1
"#;

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || Ksrd::start(ROUTE, TABLES))
}

static MULTI: OnceLock<Ksrd> = OnceLock::new();

/// Four workers sharing the tables.
fn multi() -> &'static Ksrd {
    shared(&MULTI, || {
        Ksrd::start(ROUTE, &format!("workers = 4\n{TABLES}"))
    })
}

fn run_on(k: &Ksrd, code: &str, hdrs: &[(&str, &str)]) -> SipMsg {
    let c = k.udp();
    let mut r = code_message(k.port, c.addr(), code);
    for (n, v) in hdrs {
        r = r.set(n, v);
    }
    let resp = c.request(&r.build());
    assert_eq!(
        resp.code,
        200,
        "reply:\n{}\nlog:\n{}",
        resp.text(),
        k.log_tail(30)
    );
    resp
}

fn expect(k: &Ksrd, r: &SipMsg, want: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (n, w) in want {
        let got = r.header(&format!("X-R-{n}"));
        if got != Some(*w) {
            bad.push(format!("  {n}: want {w}, got {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "mismatches:\n{}\nreply:\n{}\nlog:\n{}",
        bad.join("\n"),
        r.text(),
        k.log_tail(20)
    );
}

/// Run `code` with `K` bound to a unique key prefix and check the reported values.
fn check(code: &str, want: &[(&str, &str)]) -> String {
    let k = server();
    let key = uniq("k");
    let code = format!("K = {key:?}\n{}", textwrap(code));
    let r = run_on(k, &code, &[]);
    expect(k, &r, want);
    key
}

fn textwrap(code: &str) -> String {
    // The route dedents the whole body; keep the test's indentation consistent with `K = ...`.
    let lines: Vec<&str> = code.lines().collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn result(v: &Value) -> &Value {
    v.get("result")
        .unwrap_or_else(|| panic!("no result in {v}"))
}

fn error(v: &Value) -> (i64, String) {
    let e = v.get("error").unwrap_or_else(|| panic!("no error in {v}"));
    (
        e["code"].as_i64().unwrap(),
        e["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn get_set_and_null_semantics() {
    check(
        r#"
        R("get0", KSR.htable.sht_get("auth", K))
        R("gete0", KSR.htable.sht_gete("auth", K))
        R("getw0", KSR.htable.sht_getw("auth", K))
        R("null0", KSR.htable.sht_is_null("auth", K))
        R("sets", KSR.htable.sht_sets("auth", K, "secret"))
        R("get1", KSR.htable.sht_get("auth", K))
        R("null1", KSR.htable.sht_is_null("auth", K))
        R("seti", KSR.htable.sht_seti("auth", K, 42))
        R("get2", KSR.htable.sht_get("auth", K))
        R("rm", KSR.htable.sht_rm("auth", K))
        R("rm_again", KSR.htable.sht_rm("auth", K))
        R("get3", KSR.htable.sht_get("auth", K))
        R("init_get", KSR.htable.sht_get("cnt", K))
        R("init_null", KSR.htable.sht_is_null("cnt", K))
        R("nt_get", KSR.htable.sht_get("nosuch", K))
        R("nt_getw", KSR.htable.sht_getw("nosuch", K))
        R("nt_null", KSR.htable.sht_is_null("nosuch", K))
        R("nt_sets", KSR.htable.sht_sets("nosuch", K, "x"))
        R("nt_seti", KSR.htable.sht_seti("nosuch", K, 1))
        R("nt_rm", KSR.htable.sht_rm("nosuch", K))
        R("nt_setex", KSR.htable.sht_setex("nosuch", K, 5))
        "#,
        &[
            ("get0", "None"),
            ("gete0", "''"),
            ("getw0", "'<null>'"),
            ("null0", "1"),
            ("sets", "1"),
            ("get1", "'secret'"),
            ("null1", "-1"),
            ("seti", "1"),
            ("get2", "42"),
            ("rm", "1"),
            ("rm_again", "1"),
            ("get3", "None"),
            // A table with initval never reads as null (ki_ht_get_mode, ki_ht_is_null).
            ("init_get", "0"),
            ("init_null", "-2"),
            ("nt_get", "None"),
            ("nt_getw", "'<null>'"),
            ("nt_null", "2"),
            ("nt_sets", "-1"),
            ("nt_seti", "-1"),
            ("nt_rm", "-1"),
            ("nt_setex", "-1"),
        ],
    );
}

#[test]
fn inc_dec_return_the_new_value_or_minus_255() {
    check(
        r#"
        R("inc_noinit", KSR.htable.sht_inc("auth", K))
        R("after_noinit", KSR.htable.sht_is_null("auth", K))
        KSR.htable.sht_seti("auth", K, 10)
        R("inc", KSR.htable.sht_inc("auth", K))
        R("dec", KSR.htable.sht_dec("auth", K))
        KSR.htable.sht_sets("auth", K + "s", "x")
        R("inc_str", KSR.htable.sht_inc("auth", K + "s"))
        R("inc_nt", KSR.htable.sht_inc("nosuch", K))
        R("inc_init1", KSR.htable.sht_inc("cnt", K))
        R("inc_init2", KSR.htable.sht_inc("cnt", K))
        R("dec_init", KSR.htable.sht_dec("cnt", K + "d"))
        "#,
        &[
            ("inc_noinit", "-255"),
            ("after_noinit", "1"),
            ("inc", "11"),
            ("dec", "10"),
            ("inc_str", "-255"),
            ("inc_nt", "-255"),
            ("inc_init1", "1"),
            ("inc_init2", "2"),
            ("dec_init", "-1"),
        ],
    );
}

#[test]
fn sht_pv_with_expanded_keys() {
    let k = server();
    let tag = uniq("h");
    let code = r#"
        R("set", KSR.pv.sets("$sht(auth=>$hdr(X-Tag)::pw)", "pw1"))
        R("direct", KSR.htable.sht_get("auth", KSR.pv.get("$hdr(X-Tag)") + "::pw"))
        R("pv", KSR.pv.get("$sht(auth=>$hdr(X-Tag)::pw)"))
        R("seti", KSR.pv.seti("$sht(ipban=>$si$hdr(X-Tag))", 4))
        R("ip", KSR.htable.sht_get("ipban", "127.0.0.1" + KSR.pv.get("$hdr(X-Tag)")))
        R("inc", KSR.pv.get("$shtinc(ipban=>$si$hdr(X-Tag))"))
        R("dec", KSR.pv.get("$shtdec(ipban=>$si$hdr(X-Tag))"))
        R("ex", KSR.pv.get("$shtex(ipban=>$si$hdr(X-Tag))") in (299, 300))
        R("setex", KSR.pv.seti("$shtex(ipban=>$si$hdr(X-Tag))", 30))
        R("ex2", KSR.pv.get("$shtex(ipban=>$si$hdr(X-Tag))") in (29, 30))
        R("missing_init", KSR.pv.get("$sht(ipban=>nothing-$hdr(X-Tag))"))
        R("missing", KSR.pv.get("$sht(auth=>nothing-$hdr(X-Tag))"))
        R("is_null", KSR.pv.is_null("$sht(auth=>nothing-$hdr(X-Tag))"))
        R("unset", KSR.pv.unset("$sht(auth=>$hdr(X-Tag)::pw)"))
        R("gone", KSR.pv.get("$sht(auth=>$hdr(X-Tag)::pw)"))
        KSR.pv.sets("$sht(auth=>$hdr(X-Tag)::b)", "x")
        R("setn", KSR.pv.setn("$sht(auth=>$hdr(X-Tag)::b)"))
        R("gone2", KSR.htable.sht_is_null("auth", KSR.pv.get("$hdr(X-Tag)") + "::b"))
        KSR.htable.sht_sets("auth", KSR.pv.get("$hdr(X-Tag)") + "::c1", "a")
        KSR.htable.sht_sets("auth", KSR.pv.get("$hdr(X-Tag)") + "::c2", "b")
        R("cn", KSR.pv.get("$shtcn(auth=>%~$hdr(X-Tag)::c)"))
        R("cv", KSR.pv.get("$shtcv(auth=>==b)") >= 1)
        R("nt", KSR.pv.get("$sht(nosuch=>x)"))
        R("nt_set", KSR.pv.sets("$sht(nosuch=>x)", "v"))
        R("bad", KSR.pv.get("$sht(nokey)"))
        R("ro", KSR.pv.seti("$shtinc(ipban=>x)", 1))
        R("xlog", KSR.xlog.xinfo("SHTLOG $hdr(X-Tag) v=$sht(ipban=>$si$hdr(X-Tag))"))
    "#;
    let r = run_on(k, code, &[("X-Tag", &tag)]);
    expect(
        k,
        &r,
        &[
            ("set", "True"),
            ("direct", "'pw1'"),
            ("pv", "'pw1'"),
            ("seti", "True"),
            ("ip", "4"),
            ("inc", "5"),
            ("dec", "4"),
            ("ex", "True"),
            ("setex", "True"),
            ("ex2", "True"),
            ("missing_init", "0"),
            ("missing", "None"),
            ("is_null", "True"),
            ("unset", "True"),
            ("gone", "None"),
            ("setn", "True"),
            ("gone2", "1"),
            ("cn", "2"),
            ("cv", "True"),
            ("nt", "None"),
            ("nt_set", "False"),
            ("bad", "None"),
            ("ro", "False"),
            ("xlog", "1"),
        ],
    );
    let want = format!("SHTLOG {tag} v=4");
    assert!(
        k.wait_log(&want, Duration::from_secs(3)),
        "missing {want:?}:\n{}",
        k.log_tail(20)
    );
}

#[test]
fn match_remove_count_and_reset() {
    // A table of its own would be cleaner, but "auth" is shared: prefix everything with K.
    check(
        r#"
        for i in range(3):
            KSR.htable.sht_sets("auth", K + "-user%d@a.example" % i, "pw%d" % i)
        KSR.htable.sht_seti("auth", K + "-n", 7)
        R("m_eq", KSR.htable.sht_match_name("auth", "eq", K + "-user1@a.example"))
        R("m_eq_no", KSR.htable.sht_match_name("auth", "eq", K + "-user9@a.example"))
        R("m_sw", KSR.htable.sht_match_name("auth", "sw", K + "-user"))
        R("m_re", KSR.htable.sht_match_name("auth", "re", "^" + K + "-USER[0-9]@"))
        R("m_bad_op", KSR.htable.sht_match_name("auth", "ew", K))
        R("m_bad_re", KSR.htable.sht_match_name("auth", "re", "("))
        R("m_nt", KSR.htable.sht_match_name("nosuch", "eq", K))
        R("mv_eq", KSR.htable.sht_match_str_value("auth", "eq", "pw2"))
        R("mv_int", KSR.htable.sht_match_str_value("auth", "eq", "7"))
        R("cn_sw", KSR.htable.sht_cn("auth", "%~", K + "-user"))
        R("cn_re", KSR.htable.sht_cn("auth", "", "^" + K + "-"))
        R("cn_eq", KSR.htable.sht_cn("auth", "==", K + "-n"))
        R("cn_badop", KSR.htable.sht_cn("auth", "abc", K))
        R("rm_ew", KSR.htable.sht_rm_name("auth", "ew", K + "-user0@a.example"))
        R("cn1", KSR.htable.sht_cn("auth", "%~", K + "-"))
        R("rm_in", KSR.htable.sht_rm_value("auth", "in", "w1"))
        R("cn2", KSR.htable.sht_cn("auth", "%~", K + "-"))
        R("rm_re", KSR.htable.sht_rm_name_re("auth", "^" + K + "-u"))
        R("cn3", KSR.htable.sht_cn("auth", "%~", K + "-"))
        R("rm_bad", KSR.htable.sht_rm_name("auth", "eq", K))
        R("rm_re_nt", KSR.htable.sht_rm_name_re("nosuch", "x"))
        R("rm_re_bad", KSR.htable.sht_rm_value_re("auth", "("))
        KSR.htable.sht_seti("keep", K, 1)
        R("reset", KSR.htable.sht_reset("keep"))
        R("after_reset", KSR.htable.sht_get("keep", K))
        R("reset_nt", KSR.htable.sht_reset("nosuch"))
        "#,
        &[
            ("m_eq", "1"),
            ("m_eq_no", "-1"),
            ("m_sw", "1"),
            ("m_re", "1"),
            ("m_bad_op", "-1"),
            ("m_bad_re", "-1"),
            ("m_nt", "-1"),
            ("mv_eq", "1"),
            ("mv_int", "-1"),
            ("cn_sw", "3"),
            ("cn_re", "4"),
            ("cn_eq", "1"),
            ("cn_badop", "-1"),
            ("rm_ew", "1"),
            ("cn1", "3"),
            ("rm_in", "1"),
            ("cn2", "2"),
            ("rm_re", "1"),
            ("cn3", "1"),
            ("rm_bad", "-1"),
            ("rm_re_nt", "1"),
            ("rm_re_bad", "-1"),
            ("reset", "0"),
            ("after_reset", "None"),
            ("reset_nt", "-1"),
        ],
    );
}

#[test]
fn iterators() {
    let k = server();
    // "db" holds only this test's items.
    let code = r#"
        for i in range(5):
            KSR.htable.sht_seti("db", "it%d" % i, i)
        R("next_unknown", KSR.htable.sht_iterator_next("nope"))
        R("start", KSR.htable.sht_iterator_start("i1", "db"))
        R("key_before", KSR.pv.get("$shtitkey(i1)"))
        seen = []
        while KSR.htable.sht_iterator_next("i1") > 0:
            seen.append((KSR.pv.get("$shtitkey(i1)"), KSR.pv.get("$shtitval(i1)")))
            if KSR.pv.get("$shtitkey(i1)") == "it2":
                KSR.htable.sht_iterator_sets("i1", "two")
            if KSR.pv.get("$shtitkey(i1)") == "it3":
                KSR.htable.sht_iterator_seti("i1", 33)
        R("seen", sorted(seen))
        R("it2", KSR.htable.sht_get("db", "it2"))
        R("it3", KSR.htable.sht_get("db", "it3"))
        R("end", KSR.htable.sht_iterator_end("i1"))
        R("end_again", KSR.htable.sht_iterator_end("i1"))
        R("start_nt", KSR.htable.sht_iterator_start("i2", "nosuch"))
        R("start_empty", KSR.htable.sht_iterator_start("", "db"))
        for n in ("a", "b", "c", "d"):
            KSR.htable.sht_iterator_start(n, "db")
        R("fifth", KSR.htable.sht_iterator_start("e", "db"))
        R("rm_unused", KSR.htable.sht_iterator_rm("a"))
        KSR.htable.sht_iterator_next("a")
        n = 1
        while KSR.htable.sht_iterator_rm("a") == 1:
            n += 1
        R("removed", n)
        R("left", KSR.htable.sht_cn("db", "**", ""))
        for n in ("a", "b", "c", "d"):
            KSR.htable.sht_iterator_end(n)
    "#;
    let r = run_on(k, code, &[]);
    expect(
        k,
        &r,
        &[
            ("next_unknown", "-1"),
            ("start", "1"),
            ("key_before", "None"),
            (
                "seen",
                "[('it0', 0), ('it1', 1), ('it2', 2), ('it3', 3), ('it4', 4)]",
            ),
            ("it2", "'two'"),
            ("it3", "33"),
            ("end", "1"),
            ("end_again", "-1"),
            ("start_nt", "-1"),
            ("start_empty", "-1"),
            ("fifth", "-1"),
            ("rm_unused", "-1"),
            ("removed", "5"),
            ("left", "0"),
        ],
    );
}

#[test]
fn rpc_shapes() {
    let k = server();
    let key = uniq("r");
    let r = k.rpc("htable.sets", json!(["auth", key, "pw"]));
    assert_eq!(result(&r), "Ok. Key set to new value.");
    let r = k.rpc("htable.get", json!(["auth", key]));
    assert_eq!(
        result(&r),
        &json!({"item": {"name": key, "value": "pw", "flags": 2, "expire": "NEVER"}})
    );
    let r = k.rpc("htable.seti", json!(["ipban", key, 5]));
    assert_eq!(result(&r), "Ok. Key set to new value.");
    let r = k.rpc("htable.get", json!(["ipban", key]));
    let item = &result(&r)["item"];
    assert_eq!(item["value"], 5);
    assert_eq!(item["flags"], 0);
    let exp = item["expire"].as_str().unwrap();
    assert!(
        exp.len() == 19 && exp.as_bytes()[4] == b'-' && exp.as_bytes()[13] == b':',
        "{exp}"
    );
    // The item is visible to the route.
    let code = format!("R('v', KSR.htable.sht_get('ipban', {key:?}))");
    expect(k, &run_on(k, &code, &[]), &[("v", "5")]);

    let r = k.rpc("htable.dump", json!(["ipban"]));
    let slots = result(&r).as_array().unwrap();
    let slot = slots
        .iter()
        .find(|s| {
            s["slot"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == key.as_str())
        })
        .unwrap_or_else(|| panic!("{key} not in dump {r}"));
    assert!(slot["entry"].as_u64().unwrap() < 256);
    assert_eq!(
        slot["size"].as_u64().unwrap() as usize,
        slot["slot"].as_array().unwrap().len()
    );
    assert!(slot["slot"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": key, "value": 5, "type": "int"})));
    let r = k.rpc("htable.dump", json!(["auth"]));
    assert!(result(&r)
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["slot"].as_array().unwrap())
        .any(|i| i == &json!({"name": key, "value": "pw", "type": "str"})));

    let r = k.rpc("htable.setex", json!(["ipban", key, 100]));
    assert_eq!(result(&r), "Ok");
    let r = k.rpc("htable.setxs", json!(["ipban", format!("{key}x"), "v", 50]));
    assert_eq!(result(&r), "Ok. Key set to new value.");
    let r = k.rpc("htable.setxi", json!(["ipban", format!("{key}y"), 3, 50]));
    assert_eq!(result(&r), "Ok. Key set to new value.");
    let code = format!(
        "R('a', KSR.pv.get('$shtex(ipban=>{key})') in (99, 100))\nR('b', KSR.pv.get('$shtex(ipban=>{key}x)') in (49, 50))\nR('c', KSR.htable.sht_get('ipban', '{key}y'))"
    );
    expect(
        k,
        &run_on(k, &code, &[]),
        &[("a", "True"), ("b", "True"), ("c", "3")],
    );

    let r = k.rpc("htable.delete", json!(["auth", key]));
    assert_eq!(result(&r), "Ok. Key deleted.");
    assert_eq!(
        error(&k.rpc("htable.delete", json!(["auth", key]))),
        (404, "Key not found in htable.".into())
    );
    assert_eq!(
        error(&k.rpc("htable.get", json!(["auth", key]))),
        (500, "Key name doesn't exist in htable.".into())
    );
    for (m, p) in [
        ("htable.get", json!(["nosuch", "k"])),
        ("htable.sets", json!(["nosuch", "k", "v"])),
        ("htable.seti", json!(["nosuch", "k", 1])),
        ("htable.delete", json!(["nosuch", "k"])),
        ("htable.dump", json!(["nosuch"])),
        ("htable.flush", json!(["nosuch"])),
        ("htable.setex", json!(["nosuch", "k", 1])),
        ("htable.reload", json!(["nosuch"])),
    ] {
        assert_eq!(error(&k.rpc(m, p)), (500, "No such htable".into()), "{m}");
    }
    assert_eq!(
        error(&k.rpc("htable.setxs", json!(["nosuch", "k", "v", 1]))),
        (500, "Failed to set the item".into())
    );
    assert_eq!(
        error(&k.rpc("htable.get", json!(["auth"]))),
        (
            500,
            "Not enough parameters (htable name and key name)".into()
        )
    );
    assert_eq!(
        error(&k.rpc("htable.dump", json!([]))),
        (500, "No htable name given".into())
    );
    // No database: reload fails as Kamailio does without db_url, with or without dbtable.
    for t in ["auth", "db"] {
        assert_eq!(
            error(&k.rpc("htable.reload", json!([t]))),
            (500, "Htable reload failed".into())
        );
    }
    assert_eq!(
        error(&k.rpc("htable.store", json!(["db"]))),
        (500, "No htable db_url".into())
    );
}

#[test]
fn rpc_list_stats_and_flush() {
    let k = server();
    let r = k.rpc("htable.listTables", json!([]));
    let list = result(&r).as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["ipban", "auth", "cnt", "exp", "keep", "db", "scratch"]
    );
    assert_eq!(
        list[0],
        json!({"name": "ipban", "dbtable": "", "dbmode": 0, "expire": 300, "updateexpire": 1, "size": 256, "dmqreplicate": 0})
    );
    assert_eq!(list[4]["updateexpire"], 0);
    assert_eq!(list[5]["dbtable"], "htable");
    assert_eq!(list[5]["dbmode"], 1);

    let r = k.rpc("htable.stats", json!([]));
    let stats = result(&r).as_array().unwrap();
    assert_eq!(stats.len(), 7);
    let auth = &stats[1];
    assert_eq!(auth["name"], "auth");
    assert_eq!(auth["slots"], 16);
    for f in ["all", "min", "max"] {
        assert!(auth[f].is_u64(), "{auth}");
    }
    assert!(auth["min"].as_u64() <= auth["max"].as_u64());

    let key = uniq("f");
    k.rpc("htable.seti", json!(["scratch", key, 3]));
    let r = k.rpc("htable.flush", json!(["scratch"]));
    assert_eq!(result(&r), "Ok. Htable flushed.");
    let code = format!("R('v', KSR.htable.sht_get('scratch', {key:?}))");
    // initval=0: a flushed item reads as 0.
    expect(k, &run_on(k, &code, &[]), &[("v", "0")]);
}

#[test]
fn autoexpire_removes_items() {
    let k = server();
    let key = uniq("e");
    k.rpc("htable.seti", json!(["exp", key, 1]));
    let code = format!("R('v', KSR.htable.sht_get('exp', {key:?}))");
    expect(k, &run_on(k, &code, &[]), &[("v", "1")]);
    // autoexpire=1: gone for readers within 2 s, then swept (timer_interval=1).
    let gone = wait_until(Duration::from_secs(10), || {
        k.rpc("htable.get", json!(["exp", key]))
            .get("error")
            .is_some()
    });
    assert!(gone, "item did not expire");
    expect(k, &run_on(k, &code, &[]), &[("v", "None")]);
    let swept = wait_until(Duration::from_secs(10), || {
        let r = k.rpc("htable.stats", json!([]));
        result(&r)[3]["all"] == 0
    });
    assert!(swept, "expired item not swept");

    // A per-item expire on a long-lived table; other items stay.
    let code = format!(
        "R('a', KSR.htable.sht_setxi('ipban', {key:?} + 'short', 1, 1))\nR('b', KSR.htable.sht_seti('ipban', {key:?} + 'long', 2))"
    );
    expect(k, &run_on(k, &code, &[]), &[("a", "1"), ("b", "1")]);
    let gone = wait_until(Duration::from_secs(10), || {
        k.rpc("htable.get", json!(["ipban", format!("{key}short")]))
            .get("error")
            .is_some()
    });
    assert!(gone, "per-item expire did not apply");
    let r = k.rpc("htable.get", json!(["ipban", format!("{key}long")]));
    assert_eq!(result(&r)["item"]["value"], 2);
}

#[test]
fn sht_inc_from_four_workers_counts_every_request() {
    let k = multi();
    let key = uniq("c");
    let code = format!("R('v', KSR.htable.sht_inc('cnt', {key:?}))");
    let (threads, per) = (6, 100);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let code = code.clone();
            let port = k.port;
            std::thread::spawn(move || {
                let c = UdpClient::new(port);
                (0..per)
                    .map(|_| {
                        let r = c.request(&code_message(port, c.addr(), &code).build());
                        assert_eq!(r.code, 200);
                        r.header("X-R-v").unwrap().parse::<i64>().unwrap()
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    // Every increment returned a distinct new value: 1..=N.
    assert_eq!(all, (1..=(threads * per) as i64).collect::<Vec<_>>());
    let r = k.rpc("htable.get", json!(["cnt", key]));
    assert_eq!(result(&r)["item"]["value"], threads * per);
}

#[test]
fn sht_lock_serialises_read_modify_write_across_workers() {
    let k = multi();
    let key = uniq("l");
    // Read-modify-write that is only correct under the slot lock; time.sleep(0) lets another
    // worker take the GIL while the lock is held.
    let code = format!(
        "KSR.htable.sht_lock('auth', {key:?})\nv = KSR.htable.sht_get('auth', {key:?}) or 0\ntime.sleep(0)\nKSR.htable.sht_seti('auth', {key:?}, v + 1)\nR('u', KSR.htable.sht_unlock('auth', {key:?}))"
    );
    let (threads, per) = (4, 50);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let code = code.clone();
            let port = k.port;
            std::thread::spawn(move || {
                let c = UdpClient::new(port);
                for _ in 0..per {
                    let r = c.request(&code_message(port, c.addr(), &code).build());
                    assert_eq!(r.code, 200);
                    assert_eq!(r.header("X-R-u"), Some("1"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let r = k.rpc("htable.get", json!(["auth", key]));
    assert_eq!(result(&r)["item"]["value"], threads * per);
}

#[test]
fn a_forgotten_unlock_is_released_when_the_route_returns() {
    let k = multi();
    let key = uniq("fl");
    let lock = format!("R('l', KSR.htable.sht_lock('cnt', {key:?}))");
    expect(k, &run_on(k, &lock, &[]), &[("l", "1")]);
    assert!(k.wait_log(
        "still locked at the end of the route",
        Duration::from_secs(3)
    ));
    // Any worker can use the slot again (this would hang if the lock were kept).
    let inc = format!("R('v', KSR.htable.sht_inc('cnt', {key:?}))");
    for i in 1..=8 {
        expect(k, &run_on(k, &inc, &[]), &[("v", &i.to_string())]);
    }
    let r = k.rpc("htable.get", json!(["cnt", key]));
    assert_eq!(result(&r)["item"]["value"], 8);
    // Unlocking what this worker does not hold is harmless.
    let code = format!("R('u', KSR.htable.sht_unlock('cnt', {key:?}))\nR('nt', KSR.htable.sht_lock('nosuch', 'x'))");
    expect(k, &run_on(k, &code, &[]), &[("u", "1"), ("nt", "-1")]);
}

#[test]
fn dbtable_without_database_warns_once_at_startup() {
    let k = server();
    let warning = "dbtable is set but no database is configured";
    assert!(
        k.wait_log(warning, Duration::from_secs(3)),
        "{}",
        k.log_tail(40)
    );
    assert_eq!(k.log_count(warning), 1);
}

#[test]
fn bad_table_spec_is_a_config_error_naming_key_and_file() {
    let d = TempDir::new("htcfg");
    std::fs::create_dir_all(d.path().join("routes")).unwrap();
    std::fs::write(d.path().join("routes/r.py"), ROUTE).unwrap();
    for (spec, needle) in [
        ("\"ok=>size=2\", \"t=>sise=4\"", "sise"),
        ("\"t=>size=4;autoexpire=x\"", "autoexpire"),
        ("\"t=>size=2\", \"t=>size=3\"", "defined twice"),
        ("\"nospec\"", "name=>key=value"),
    ] {
        let cfg = d.path().join("bad-htable.toml");
        let t = Ksrd::config_text(
            free_port(),
            free_tcp_port(),
            d.path(),
            "routes/r.py",
            false,
            &format!("[modparam.htable]\nhtable = [{spec}]\n"),
        );
        std::fs::write(&cfg, t).unwrap();
        let o = ksrd_check(&cfg);
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(!o.status.success(), "{spec}: accepted:\n{out}");
        assert!(
            out.contains("bad-htable.toml")
                && out.contains("modparam.htable.htable[")
                && out.contains(needle),
            "{spec}: {out}"
        );
    }
    // One string instead of a list is accepted.
    let cfg = d.path().join("one.toml");
    let t = Ksrd::config_text(
        free_port(),
        free_tcp_port(),
        d.path(),
        "routes/r.py",
        false,
        "[modparam.htable]\nhtable = \"ipban=>size=8;autoexpire=300\"\ndb_url = \"sqlite://x.db\"\nkey_type_column = \"key_type\"\nenable_dmq = 0\n",
    );
    std::fs::write(&cfg, t).unwrap();
    let o = ksrd_check(&cfg);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}
