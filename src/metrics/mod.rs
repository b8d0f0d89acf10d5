//! Operations metrics, for `GET /metrics` in the Prometheus (OpenMetrics) text format.
//!
//! What is counted as it happens lives here, in handles made once when the dataset opens
//! (fixed arrays per layer, per zoom and per kind, atomics only), so recording costs a few
//! relaxed atomic additions and never a lock or an allocation: the cached-tile path pays
//! for its route's request counters and nothing else. What the server already keeps (the
//! tile cache's counters, the change log's position, layer sizes) is read when scraped.
//! [`Metrics::render`] writes it all through the `prometheus-client` crate's encoder.
//!
//! Every metric is prefixed `urbantile_`:
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `http_requests_total` | counter | `route`, `status` | answers, by route template (bounded: never the raw path; `unmatched` for none) and status |
//! | `http_request_duration_seconds` | histogram | `route` | time from the request's arrival to its answer's head (a streamed body may go on) |
//! | `tile_cache_hits_total`, `tile_cache_misses_total` | counter | | tile cache lookups |
//! | `tile_cache_evictions_total` | counter | | tiles dropped to stay within `--cache-mb` |
//! | `tile_cache_invalidations_total` | counter | | tiles dropped because a write changed them |
//! | `tile_cache_bytes`, `tile_cache_tiles`, `tile_cache_capacity_bytes` | gauge | | what the cache holds, and its bound |
//! | `tile_size_bytes` | histogram | `zoom` | uncompressed size of every tile cut (cache misses) |
//! | `changelog_applied` | gauge | | the last change-log position this server applied |
//! | `changelog_head` | gauge | | the last position in the store's log (absent when the store is unreachable) |
//! | `changelog_behind` | gauge | | `head - applied`: changes written (anywhere) not applied here yet |
//! | `changelog_apply_delay_seconds` | histogram | | from a change's commit to this server applying it |
//! | `changes_applied_total` | counter | `layer`, `kind` | changes applied from the log, whoever wrote them (`reload` for bulk writes) |
//! | `writes_total` | counter | `layer`, `kind` | features written through this server's API (`create`, `replace`, `update`, `delete`) |
//! | `write_transactions_total` | counter | | store transactions that committed those writes (concurrent single-feature creates share one) |
//! | `ingest_features_total` | counter | `layer`, `outcome` | this process's first-start ingest: `written`, `repaired` (among the written), `skipped` |
//! | `layer_features` | gauge | `layer` | features in each layer's index |
//! | `compute_jobs` | gauge | | expensive requests running or queued on the compute pool |
//! | `compute_in_place_total` | counter | `outcome` | tiles tried in place on the runtime: `done` there, or `moved` on to the pool (too heavy, or the in-place share used) |
//! | `process_resident_memory_bytes` | gauge | | the process's resident memory (Linux) |

pub mod histogram;
pub mod http;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::cache::CacheStats;
use crate::model::LayerId;
use crate::store::{Change, ChangeKind};
use crate::tiles::MAX_ZOOM;
use histogram::{Histogram, Snapshot};
use http::{HttpMetrics, RouteSnapshot};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Tile size buckets, in bytes: 256 B to 4 MiB.
const TILE_BYTES: [u64; 9] = [
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    4 << 20,
];

/// Apply-delay buckets, in milliseconds: 1 ms to 1 min.
const DELAY_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 10_000, 60_000];

/// Change kinds in label order.
const KINDS: [ChangeKind; 5] = [
    ChangeKind::Create,
    ChangeKind::Replace,
    ChangeKind::Update,
    ChangeKind::Delete,
    ChangeKind::Reload,
];
const OUTCOMES: [&str; 3] = ["written", "repaired", "skipped"];

