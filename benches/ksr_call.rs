//! Cost of KSR calls from Python: a route-like function calling trivial exports, with a message in context.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ksrd::config::{Config, EMBEDDED_DEFAULT};
use ksrd::core::Core;
use ksrd::script::ctx::{set_current, RouteCtx, RouteKind};
use ksrd::script::host::init_python;
use ksrd::sip::SipMsg;
use ksrd::transport::{tcp::TcpHandle, Endpoint, Proto, Sender};
use pyo3::prelude::*;

const OPTIONS: &[u8] = b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: bench-1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

fn bench(c: &mut Criterion) {
    let cfg = Config::from_str(EMBEDDED_DEFAULT, "<bench>", Path::new(".")).unwrap();
    let core = Arc::new(Core::new(
        cfg,
        Sender::new(Vec::new(), TcpHandle::disabled()),
        &[],
    ));
    init_python();
    let mut ctx = Box::new(RouteCtx::new(core));
    set_current(&mut ctx);
    let ep = Endpoint {
        proto: Proto::Udp,
        remote: "127.0.0.1:5070".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
    };
    ctx.begin(
        RouteKind::Request,
        SipMsg::parse(Bytes::from_static(OPTIONS)).unwrap(),
        ep,
    );
    Python::attach(|py| {
        let m = PyModule::from_code(
            py,
            c"import KSR\ndef one():\n    return KSR.is_OPTIONS()\ndef pv():\n    return KSR.pv.get('$rm')\ndef noop():\n    return None\ndef ten():\n    for _ in range(10):\n        KSR.is_OPTIONS()\n",
            c"bench.py",
            c"bench",
        )
        .unwrap();
        let one = m.getattr("one").unwrap();
        let pv = m.getattr("pv").unwrap();
        let noop = m.getattr("noop").unwrap();
        let ten = m.getattr("ten").unwrap();
        c.bench_function("python call (no KSR)", |b| b.iter(|| noop.call0().unwrap()));
        c.bench_function("KSR.is_OPTIONS() from Python", |b| {
            b.iter(|| one.call0().unwrap())
        });
        c.bench_function("10x KSR.is_OPTIONS() in a Python loop", |b| {
            b.iter(|| ten.call0().unwrap())
        });
        c.bench_function("KSR.pv.get('$rm') from Python", |b| {
            b.iter(|| pv.call0().unwrap())
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
