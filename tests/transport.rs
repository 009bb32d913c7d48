//! Transports: UDP and TCP framing, header echo in stateless replies, Via received/rport,
//! compact headers, byte-exact forwarding of a binary body.
mod common;
use common::*;
use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

fn server() -> Ksrd {
    Ksrd::start(DEFAULT_TEST_ROUTE, "")
}

#[test]
fn udp_options_reply_echoes_transaction_headers_and_fills_rport() {
    let k = server();
    let c = k.udp();
    let req = options(k.port, c.addr());
    let r = c.request(&req.build());
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(r.reason, "OK");

    // Via: same value, plus received (RFC 3581: MUST be added when rport is present) and rport=<src port>
    let vias = r.vias();
    assert_eq!(
        vias.len(),
        1,
        "only the client's Via in the reply: {vias:?}"
    );
    let via = &vias[0];
    let sent = req.get("Via").unwrap();
    let sent_by = sent.split(';').next().unwrap();
    assert!(
        via.starts_with(sent_by),
        "Via sent-by changed: {via} (sent {sent})"
    );
    assert_eq!(
        param(via, "branch").as_deref(),
        Some(req.branch().as_str()),
        "branch kept: {via}"
    );
    assert_eq!(
        param(via, "rport"),
        Some(c.addr().port().to_string()),
        "rport filled: {via}"
    );
    assert_eq!(
        param(via, "received").as_deref(),
        Some("127.0.0.1"),
        "received added: {via}"
    );

    assert_eq!(r.header("from"), req.get("From"), "From echoed");
    assert_eq!(r.header("call-id"), req.get("Call-ID"), "Call-ID echoed");
    assert_eq!(r.header("cseq"), req.get("CSeq"), "CSeq echoed");
    let to = r.header("to").expect("To");
    assert!(to.starts_with(req.get("To").unwrap()), "To echoed: {to}");
    let tag = r.to_tag().expect("a To tag is added to a final reply");
    assert!(!tag.is_empty());
    let cl = r
        .header("content-length")
        .expect("Content-Length in a UDP reply");
    assert_eq!(cl.trim().parse::<usize>().unwrap(), r.body.len());
}

#[test]
fn udp_reply_goes_to_received_ip_and_via_port_without_rport() {
    let k = server();
    // two sockets: ksrd must answer the one named in Via (port), not the one that sent
    let sender = k.udp();
    let named = UdpSocket::bind("127.0.0.1:0").unwrap();
    let named_port = named.local_addr().unwrap().port();
    let req = options(k.port, sender.addr()).set(
        "Via",
        &format!(
            "SIP/2.0/UDP client.invalid:{named_port};branch={}",
            branch()
        ),
    );
    sender.send(&req.build());
    let listener = UdpClient {
        sock: named,
        target: k.sip_addr(),
    };
    let r = listener
        .recv_final(REPLY_TIMEOUT)
        .expect("reply sent to received IP : Via port");
    assert_eq!(r.code, 200);
    let via = &r.vias()[0];
    assert_eq!(
        param(via, "received").as_deref(),
        Some("127.0.0.1"),
        "received added (host differs): {via}"
    );
    assert!(
        param(via, "rport").is_none(),
        "no rport param when the client did not ask: {via}"
    );
    sender.expect_silence(Duration::from_millis(200));
}

#[test]
fn udp_retransmission_gets_the_same_reply() {
    let k = server();
    let c = k.udp();
    let req = options(k.port, c.addr()).build();
    let r1 = c.request(&req);
    let r2 = c.request(&req);
    assert_eq!(r1.code, r2.code);
    assert_eq!(
        r1.to_tag(),
        r2.to_tag(),
        "a retransmission is answered with the same reply (same To tag)"
    );
}

#[test]
fn tcp_options() {
    let k = server();
    let mut s = k.tcp_connect();
    let local = s.local_addr().unwrap();
    let req = options(k.port, local).set(
        "Via",
        &format!("SIP/2.0/TCP {local};branch={};rport", branch()),
    );
    s.write_all(&req.build()).unwrap();
    let mut pending = Vec::new();
    let r = read_sip_stream(&mut s, &mut pending, REPLY_TIMEOUT)
        .expect("reply over the same TCP connection");
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(r.header("call-id"), req.get("Call-ID"));
    assert_eq!(r.header("cseq"), req.get("CSeq"));
    assert!(
        r.vias()[0].starts_with(&format!("SIP/2.0/TCP {local}")),
        "{:?}",
        r.vias()
    );
}

fn tcp_req(k: &Ksrd, local: std::net::SocketAddr, method: &str, cseq: u32) -> Req {
    let ruri = if method == "OPTIONS" {
        format!("sip:127.0.0.1:{}", k.port)
    } else {
        format!("sip:nobody@127.0.0.1:{}", k.port)
    };
    Req::new(method, &ruri, local)
        .set(
            "Via",
            &format!("SIP/2.0/TCP {local};branch={};rport", branch()),
        )
        .set("CSeq", &format!("{cseq} {method}"))
}

