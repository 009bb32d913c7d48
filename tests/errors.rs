//! Python exceptions and sys.exit() in routes.
mod common;
use common::*;
use std::time::Duration;

/// OPTIONS -> 200; MESSAGE -> behaviour under test (line numbers matter: see each test).
fn route(message_branch: &str) -> String {
    format!(
        r#"import KSR
import sys

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return 1
{message_branch}
        return 1
"#
    )
}

/// After `first` (already received or absent), send an OPTIONS on the same socket and require
/// that its 200 is the only datagram that arrives.
fn only_options_reply_follows(k: &Ksrd, c: &UdpClient) {
    let o = options(k.port, c.addr());
    c.send(&o.build());
    let (d, _) = c.recv(REPLY_TIMEOUT).expect("OPTIONS answered");
    let m = parse_response(&d);
    assert_eq!(
        m.header("call-id"),
        o.get("Call-ID"),
        "unexpected extra reply: {}",
        m.text()
    );
    assert_eq!(m.code, 200);
    c.expect_silence(Duration::from_millis(200));
}

#[test]
fn exception_answers_500_and_logs_traceback() {
    // line 13 raises
    let k = Ksrd::start(
        &route("        d = {}\n        return d['missing-key']"),
        "",
    );
    let c = k.udp();
    let r = c.request(&message(k.port, "alice", c.addr(), b"x").build());
    assert_eq!(
        (r.code, r.reason.as_str()),
        (500, "Server Internal Error"),
        "{}",
        r.text()
    );
    let want = format!("File \"{}\", line 13", k.route_path().display());
    assert!(
        k.wait_log(&want, Duration::from_secs(3)),
        "traceback names {want}; log:\n{}",
        k.log_tail(30)
    );
    let log = k.log();
    assert!(
        log.contains("KeyError"),
        "exception type in the log:\n{log}"
    );
    // the log record that carries the traceback is at ERROR level: the nearest record header
    // (a line with a level word) at or before the `File "…", line 13` line says ERROR
    let lines: Vec<&str> = log.lines().collect();
    let at = lines.iter().position(|l| l.contains(&want)).unwrap();
    let header = lines[..=at]
        .iter()
        .rev()
        .find(|l| {
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                .iter()
                .any(|w| l.contains(w))
        })
        .unwrap_or_else(|| panic!("no log record header before the traceback:\n{log}"));
    assert!(
        header.contains("ERROR"),
        "traceback logged at ERROR, record: {header}"
    );
    only_options_reply_follows(&k, &c);
}

#[test]
fn exception_after_reply_sends_only_that_reply() {
    let k = Ksrd::start(
        &route("        KSR.sl.sl_send_reply(404, \"Gone Fishing\")\n        raise RuntimeError('after reply')"),
        "",
    );
    let c = k.udp();
    let r = c.request(&message(k.port, "alice", c.addr(), b"x").build());
    assert_eq!((r.code, r.reason.as_str()), (404, "Gone Fishing"));
    only_options_reply_follows(&k, &c);
    assert!(
        k.wait_log("after reply", Duration::from_secs(3)),
        "traceback still logged; log:\n{}",
        k.log_tail(20)
    );
}

#[test]
fn on_exception_silent_sends_nothing() {
    let k = Ksrd::start(
        &route("        raise RuntimeError('quiet please')"),
        "on_exception = \"silent\"\n",
    );
    let c = k.udp();
    c.send(&message(k.port, "alice", c.addr(), b"x").build());
    assert!(
        k.wait_log("quiet please", Duration::from_secs(3)),
        "traceback still logged; log:\n{}",
        k.log_tail(20)
    );
    only_options_reply_follows(&k, &c);
}

