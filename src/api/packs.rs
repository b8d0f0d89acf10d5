//! Offline packs over HTTP: `GET /packs` lists the packs folder, `GET /packs/{name}.pmtiles`
//! (or `.mbtiles`) serves a pack from its memory map with single HTTP range requests (RFC
//! 9110 section 14: 206 with `Content-Range`, 416 past the end, `If-Range`), an ETag and
//! `If-None-Match`, so that MapLibre's `pmtiles` protocol reads it in place and an app can
//! download it whole or resume. `GET /packs/{name}/changes?since=` answers the tiles changed
//! since a change-log position as a small archive (see [`crate::export::delta`]).

use axum::Json;
use axum::Router;
use axum::body::Body;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::tiles::if_none_match;
use crate::api::{ApiError, AppState, base_url, header_value};
use crate::dataset::tile::TileAsk;
use crate::export::delta::{self, PackScope};
use crate::export::shelf::{PackInfo, ShelfError, check_name};
use crate::export::{Format, PackMeta};
use crate::tiles::compress::{Encoding, decode};

/// Packs change rarely and carry an ETag: a client keeps one for five minutes, then
/// revalidates.
const CACHE_CONTROL: &str = "public, max-age=300";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/packs", get(list))
        .route("/packs/{file}", get(download))
        .route("/packs/{name}/changes", get(changes))
}

impl From<ShelfError> for ApiError {
    fn from(e: ShelfError) -> Self {
        match e {
            ShelfError::BadName(_) => ApiError::BadRequest(e.to_string()),
            ShelfError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ShelfError::Io { .. } | ShelfError::Invalid { .. } => {
                ApiError::Internal(crate::model::error_chain(&e))
            }
        }
    }
}

