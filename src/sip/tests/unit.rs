use std::net::SocketAddr;

use bytes::Bytes;

use crate::sip::{
    build_reply, frame, Contacts, Edits, Framing, HdrName, Method, NameAddr, ParseError, Scheme,
    SipMsg, Span, StartLine, Uri,
};

fn parse(s: &[u8]) -> SipMsg {
    SipMsg::parse(Bytes::copy_from_slice(s)).unwrap()
}

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
v: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK3\r\n\
Max-Forwards: 70\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
t: <sip:bob@example.com>\r\n\
i: call-1@10.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:alice@10.0.0.1>;expires=60, \"A, B\" <sip:ab@10.0.0.2;lr>\r\n\
c: application/sdp\r\n\
l: 4\r\n\
\r\n\
\x00\xff\r\n";

#[test]
fn compact_forms_and_names() {
    for (n, h) in [
        ("v", HdrName::Via),
        ("F", HdrName::From),
        ("t", HdrName::To),
        ("i", HdrName::CallId),
        ("m", HdrName::Contact),
        ("l", HdrName::ContentLength),
        ("c", HdrName::ContentType),
        ("k", HdrName::Supported),
        ("s", HdrName::Subject),
        ("e", HdrName::ContentEncoding),
        ("o", HdrName::Event),
        ("u", HdrName::AllowEvents),
        ("r", HdrName::ReferTo),
        ("b", HdrName::ReferredBy),
        ("x", HdrName::SessionExpires),
        ("WWW-authenticate", HdrName::WwwAuthenticate),
        ("call-id", HdrName::CallId),
        ("X-Foo", HdrName::Other),
        ("", HdrName::Other),
    ] {
        assert_eq!(HdrName::parse(n.as_bytes()), h, "{n}");
    }
    assert_eq!(HdrName::CallId.canonical(), "Call-ID");
    assert_eq!(HdrName::CSeq.canonical(), "CSeq");
    assert_eq!(Method::from_bytes(b"invite"), Method::Other);
    assert_eq!(Method::from_bytes(b"KDMQ").as_str(), "KDMQ");
}

#[test]
fn basic_request() {
    let m = parse(INVITE);
    m.validate().unwrap();
    assert!(m.is_request());
    assert_eq!(m.method(), Method::Invite);
    assert_eq!(m.method_str(), "INVITE");
    assert_eq!(m.ruri_bytes(), b"sip:bob@example.com");
    assert_eq!(m.version(), b"SIP/2.0");
    assert_eq!(m.call_id(), Some("call-1@10.0.0.1"));
    assert_eq!(
        m.first_header_offset() as usize,
        INVITE.iter().position(|&c| c == b'\n').unwrap() + 1
    );
    assert_eq!(
        &INVITE[m.headers_end() as usize..m.headers_end() as usize + 2],
        b"\r\n"
    );
    assert_eq!(m.body(), b"\x00\xff\r\n");
    assert_eq!(m.content_length(), Some(4));
    assert_eq!(m.find_by_name("Via").count(), 2);
    assert_eq!(m.find_by_name("f").count(), 1);
    let from = m.from_hdr().unwrap();
    assert_eq!(from.display.as_deref(), Some("Alice"));
    assert_eq!(from.tag(), Some("a1"));
    assert_eq!(m.to_hdr().unwrap().tag(), None);
    assert_eq!(m.max_forwards().unwrap(), Some(70));
}

#[test]
fn comma_joined_via_and_contact() {
    let m = parse(INVITE);
    let v = m.vias().unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].rport(), Some(None));
    assert_eq!(v[0].port, Some(5060));
    assert_eq!(v[1].header_index, v[2].header_index);
    assert_eq!(
        m.slice(v[1].span),
        b"SIP/2.0/TCP proxy.example.com;branch=z9hG4bK2"
    );
    assert_eq!(v[2].host, "[2001:db8::1]");
    assert_eq!(v[2].port, Some(5070));
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].param("expires"), Some(Some("60")));
    assert_eq!(c[1].display.as_deref(), Some("A, B"));
    assert_eq!(c[1].uri.param("lr"), Some(None));
}

#[test]
fn folded_lines() {
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bKx\r\nFrom: <sip:a@b>\r\n\t;tag=1\r\nTo: sip:a@b\r\nCall-ID: c\r\nCSeq: 1\r\n OPTIONS\r\nSubject: one\r\n  two\r\n\r\n";
    let m = parse(raw);
    m.validate().unwrap();
    assert_eq!(m.vias().unwrap()[0].branch(), Some("z9hG4bKx"));
    assert_eq!(m.from_hdr().unwrap().tag(), Some("1"));
    let s = m.first(HdrName::Subject).unwrap();
    assert_eq!(m.value(s), b"one\r\n  two");
    assert_eq!(m.slice(s.line_span), b"Subject: one\r\n  two\r\n");
    assert_eq!(m.headers().len(), 6);
}

