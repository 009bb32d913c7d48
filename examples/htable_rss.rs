//! Memory cost of htable items: inserts 1M items into one table and prints the growth of the
//! process's resident set (VmRSS) per 1M entries, for int values keyed by IPv4 address (ipban,
//! message counters) and for 32-character string values keyed by user@domain (auth cache).
//!
//! `cargo run --release --example htable_rss`
use ksrd::modules::htable::spec::parse;
use ksrd::modules::htable::{SetVal, Table};

const N: usize = 1_000_000;

#[path = "common/rss.rs"]
mod rss;
use rss::rss_kib;

fn measure(what: &str, spec: &str, key: impl Fn(usize) -> String, val: SetVal<'_>) {
    let before = rss_kib();
    let t = Table::new(parse(spec).unwrap());
    for i in 0..N {
        t.set(&key(i), val, 0);
    }
    let after = rss_kib();
    let (all, min, max) = t.stats();
    println!(
        "{what}: {all} items in {} slots (min {min}, max {max} per slot): RSS +{:.1} MiB per 1M entries ({:.0} bytes/entry)",
        t.slot_count(),
        (after - before) as f64 / 1024.0 * (1_000_000.0 / N as f64),
        (after - before) as f64 * 1024.0 / N as f64
    );
    drop(t);
}

fn main() {
    // Each measurement runs in a fresh process: freed memory stays in the allocator and would
    // hide the second one's growth.
    match std::env::args().nth(1).as_deref() {
        Some("int") => int_values(),
        Some("str") => str_values(),
        _ => {
            let exe = std::env::current_exe().expect("own path");
            for m in ["int", "str"] {
                let st = std::process::Command::new(&exe).arg(m).status();
                if !st.is_ok_and(|s| s.success()) {
                    eprintln!("measurement {m} failed");
                }
            }
        }
    }
}

fn int_values() {
    measure(
        "int values, IPv4 keys (ipban)",
        "ipban=>size=14;autoexpire=300",
        |i| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        SetVal::Int(1),
    );
}

fn str_values() {
    measure(
        "32-char string values, user@domain keys (auth cache)",
        "auth=>size=14",
        |i| format!("user{i}@example.com"),
        SetVal::Str("0123456789abcdef0123456789abcdef"),
    );
}