#[test]
fn sys_exit_ends_route_quietly() {
    let k = Ksrd::start(
        &route(
            "        KSR.sl.sl_send_reply(202, \"Before Exit\")\n        sys.exit()\n        KSR.sl.sl_send_reply(486, \"After Exit\")",
        ),
        "",
    );
    let c = k.udp();
    let r = c.request(&message(k.port, "alice", c.addr(), b"x").build());
    assert_eq!((r.code, r.reason.as_str()), (202, "Before Exit"));
    only_options_reply_follows(&k, &c);
    let log = k.log();
    assert!(
        !log.contains("Traceback") && !log.contains("SystemExit"),
        "sys.exit() is not an error:\n{log}"
    );
}

#[test]
fn sys_exit_without_reply_is_not_a_500() {
    let k = Ksrd::start(
        &route("        sys.exit(1)\n        KSR.sl.sl_send_reply(486, \"After Exit\")"),
        "",
    );
    let c = k.udp();
    c.send(&message(k.port, "alice", c.addr(), b"x").build());
    only_options_reply_follows(&k, &c);
    assert!(!k.log().contains("Traceback"), "log:\n{}", k.log());
}

#[test]
fn worker_survives_100_exceptions() {
    let k = Ksrd::start(&route("        raise ValueError('again')"), "workers = 1\n");
    let c = k.udp();
    for i in 0..100 {
        let req = message(k.port, "alice", c.addr(), format!("n{i}").as_bytes());
        let r = c.request(&req.build());
        assert_eq!(r.code, 500, "request {i}: {}", r.text());
        assert_eq!(r.header("call-id"), req.get("Call-ID"));
    }
    assert_eq!(k.options().code, 200);
    assert!(k.is_running());
    assert!(k.log_count("ValueError") >= 100, "every exception logged");
}

#[test]
fn exception_in_reply_route_does_not_kill_forwarding() {
    // stateless forward to a UDP socket of the test; ksr_reply_route raises
    let uas = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let up = uas.local_addr().unwrap().port();
    let src = format!(
        r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS() and KSR.pv.get("$rU") is None:
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        KSR.pv.sets("$du", "sip:127.0.0.1:{up}")
        KSR.forward()
        return 1

    def ksr_reply_route(self, msg):
        raise RuntimeError("reply route boom")
"#
    );
    let k = Ksrd::start(&src, "");
    let c = k.udp();
    let req = message(k.port, "bob", c.addr(), b"x");
    c.send(&req.build());
    let uas = UdpClient {
        sock: uas,
        target: k.sip_addr(),
    };
    let f = uas
        .recv_call(req.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .expect("forwarded");
    let top = f.vias()[0].clone();
    let hp = top
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    uas.sock
        .send_to(&make_response(&f, 200, "OK", "u", &[]), hp.as_str())
        .unwrap();
    assert!(
        k.wait_log("reply route boom", Duration::from_secs(3)),
        "log:\n{}",
        k.log_tail(20)
    );
    assert_eq!(
        k.options().code,
        200,
        "still serving after an exception in the reply route"
    );
}

#[test]
fn missing_kamailio_module_names_module_and_function() {
    let k = Ksrd::start(&route("        KSR.dispatcher.ds_is_from_list(1)"), "");
    let c = k.udp();
    let r = c.request(&message(k.port, "alice", c.addr(), b"x").build());
    assert_eq!(r.code, 500, "{}", r.text());
    assert!(
        k.wait_log(
            "NotImplementedError: KSR.dispatcher.ds_is_from_list(): module 'dispatcher' is not available in ksrd",
            Duration::from_secs(3)
        ),
        "{}",
        k.log()
    );
}

#[test]
fn unknown_ksr_attribute_is_an_attribute_error() {
    let k = Ksrd::start(&route("        KSR.no_such_function()"), "");
    let c = k.udp();
    let r = c.request(&message(k.port, "alice", c.addr(), b"x").build());
    assert_eq!(r.code, 500, "{}", r.text());
    assert!(
        k.wait_log(
            "AttributeError: module 'KSR' has no attribute 'no_such_function'",
            Duration::from_secs(3)
        ),
        "{}",
        k.log()
    );
}
