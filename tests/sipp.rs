//! SIPp against the real ksrd: OPTIONS load on routes/default.py, MESSAGE through
//! routes/stateless_proxy.py to a SIPp UAS, and hot reload under 500 OPTIONS/s.
//! Needs `sipp` (Debian sip-tester; scripts/install.sh installs it). The tests run one at a time.
mod common;
use common::sipp::*;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn options_load_on_default_routes() {
    let _g = serial();
    let k = Ksrd::start_with_route_file("routes/default.py", "");
    let dir = TempDir::new("sipp");
    let s = sipp(
        dir.path(),
        "options",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("options_uac.xml"),
            "-m",
            "200",
            "-r",
            "100",
            "-timeout",
            "30s",
        ],
    );
    let (code, report) = s.wait(Duration::from_secs(45));
    assert_eq!(code, 0, "{report}\nksrd log:\n{}", k.log_tail(20));
    assert!(k.is_running());
}

#[test]
fn message_through_stateless_proxy_to_sipp_uas() {
    let _g = serial();
    let dir = TempDir::new("sipp");
    let uas_port = free_port();
    let k = Ksrd::start_with_route_file(
        "routes/stateless_proxy.py",
        &format!("[define]\nPROXY_TARGET = \"sip:127.0.0.1:{uas_port}\"\n"),
    );
    let uas = sipp(
        dir.path(),
        "uas",
        uas_port,
        &[
            "-sf",
            &scenario("message_uas.xml"),
            "-m",
            "50",
            "-timeout",
            "40s",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || udp_port_bound(uas_port)),
        "SIPp UAS did not bind {uas_port}"
    );
    let uac = sipp(
        dir.path(),
        "uac",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("message_uac.xml"),
            "-s",
            "alice",
            "-m",
            "50",
            "-r",
            "50",
            "-timeout",
            "30s",
        ],
    );
    let (uac_code, uac_report) = uac.wait(Duration::from_secs(45));
    let (uas_code, uas_report) = uas.wait(Duration::from_secs(20));
    assert_eq!(
        uac_code,
        0,
        "{uac_report}\n{uas_report}\nksrd log:\n{}",
        k.log_tail(20)
    );
    assert_eq!(
        uas_code,
        0,
        "UAS (checks X-Proxied): {uas_report}\nksrd log:\n{}",
        k.log_tail(20)
    );
    assert!(
        k.log_count("reply 200") >= 50,
        "ksr_reply_route logged each 200; log tail:\n{}",
        k.log_tail(10)
    );
}

fn options_reason(k: &Ksrd) -> Option<String> {
    let c = k.udp();
    c.send(&options(k.port, c.addr()).build());
    c.recv_final(Duration::from_millis(200)).map(|r| r.reason)
}

#[test]
fn reload_under_load_loses_no_call() {
    let _g = serial();
    let k = Ksrd::start(&route_options_reason("Alive v0"), "");
    let dir = TempDir::new("sipp");
    let load = sipp(
        dir.path(),
        "reload-load",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("options_uac.xml"),
            "-r",
            "500",
            "-m",
            "3000",
            "-timeout",
            "40s",
        ],
    );
    let versions = [
        "Alive A1",
        "Alive B2",
        "Alive A3",
        "Alive B4",
        "Alive final",
    ];
    let mut reload_times = Vec::new();
    for v in versions {
        // pacing of the edits over the ~6 s of load (not a synchronisation)
        std::thread::sleep(Duration::from_millis(900));
        let t0 = Instant::now();
        k.rewrite_route(&route_options_reason(v));
        let live = wait_until(Duration::from_secs(3), || {
            options_reason(&k).as_deref() == Some(v)
        });
        assert!(
            live,
            "version {v:?} not live under load; log:\n{}",
            k.log_tail(20)
        );
        reload_times.push(t0.elapsed());
    }
    let (code, report) = load.wait(Duration::from_secs(60));
    assert_eq!(
        code,
        0,
        "SIPp saw failed calls across 5 reloads: {report}\nksrd log:\n{}",
        k.log_tail(20)
    );
    assert_eq!(
        options_reason(&k).as_deref(),
        Some("Alive final"),
        "the final version is live"
    );
    eprintln!("reload times under load: {reload_times:?}");
}

/// routes/stateful_proxy.py: a record-routed call from a SIPp caller to a SIPp callee; the ACK
/// and BYE come back through ksrd (loose_route), the AVP set for the INVITE is seen by its reply
/// route but not by the BYE.
#[test]
fn record_routed_calls_through_the_stateful_proxy_route() {
    let _g = serial();
    let dir = TempDir::new("sipp");
    let uas_port = free_port();
    let k = Ksrd::start_with_route_file(
        "routes/stateful_proxy.py",
        &format!("[define]\nPROXY_TARGET = \"sip:127.0.0.1:{uas_port}\"\n"),
    );
    let uas = sipp(
        dir.path(),
        "uas",
        uas_port,
        &[
            "-sf",
            &scenario("call_rr_uas.xml"),
            "-m",
            "5",
            "-timeout",
            "40s",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || udp_port_bound(uas_port)),
        "SIPp UAS did not bind {uas_port}"
    );
    let uac = sipp(
        dir.path(),
        "uac",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("call_rr_uac.xml"),
            "-s",
            "bob",
            "-m",
            "5",
            "-r",
            "5",
            "-timeout",
            "30s",
        ],
    );
    let (code, report) = uac.wait(Duration::from_secs(45));
    assert_eq!(code, 0, "{report}\nksrd log:\n{}", k.log_tail(30));
    let (code, report) = uas.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{report}");
    // Every BYE was loose-routed by ksrd (so the callee's Record-Route worked) and saw no AVP.
    assert_eq!(k.log_count("in-dialog BYE, note=None"), 5, "{}", k.log());
    assert!(
        k.log_count("reply 200, note=I remember") >= 5,
        "{}",
        k.log()
    );
    assert_eq!(
        k.log_count("note=I remember"),
        k.log_count("reply "),
        "{}",
        k.log()
    );
}
