//! One tile archive's tiles alone: `GET /tiles/{archive}/{z}/{x}/{y}.{mvt|png|jpg|webp}`
//! answered from the archive's memory map as stored ([`crate::archive`]).
//!
//! The extension must be the archive's format. A gzip (or zstd) vector tile goes out as
//! stored, with its Content-Encoding, to a client that accepts it, and inflated for one
//! that does not; images go out as they are. No tile cache is involved: the map is the
//! cache, and a slice of it costs no copy. The ETag stands for the archive file and the
//! tile's place in it, so a tile is revalidated (304) without touching its bytes; 204
//! where the archive has no tile. Composites of archives with live layers are
//! [`super::tiles`]'s.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::tiles::{accepts_gzip, if_none_match};
use crate::api::{ApiError, AppState, header_value};
use crate::archive::Archive;
use crate::tiles::TileCoord;
use crate::tiles::compress::{Encoding, decode};

/// Tiles may be reused for a minute, then revalidated, as live tiles are.
const CACHE_CONTROL: &str = "public, max-age=60";

/// The answer to an anonymous request without a query (or with only the `v` cache buster)
/// for a tile of one archive, read straight from the URI as the tile cache's fast path
/// does (archives are public); `None` sends the request down the full path, which also
/// answers a request with a key (a bad key is a 401 on every route).
pub(crate) fn direct(
    state: &AppState,
    request: &axum::extract::Request,
) -> Option<Result<Response, ApiError>> {
    let headers = request.headers();
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let uri = request.uri();
    if let Some(q) = uri.query()
        && !q.split('&').all(|kv| kv.starts_with("v=") || kv.is_empty())
    {
        return None;
    }
    let rest = uri.path().strip_prefix("/tiles/")?;
    let mut parts = rest.rsplitn(4, '/');
    let (y_ext, x, z, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let archive = state.data.archive(id)?;
    Some(tile(archive, z, x, y_ext, &HashMap::new(), headers))
}

/// The answer for tile `{z}/{x}/{y_ext}` (path segments as given) of `archive`.
pub(crate) fn tile(
    archive: &Archive,
    z: &str,
    x: &str,
    y_ext: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = archive.id();
    let format = archive.format();
    let (y, ext) = y_ext.rsplit_once('.').unwrap_or((y_ext, ""));
    if !format.has_extension(ext) {
        return Err(ApiError::NotFound(format!(
            "layer {id} is a tile archive of {} tiles: its tile URLs end in .{}, not {y_ext:?}",
            format.extension(),
            format.extension()
        )));
    }
    // `v` is a client's cache buster; the rest select features, which an archive has not.
    if let Some(k) = query.keys().find(|k| *k != "v") {
        return Err(ApiError::BadRequest(format!(
            "layer {id} is a tile archive served as it is: it takes no {k:?} (only v)"
        )));
    }
    let coord = super::tiles::parse_coord(z, x, y)?;
    answer(archive, coord, headers)
}

fn answer(archive: &Archive, coord: TileCoord, headers: &HeaderMap) -> Result<Response, ApiError> {
    let mut out = HeaderMap::with_capacity(5);
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let Some(tile) = archive.tile(coord) else {
        return Ok((StatusCode::NO_CONTENT, out).into_response());
    };
    out.insert(header::ETAG, header_value(&tile.etag));
    if if_none_match(headers, &tile.etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(archive.format().content_type()),
    );
    let as_stored = match tile.encoding {
        Encoding::Identity => true,
        Encoding::Gzip => accepts_gzip(headers),
        Encoding::Zstd => super::tiles::accepted_encoding(headers) == Encoding::Zstd,
    };
    let body = if as_stored {
        if let Some(coding) = tile.encoding.header() {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        tile.bytes
    } else {
        decode(&tile.bytes, tile.encoding)
            .map_err(|e| {
                ApiError::Internal(format!(
                    "decompressing tile {coord} of archive {}: {e}",
                    archive.id()
                ))
            })?
            .into()
    };
    Ok((StatusCode::OK, out, Body::from(body)).into_response())
}
