//! Parser hot paths: receive (parse + validate) and forward (parse + edits).
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ksrd::sip::{Edits, SipMsg};

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

criterion_group!(benches, receive, forward);
criterion_main!(benches);
