//! Offline packs: every tile the server would serve for an area and a zoom range, cut by
//! [`Dataset::cut_tile`] (the cut `/tiles` answers with, clusters included) on every core
//! and written to a PMTiles v3 or MBTiles 1.3 archive, gzip-compressed, identical tiles
//! stored once.
//!
//! - this file: what to export ([`ExportSpec`]), the run (workers cutting tiles in the
//!   archive's order, one writer), progress, and the pack's metadata ([`PackMeta`]);
//! - [`area`]: the box or polygon a pack covers and its tiles;
//! - [`args`]: the `export` command's arguments, checked;
//! - [`delta`]: the tiles of a pack changed since a change-log position;
//! - [`pmtiles`]: the PMTiles writer (the `pmtiles` crate) and a reader over a memory map;
//! - [`mbtiles`]: the MBTiles writer and reader (SQLite through sqlx);
//! - [`shelf`]: the packs folder a server offers: names checked, files mapped, metadata read.
//!
//! A pack records the change-log position it was cut at, so that a client can later ask
//! the server for the tiles changed since.

pub mod area;
pub mod args;
pub mod delta;
pub mod mbtiles;
pub mod pmtiles;
pub mod shelf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::dataset::Dataset;
use crate::dataset::tile::{ATTRIBUTION, TileAsk};
use crate::model::{Bbox, TimeRange};
use crate::tiles::TileCoord;
use area::Area;

/// More tiles than this in a pack's box is refused before anything is cut.
pub const MAX_TILES: u64 = 50_000_000;

/// The archive formats a pack is written in, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    PmTiles,
    MbTiles,
}

impl Format {
    /// The format a path's extension names (`.pmtiles`, `.mbtiles`).
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "pmtiles" => Some(Format::PmTiles),
            "mbtiles" => Some(Format::MbTiles),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::PmTiles => "pmtiles",
            Format::MbTiles => "mbtiles",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}: a pack is written as .pmtiles or .mbtiles")]
    Extension(PathBuf),
    #[error("writing {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the PMTiles archive")]
    PmTiles(#[from] ::pmtiles::PmtError),
    #[error("writing the MBTiles archive")]
    MbTiles(#[from] sqlx::Error),
    #[error("cutting tile {tile}")]
    Cut {
        tile: TileCoord,
        source: crate::dataset::tile::CutError,
    },
    #[error(
        "the area holds up to {tiles} tiles at zooms {zooms}, over the limit of {MAX_TILES}: narrow the area or the zooms"
    )]
    TooManyTiles { tiles: u64, zooms: String },
    #[error("a worker thread panicked")]
    Panicked,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    /// Positions in [`Dataset::layers`], in the tiles' layer order.
    pub layers: Vec<usize>,
    pub minzoom: u8,
    pub maxzoom: u8,
    pub area: Area,
    /// `--datetime`: the parsed interval and the text as given (recorded in the pack).
    pub time: Option<(TimeRange, String)>,
    /// The change-log position the index reflects (read before it was loaded).
    pub position: u64,
    /// Threads cutting tiles.
    pub threads: usize,
}

/// What an export did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Tiles of the area cut (empty ones included).
    pub tiles_cut: u64,
    /// Tiles in the pack: those with a feature.
    pub tiles: u64,
    /// Distinct tile contents stored.
    pub contents: u64,
    /// The sum of the gzip tiles' sizes, each counted as if stored on its own.
    pub tile_bytes: u64,
    /// The sum of the distinct contents' sizes.
    pub stored_tile_bytes: u64,
    /// The archive file's size.
    pub file_bytes: u64,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// A pack's description, written into its metadata (TileJSON 3.0 fields in PMTiles' JSON
/// metadata; MBTiles 1.3 `metadata` rows, `json` holding `vector_layers`).
#[derive(Debug, Clone)]
pub struct PackMeta {
    pub name: String,
    pub description: String,
    pub minzoom: u8,
    pub maxzoom: u8,
    pub bounds: Bbox,
    /// lon, lat, zoom.
    pub center: (f64, f64, u8),
    pub vector_layers: Vec<serde_json::Value>,
    /// urbantile's own record: layers, area, datetime, change-log position, creation time.
    pub urbantile: serde_json::Value,
}

impl PackMeta {
    /// The metadata as one TileJSON 3.0 document.
    pub fn tilejson(&self) -> serde_json::Value {
        let b = self.bounds;
        json!({
            "tilejson": "3.0.0",
            "name": self.name,
            "description": self.description,
            "version": "1.0.0",
            "type": "overlay",
            "format": "pbf",
            "scheme": "xyz",
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "bounds": b.to_array(),
            "center": [self.center.0, self.center.1, self.center.2],
            "attribution": ATTRIBUTION,
            "vector_layers": self.vector_layers,
            "urbantile": self.urbantile,
        })
    }
}

