//! Parser hot paths: receive (parse + validate) and forward (parse + edits).
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ksrd::sip::{build_reply, Edits, SipMsg};

const OPTIONS: &[u8] = b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:carol@chicago.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 63104 OPTIONS\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\
\r\n";

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: \"Bob\" <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer\r\n\
User-Agent: bench-ua/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 226\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

const REGISTER: &[u8] = b"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4>;expires=7200\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\
\r\n";

fn receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive");
    for (name, raw) in [("invite_sdp", INVITE), ("register", REGISTER)] {
        let raw = Bytes::from_static(raw);
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| SipMsg::parse(black_box(raw.clone())).unwrap())
        });
        g.bench_function(format!("{name}/parse+validate"), |b| {
            b.iter(|| {
                let m = SipMsg::parse(black_box(raw.clone())).unwrap();
                m.validate().unwrap();
                m
            })
        });
    }
    g.finish();
}

fn forward(c: &mut Criterion) {
    let raw = Bytes::from_static(INVITE);
    let mut out = Vec::with_capacity(2048);
    c.bench_function("forward/invite_sdp/parse+edits", |b| {
        b.iter(|| {
            let m = SipMsg::parse(black_box(raw.clone())).unwrap();
            let mut e = Edits::default();
            e.insert(
                m.first_header_offset(),
                &b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfwd1\r\n"[..],
            );
            e.replace(m.uri_span().unwrap(), &b"sip:bob@192.0.2.55:5060"[..]);
            out.clear();
            e.apply(m.raw(), &mut out);
            out.len()
        })
    });
}

/// The worker's hot path for a locally answered request: parse, validate, request_key
/// (top Via branch/host), Core::to_tag (Call-ID, From tag, top Via branch), build_reply.
fn hot_path(c: &mut Criterion) {
    let raw = Bytes::from_static(OPTIONS);
    let src: SocketAddr = "192.0.2.7:5062".parse().unwrap();
    let mut out = Vec::with_capacity(2048);
    c.bench_function(
        "OPTIONS: parse + validate + vias + from tag + call_id + build_reply",
        |b| {
            b.iter(|| {
                let m = SipMsg::parse(black_box(raw.clone())).unwrap();
                m.validate().unwrap();
                let top = &m.vias().unwrap()[0];
                let mut h = std::collections::hash_map::DefaultHasher::new();
                top.branch().unwrap_or("").hash(&mut h);
                top.host.hash(&mut h);
                m.method_str().hash(&mut h);
                let key = h.finish();
                let ftag = m.from_hdr().ok().and_then(|f| f.tag()).unwrap_or("");
                let branch = m
                    .vias()
                    .ok()
                    .and_then(|v| v.first())
                    .and_then(|v| v.branch());
                let mut h = std::collections::hash_map::DefaultHasher::new();
                m.call_id().unwrap_or("").hash(&mut h);
                ftag.hash(&mut h);
                branch.unwrap_or("").hash(&mut h);
                let tag = format!("ksrd.{:08x}", h.finish() as u32);
                out.clear();
                build_reply(&m, src, 200, "OK", &tag, b"", b"", &mut out);
                (key, out.len())
            })
        },
    );
}

criterion_group!(benches, receive, forward, hot_path);
criterion_main!(benches);
