//! routes/stateless_proxy.py: every request forwarded statelessly to PROXY_TARGET with
//! `X-Proxied: You betcha` and ksrd's own Via on top; replies return by Via; ksr_reply_route logs.
mod common;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

struct Setup {
    k: Ksrd,
    uas: UdpClient,
}

fn setup() -> Setup {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uas_port = sock.local_addr().unwrap().port();
    let k = Ksrd::start_with_route_file(
        "routes/stateless_proxy.py",
        &format!("[define]\nPROXY_TARGET = \"sip:127.0.0.1:{uas_port}\"\n"),
    );
    let uas = UdpClient {
        sock,
        target: k.sip_addr(),
    };
    Setup { k, uas }
}

/// Address a UAS answers: the top Via's sent-by (host:port, default 5060).
fn sent_by(via: &str) -> SocketAddr {
    let after_proto = via.split_whitespace().nth(1).expect("sent-by in Via");
    let hostport = after_proto.split(';').next().unwrap();
    let hp = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5060")
    };
    hp.parse()
        .unwrap_or_else(|e| panic!("Via sent-by {hp:?} is not an IP:port ({e})"))
}

/// The UAS side: wait for the forwarded request with this Call-ID.
fn uas_recv(s: &Setup, call_id: &str) -> SipMsg {
    s.uas.recv_call(call_id, REPLY_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "{call_id} not forwarded to the UAS; log:\n{}",
            s.k.log_tail(20)
        )
    })
}

#[test]
fn message_forwarded_with_header_and_via_and_reply_returns() {
    let s = setup();
    let c = s.k.udp();
    let req = message(s.k.port, "bob", c.addr(), b"hello through ksrd");
    c.send(&req.build());

    let f = uas_recv(&s, req.get("Call-ID").unwrap());
    assert!(!f.is_response());
    assert!(
        f.start_line.starts_with("MESSAGE sip:bob@"),
        "{}",
        f.start_line
    );
    assert_eq!(f.header("X-Proxied"), Some("You betcha"), "{}", f.text());
    assert_eq!(f.body, b"hello through ksrd");
    assert_eq!(f.header("call-id"), req.get("Call-ID"));
    assert_eq!(f.header("cseq"), req.get("CSeq"));

    let vias = f.vias();
    assert_eq!(vias.len(), 2, "ksrd's Via + the client's: {vias:?}");
    let top = &vias[0];
    assert_eq!(
        sent_by(top),
        s.k.sip_addr(),
        "top Via is ksrd's own listen address: {top}"
    );
    let br = param(top, "branch").expect("branch in ksrd's Via");
    assert!(
        br.starts_with("z9hG4bK") && br.len() > 7,
        "RFC 3261 branch: {top}"
    );
    let client_via = &vias[1];
    assert_eq!(
        param(client_via, "branch"),
        Some(req.branch()),
        "client Via kept second: {client_via}"
    );
    assert_eq!(
        param(client_via, "rport"),
        Some(c.addr().port().to_string()),
        "rport filled: {client_via}"
    );

    // the UAS answers 200 to the top Via
    let resp = make_response(&f, 200, "OK", "uas1", &[("X-From-UAS", "yes")]);
    s.uas.sock.send_to(&resp, sent_by(top)).unwrap();

    let r = c
        .recv_final(REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("200 not relayed back; log:\n{}", s.k.log_tail(20)));
    assert_eq!(r.code, 200, "{}", r.text());
    let back = r.vias();
    assert_eq!(back.len(), 1, "ksrd removed its own Via: {back:?}");
    assert_eq!(param(&back[0], "branch"), Some(req.branch()));
    assert_eq!(r.header("X-From-UAS"), Some("yes"));
    assert_eq!(r.to_tag().as_deref(), Some("uas1"));
    assert!(
        s.k.wait_log("reply 200", Duration::from_secs(3)),
        "ksr_reply_route logs `reply 200`; log:\n{}",
        s.k.log_tail(20)
    );
}

#[test]
fn error_reply_is_relayed_and_logged() {
    let s = setup();
    let c = s.k.udp();
    let req = Req::new(
        "OPTIONS",
        &format!("sip:carol@127.0.0.1:{}", s.k.port),
        c.addr(),
    );
    c.send(&req.build());
    let f = uas_recv(&s, req.get("Call-ID").unwrap());
    let resp = make_response(&f, 486, "Busy Here", "uas2", &[]);
    s.uas.sock.send_to(&resp, sent_by(&f.vias()[0])).unwrap();
    let r = c.recv_final(REPLY_TIMEOUT).expect("486 relayed back");
    assert_eq!((r.code, r.reason.as_str()), (486, "Busy Here"));
    assert!(
        s.k.wait_log("reply 486", Duration::from_secs(3)),
        "log:\n{}",
        s.k.log_tail(20)
    );
}

#[test]
fn stateless_branch_is_stable_across_retransmissions() {
    // RFC 3261 16.11: a stateless proxy computes the branch so that a retransmission gets the same one
    let s = setup();
    let c = s.k.udp();
    let m = message(s.k.port, "dave", c.addr(), b"twice");
    let req = m.build();
    c.send(&req);
    let a = uas_recv(&s, m.get("Call-ID").unwrap());
    c.send(&req);
    let b = uas_recv(&s, m.get("Call-ID").unwrap());
    assert_eq!(param(&a.vias()[0], "branch"), param(&b.vias()[0], "branch"));
    // a different request gets a different branch
    let other = message(s.k.port, "dave", c.addr(), b"other");
    c.send(&other.build());
    let d = uas_recv(&s, other.get("Call-ID").unwrap());
    assert_ne!(param(&a.vias()[0], "branch"), param(&d.vias()[0], "branch"));
}

#[test]
fn response_not_for_ksrd_is_not_relayed_to_the_client() {
    let s = setup();
    let c = s.k.udp();
    // a 200 whose top Via is the client's own (not ksrd's): must be dropped, not bounced around
    let req = message(s.k.port, "erin", c.addr(), b"x");
    let fake = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=x\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        req.get("Via").unwrap(),
        req.get("From").unwrap(),
        req.get("To").unwrap(),
        req.get("Call-ID").unwrap(),
        req.get("CSeq").unwrap()
    );
    s.uas.sock.send_to(fake.as_bytes(), s.k.sip_addr()).unwrap();
    // then a real request round trip: the only thing the client sees is its reply
    c.send(&req.build());
    let f = uas_recv(&s, req.get("Call-ID").unwrap());
    s.uas
        .sock
        .send_to(
            &make_response(&f, 202, "Accepted", "t", &[]),
            sent_by(&f.vias()[0]),
        )
        .unwrap();
    let r = c.recv_final(REPLY_TIMEOUT).expect("202 relayed");
    assert_eq!(
        r.code,
        202,
        "only the relayed reply reaches the client, got {}",
        r.text()
    );
    c.expect_silence(Duration::from_millis(200));
    assert!(s.k.is_running());
}
