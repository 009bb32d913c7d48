//! Every input must parse or fail cleanly, and nothing downstream of a parsed message may panic.
//! Seed with: cp ../tests/data/rfc4475/*.dat ../tests/data/rfc5118/*.dat corpus/parse/
#![no_main]

use bytes::Bytes;
use ksrd::sip::{build_reply, frame, Edits, Framing, SipMsg, Span};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Stream framing must always make progress or stop.
    let mut off = 0;
    while off < data.len() {
        match frame(&data[off..]) {
            Framing::Skip(n) | Framing::Message(n) => {
                assert!(n > 0 && off + n <= data.len());
                off += n;
            }
            Framing::Need | Framing::Invalid(_) => break,
        }
    }

    for m in [
        SipMsg::parse(Bytes::copy_from_slice(data)),
        SipMsg::parse_ignoring_body(Bytes::copy_from_slice(data)),
    ]
    .into_iter()
    .flatten()
    {
        let _ = m.validate().map_err(|e| (e.to_string(), e.reply_status()));
        let _ = (
            m.method(),
            m.method_str(),
            m.ruri_bytes(),
            m.status(),
            m.reason(),
            m.version(),
            m.body(),
        );
        let _ = (
            m.call_id(),
            m.cseq(),
            m.from_hdr(),
            m.to_hdr(),
            m.contacts(),
            m.max_forwards(),
            m.content_length(),
        );
        if let Ok(u) = m.ruri() {
            let _ = (u.to_string(), u.host_port(), u.transport());
        }
        if let Ok(vias) = m.vias() {
            for v in vias {
                let _ = (v.branch(), v.received(), v.rport(), m.slice(v.span));
            }
        }
        for h in m.headers() {
            let _ = (m.value(h), m.slice(h.line_span), m.slice(h.name_span));
        }
        let _ = m.find_by_name("x-custom").count();

        // Edits anchored on real and on input-derived offsets.
        let mut e = Edits::default();
        e.insert(
            m.first_header_offset(),
            "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf\r\n",
        );
        if let Some(s) = m.uri_span() {
            e.replace(s, "sip:x@127.0.0.1");
        }
        for (i, w) in data.chunks(4).take(8).enumerate() {
            let a = u32::from(w[0]) * 3;
            let b = u32::from(*w.get(1).unwrap_or(&0)) * 3;
            match i % 3 {
                0 => e.insert(a, &w[..]),
                1 => e.delete(Span { start: a, end: b }),
                _ => e.replace(Span { start: b, end: a }, &w[..]),
            }
        }
        e.insert(m.headers_end(), "X: y\r\n");
        let mut out = Vec::new();
        e.apply(m.raw(), &mut out);
        let _ = e.deletes(m.body_span());

        let mut rep = Vec::new();
        let src = "[2001:db8::1]:5062".parse().unwrap();
        build_reply(
            &m,
            src,
            400,
            "Bad Request",
            "tag1",
            b"X-R: 1\r\n",
            b"body",
            &mut rep,
        );
        if m.is_request() {
            // Our own replies must always parse back.
            SipMsg::parse(Bytes::from(rep)).expect("reply must parse");
        }
    }
});
