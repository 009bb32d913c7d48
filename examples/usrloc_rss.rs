//! Memory cost of registrations: 100k AoRs with one contact each, as a phone's REGISTER stores
//! them (URI, Call-ID, User-Agent, socket, ruid), and the growth of VmRSS per 100k contacts.
//!
//! `cargo run --release --example usrloc_rss`
use ksrd::modules::usrloc::{now, Contact, Usrloc};

const N: usize = 100_000;

#[path = "common/rss.rs"]
mod rss;
use rss::rss_kib;

fn main() {
    let ul = Usrloc::default();
    let d = ul.domain("location");
    let before = rss_kib();
    let t = now();
    for i in 0..N {
        let aor = format!("user{i:06}");
        let c = Contact {
            uri: format!(
                "sip:{aor}@192.168.{}.{}:5060;transport=udp",
                i / 250 % 250,
                i % 250
            ),
            expires: t + 3600,
            q: -1,
            callid: format!("{:016x}-{i}@192.0.2.10", i * 7919),
            cseq: 2,
            received: Some(format!(
                "sip:203.0.113.{}:{};transport=udp",
                i % 250,
                1024 + i % 60000
            )),
            path: None,
            user_agent: "Linphone/5.2.0 (belle-sip/5.2.0)".into(),
            socket: "udp:192.0.2.1:5060".into(),
            cflags: 0,
            flags: 0,
            methods: -1,
            instance: None,
            reg_id: 0,
            ruid: format!("uloc-{t:x}-{i:x}"),
            last_modified: t,
        };
        d.update(&aor, |l| l.push(c)).expect("memory-only usrloc");
    }
    let after = rss_kib();
    println!(
        "{} AoRs: RSS +{:.1} MiB per 100k contacts ({:.0} bytes/contact)",
        d.records(),
        (after - before) as f64 / 1024.0 * (100_000.0 / N as f64),
        (after - before) as f64 * 1024.0 / N as f64
    );
}