#[test]
fn lf_only_lines() {
    let raw = b"\n\r\nREGISTER sip:b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nFrom: <sip:a@b>;tag=1\nTo: sip:a@b\nCall-ID: c\nCSeq: 1 REGISTER\n folded\nContent-Length: 3\n\nabc";
    let m = SipMsg::parse(Bytes::from_static(raw)).unwrap();
    assert_eq!(m.first_header_offset(), 26);
    assert_eq!(m.body(), b"abc");
    assert!(m.cseq().is_err()); // "1 REGISTER folded" has trailing junk
    let raw2 = b"REGISTER sip:b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nFrom: <sip:a@b>;tag=1\nTo: sip:a@b\nCall-ID: c\nCSeq: 1\n REGISTER\n\n";
    let m = parse(raw2);
    m.validate().unwrap();
    assert_eq!(m.headers_end() as usize, raw2.len() - 1);
    assert!(m.body().is_empty());
}

#[test]
fn response_parsing() {
    let raw = b"SIP/2.0 180 Ringing Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
    let m = parse(raw);
    m.validate().unwrap();
    assert_eq!(m.status(), Some(180));
    assert_eq!(m.reason(), b"Ringing Now");
    assert_eq!(m.method(), Method::Invite);
    assert_eq!(m.method_str(), "INVITE");
    assert_eq!(m.ruri_bytes(), b"");
    assert!(matches!(m.ruri(), Err(ParseError::NotRequest)));
    assert!(matches!(m.start(), StartLine::Response { .. }));
    let bad = parse(b"SIP/2.0 099 x\r\nVia: SIP/2.0/UDP h\r\n\r\n");
    assert_eq!(bad.validate().unwrap_err().reply_status(), None);
}

