//! Offline packs over HTTP: `GET /packs` lists the packs folder, `GET /packs/{name}.pmtiles`
//! (or `.mbtiles`) serves a pack from its memory map with single HTTP range requests (RFC
//! 9110 section 14: 206 with `Content-Range`, 416 past the end, `If-Range`), an ETag and
//! `If-None-Match`, so that MapLibre's `pmtiles` protocol reads it in place and an app can
//! download it whole or resume.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::tiles::if_none_match;
use crate::api::{ApiError, AppState, base_url, header_value};
use crate::export::Format;
use crate::export::shelf::ShelfError;

/// Packs change rarely and carry an ETag: a client keeps one for five minutes, then
/// revalidates.
const CACHE_CONTROL: &str = "public, max-age=300";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/packs", get(list))
        .route("/packs/{file}", get(download))
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
    let shelf = state.packs.clone();
    let pack = {
        let file = file.clone();
        // A stat (and, for a new or replaced file, a map): file-system calls, off the runtime.
        tokio::task::spawn_blocking(move || shelf.open(&file))
            .await
            .map_err(|e| ApiError::Internal(format!("opening a pack: {e}")))??
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