/// Where the tiles go, in the archive's tile order: an archive being written.
pub trait Sink {
    /// One non-empty tile, gzip-compressed; `key` is a hash of its uncompressed bytes, the
    /// same for identical tiles.
    fn add(&mut self, tile: TileCoord, gzip: &[u8], key: u128) -> Result<(), ExportError>;
    /// Writes the metadata and closes the archive.
    fn finish(self: Box<Self>, meta: &PackMeta) -> Result<(), ExportError>;
}

/// The key of a tile's bytes for finding duplicates: 128 bits of SHA-256.
pub(crate) fn content_key(bytes: &[u8]) -> u128 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    u128::from_le_bytes(digest[..16].try_into().expect("16 bytes"))
}

/// The tiles of `spec`, in PMTiles tile-id order (zoom, then Hilbert curve): the order
/// that makes a clustered archive, and keeps neighbouring tiles near each other.
pub fn plan(spec: &ExportSpec) -> Result<Vec<TileCoord>, ExportError> {
    let zooms = spec.minzoom..=spec.maxzoom;
    let bound = spec.area.box_tiles(zooms.clone());
    if bound > MAX_TILES {
        return Err(ExportError::TooManyTiles {
            tiles: bound,
            zooms: format!("{}-{}", spec.minzoom, spec.maxzoom),
        });
    }
    let mut tiles: Vec<(u64, TileCoord)> = zooms
        .flat_map(|z| spec.area.tiles_at(z))
        .map(|t| (crate::archive::pmtiles::tile_id(t), t))
        .collect();
    tiles.sort_unstable_by_key(|(id, _)| *id);
    Ok(tiles.into_iter().map(|(_, t)| t).collect())
}

/// The metadata of a pack of `spec` named `name`.
pub fn pack_meta(data: &Dataset, spec: &ExportSpec, name: &str) -> PackMeta {
    let (vector_layers, _) = data.vector_layers(&spec.layers);
    let ids: Vec<&str> = spec
        .layers
        .iter()
        .map(|&i| data.layers()[i].id.as_str())
        .collect();
    let titles: Vec<&str> = spec
        .layers
        .iter()
        .map(|&i| data.layers()[i].title.as_str())
        .collect();
    let bounds = spec.area.bounds();
    let center_zoom = spec.maxzoom.saturating_sub(2).max(spec.minzoom);
    PackMeta {
        name: name.to_owned(),
        description: format!("Offline pack: {}", titles.join(", ")),
        minzoom: spec.minzoom,
        maxzoom: spec.maxzoom,
        bounds,
        center: (
            (bounds.west + bounds.east) / 2.0,
            (bounds.south + bounds.north) / 2.0,
            center_zoom,
        ),
        vector_layers,
        urbantile: json!({
            "layers": ids,
            "area": spec.area.to_json(),
            "datetime": spec.time.as_ref().map(|(_, text)| text),
            "position": spec.position,
            "created": crate::model::time::format_rfc3339(crate::model::time::now_secs()),
        }),
    }
}

/// Writes an archive of these tiles (in tile-id order: gzip MVT and content key) and this
/// metadata to `path`, as one pack or a pack's delta. Call it from a plain thread.
pub fn write_archive(
    format: Format,
    path: &Path,
    tiles: &[(TileCoord, Vec<u8>, u128)],
    meta: &PackMeta,
) -> Result<(), ExportError> {
    let mut sink: Box<dyn Sink> = match format {
        Format::PmTiles => Box::new(pmtiles::Writer::create(path)?),
        Format::MbTiles => Box::new(mbtiles::Writer::create(path)?),
    };
    for (tile, gzip, key) in tiles {
        sink.add(*tile, gzip, *key)?;
    }
    sink.finish(meta)
}

/// A finished tile on its way to the writer: its place in the plan, and its gzip bytes and
/// content key (`None` when empty).
type Cut = (usize, Result<Option<(Vec<u8>, u128)>, ExportError>);