fn kind_slot(kind: ChangeKind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

/// The server's metrics handles (see the module docs).
#[derive(Debug)]
pub struct Metrics {
    /// `None` when request metrics are turned off (`--no-request-metrics`).
    http: Option<Arc<HttpMetrics>>,
    /// The dataset's layers, sorted by id (as [`crate::dataset::Dataset::layers`]).
    layers: Vec<LayerId>,
    /// Per zoom.
    tile_bytes: Box<[Histogram]>,
    /// Per layer, per [`KINDS`].
    writes: Box<[[AtomicU64; 5]]>,
    applied: Box<[[AtomicU64; 5]]>,
    /// Per layer, per [`OUTCOMES`].
    ingest: Box<[[AtomicU64; 3]]>,
    write_transactions: AtomicU64,
    apply_delay: Histogram,
}

/// What is read from the rest of the server when scraped.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub cache: CacheStats,
    pub log_applied: u64,
    /// `None` when the store could not be asked.
    pub log_head: Option<u64>,
    /// Features per layer, in [`Metrics`]' layer order.
    pub layer_features: Vec<usize>,
    pub compute_jobs: usize,
    /// Jobs done in place and jobs moved on to the pool ([`crate::compute::Compute::in_place_counts`]).
    pub in_place: (u64, u64),
}

fn zeros<const N: usize>(n: usize) -> Box<[[AtomicU64; N]]> {
    (0..n)
        .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
        .collect()
}

impl Metrics {
    /// Handles for `layers` (sorted by id); request metrics only when `requests`.
    pub fn new(layers: Vec<LayerId>, requests: bool) -> Metrics {
        let n = layers.len();
        Metrics {
            http: requests.then(|| Arc::new(HttpMetrics::default())),
            layers,
            tile_bytes: (0..=MAX_ZOOM)
                .map(|_| Histogram::new(&TILE_BYTES, 1.0))
                .collect(),
            writes: zeros(n),
            applied: zeros(n),
            ingest: zeros(n),
            write_transactions: AtomicU64::new(0),
            apply_delay: Histogram::new(&DELAY_MS, 1e-3),
        }
    }

    /// The request counters, for the router's request layer; `None` when turned off.
    pub fn http(&self) -> Option<Arc<HttpMetrics>> {
        self.http.clone()
    }

    fn layer_slot(&self, layer: &LayerId) -> Option<usize> {
        self.layers.binary_search(layer).ok()
    }

    /// A tile was cut: its zoom and uncompressed size.
    pub fn tile_cut(&self, zoom: u8, bytes: usize) {
        if let Some(h) = self.tile_bytes.get(zoom as usize) {
            h.observe(bytes as u64);
        }
    }

