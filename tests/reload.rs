//! Hot reload of the route script: by file watch and by RPC; broken scripts keep the old routes.
mod common;
use common::*;
use std::time::{Duration, Instant};

/// OPTIONS reason phrase from a fresh socket (None on no reply within `t`).
fn reason(k: &Ksrd, t: Duration) -> Option<String> {
    let c = k.udp();
    c.send(&options(k.port, c.addr()).build());
    c.recv_final(t).map(|r| format!("{} {}", r.code, r.reason))
}

/// Poll OPTIONS until the reply is `want`; the time it took.
fn wait_reason(k: &Ksrd, want: &str, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < timeout {
        last = reason(k, Duration::from_millis(100));
        if last.as_deref() == Some(want) {
            return Some(t0.elapsed());
        }
    }
    eprintln!("last reply: {last:?}");
    None
}

#[test]
fn edit_is_live_within_one_second() {
    let k = Ksrd::start(&route_options_reason("v1"), "");
    assert_eq!(reason(&k, REPLY_TIMEOUT).as_deref(), Some("200 v1"));
    for v in ["v2", "v3"] {
        let t0 = Instant::now();
        k.rewrite_route(&route_options_reason(v));
        let ok = wait_reason(&k, &format!("200 {v}"), Duration::from_secs(5));
        let took = t0.elapsed();
        assert!(
            ok.is_some(),
            "edit to {v} never went live; log:\n{}",
            k.log_tail(20)
        );
        assert!(
            took < Duration::from_secs(1),
            "edit to {v} took {took:?} (target < 1 s)"
        );
    }
}

#[test]
fn in_place_write_is_picked_up_too() {
    // editors that truncate + write the same inode (no rename)
    let k = Ksrd::start(&route_options_reason("inplace1"), "");
    std::fs::write(k.route_path(), route_options_reason("inplace2")).unwrap();
    assert!(
        wait_reason(&k, "200 inplace2", Duration::from_secs(3)).is_some(),
        "log:\n{}",
        k.log_tail(20)
    );
}

#[test]
fn syntax_error_keeps_old_routes_and_logs_file_and_line() {
    let k = Ksrd::start(&route_options_reason("good"), "");
    assert_eq!(reason(&k, REPLY_TIMEOUT).as_deref(), Some("200 good"));
    // line 3 has the error
    k.rewrite_route("import KSR\n\ndef mod_init(:\n    return None\n");
    let want = format!("{}\", line 3", k.route_path().display());
    assert!(
        k.wait_log(&want, Duration::from_secs(5)),
        "log should name the file and line ({want}); log:\n{}",
        k.log_tail(30)
    );
    assert!(k.log().contains("SyntaxError"), "log:\n{}", k.log_tail(30));
    for _ in 0..5 {
        assert_eq!(
            reason(&k, REPLY_TIMEOUT).as_deref(),
            Some("200 good"),
            "old routes keep serving"
        );
    }
    // and a fixed file is picked up again
    k.rewrite_route(&route_options_reason("fixed"));
    assert!(
        wait_reason(&k, "200 fixed", Duration::from_secs(3)).is_some(),
        "log:\n{}",
        k.log_tail(20)
    );
}

#[test]
fn module_body_exception_keeps_old_routes() {
    let k = Ksrd::start(&route_options_reason("before"), "");
    k.rewrite_route(
        "import KSR\n\nraise RuntimeError('body boom')\n\ndef mod_init():\n    return None\n",
    );
    let want = format!("{}\", line 3", k.route_path().display());
    assert!(
        k.wait_log(&want, Duration::from_secs(5)),
        "traceback with file and line; log:\n{}",
        k.log_tail(30)
    );
    assert!(k.log().contains("body boom"));
    assert_eq!(reason(&k, REPLY_TIMEOUT).as_deref(), Some("200 before"));
}

const HELPER_ROUTE: &str = r#"import KSR
import helper

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        KSR.sl.sl_send_reply(200, helper.REASON)
        return 1
"#;

#[test]
fn helper_module_edit_is_reloaded() {
    let k = Ksrd::start_opts(StartOpts {
        route_src: Some(HELPER_ROUTE.into()),
        files: vec![("helper.py".into(), "REASON = 'helper one'\n".into())],
        ..Default::default()
    });
    assert_eq!(reason(&k, REPLY_TIMEOUT).as_deref(), Some("200 helper one"));
    k.write_route_sibling("helper.py", "REASON = 'helper two'\n");
    assert!(
        wait_reason(&k, "200 helper two", Duration::from_secs(3)).is_some(),
        "edited helper module not reloaded; log:\n{}",
        k.log_tail(20)
    );
}