#[test]
fn tcp_two_messages_in_one_write() {
    let k = server();
    let mut s = k.tcp_connect();
    let local = s.local_addr().unwrap();
    let a = tcp_req(&k, local, "OPTIONS", 1);
    let b = tcp_req(&k, local, "MESSAGE", 2)
        .body("text/plain", b"second message\r\n\r\nwith a blank line");
    let mut both = a.build();
    both.extend_from_slice(&b.build());
    s.write_all(&both).unwrap();
    let mut pending = Vec::new();
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = read_sip_stream(&mut s, &mut pending, REPLY_TIMEOUT).expect("two replies");
        got.push((r.header("call-id").unwrap().to_string(), r.code));
    }
    got.sort();
    let mut want = vec![
        (a.get("Call-ID").unwrap().to_string(), 200u16),
        (b.get("Call-ID").unwrap().to_string(), 404u16),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn tcp_message_split_in_three_writes() {
    let k = server();
    let mut s = k.tcp_connect();
    let local = s.local_addr().unwrap();
    let req = tcp_req(&k, local, "MESSAGE", 7).body("text/plain", b"0123456789abcdefghij");
    let bytes = req.build();
    let he = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    // cut inside the start line, inside the header block, and inside the body
    let cuts = [10, he - 5, he + 4 + 7];
    let mut prev = 0;
    for c in cuts {
        s.write_all(&bytes[prev..c]).unwrap();
        s.flush().unwrap();
        prev = c;
        // the pause is the point of the test: the stream arrives in pieces
        std::thread::sleep(Duration::from_millis(150));
    }
    // nothing may be answered before the message is complete
    let mut pending = Vec::new();
    assert!(
        read_sip_stream(&mut s, &mut pending, Duration::from_millis(100)).is_none(),
        "ksrd answered an incomplete message"
    );
    s.write_all(&bytes[prev..]).unwrap();
    let r = read_sip_stream(&mut s, &mut pending, REPLY_TIMEOUT).expect("reply once complete");
    assert_eq!(r.code, 404);
    assert_eq!(r.header("call-id"), req.get("Call-ID"));
    assert_eq!(r.header("cseq"), Some("7 MESSAGE"));
}

#[test]
fn compact_header_names() {
    let k = server();
    let c = k.udp();
    let from = c.addr();
    let callid = uniq("compact");
    let b = branch();
    let msg = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nv: SIP/2.0/UDP {from};branch={b};rport\r\nMax-Forwards: 70\r\n\
         f: <sip:compact@{from}>;tag=ct1\r\nt: <sip:127.0.0.1:{port}>\r\ni: {callid}\r\nCSeq: 5 OPTIONS\r\nl: 0\r\n\r\n",
        port = k.port
    );
    let r = c.request(msg.as_bytes());
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(r.header("call-id"), Some(callid.as_str()));
    assert_eq!(
        r.header("from"),
        Some(format!("<sip:compact@{from}>;tag=ct1").as_str())
    );
    assert_eq!(r.header("cseq"), Some("5 OPTIONS"));
    assert_eq!(param(&r.vias()[0], "branch").as_deref(), Some(b.as_str()));
    assert!(r.to_tag().is_some());
}

#[test]
fn binary_body_forwarded_byte_exact_by_stateless_proxy() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uas_port = uas.local_addr().unwrap().port();
    let k = Ksrd::start_with_route_file(
        "routes/stateless_proxy.py",
        &format!("[define]\nPROXY_TARGET = \"sip:127.0.0.1:{uas_port}\"\n"),
    );
    let mut body: Vec<u8> = (0u8..=255).collect();
    body.extend_from_slice(b"\r\n\r\nSIP/2.0 200 OK\r\n\x00\x00\n\n\xff\xfe");
    body.extend((0u8..=255).rev());
    let c = k.udp();
    let req = message(k.port, "bob", c.addr(), b"").body("application/octet-stream", &body);
    c.send(&req.build());
    let uas = UdpClient {
        sock: uas,
        target: k.sip_addr(),
    };
    let m = uas
        .recv_call(req.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .expect("the MESSAGE reaches the UAS");
    assert_eq!(m.reason, "MESSAGE", "{}", m.text());
    assert_eq!(m.body, body, "body forwarded byte-exact");
    assert_eq!(
        m.header("content-length")
            .map(|v| v.trim().parse::<usize>().unwrap()),
        Some(body.len())
    );
    assert_eq!(m.header("content-type"), Some("application/octet-stream"));
}

#[test]
fn distinct_transactions_never_get_each_others_cached_reply() {
    // SIPp-style identifiers that differ in one digit (found under SIPp load: the request of
    // call 284 was answered with the cached reply of call 204)
    let k = server();
    let c = k.udp();
    let from = c.addr();
    let mut wrong = Vec::new();
    for n in 1..=1500u32 {
        let msg = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-12915-{n}-0;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:sipp@{from}>;tag=12915SIPpTag00{n}\r\nTo: <sip:127.0.0.1:{port}>\r\n\
             Call-ID: {n}-12915@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            port = k.port
        );
        let r = c.request(msg.as_bytes());
        let want = format!("{n}-12915@127.0.0.1");
        if r.header("call-id") != Some(want.as_str()) {
            wrong.push(format!(
                "sent {want}, got reply for {:?}",
                r.header("call-id")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} requests answered with another transaction's reply, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
