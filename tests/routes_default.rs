//! routes/default.py: keepalive, Max-Forwards, sanity, myself / not myself, ACK, core 400/505.
mod common;
use common::*;
use std::sync::OnceLock;
use std::time::Duration;

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || {
        Ksrd::start_with_route_file("routes/default.py", "")
    })
}

/// Send from a fresh socket, expect a final reply.
fn ask(req: Req) -> SipMsg {
    let k = server();
    let c = k.udp();
    // rebuild Via/From with this socket's address
    let b = branch();
    let req = req.set("Via", &format!("SIP/2.0/UDP {};branch={b};rport", c.addr()));
    let r = c.request(&req.build());
    assert_eq!(
        r.header("call-id"),
        req.get("Call-ID"),
        "reply to our request"
    );
    r
}

fn any_from() -> std::net::SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

#[test]
fn options_to_myself_without_user_is_keepalive() {
    let k = server();
    let r = ask(options(k.port, any_from()));
    assert_eq!(
        (r.code, r.reason.as_str()),
        (200, "Keepalive"),
        "{}",
        r.text()
    );
    assert!(r.to_tag().is_some());
}

#[test]
fn options_to_alias_without_user_is_keepalive() {
    let r = ask(Req::new("OPTIONS", "sip:localhost", any_from()));
    assert_eq!(
        (r.code, r.reason.as_str()),
        (200, "Keepalive"),
        "alias localhost is myself: {}",
        r.text()
    );
}

#[test]
fn max_forwards_zero_is_483() {
    let k = server();
    let r = ask(message(k.port, "alice", any_from(), b"hi").set("Max-Forwards", "0"));
    assert_eq!(
        (r.code, r.reason.as_str()),
        (483, "Too Many Hops"),
        "{}",
        r.text()
    );
}

#[test]
fn max_forwards_one_is_still_processed() {
    let k = server();
    let r = ask(message(k.port, "alice", any_from(), b"hi").set("Max-Forwards", "1"));
    assert_eq!(r.code, 404, "{}", r.text());
}

#[test]
fn user_at_myself_is_404() {
    let k = server();
    let r = ask(message(k.port, "alice", any_from(), b"hello"));
    assert_eq!(
        (r.code, r.reason.as_str()),
        (404, "Not Found"),
        "{}",
        r.text()
    );
    let r = ask(Req::new(
        "INVITE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        any_from(),
    ));
    assert_eq!(r.code, 404, "{}", r.text());
}

#[test]
fn foreign_domain_is_403_relaying_forbidden() {
    let r = ask(Req::new("MESSAGE", "sip:alice@example.com", any_from()).body("text/plain", b"x"));
    assert_eq!(
        (r.code, r.reason.as_str()),
        (403, "Relaying Forbidden"),
        "{}",
        r.text()
    );
}

#[test]
fn sanity_bad_cseq_is_400() {
    let k = server();
    let r = ask(message(k.port, "alice", any_from(), b"x").set("CSeq", "abc MESSAGE"));
    assert_eq!(r.code, 400, "{}", r.text());
}

#[test]
fn sanity_cseq_method_mismatch_is_400() {
    let k = server();
    let r = ask(message(k.port, "alice", any_from(), b"x").set("CSeq", "1 INVITE"));
    assert_eq!(r.code, 400, "{}", r.text());
}

#[test]
fn sanity_unsupported_ruri_scheme_is_416() {
    let r =
        ask(Req::new("MESSAGE", "nobarf:alice@example.com", any_from()).body("text/plain", b"x"));
    assert_eq!(r.code, 416, "{}", r.text());
}

#[test]
fn sanity_proxy_require_is_420_with_unsupported() {
    // the reason phrase is the one Kamailio 5.6's sanity module sends (sanity.so)
    let k = server();
    let r = ask(
        message(k.port, "alice", any_from(), b"x").set("Proxy-Require", "noodles, nothingelse")
    );
    assert_eq!(
        (r.code, r.reason.as_str()),
        (420, "Bad Proxy Require Extension"),
        "{}",
        r.text()
    );
    let unsup = r.headers_all("unsupported").join(",");
    assert!(
        unsup.contains("noodles"),
        "Unsupported lists the option tags: {}",
        r.text()
    );
}

#[test]
fn ack_gets_no_reply() {
    let k = server();
    let c = k.udp();
    let ack = Req::new("ACK", &format!("sip:alice@127.0.0.1:{}", k.port), c.addr());
    c.send(&ack.build());
    // then an OPTIONS: its reply must be the only datagram
    let o = options(k.port, c.addr());
    c.send(&o.build());
    let (d, _) = c.recv(REPLY_TIMEOUT).expect("reply to OPTIONS");
    let m = parse_response(&d);
    assert_eq!(
        m.header("call-id"),
        o.get("Call-ID"),
        "ACK must not be answered; got {}",
        m.text()
    );
    c.expect_silence(Duration::from_millis(200));
}

#[test]
fn request_line_without_version_is_dropped_like_kamailio() {
    let k = server();
    let c = k.udp();
    let req = options(k.port, c.addr());
    let mut bytes = req.build();
    // break the request line: no SIP version at all (not a version other than 2.0)
    let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
    bytes.splice(
        ..line_end,
        format!("OPTIONS sip:127.0.0.1:{}", k.port).bytes(),
    );
    // Without a SIP-Version the start line is not recognisably SIP (Kamailio's parse_first_line
    // rejects it and sends nothing); ksrd drops it too and keeps serving.
    c.send(&bytes);
    c.expect_silence(std::time::Duration::from_millis(500));
    assert_eq!(k.options().code, 200);
}

#[test]
fn unanswerable_garbage_is_dropped() {
    let k = server();
    let c = k.udp();
    for junk in [
        &b"\x00\x01\x02 not sip at all"[..],
        b"\r\n\r\n",
        b"INVITE",
        b"SIP/2.0 200 OK\r\n\r\n",
        &[0xffu8; 1500][..],
    ] {
        c.send(junk);
    }
    let o = options(k.port, c.addr());
    c.send(&o.build());
    let (d, _) = c.recv(REPLY_TIMEOUT).expect("ksrd still answers");
    let m = parse_response(&d);
    assert_eq!(
        m.header("call-id"),
        o.get("Call-ID"),
        "junk must be dropped; got {}",
        m.text()
    );
    assert!(k.is_running());
}

#[test]
fn bad_content_length_is_400() {
    // framing header the core must parse: a non-numeric Content-Length is a malformed request
    let k = server();
    let r = ask(message(k.port, "alice", any_from(), b"x")
        .no_content_length()
        .add("Content-Length", "abc"));
    assert_eq!(r.code, 400, "{}", r.text());
}

#[test]
fn sip_version_3_is_505() {
    let k = server();
    let c = k.udp();
    let bytes = options(k.port, c.addr()).build();
    let s = String::from_utf8(bytes)
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    let r = c.request(s.as_bytes());
    assert_eq!(r.code, 505, "{}", r.text());
}

#[test]
fn request_retransmission_answered_identically() {
    let k = server();
    let c = k.udp();
    let req = message(k.port, "alice", c.addr(), b"retrans").build();
    let a = c.request(&req);
    let b = c.request(&req);
    assert_eq!(a.code, 404);
    assert_eq!(
        a.raw, b.raw,
        "a retransmission gets the same reply, byte for byte"
    );
}