fn result_versions(v: &Value) -> (i64, i64) {
    let r = v
        .get("result")
        .unwrap_or_else(|| panic!("no result in {v}"));
    let old = r
        .get("old")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer old in {v}"));
    let new = r
        .get("new")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer new in {v}"));
    (old, new)
}

#[test]
fn rpc_reload_counts_versions_and_applies_the_file() {
    let k = Ksrd::start_opts(StartOpts {
        route_src: Some(route_options_reason("rpc1")),
        watch: Some(false),
        ..Default::default()
    });
    let (o1, n1) = result_versions(&k.rpc("app_python.reload", json!([])));
    assert_eq!(n1, o1 + 1);
    // aliases, each one more
    let (o2, n2) = result_versions(&k.rpc("app_python3.reload", json!([])));
    assert_eq!((o2, n2), (n1, n1 + 1));
    let (o3, n3) = result_versions(&k.rpc("ksrd.reload", json!([])));
    assert_eq!((o3, n3), (n2, n2 + 1));
    let (o4, n4) = result_versions(&k.rpc_unix("app_python.reload", json!([])));
    assert_eq!((o4, n4), (n3, n3 + 1));

    // watch = false: an edit is applied by the RPC reload, which returns after the swap
    k.rewrite_route(&route_options_reason("rpc2"));
    let (_, _) = result_versions(&k.rpc("app_python.reload", json!([])));
    assert_eq!(reason(&k, REPLY_TIMEOUT).as_deref(), Some("200 rpc2"));
}

fn assert_failed_reload(v: &Value) {
    // a failed reload must not claim a new version
    if let Some(r) = v.get("result") {
        let old = r.get("old").and_then(Value::as_i64);
        let new = r.get("new").and_then(Value::as_i64);
        assert!(
            old.is_some() && old == new,
            "failed reload reported as success: {v}"
        );
    } else {
        assert!(v.get("error").is_some(), "neither result nor error: {v}");
    }
}

#[test]
fn rpc_reload_of_broken_scripts_keeps_old_routes() {
    let k = Ksrd::start_opts(StartOpts {
        route_src: Some(route_options_reason("keep")),
        watch: Some(false),
        ..Default::default()
    });
    let broken = [
        ("syntax error", "import KSR\ndef mod_init(:\n"),
        ("module body raises", "import KSR\nraise ValueError('x')\n"),
        (
            "mod_init returns None",
            "import KSR\ndef mod_init():\n    return None\n",
        ),
        (
            "mod_init raises",
            "import KSR\ndef mod_init():\n    raise KeyError('y')\n",
        ),
        ("no mod_init", "import KSR\nX = 1\n"),
    ];
    for (what, src) in broken {
        k.rewrite_route(src);
        let v = k.rpc("app_python.reload", json!([]));
        assert_failed_reload(&v);
        assert_eq!(
            reason(&k, REPLY_TIMEOUT).as_deref(),
            Some("200 keep"),
            "{what}: old routes must keep serving"
        );
    }
    k.rewrite_route(&route_options_reason("new"));
    let (o, n) = result_versions(&k.rpc("app_python.reload", json!([])));
    assert_eq!(n, o + 1);
    assert_eq!(reason(&k, REPLY_TIMEOUT).as_deref(), Some("200 new"));
}

#[test]
fn watched_mod_init_none_keeps_old_routes() {
    let k = Ksrd::start(&route_options_reason("stay"), "");
    let v0 = k.rpc("core.version", json!([]));
    assert!(v0.get("result").is_some());
    k.rewrite_route(
        "import KSR, sys\ndef mod_init():\n    sys.stderr.write('MARK-mod-init-none\\n')\n    sys.stderr.flush()\n    return None\n",
    );
    assert!(
        k.wait_log("MARK-mod-init-none", Duration::from_secs(5)),
        "the edited file's mod_init() never ran; log:\n{}",
        k.log_tail(20)
    );
    for _ in 0..10 {
        assert_eq!(
            reason(&k, REPLY_TIMEOUT).as_deref(),
            Some("200 stay"),
            "mod_init() -> None must keep the old routes"
        );
    }
    k.rewrite_route(&route_options_reason("after"));
    assert!(
        wait_reason(&k, "200 after", Duration::from_secs(3)).is_some(),
        "log:\n{}",
        k.log_tail(20)
    );
}
