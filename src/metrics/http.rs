//! Requests by route and status, and a latency histogram per route.
//!
//! The route is the matched route template (`/tiles/{layers}/{z}/{x}/{y}`), never the raw
//! path, so the label set is bounded by the router's routes; a request no route matched
//! counts under `unmatched`. Statuses are a fixed list of the codes the server answers,
//! with `other` for the rest.
//!
//! Recording costs a thread-local map lookup (a hash of the route text) and three relaxed
//! atomic additions: no lock and no allocation once a thread has seen a route. The shared
//! table (behind a lock) is read only the first time a thread meets a route.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::histogram::{Histogram, Snapshot};

/// The statuses counted by name (sorted); any other counts as `other`.
pub const STATUSES: [u16; 24] = [
    101, 200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 416,
    422, 429, 500, 502, 503,
];
const STATUS_LABELS: [&str; STATUSES.len() + 1] = [
    "101", "200", "201", "204", "206", "301", "302", "304", "400", "401", "403", "404", "405",
    "406", "409", "412", "413", "415", "416", "422", "429", "500", "502", "503", "other",
];

/// Latency bucket bounds, in nanoseconds: 0.1 ms to 10 s.
const LATENCY_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// One route's counters.
#[derive(Debug)]
pub struct RouteStats {
    statuses: [AtomicU64; STATUSES.len() + 1],
    latency: Histogram,
}

impl RouteStats {
    fn new() -> RouteStats {
        RouteStats {
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Histogram::new(&LATENCY_NS, 1e-9),
        }
    }

    #[inline]
    fn record(&self, status: u16, elapsed: Duration) {
        let slot = STATUSES.binary_search(&status).unwrap_or(STATUSES.len());
        self.statuses[slot].fetch_add(1, Ordering::Relaxed);
        self.latency
            .observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// A route's counts at one moment: (status label, requests) for every status seen, and
/// its latency histogram (seconds).
#[derive(Debug, Clone)]
pub struct RouteSnapshot {
    pub route: String,
    pub statuses: Vec<(&'static str, u64)>,
    pub latency: Snapshot,
}

/// Every route's counters.
#[derive(Debug)]
pub struct HttpMetrics {
    /// Tells this table's entries apart from another's in the thread-local caches (tests
    /// run several servers in one process).
    id: u64,
    routes: RwLock<FxHashMap<Box<str>, Arc<RouteStats>>>,
}

/// A thread's own copy of a table's entries: the table's id, and the routes met.
type LocalRoutes = (u64, FxHashMap<Box<str>, Arc<RouteStats>>);

thread_local! {
    static LOCAL: RefCell<LocalRoutes> = RefCell::new((0, FxHashMap::default()));
}

impl Default for HttpMetrics {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        HttpMetrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            routes: RwLock::new(FxHashMap::default()),
        }
    }
}

impl HttpMetrics {
    /// Counts one answer of `route` (a route template, or [`UNMATCHED`]).
    #[inline]
    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        let recorded = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            if local.0 != self.id {
                local.0 = self.id;
                local.1.clear();
            }
            match local.1.get(route) {
                Some(stats) => stats.record(status, elapsed),
                None => {
                    let stats = self.shared(route);
                    stats.record(status, elapsed);
                    local.1.insert(route.into(), stats);
                }
            }
        });
        // A thread being torn down has no thread-locals left: count through the table.
        if recorded.is_err() {
            self.shared(route).record(status, elapsed);
        }
    }

    /// The shared entry of a route, made on first sight.
    fn shared(&self, route: &str) -> Arc<RouteStats> {
        if let Some(stats) = self.routes.read().get(route) {
            return stats.clone();
        }
        self.routes
            .write()
            .entry(route.into())
            .or_insert_with(|| Arc::new(RouteStats::new()))
            .clone()
    }

    /// Every route seen, sorted, with the statuses it answered.
    pub fn snapshot(&self) -> Vec<RouteSnapshot> {
        let routes = self.routes.read();
        let mut out: Vec<RouteSnapshot> = routes
            .iter()
            .map(|(route, stats)| RouteSnapshot {
                route: route.to_string(),
                statuses: STATUS_LABELS
                    .iter()
                    .zip(&stats.statuses)
                    .map(|(label, n)| (*label, n.load(Ordering::Relaxed)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                latency: stats.latency.snapshot(),
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_by_route_and_status_from_any_thread() {
        let http = Arc::new(HttpMetrics::default());
        let other = HttpMetrics::default();
        let ms = Duration::from_millis(1);
        http.record("/a/{id}", 200, ms);
        http.record("/a/{id}", 200, ms);
        http.record("/a/{id}", 404, Duration::from_secs(20));
        http.record("/a/{id}", 299, ms);
        // Another table on the same thread keeps its own counts.
        other.record("/a/{id}", 200, ms);
        let h = http.clone();
        std::thread::spawn(move || h.record(UNMATCHED, 404, ms))
            .join()
            .unwrap();
        http.record("/a/{id}", 200, ms);
        let snap = http.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].route, "/a/{id}");
        assert_eq!(snap[0].statuses, vec![("200", 3), ("404", 1), ("other", 1)]);
        assert_eq!(snap[0].latency.count, 5);
        assert_eq!(snap[0].latency.buckets.last().unwrap().1, 1);
        assert_eq!(snap[1].route, UNMATCHED);
        assert_eq!(other.snapshot()[0].statuses, vec![("200", 1)]);
    }
}
