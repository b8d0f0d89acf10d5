//! What the request metrics cost a request: recording one answer of a route (thread-local
//! lookup, status counter, latency histogram), from one thread and from two at once on the
//! same route (the counters' cache lines then move between cores, as under load), next to
//! the `Instant::now()` every request already pays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use urbantile::metrics::http::HttpMetrics;

const ROUTE: &str = "/tiles/{layers}/{z}/{x}/{y}";

fn bench(c: &mut Criterion) {
    let http = Arc::new(HttpMetrics::default());
    c.bench_function("instant_now", |b| b.iter(Instant::now));
    c.bench_function("record_one_thread", |b| {
        b.iter(|| http.record(ROUTE, 200, Duration::from_micros(400)))
    });
    // A second thread recording the same route the whole time.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let (http, stop) = (http.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                http.record(ROUTE, 200, Duration::from_micros(400));
            }
        })
    };
    c.bench_function("record_two_threads_same_route", |b| {
        b.iter(|| http.record(ROUTE, 200, Duration::from_micros(400)))
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.join().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
