//! JSON-RPC 2.0 over HTTP and over the unix socket.
mod common;
use common::*;
use std::sync::OnceLock;

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || Ksrd::start(DEFAULT_TEST_ROUTE, ""))
}

fn result(v: &Value) -> &Value {
    assert_eq!(
        v.get("jsonrpc").and_then(Value::as_str),
        Some("2.0"),
        "JSON-RPC 2.0 reply: {v}"
    );
    assert_eq!(v.get("id"), Some(&json!(1)), "id echoed: {v}");
    v.get("result").unwrap_or_else(|| panic!("no result: {v}"))
}

#[test]
fn core_version_http_and_unix() {
    let k = server();
    for v in [
        k.rpc("core.version", json!([])),
        k.rpc_unix("core.version", json!([])),
    ] {
        let s = result(&v)
            .as_str()
            .unwrap_or_else(|| panic!("version is a string: {v}"));
        assert!(s.starts_with("ksrd "), "{s}");
    }
    // params omitted is fine too
    let v = k.rpc_raw(br#"{"jsonrpc":"2.0","method":"core.version","id":1}"#);
    assert!(result(&v).as_str().unwrap().starts_with("ksrd "));
}

#[test]
fn any_http_path_works() {
    let k = server();
    for path in ["/RPC", "/", "/jsonrpc"] {
        let (status, body) = http_post(
            k.rpc_port,
            path,
            br#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
        )
        .unwrap();
        assert_eq!(status, 200, "{path}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            result(&v).as_str().unwrap().starts_with("ksrd "),
            "{path}: {v}"
        );
    }
}

#[test]
fn core_uptime_and_info() {
    let k = server();
    let v = k.rpc("core.uptime", json!([]));
    let r = result(&v);
    for key in ["now", "up_since", "uptime"] {
        assert!(r.get(key).is_some(), "core.uptime has {key}: {v}");
    }
    let up = r["uptime"]
        .as_u64()
        .unwrap_or_else(|| panic!("uptime is an integer: {v}"));
    assert!(up < 24 * 3600);
    let v = k.rpc_unix("core.info", json!([]));
    let info = result(&v);
    assert!(info.get("version").is_some(), "core.info has version: {v}");
}

#[test]
fn api_list_describes_kemi_functions() {
    let k = server();
    let v = k.rpc("app_python.api_list", json!([]));
    let r = result(&v);
    let methods = r["methods"]
        .as_array()
        .unwrap_or_else(|| panic!("methods array: {v}"));
    assert_eq!(
        r["msize"].as_u64(),
        Some(methods.len() as u64),
        "msize counts methods"
    );
    let funcs: Vec<&Value> = methods.iter().map(|m| &m["func"]).collect();
    let sl = funcs
        .iter()
        .find(|f| f["module"] == "sl" && f["name"] == "sl_send_reply")
        .unwrap_or_else(|| panic!("sl.sl_send_reply listed"));
    assert_eq!(sl["ret"], "int");
    assert_eq!(sl["params"], "int, str");
    assert!(
        funcs
            .iter()
            .any(|f| f["module"] == "" && f["name"] == "is_OPTIONS"),
        "core functions (module \"\") listed, e.g. is_OPTIONS"
    );
    assert!(
        funcs
            .iter()
            .any(|f| f["module"] == "pv" && f["name"] == "get"),
        "pv.get listed"
    );
}

#[test]
fn list_methods() {
    let k = server();
    let v = k.rpc("system.listMethods", json!([]));
    let names: Vec<&str> = result(&v)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for m in [
        "core.version",
        "core.uptime",
        "app_python.reload",
        "stats.get_statistics",
        "system.listMethods",
    ] {
        assert!(names.contains(&m), "{m} in {names:?}");
    }
}

fn stat(list: &Value, name: &str) -> Option<u64> {
    list.as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|s| {
            let (n, v) = s.split_once(" = ")?;
            (n.trim() == name).then(|| v.trim().parse().ok()).flatten()
        })
}

#[test]
fn statistics_count_requests() {
    // own server: the counters must not see other tests' traffic
    let k = Ksrd::start(DEFAULT_TEST_ROUTE, "");
    let before = result(&k.rpc("stats.get_statistics", json!(["all"]))).clone();
    for name in [
        "core:rcv_requests",
        "core:rcv_replies",
        "core:fwd_requests",
        "core:drop_requests",
        "sl:sent_replies",
        "sl:200_replies",
    ] {
        assert!(stat(&before, name).is_some(), "{name} in {before}");
    }
    let c = k.udp();
    for _ in 0..7 {
        assert_eq!(c.request(&options(k.port, c.addr()).build()).code, 200);
    }
    for _ in 0..3 {
        assert_eq!(
            c.request(&message(k.port, "x", c.addr(), b"").build()).code,
            404
        );
    }
    let after = result(&k.rpc_unix("stats.get_statistics", json!(["all"]))).clone();
    let d = |n: &str| stat(&after, n).unwrap() - stat(&before, n).unwrap();
    assert_eq!(d("core:rcv_requests"), 10, "before {before}\nafter {after}");
    assert_eq!(d("sl:sent_replies"), 10, "before {before}\nafter {after}");
    assert_eq!(d("sl:200_replies"), 7);
    assert_eq!(d("core:fwd_requests"), 0);

    let core = result(&k.rpc("stats.get_statistics", json!(["core:"]))).clone();
    let arr = core.as_array().unwrap();
    assert!(!arr.is_empty());
    assert!(
        arr.iter().all(|s| s.as_str().unwrap().starts_with("core:")),
        "only core: stats: {core}"
    );
    assert!(stat(&core, "core:rcv_requests").unwrap() >= 10);
}

#[test]
fn bad_json_is_parse_error() {
    let k = server();
    let v = k.rpc_raw(b"{\"jsonrpc\": \"2.0\", \"method\": ");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    let v = k.rpc_unix_raw(b"this is not json}\n");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert!(
        result(&k.rpc("core.version", json!([]))).is_string(),
        "still serving"
    );
}

#[test]
fn unknown_method_is_method_not_found() {
    let k = server();
    for v in [
        k.rpc("no.such_method", json!([])),
        k.rpc_unix("no.such_method", json!([])),
    ] {
        assert_eq!(v["error"]["code"], -32601, "{v}");
        assert_eq!(v["id"], 1, "id echoed in the error: {v}");
        assert!(v["error"]["message"].is_string());
    }
}

#[test]
fn wrong_shapes_do_not_crash() {
    let k = server();
    for body in [
        &br#"[]"#[..],
        br#"{"jsonrpc":"2.0","id":1}"#,
        br#"{"jsonrpc":"2.0","method":42,"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"stats.get_statistics","params":{"x":[1,2]},"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"core.version","params":"str","id":"abc"}"#,
        b"",
    ] {
        let v = k.try_rpc_raw(body);
        if let Ok(v) = v {
            assert!(v.get("result").is_some() || v.get("error").is_some(), "{v}");
        }
        assert!(
            k.is_running(),
            "ksrd died on RPC body {:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(result(&k.rpc("core.version", json!([]))).is_string());
}