/// Writes the pack of `spec` to `out` (`.pmtiles` or `.mbtiles`): cuts every tile of the
/// plan on `spec.threads` threads, in order, and writes it through one writer. The archive
/// is written beside `out` and renamed into place at the end, so `out` is never a
/// half-written pack. Shows progress on a terminal, log lines otherwise.
///
/// Call it from a plain thread (not an async task): it blocks until done.
pub fn export(data: &Dataset, spec: &ExportSpec, out: &Path) -> Result<Report, ExportError> {
    let format = Format::of_path(out).ok_or_else(|| ExportError::Extension(out.to_owned()))?;
    let started = Instant::now();
    let tiles = plan(spec)?;
    let name = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("pack")
        .to_owned();
    let meta = pack_meta(data, spec, &name);
    let partial = out.with_extension(format!("{}.part", format.extension()));
    let _ = std::fs::remove_file(&partial);
    let progress = Progress::new(tiles.len() as u64);
    let mut report = write_tiles(data, spec, &tiles, &meta, format, &partial, &progress)
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
    progress.finish();
    let io = |source| ExportError::Io {
        path: out.to_owned(),
        source,
    };
    std::fs::rename(&partial, out).map_err(io)?;
    report.file_bytes = std::fs::metadata(out).map_err(io)?.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

fn write_tiles(
    data: &Dataset,
    spec: &ExportSpec,
    tiles: &[TileCoord],
    meta: &PackMeta,
    format: Format,
    path: &Path,
    progress: &Progress,
) -> Result<Report, ExportError> {
    let ask = TileAsk {
        time: spec.time.as_ref().map(|(t, _)| *t),
        filter: None,
    };
    let next = &AtomicUsize::new(0);
    let stop = &AtomicBool::new(false);
    let threads = spec.threads.max(1);
    std::thread::scope(|s| {
        // Bounded, so that workers running ahead of a slow writer wait.
        let (send, receive) = std::sync::mpsc::sync_channel::<Cut>(threads * 64);
        for _ in 0..threads {
            let send = send.clone();
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&tile) = tiles.get(i) else { break };
                    let cut = cut_one(data, &spec.layers, ask, tile);
                    if send.send((i, cut)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(send);
        // The writer runs on a thread of its own, outside any async runtime (the MBTiles
        // writer runs sqlx on a runtime of its own).
        let writer = s.spawn(move || -> Result<Report, ExportError> {
            let result = write_in_order(tiles, receive, meta, format, path, progress);
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            result
        });
        writer.join().map_err(|_| ExportError::Panicked)?
    })
}

fn cut_one(
    data: &Dataset,
    layers: &[usize],
    ask: TileAsk<'_>,
    tile: TileCoord,
) -> Result<Option<(Vec<u8>, u128)>, ExportError> {
    let rendered = data
        .cut_tile(layers, ask, tile)
        .map_err(|source| ExportError::Cut { tile, source })?;
    if rendered.bytes.is_empty() {
        return Ok(None);
    }
    let key = content_key(&rendered.bytes);
    let gzip = crate::tiles::compress::gzip(&rendered.bytes).map_err(|source| ExportError::Io {
        path: PathBuf::from(format!("tile {tile}")),
        source,
    })?;
    Ok(Some((gzip, key)))
}

fn write_in_order(
    tiles: &[TileCoord],
    receive: std::sync::mpsc::Receiver<Cut>,
    meta: &PackMeta,
    format: Format,
    path: &Path,
    progress: &Progress,
) -> Result<Report, ExportError> {
    let mut sink: Box<dyn Sink> = match format {
        Format::PmTiles => Box::new(pmtiles::Writer::create(path)?),
        Format::MbTiles => Box::new(mbtiles::Writer::create(path)?),
    };
    let mut report = Report::default();
    let mut seen = rustc_hash::FxHashSet::default();
    let mut waiting: BTreeMap<usize, Option<(Vec<u8>, u128)>> = BTreeMap::new();
    let mut want = 0;
    for (i, cut) in receive {
        waiting.insert(i, cut?);
        while let Some(cut) = waiting.remove(&want) {
            report.tiles_cut += 1;
            if let Some((gzip, key)) = cut {
                report.tiles += 1;
                report.tile_bytes += gzip.len() as u64;
                if seen.insert(key) {
                    report.contents += 1;
                    report.stored_tile_bytes += gzip.len() as u64;
                }
                sink.add(tiles[want], &gzip, key)?;
            }
            want += 1;
            progress.tick(want as u64);
        }
    }
    if want < tiles.len() {
        // A worker stopped early: it panicked.
        return Err(ExportError::Panicked);
    }
    sink.finish(meta)?;
    Ok(report)
}

/// A progress bar with tiles/s and ETA on a terminal; a log line every few seconds
/// otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    terminal: bool,
    total: u64,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = if terminal {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {human_pos:>9}/{human_len} tiles  {rate} tiles/s  ETA {eta}",
                )
                .map(|style| {
                    style.with_key(
                        "rate",
                        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}", state.per_sec());
                        },
                    )
                })
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress {
            bar,
            terminal,
            total,
            started: Instant::now(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn tick(&self, done: u64) {
        if self.terminal {
            self.bar.set_position(done);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            let rate = done as f64 / secs;
            let eta = (self.total - done) as f64 / rate.max(1e-9);
            tracing::info!(
                done,
                total = self.total,
                tiles_per_s = rate.round() as u64,
                eta_s = eta.round() as u64,
                "exporting"
            );
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
