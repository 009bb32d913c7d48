//! Timer wheel hot paths at transaction-layer scale: 100k timers armed then cancelled (the
//! common case: a reply stops Timer E/F), and 100k timers armed then fired by a 10 ms driver.
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ksrd::tm::timer::{TimerHandle, TimerWheel};

const N: usize = 100_000;
const TICK: Duration = Duration::from_millis(10);

/// Deadline offsets spread over 0..32 s (Timer B/F range), fixed seed.
fn offsets() -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(1);
    (0..N)
        .map(|_| Duration::from_micros(rng.u64(0..32_000_000)))
        .collect()
}

fn insert_cancel(c: &mut Criterion) {
    let offsets = offsets();
    let t0 = Instant::now();
    let mut wheel = TimerWheel::<u64>::new(TICK, t0);
    let mut handles: Vec<TimerHandle> = Vec::with_capacity(N);
    let mut g = c.benchmark_group("timer");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("insert+cancel 100k", |b| {
        b.iter(|| {
            for (i, d) in offsets.iter().enumerate() {
                handles.push(wheel.insert(t0 + *d, i as u64));
            }
            for h in handles.drain(..) {
                black_box(wheel.cancel(h));
            }
        })
    });
    g.finish();
}

fn insert_fire(c: &mut Criterion) {
    let offsets = offsets();
    let t0 = Instant::now();
    let mut wheel = TimerWheel::<u64>::new(TICK, t0);
    let mut out = Vec::with_capacity(N);
    // The wheel's clock moves forward across iterations, like a long-running server.
    let mut base = t0;
    let mut g = c.benchmark_group("timer");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("insert+fire 100k (10 ms driver steps over 32 s)", |b| {
        b.iter(|| {
            for (i, d) in offsets.iter().enumerate() {
                wheel.insert(base + *d, i as u64);
            }
            let end = base + Duration::from_secs(32);
            let mut now = base;
            let mut fired = 0;
            while now <= end {
                now += TICK;
                out.clear();
                fired += wheel.advance(now, &mut out);
            }
            assert_eq!(fired, N);
            base = now;
        })
    });
    g.bench_function("insert+fire 100k (one advance)", |b| {
        b.iter(|| {
            for (i, d) in offsets.iter().enumerate() {
                wheel.insert(base + *d, i as u64);
            }
            base += Duration::from_secs(32);
            out.clear();
            assert_eq!(wheel.advance(base, &mut out), N);
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, insert_cancel, insert_fire);
criterion_main!(benches);