#[test]
fn parse_errors() {
    assert!(matches!(
        SipMsg::parse(Bytes::new()),
        Err(ParseError::Empty)
    ));
    assert!(matches!(
        SipMsg::parse(Bytes::from_static(b"\r\n\r\n")),
        Err(ParseError::Empty)
    ));
    assert!(SipMsg::parse(Bytes::from_static(b"INVITE sip:a@b\r\n\r\n")).is_err());
    let e = SipMsg::parse(Bytes::from_static(
        b"INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
    ))
    .unwrap_err();
    assert_eq!(e.reply_status(), Some((400, "Bad Request")));
    let e = SipMsg::parse(Bytes::from_static(b"SIP/2.0 200 OK\r\nl: x\r\n\r\n")).unwrap_err();
    assert_eq!(e.reply_status(), None);
    // Duplicate but identical Content-Length is harmless.
    let m = parse(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nxyz");
    assert_eq!(m.body(), b"x");
}

#[test]
fn uri_parsing() {
    let u = Uri::parse(b"sips:alice:pw@[::1]:5061;transport=TLS;lr?Subject=x").unwrap();
    assert_eq!(u.scheme, Scheme::Sips);
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.password.as_deref(), Some("pw"));
    assert_eq!(u.host, "[::1]");
    assert_eq!(u.port, Some(5061));
    assert_eq!(u.transport(), Some("TLS"));
    assert_eq!(u.param("LR"), Some(None));
    assert_eq!(u.headers.as_deref(), Some("Subject=x"));
    assert_eq!(u.host_port(), "[::1]:5061");
    assert_eq!(
        u.to_string(),
        "sips:alice:pw@[::1]:5061;transport=TLS;lr?Subject=x"
    );
    let t = Uri::parse(b"tel:+1-555;phone-context=x").unwrap();
    assert_eq!(t.scheme, Scheme::Tel);
    assert_eq!(t.opaque.as_deref(), Some("+1-555;phone-context=x"));
    assert_eq!(t.to_string(), "tel:+1-555;phone-context=x");
    for bad in [
        &b"sip:"[..],
        b"<sip:a@b>",
        b"sip:a@b c",
        b"sip:@b",
        b"sip:a@b:99999",
        b"sip:a@[::1",
        b"nocolon",
        b"sip:a@b:",
    ] {
        assert!(Uri::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn name_addr_forms() {
    let n = NameAddr::parse(b"sip:a@b;tag=x").unwrap();
    assert_eq!(n.tag(), Some("x"));
    assert!(n.uri.params.is_empty());
    let n = NameAddr::parse(b"Bob <sip:b@c;transport=tcp>;q=0.5").unwrap();
    assert_eq!(n.display.as_deref(), Some("Bob"));
    assert_eq!(n.uri_text, "sip:b@c;transport=tcp");
    assert_eq!(n.param("Q"), Some(Some("0.5")));
    assert!(NameAddr::parse(b"\"open <sip:a@b>").is_err());
    assert!(NameAddr::parse(b"<sip:a@b").is_err());
    assert!(NameAddr::parse(b"<sip:a@b>;;").is_err());
    assert!(NameAddr::parse(b"<sip:a@b> junk").is_err());
}

#[test]
fn contact_star() {
    let m = parse(b"REGISTER sip:b SIP/2.0\r\nContact: *\r\n\r\n");
    assert!(matches!(m.contacts().unwrap(), Contacts::Star));
    let m = parse(b"REGISTER sip:b SIP/2.0\r\nContact: *\r\nContact: <sip:a@b>\r\n\r\n");
    assert!(m.contacts().is_err());
    let m = parse(b"REGISTER sip:b SIP/2.0\r\n\r\n");
    assert!(matches!(m.contacts().unwrap(), Contacts::List(l) if l.is_empty()));
}

#[test]
fn binary_body_exact() {
    let mut raw = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 256\r\n\r\n".to_vec();
    let body: Vec<u8> = (0..=255u8).collect();
    raw.extend_from_slice(&body);
    raw.extend_from_slice(b"trailing");
    let m = SipMsg::parse(Bytes::from(raw)).unwrap();
    assert_eq!(m.body(), &body[..]);
}

// ---- framing ----

const STREAM_MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nl: 5\r\n\r\nhello";

#[test]
fn framing_several_messages_and_partial_reads() {
    let mut buf = b"\r\n\r\n".to_vec();
    buf.extend_from_slice(STREAM_MSG);
    buf.extend_from_slice(STREAM_MSG);
    buf.extend_from_slice(&STREAM_MSG[..10]);
    let mut got = Vec::new();
    let mut off = 0;
    loop {
        match frame(&buf[off..]) {
            Framing::Skip(n) => off += n,
            Framing::Message(n) => {
                got.push(buf[off..off + n].to_vec());
                off += n;
            }
            Framing::Need => break,
            Framing::Invalid(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, vec![STREAM_MSG.to_vec(), STREAM_MSG.to_vec()]);
    assert_eq!(buf.len() - off, 10);
    // Byte-by-byte arrival: every prefix needs more, the full message frames exactly.
    for i in 1..STREAM_MSG.len() {
        assert!(
            matches!(frame(&STREAM_MSG[..i]), Framing::Need),
            "prefix {i}"
        );
    }
    assert!(matches!(frame(STREAM_MSG), Framing::Message(n) if n == STREAM_MSG.len()));
}

#[test]
fn framing_edge_cases() {
    assert!(matches!(frame(b""), Framing::Need));
    assert!(matches!(frame(b"\r\n"), Framing::Skip(2)));
    // No Content-Length on a stream: empty body.
    assert!(matches!(
        frame(b"OPTIONS sip:a SIP/2.0\n\nNEXT"),
        Framing::Message(23)
    ));
    assert!(matches!(
        frame(b"OPTIONS sip:a SIP/2.0\r\nl: -1\r\n\r\n"),
        Framing::Invalid(_)
    ));
    assert!(matches!(
        frame(b"OPTIONS sip:a SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\n"),
        Framing::Invalid(_)
    ));
    assert!(matches!(
        frame(b"OPTIONS sip:a SIP/2.0\r\nl: zz\r\n\r\n"),
        Framing::Invalid(_)
    ));
    // A broken header elsewhere still leaves framing by Content-Length intact.
    assert!(
        matches!(frame(b"X sip:a SIP/2.0\r\n@@@\r\nl:\r\n 2\r\n\r\nab"), Framing::Message(n) if n == 34)
    );
    let big = vec![b'a'; 70 * 1024];
    assert!(matches!(frame(&big), Framing::Invalid(_)));
}

// ---- edits ----

fn apply(e: &Edits, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    e.apply(raw, &mut out);
    out
}

#[test]
fn edits_combinations() {
    let raw = b"0123456789";
    let mut e = Edits::default();
    assert!(e.is_empty());
    assert_eq!(apply(&e, raw), raw);
    e.insert(3, "a");
    e.insert(3, "b");
    e.insert(0, "S");
    e.insert(10, "E");
    assert_eq!(apply(&e, raw), b"S012ab3456789E");
    e.delete(Span { start: 5, end: 7 });
    e.delete(Span { start: 6, end: 8 });
    e.delete(Span { start: 6, end: 8 });
    assert_eq!(apply(&e, raw), b"S012ab3489E");
    e.replace(Span { start: 1, end: 2 }, "X");
    e.replace(Span { start: 1, end: 2 }, "YY");
    assert_eq!(apply(&e, raw), b"S0YY2ab3489E");
    assert!(e.deletes(Span { start: 6, end: 7 }));
    assert!(!e.deletes(Span { start: 2, end: 3 }));
    e.clear();
    assert!(e.is_empty());
    // Insert inside a deleted range still lands where it was anchored.
    e.delete(Span { start: 2, end: 6 });
    e.insert(4, "in");
    assert_eq!(apply(&e, raw), b"01in6789");
    // Out-of-range and inverted spans never panic.
    e.delete(Span { start: 9, end: 400 });
    e.delete(Span { start: 7, end: 3 });
    e.insert(u32::MAX, "z");
    e.replace(Span { start: 50, end: 60 }, "q");
    assert_eq!(apply(&e, raw), b"01in678zq");
}

#[test]
fn forward_edit_on_message() {
    let m = parse(INVITE);
    let mut e = Edits::default();
    e.insert(
        m.first_header_offset(),
        "Via: SIP/2.0/UDP me;branch=z9hG4bKnew\r\n",
    );
    e.replace(m.uri_span().unwrap(), "sip:bob@10.9.9.9");
    let mf = m.first(HdrName::MaxForwards).unwrap();
    e.replace(mf.value_span, "69");
    let out = apply(&e, m.raw());
    let m2 = SipMsg::parse(Bytes::from(out)).unwrap();
    m2.validate().unwrap();
    assert_eq!(m2.ruri_bytes(), b"sip:bob@10.9.9.9");
    assert_eq!(m2.vias().unwrap().len(), 4);
    assert_eq!(m2.vias().unwrap()[0].host, "me");
    assert_eq!(m2.max_forwards().unwrap(), Some(69));
    assert_eq!(m2.body(), m.body());
}

// ---- stateless replies ----

fn reply(req: &[u8], src: &str, tag: &str) -> SipMsg {
    let m = parse(req);
    let mut out = Vec::new();
    build_reply(
        &m,
        src.parse::<SocketAddr>().unwrap(),
        404,
        "Not Found",
        tag,
        b"X-A: 1\r\n",
        b"ab",
        &mut out,
    );
    assert!(
        !out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "bare LF in output"
    );
    SipMsg::parse(Bytes::from(out)).unwrap()
}

#[test]
fn reply_received_and_rport() {
    let r = reply(INVITE, "192.0.2.7:4444", "tt");
    r.validate().unwrap();
    assert_eq!(r.status(), Some(404));
    assert_eq!(r.reason(), b"Not Found");
    let v = r.vias().unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].received(), Some("192.0.2.7"));
    assert_eq!(v[0].rport(), Some(Some(4444)));
    assert_eq!(v[1].received(), None);
    assert_eq!(r.to_hdr().unwrap().tag(), Some("tt"));
    assert_eq!(r.from_hdr().unwrap().tag(), Some("a1"));
    assert_eq!(r.call_id(), Some("call-1@10.0.0.1"));
    assert_eq!(r.cseq().unwrap().num, 1);
    assert_eq!(r.first(HdrName::Other).map(|h| r.value(h)), Some(&b"1"[..]));
    assert_eq!(r.body(), b"ab");
    assert!(r.first(HdrName::Contact).is_none());
}

#[test]
fn reply_same_host_no_received_and_existing_tag_kept() {
    let req = b"BYE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=old\nCall-ID: x\nCSeq: 2 BYE\n\n";
    let r = reply(req, "192.0.2.7:5060", "new");
    let v = r.vias().unwrap();
    assert_eq!(v[0].received(), None);
    assert_eq!(v[0].rport(), None);
    assert_eq!(r.to_hdr().unwrap().tag(), Some("old"));
    assert_eq!(r.to_hdr().unwrap().params.len(), 1);
}

#[test]
fn reply_to_partially_valid_request() {
    // Broken Via and no To: whatever exists is copied verbatim.
    let req = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;;\r\nCall-ID: x\r\n\r\n";
    let m = parse(req);
    let mut out = Vec::new();
    build_reply(
        &m,
        "[2001:db8::1]:5060".parse().unwrap(),
        400,
        "Bad\r\nRequest",
        "t",
        b"",
        b"",
        &mut out,
    );
    let want = format!(
        "SIP/2.0 400 BadRequest\r\nVia: SIP/2.0/UDP h;;\r\nCall-ID: x\r\n{}Content-Length: 0\r\n\r\n",
        *crate::sip::reply::SERVER_HEADER
    );
    assert_eq!(String::from_utf8_lossy(&out), want);
}

#[test]
fn msg_is_send() {
    fn is_send<T: Send>() {}
    is_send::<SipMsg>();
}

#[test]
fn validate_cold_matches_accessors() {
    // validate() checks CSeq/From/To/R-URI without building them; the verdict and the values
    // built afterwards must be exactly what the accessors give when called first.
    let base = "INVITE sip:bob@example.com;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: \"A\" <sip:a@example.com>;tag=x;Tag=y\r\n\
To: Bob <sip:bob@example.com;lr>;tag\r\n\
Call-ID: c\r\n\
CSeq: 1 INVITE\r\n\r\n";
    let cases: Vec<String> = vec![
        base.to_string(),
        base.replace(
            "From: \"A\" <sip:a@example.com>",
            "From: \"A <sip:a@example.com>",
        ),
        base.replace("<sip:a@example.com>;tag=x", "<sip:a@example.com>;=x"),
        base.replace("To: Bob <sip:bob@example.com;lr>", "To: <sip:@example.com>"),
        base.replace("To: Bob <sip:bob@example.com;lr>;tag", "To: sip:b@c junk"),
        base.replace("sip:bob@example.com;transport=udp", "sip:bob@exa<mple"),
        base.replace("sip:bob@example.com;transport=udp", "sip:bob@h:99999"),
        base.replace("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE"),
        base.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
        base.replace("CSeq: 1 INVITE", "CSeq: 1"),
        base.replace(
            "INVITE sip:bob@example.com;transport=udp",
            "INVITE tel:+1;x=y",
        ),
        base.replace("SIP/2.0/UDP 10.0.0.1", "SIP/2.0/UDP"),
    ];
    let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    for c in &cases {
        let cold = parse(c.as_bytes());
        let warm = parse(c.as_bytes());
        let _ = (
            warm.cseq(),
            warm.from_hdr(),
            warm.to_hdr(),
            warm.ruri(),
            warm.vias(),
        );
        assert_eq!(cold.validate(), warm.validate(), "{c}");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        build_reply(&cold, src, 400, "B", "tt", b"", b"", &mut a);
        build_reply(&warm, src, 400, "B", "tt", b"", b"", &mut b);
        assert_eq!(a, b, "{c}");
        assert_eq!(format!("{:?}", cold.cseq()), format!("{:?}", warm.cseq()));
        assert_eq!(
            format!("{:?}", cold.from_hdr()),
            format!("{:?}", warm.from_hdr())
        );
        assert_eq!(
            format!("{:?}", cold.to_hdr()),
            format!("{:?}", warm.to_hdr())
        );
        assert_eq!(cold.ruri(), warm.ruri());
    }
    let m = parse(cases[0].as_bytes());
    m.validate().unwrap();
    assert_eq!(m.from_hdr().unwrap().tag(), Some("x"));
    assert_eq!(m.to_hdr().unwrap().tag(), None); // valueless tag: a To-tag is added
    assert_eq!(m.ruri().unwrap().transport(), Some("udp"));
    assert_eq!(m.cseq().unwrap().method_str, "INVITE");
}

#[test]
fn reply_folds_become_crlf() {
    let req = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;rport\nFrom: <sip:a@b>;\n tag=1\r\nTo: <sip:c@d>\nCall-ID: x\nCSeq: 2\r\n OPTIONS\n\n";
    let m = parse(req);
    m.validate().unwrap();
    let mut out = Vec::new();
    build_reply(
        &m,
        "192.0.2.1:6000".parse().unwrap(),
        200,
        "OK",
        "t9",
        b"",
        b"",
        &mut out,
    );
    let want = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;rport=6000;received=192.0.2.1\r\nFrom: <sip:a@b>;\r\n tag=1\r\nTo: <sip:c@d>;tag=t9\r\nCall-ID: x\r\nCSeq: 2\r\n OPTIONS\r\n{}Content-Length: 0\r\n\r\n",
        *crate::sip::reply::SERVER_HEADER
    );
    assert_eq!(String::from_utf8_lossy(&out), want);
}