    /// This server's API committed these changes, in one transaction.
    pub fn wrote(&self, changes: &[Change]) {
        self.write_transactions.fetch_add(1, Ordering::Relaxed);
        for c in changes {
            if let Some(i) = self.layer_slot(&c.layer) {
                self.writes[i][kind_slot(c.kind)].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The follower applied a change from the log, at `now_ms` (Unix milliseconds).
    pub fn applied(&self, change: &Change, now_ms: i64) {
        if let Some(i) = self.layer_slot(&change.layer) {
            self.applied[i][kind_slot(change.kind)].fetch_add(1, Ordering::Relaxed);
        }
        self.apply_delay
            .observe(u64::try_from(now_ms - change.at_ms).unwrap_or(0));
    }

    /// The first-start ingest of a layer ended with these counts.
    pub fn ingested(&self, layer: &LayerId, written: u64, repaired: u64, skipped: u64) {
        if let Some(i) = self.layer_slot(layer) {
            for (slot, n) in [written, repaired, skipped].into_iter().enumerate() {
                self.ingest[i][slot].fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]), with `scrape`'s
    /// values for what is read at scrape time.
    pub fn render(&self, scrape: &Scrape) -> String {
        let load = |rows: &[[AtomicU64; 5]]| -> Vec<[u64; 5]> {
            rows.iter()
                .map(|r| std::array::from_fn(|k| r[k].load(Ordering::Relaxed)))
                .collect()
        };
        let frozen = Frozen {
            routes: self.http.as_ref().map(|h| h.snapshot()).unwrap_or_default(),
            scrape: scrape.clone(),
            layers: self.layers.iter().map(|l| l.to_string()).collect(),
            tile_bytes: self
                .tile_bytes
                .iter()
                .enumerate()
                .filter(|(_, h)| h.count() > 0)
                .map(|(z, h)| (z as u8, h.snapshot()))
                .collect(),
            writes: load(&self.writes),
            applied: load(&self.applied),
            ingest: self
                .ingest
                .iter()
                .map(|r| std::array::from_fn(|k| r[k].load(Ordering::Relaxed)))
                .collect(),
            write_transactions: self.write_transactions.load(Ordering::Relaxed),
            apply_delay: self.apply_delay.snapshot(),
            resident_bytes: resident_bytes(),
        };
        let mut registry = Registry::with_prefix("urbantile");
        registry.register_collector(Box::new(frozen));
        let mut out = String::with_capacity(16 << 10);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The process's resident memory from `/proc/self/statm` (Linux), if readable.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Every value at one scrape, encoded by `prometheus-client` as a collector.
#[derive(Debug)]
struct Frozen {
    routes: Vec<RouteSnapshot>,
    scrape: Scrape,
    layers: Vec<String>,
    tile_bytes: Vec<(u8, Snapshot)>,
    writes: Vec<[u64; 5]>,
    applied: Vec<[u64; 5]>,
    ingest: Vec<[u64; 3]>,
    write_transactions: u64,
    apply_delay: Snapshot,
    resident_bytes: Option<u64>,
}

type Fmt = Result<(), std::fmt::Error>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> Fmt {
    e.encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn histogram(m: &mut prometheus_client::encoding::MetricEncoder, h: &Snapshot) -> Fmt {
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
}

impl Frozen {
    /// A counter family by layer and one more label, skipping zeros after the first
    /// sample (so that an idle server still shows the family).
    fn by_layer<const N: usize>(
        &self,
        e: &mut DescriptorEncoder,
        (name, help): (&str, &str),
        label: &str,
        values: &[&str; N],
        rows: &[[u64; N]],
    ) -> Fmt {
        let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        let mut any = false;
        for (layer, row) in self.layers.iter().zip(rows) {
            for (value, n) in values.iter().zip(row) {
                if *n == 0 && any {
                    continue;
                }
                any = true;
                let labels = [("layer", layer.as_str()), (label, value)];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
        }
        Ok(())
    }
}

impl Collector for Frozen {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        let s = &self.scrape;
        let mut m = e.encode_descriptor(
            "http_requests",
            "Answers by route template and status.",
            None,
            MetricType::Counter,
        )?;
        for r in &self.routes {
            for (status, n) in &r.statuses {
                let labels = [("route", r.route.as_str()), ("status", status)];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
        }
        let mut m = e.encode_descriptor(
            "http_request_duration",
            "Time from a request's arrival to its answer's head, by route template.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for r in &self.routes {
            let labels = [("route", r.route.as_str())];
            histogram(&mut m.encode_family(&labels)?, &r.latency)?;
        }

        counter(
            &mut e,
            "tile_cache_hits",
            "Tile cache lookups answered from the cache.",
            s.cache.hits,
        )?;
        counter(
            &mut e,
            "tile_cache_misses",
            "Tile cache lookups that had to cut the tile.",
            s.cache.misses,
        )?;
        counter(
            &mut e,
            "tile_cache_evictions",
            "Cached tiles dropped to stay within the cache's capacity.",
            s.cache.evictions,
        )?;
        counter(
            &mut e,
            "tile_cache_invalidations",
            "Cached tiles dropped because a write changed them.",
            s.cache.invalidations,
        )?;
        gauge(
            &mut e,
            "tile_cache",
            "Compressed tiles held in the cache, with their keys' overhead.",
            Some(&Unit::Bytes),
            s.cache.bytes as u64,
        )?;
        gauge(
            &mut e,
            "tile_cache_tiles",
            "Tiles held in the cache.",
            None,
            s.cache.tiles as u64,
        )?;
        gauge(
            &mut e,
            "tile_cache_capacity",
            "The cache's bound (--cache-mb).",
            Some(&Unit::Bytes),
            s.cache.capacity as u64,
        )?;
        let mut m = e.encode_descriptor(
            "tile_size",
            "Uncompressed size of the tiles cut (cache misses), by zoom.",
            Some(&Unit::Bytes),
            MetricType::Histogram,
        )?;
        for (z, h) in &self.tile_bytes {
            let zoom = z.to_string();
            let labels = [("zoom", zoom.as_str())];
            histogram(&mut m.encode_family(&labels)?, h)?;
        }

        gauge(
            &mut e,
            "changelog_applied",
            "The last change-log position this server has applied to its index and cache.",
            None,
            s.log_applied,
        )?;
        if let Some(head) = s.log_head {
            gauge(
                &mut e,
                "changelog_head",
                "The last position in the store's change log.",
                None,
                head,
            )?;
            gauge(
                &mut e,
                "changelog_behind",
                "Changes in the store's log that this server has not applied yet.",
                None,
                head.saturating_sub(s.log_applied),
            )?;
        }
        let mut m = e.encode_descriptor(
            "changelog_apply_delay",
            "Time from a change's commit to this server applying it.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        histogram(&mut m, &self.apply_delay)?;
        let kinds = KINDS.map(ChangeKind::as_str);
        self.by_layer(
            &mut e,
            (
                "changes_applied",
                "Changes applied from the store's change log, whoever wrote them.",
            ),
            "kind",
            &kinds,
            &self.applied,
        )?;
        self.by_layer(
            &mut e,
            (
                "writes",
                "Features written through this server's API, by layer and kind.",
            ),
            "kind",
            &kinds,
            &self.writes,
        )?;
        counter(
            &mut e,
            "write_transactions",
            "Store transactions that committed this server's API writes.",
            self.write_transactions,
        )?;
        self.by_layer(
            &mut e,
            (
                "ingest_features",
                "Records of this process's first-start ingest, by outcome.",
            ),
            "outcome",
            &OUTCOMES,
            &self.ingest,
        )?;
        let mut m = e.encode_descriptor(
            "layer_features",
            "Features in each layer's index.",
            None,
            MetricType::Gauge,
        )?;
        for (layer, n) in self.layers.iter().zip(&s.layer_features) {
            let labels = [("layer", layer.as_str())];
            m.encode_family(&labels)?.encode_gauge(&(*n as u64))?;
        }
        gauge(
            &mut e,
            "compute_jobs",
            "Expensive requests running or queued on the compute pool.",
            None,
            s.compute_jobs as u64,
        )?;
        let mut m = e.encode_descriptor(
            "compute_in_place",
            "Tiles tried in place on the runtime, by outcome: done there, or moved on to the pool.",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in [("done", s.in_place.0), ("moved", s.in_place.1)] {
            m.encode_family(&[("outcome", outcome)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        if let Some(rss) = self.resident_bytes {
            gauge(
                &mut e,
                "process_resident_memory",
                "The process's resident memory.",
                Some(&Unit::Bytes),
                rss,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(layer: &str, kind: ChangeKind, at_ms: i64) -> Change {
        Change {
            seq: 1,
            layer: LayerId::new(layer).unwrap(),
            feature: None,
            kind,
            bbox: None,
            at_ms,
            origin: 0,
        }
    }

    #[test]
    fn the_text_names_every_family_with_its_counts() {
        let layers = vec![LayerId::new("a").unwrap(), LayerId::new("b").unwrap()];
        let m = Metrics::new(layers, true);
        m.http().unwrap().record(
            "/tiles/{layers}/{z}/{x}/{y}",
            200,
            std::time::Duration::from_micros(300),
        );
        m.tile_cut(14, 3000);
        m.wrote(&[change("b", ChangeKind::Update, 0)]);
        m.applied(&change("b", ChangeKind::Update, 1000), 1020);
        m.ingested(&LayerId::new("a").unwrap(), 10, 2, 1);
        let text = m.render(&Scrape {
            log_applied: 7,
            log_head: Some(9),
            layer_features: vec![10, 0],
            ..Default::default()
        });
        for line in [
            "urbantile_http_requests_total{route=\"/tiles/{layers}/{z}/{x}/{y}\",status=\"200\"} 1",
            "urbantile_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/tiles/{layers}/{z}/{x}/{y}\"} 1",
            "urbantile_tile_size_bytes_bucket{le=\"4096.0\",zoom=\"14\"} 1",
            "urbantile_changelog_behind 2",
            "urbantile_changelog_apply_delay_seconds_bucket{le=\"0.025\"} 1",
            "urbantile_writes_total{layer=\"b\",kind=\"update\"} 1",
            "urbantile_changes_applied_total{layer=\"b\",kind=\"update\"} 1",
            "urbantile_ingest_features_total{layer=\"a\",outcome=\"skipped\"} 1",
            "urbantile_layer_features{layer=\"a\"} 10",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        // Without request metrics, no route is counted.
        let quiet = Metrics::new(vec![LayerId::new("a").unwrap()], false);
        assert!(quiet.http().is_none());
        assert!(!quiet.render(&Scrape::default()).contains("route="));
    }
}