/// `GET /packs`: every pack with its area, zooms, layers, size, creation time, the
/// change-log position it was cut at, and its URLs.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let base = base_url(&headers);
    let packs = state.packs.list().await?;
    let packs: Vec<serde_json::Value> = packs
        .into_iter()
        .map(|p| {
            let mut v = serde_json::to_value(&p).unwrap_or_default();
            v["url"] = format!("{base}/packs/{}", p.file).into();
            if let Some(pos) = p.position {
                v["changes"] = format!("{base}/packs/{}/changes?since={pos}", p.name).into();
            }
            v
        })
        .collect();
    Ok(Json(serde_json::json!({ "packs": packs })))
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    /// No range, or one this server answers with the whole file (several ranges, or a
    /// header it cannot parse, which RFC 9110 says to ignore).
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part(u64, u64),
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` (RFC 9110 section 14.1.2).
fn parse_range(value: &str, len: u64) -> Asked {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Asked::Whole;
    };
    if spec.contains(',') {
        return Asked::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Asked::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (num(first), last.trim().is_empty(), num(last)) {
        // The last n bytes.
        (None, false, Some(n)) if first.trim().is_empty() => {
            if n == 0 || len == 0 {
                Asked::Unsatisfiable
            } else {
                Asked::Part(len.saturating_sub(n), len)
            }
        }
        (Some(a), true, _) => {
            if a >= len {
                Asked::Unsatisfiable
            } else {
                Asked::Part(a, len)
            }
        }
        (Some(a), false, Some(b)) if a <= b => {
            if a >= len {
                Asked::Unsatisfiable
            } else {
                Asked::Part(a, b.min(len - 1) + 1)
            }
        }
        _ => Asked::Whole,
    }
}

/// `GET /packs/{name}.pmtiles` (or `.mbtiles`): the file, whole or one range of it.
async fn download(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pack = match state.packs.recently_opened(&file) {
        Some(pack) => pack,
        None => {
            let shelf = state.packs.clone();
            let file = file.clone();
            // A stat (and, for a new or replaced file, a map): file-system calls, off the
            // runtime.
            tokio::task::spawn_blocking(move || shelf.open(&file))
                .await
                .map_err(|e| ApiError::Internal(format!("opening a pack: {e}")))??
        }
    };
    let len = pack.len();
    let mut out = HeaderMap::with_capacity(6);
    out.insert(header::ETAG, header_value(&pack.etag));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if if_none_match(&headers, &pack.etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match pack.format {
            Format::PmTiles => "application/vnd.pmtiles",
            Format::MbTiles => "application/vnd.sqlite3",
        }),
    );
    // A range applies only to the version of the file the client has, when it says which.
    let same_version = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == pack.etag);
    let asked = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if same_version => parse_range(range, len),
        _ => Asked::Whole,
    };
    match asked {
        Asked::Whole => {
            Ok((StatusCode::OK, out, Body::from(pack.slice(0..len as usize))).into_response())
        }
        Asked::Part(start, end) => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{}/{len}", end - 1)),
            );
            Ok((
                StatusCode::PARTIAL_CONTENT,
                out,
                Body::from(pack.slice(start as usize..end as usize)),
            )
                .into_response())
        }
        Asked::Unsatisfiable => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}")),
            );
            let body = Json(serde_json::json!({
                "code": "RangeNotSatisfiable",
                "description": format!("the range starts past the end of {file} ({len} bytes)"),
            }));
            Ok((StatusCode::RANGE_NOT_SATISFIABLE, out, body).into_response())
        }
    }
}

/// Change-log entries read for one delta at most; past it, the client downloads the pack.
const MAX_CHANGES: usize = 200_000;

/// The pack file of a pack name: `NAME.pmtiles`, or else `NAME.mbtiles`.
async fn pack_named(state: &AppState, name: &str) -> Result<PackInfo, ApiError> {
    check_name(name)?;
    for format in [Format::PmTiles, Format::MbTiles] {
        match state
            .packs
            .info(&format!("{name}.{}", format.extension()))
            .await
        {
            Ok(info) => return Ok(info),
            Err(ShelfError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::NotFound(format!("no pack named {name:?}")))
}

/// `GET /packs/{name}/changes?since=POSITION`: the pack's tiles changed since that
/// change-log position, as an archive of the pack's format whose metadata lists the tiles
/// to remove and the new position (also in the `Urbantile-Position` header). 410 when the
/// change log no longer reaches back that far: download the pack again.
async fn changes(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(other) = query.keys().find(|k| *k != "since") {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter {other:?} (a pack's changes take: since)"
        )));
    }
    let since = query
        .get("since")
        .ok_or_else(|| {
            ApiError::BadRequest("since: required, the change-log position the client holds".into())
        })?
        .parse::<u64>()
        .map_err(|_| {
            ApiError::BadRequest("since: expected a change-log position (a whole number)".into())
        })?;
    let info = pack_named(&state, &name).await?;
    let again = |why: String| {
        ApiError::Gone(format!(
            "{why}: download the pack again ({}/packs/{})",
            base_url(&headers),
            info.file
        ))
    };
    let Some(cut_at) = info.position else {
        return Err(again(format!("pack {name} records no change-log position")));
    };
    let now = state.data.last_change();
    if since > now {
        return Err(ApiError::BadRequest(format!(
            "since: {since} is past the change log's last position, {now}"
        )));
    }
    if since < cut_at {
        return Err(again(format!(
            "since: {since} is before the pack was cut, at {cut_at}"
        )));
    }
    // From the pack's own position when the log still holds it (exact: see
    // export::delta), else from `since` (every tile touched since is sent).
    let from = match state.data.change_span().await? {
        _ if since == now => now,
        Some((first, _)) if first <= cut_at + 1 => cut_at,
        Some((first, _)) if first <= since + 1 => since,
        _ => {
            return Err(again(format!(
                "the change log no longer reaches back to position {since}"
            )));
        }
    };
    let mut log = Vec::new();
    let mut at = from;
    while at < now {
        let page = state.data.changes_since(at, 1000).await?;
        let Some(last) = page.last() else { break };
        at = last.seq;
        log.extend(page.into_iter().filter(|c| c.seq <= now));
        if log.len() > MAX_CHANGES {
            return Err(again(format!(
                "more than {MAX_CHANGES} changes since {since}"
            )));
        }
    }
    let mut layers = Vec::with_capacity(info.layers.len());
    for id in &info.layers {
        let i = state
            .data
            .positions_of([id.as_str()])
            .ok_or_else(|| again(format!("layer {id} of the pack no longer exists")))?;
        layers.extend(i);
    }
    let area = info
        .area
        .clone()
        .ok_or_else(|| again(format!("pack {name} records no area")))?;
    let (Some(minzoom), Some(maxzoom), Some(bounds)) = (info.minzoom, info.maxzoom, info.bbox())
    else {
        return Err(again(format!("pack {name} records no zooms or bounds")));
    };
    let time = match &info.datetime {
        Some(text) => Some(
            crate::model::time::parse_datetime_param(text, crate::model::time::now_secs())
                .map_err(|e| again(format!("the pack's datetime {text:?}: {e}")))?,
        ),
        None => None,
    };
    let scope = PackScope {
        layers,
        minzoom,
        maxzoom,
        area,
    };
    let format = if info.file.ends_with(".mbtiles") {
        Format::MbTiles
    } else {
        Format::PmTiles
    };
    let mapped = state.packs.open(&info.file)?;
    let path = state.packs.dir().join(&info.file);
    let too_many = again(format!("too many tiles changed since {since}"));
    let pack_name = info.name.clone();
    let (body, put, removed) = state
        .on_pool(move |data| {
            let Some(mut candidates) = delta::candidates(data, &scope, &log, since) else {
                return Err(too_many);
            };
            if from != cut_at {
                // What the client holds of a tile touched since is unknown: send them all.
                candidates.unknown = candidates.tiles.iter().copied().collect();
            }
            let ask = TileAsk { time, filter: None };
            let gunzip = |b: &[u8]| decode(b, Encoding::Gzip).ok();
            let computed = match format {
                Format::PmTiles => {
                    let reader = crate::archive::pmtiles::Reader::new(&mapped.map)
                        .map_err(|e| ApiError::Internal(format!("reading pack {pack_name}: {e}")))?;
                    let tile = |t| reader.tile(t).ok().flatten().and_then(gunzip);
                    delta::compute(data, &scope, ask, &candidates, &tile)
                }
                Format::MbTiles => {
                    let reader = std::sync::Mutex::new(
                        crate::archive::mbtiles::Reader::open(&path)
                            .map_err(|e| ApiError::Internal(format!("reading pack {pack_name}: {e}")))?,
                    );
                    let tile = |t| {
                        let mut r = reader.lock().ok()?;
                        r.tile(t).ok().flatten().and_then(|b| gunzip(&b))
                    };
                    delta::compute(data, &scope, ask, &candidates, &tile)
                }
            }
            .map_err(|e| ApiError::Internal(e.to_string()))?;
            let (vector_layers, _) = data.vector_layers(&scope.layers);
            let ids: Vec<&str> = scope
                .layers
                .iter()
                .map(|&i| data.layers()[i].id.as_str())
                .collect();
            let meta = PackMeta {
                name: format!("{pack_name} changes"),
                description: format!("The tiles of pack {pack_name} changed since {since}"),
                minzoom: scope.minzoom,
                maxzoom: scope.maxzoom,
                bounds,
                center: (
                    (bounds.west + bounds.east) / 2.0,
                    (bounds.south + bounds.north) / 2.0,
                    scope.maxzoom.saturating_sub(2).max(scope.minzoom),
                ),
                vector_layers,
                urbantile: serde_json::json!({
                    "pack": pack_name,
                    "since": since,
                    "position": now,
                    "layers": ids,
                    "area": scope.area.to_json(),
                    "removed": computed.removed.iter().map(|t| [u32::from(t.z), t.x, t.y]).collect::<Vec<_>>(),
                }),
            };
            let temp = temp_path(format);
            let written = crate::export::write_archive(format, &temp, &computed.tiles, &meta)
                .map_err(|e| ApiError::Internal(crate::model::error_chain(&e)));
            let body = written.and_then(|()| {
                std::fs::read(&temp).map_err(|e| ApiError::Internal(format!("reading a delta: {e}")))
            });
            let _ = std::fs::remove_file(&temp);
            Ok((body?, computed.tiles.len(), computed.removed.len()))
        })
        .await?;
    let mut out = HeaderMap::with_capacity(5);
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match format {
            Format::PmTiles => "application/vnd.pmtiles",
            Format::MbTiles => "application/vnd.sqlite3",
        }),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert("urbantile-position", header_value(&now.to_string()));
    out.insert("urbantile-tiles", header_value(&put.to_string()));
    out.insert("urbantile-removed", header_value(&removed.to_string()));
    Ok((StatusCode::OK, out, Body::from(body)).into_response())
}

/// A file of its own in the temporary folder for a delta being written.
fn temp_path(format: Format) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "urbantile-delta-{}-{n}.{}",
        std::process::id(),
        format.extension()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let len = 1000;
        assert_eq!(parse_range("bytes=0-99", len), Asked::Part(0, 100));
        assert_eq!(parse_range("bytes=900-", len), Asked::Part(900, 1000));
        assert_eq!(parse_range("bytes=-100", len), Asked::Part(900, 1000));
        assert_eq!(parse_range("bytes=-5000", len), Asked::Part(0, 1000));
        assert_eq!(parse_range("bytes=990-2000", len), Asked::Part(990, 1000));
        assert_eq!(parse_range("bytes=1000-", len), Asked::Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-1001", len), Asked::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", len), Asked::Unsatisfiable);
        // Ignored: whole file.
        for v in [
            "bytes=5-2",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(parse_range(v, len), Asked::Whole, "{v}");
        }
    }
}
