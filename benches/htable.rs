//! htable hot paths: `sht_get` / `sht_inc` hits and a miss on a table of 100k items in 2^14
//! slots (Kamailio's largest), one string-value read (auth cache), and `sht_inc` from 4 threads
//! on one key (the slot lock under contention). Keys spread over the table measure the memory
//! latency of a cold item; "hot key" runs measure the CPU cost alone.
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ksrd::modules::htable::spec::parse;
use ksrd::modules::htable::{SetVal, Table};

const N: usize = 100_000;

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn filled() -> (Table, Vec<String>) {
    let t = Table::new(parse("ipban=>size=14;autoexpire=300;initval=0").unwrap());
    let keys: Vec<String> = (0..N).map(ip).collect();
    for (i, k) in keys.iter().enumerate() {
        t.set(k, SetVal::Int(i as i64), 0);
    }
    (t, keys)
}

fn single_thread(c: &mut Criterion) {
    let (t, keys) = filled();
    let auth = Table::new(parse("auth=>size=14").unwrap());
    let users: Vec<String> = (0..N).map(|i| format!("user{i}@example.com")).collect();
    for u in &users {
        auth.set(u, SetVal::Str("0123456789abcdef0123456789abcdef"), 0);
    }
    let mut g = c.benchmark_group("htable");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("sht_get int hit (100k items)", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(t.get(&keys[i]))
        })
    });
    g.bench_function("sht_get str hit (auth cache, 100k items)", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(auth.get(&users[i]))
        })
    });
    // The same key again and again: the CPU cost without cache misses.
    g.bench_function("sht_get int hit (hot key)", |b| {
        b.iter(|| black_box(t.get(black_box(keys[4242].as_str()))))
    });
    g.bench_function("sht_inc hit (hot key)", |b| {
        b.iter(|| black_box(t.add(black_box(keys[4242].as_str()), 1)))
    });
    g.bench_function("sht_get miss", |b| b.iter(|| black_box(t.get("192.0.2.1"))));
    g.bench_function("sht_inc hit", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(t.add(&keys[i], 1))
        })
    });
    g.bench_function("sht_seti overwrite", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            t.set(&keys[i], SetVal::Int(3), 0)
        })
    });
    g.finish();
}

fn contended(c: &mut Criterion) {
    let t = Arc::new(Table::new(parse("cnt=>size=4;initval=0").unwrap()));
    let mut g = c.benchmark_group("htable");
    const PER: u64 = 10_000;
    g.throughput(Throughput::Elements(4 * PER));
    g.bench_function("sht_inc one key from 4 threads (x10k each)", |b| {
        b.iter(|| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let t = t.clone();
                    std::thread::spawn(move || {
                        for _ in 0..PER {
                            black_box(t.add("hits", 1));
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, single_thread, contended);
criterion_main!(benches);
