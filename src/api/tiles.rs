//! Tile routes: `GET /tiles/{layers}/{z}/{x}/{y}.mvt` and the TileJSON `GET /tiles/{layers}.json`.
//!
//! `{layers}` may name tile archives ([`crate::archive`]) too: one archive alone is answered
//! as stored (`.mvt`, `.png`, `.jpg` or `.webp`, by the archive's format; see
//! [`super::archive_tiles`]); vector archives in a list with other layers are decoded and
//! appended to the live layers' tile (an MVT tile is a sequence of layers, MVT 2.1 4.1), and
//! that composite is cached like any other.
//!
//! Tiles come from the [`crate::cache`] when they can, and are otherwise encoded and
//! compressed once, and cached: in place on the async runtime when the tile proves light
//! ([`crate::compute::Compute::run_here`]), else on the [`crate::compute`] pool.
//! A client that accepts zstd (current browsers do) gets zstd, one that accepts gzip gets
//! gzip, each cached as it was served; others get the gzip form inflated. Every tile
//! carries an ETag of its uncompressed bytes, so that revalidation costs no transfer and
//! the ETag changes exactly when the tile does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::json;

use crate::api::{ApiError, AppState, Auth, base_url, header_value, visible_layer};
use crate::archive::Archive;
use crate::auth::Reader;
use crate::cache::{CachedTile, TileKey};
use crate::config::LayerDef;
use crate::dataset::tile::{ATTRIBUTION, TileAsk};
use crate::model::time::parse_datetime_param;
use crate::model::{LayerId, TimeRange};
use crate::tiles::TileCoord;
use crate::tiles::compress::{Encoding, decode, encode};

pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";
/// Tiles may be reused for a minute, then revalidated with their ETag.
const CACHE_CONTROL: &str = "public, max-age=60";
/// Tiles of private layers: the browser only.
const PRIVATE_CACHE_CONTROL: &str = "private, max-age=60";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tiles/{layers}/{z}/{x}/{y}", get(tile))
        .route("/tiles/{tileset}", get(tilejson))
}

/// The layers a `{layers}` path segment names: live layers and tile archives, each in
/// the order listed.
struct Resolved<'a> {
    defs: Vec<&'a LayerDef>,
    archives: Vec<&'a Archive>,
}

/// The layers of a `{layers}` path segment: known, public, each once. More than one layer
/// makes one MVT tile, so a raster archive must be alone and no two layers may give the
/// tile two layers of one name (MVT 2.1, 4.1).
fn resolve_layers<'a>(
    state: &'a AppState,
    reader: &Reader,
    list: &str,
) -> Result<Resolved<'a>, ApiError> {
    let mut asked = Resolved {
        defs: Vec::new(),
        archives: Vec::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for id in list.split(',') {
        if seen.contains(&id) {
            return Err(ApiError::BadRequest(format!(
                "layer {id:?} is listed twice"
            )));
        }
        seen.push(id);
        match state.data.archive(id) {
            Some(archive) => asked.archives.push(archive),
            None => asked.defs.push(visible_layer(state, reader, id)?),
        }
    }
    if seen.len() > 1 {
        if let Some(a) = asked.archives.iter().find(|a| !a.format().is_vector()) {
            return Err(ApiError::BadRequest(format!(
                "layer {} is a {} tile archive: only vector layers combine into one tile",
                a.id(),
                a.format().extension()
            )));
        }
        // Which layer of the request puts each MVT layer name into the tile.
        let mut names: Vec<(&str, &str)> = asked
            .defs
            .iter()
            .map(|d| (d.id.as_str(), d.id.as_str()))
            .collect();
        for a in &asked.archives {
            for name in a.layer_names() {
                if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
                    return Err(ApiError::BadRequest(format!(
                        "layers {other} and {} both hold a vector layer named {name:?}; \
                         a tile cannot hold two layers of one name",
                        a.id()
                    )));
                }
                names.push((name, a.id().as_str()));
            }
        }
    }
    Ok(asked)
}

pub(crate) fn parse_coord(z: &str, x: &str, y: &str) -> Result<TileCoord, ApiError> {
    let num = |name: &str, v: &str| {
        v.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "tile coordinate {name} {v:?} is not a whole number"
            ))
        })
    };
    let z = num("z", z)?;
    let z = u32::try_from(z)
        .map_err(|_| ApiError::BadRequest(format!("zoom {z} is outside the tile scheme")))?;
    TileCoord::new(z, num("x", x)?, num("y", y)?)
        .map_err(|e| ApiError::BadRequest(format!("tile {e}")))
}

/// What a tile request asks beyond its coordinates.
struct TileQuery {
    time: Option<TimeRange>,
    /// CQL2 text or JSON and its language, parsed per layer.
    filter: Option<(String, String)>,
    /// The query in canonical form for the cache key; `None` when the answer depends on
    /// the clock (`datetime` with `now`) and must not be cached.
    cache_key: Option<String>,
}

/// Query parameters a tile accepts; anything else is a 400.
fn tile_query(q: &HashMap<String, String>) -> Result<TileQuery, ApiError> {
    let mut time = None;
    for (k, v) in q {
        match k.as_str() {
            "datetime" => {
                time = Some(
                    parse_datetime_param(v, crate::model::time::now_secs())
                        .map_err(|e| ApiError::BadRequest(format!("datetime: {e}")))?,
                )
            }
            // `v` is the client's own cache buster (the map page bumps it after an edit):
            // it changes the URL, not the tile.
            "filter" | "filter-lang" | "v" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (tiles accept: datetime, filter, filter-lang, v)"
                )));
            }
        }
    }
    let lang = q.get("filter-lang").map_or("cql2-text", String::as_str);
    let filter = match q.get("filter") {
        Some(text) => Some((text.clone(), lang.to_owned())),
        None if q.contains_key("filter-lang") => {
            return Err(ApiError::BadRequest(
                "filter-lang: is given without a filter".into(),
            ));
        }
        None => None,
    };
    let clocked = q
        .get("datetime")
        .is_some_and(|v| v.to_ascii_lowercase().contains("now"));
    let cache_key = (!clocked).then(|| {
        let mut key = String::new();
        if let Some(t) = time {
            key.push_str(&format!("t={:?}..{:?};", t.start, t.end));
        }
        if let Some((text, lang)) = &filter {
            key.push_str(&format!("{lang}:{text}"));
        }
        key
    });
    Ok(TileQuery {
        time,
        filter,
        cache_key,
    })
}

/// The encoding a tile is sent in, by the client's Accept-Encoding headers.
pub(crate) fn accepted_encoding(headers: &HeaderMap) -> Encoding {
    Encoding::preferred_of(accept_encoding(headers))
}

/// The values of the Accept-Encoding headers (read on every tile: no allocation).
fn accept_encoding(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// The encoding a tile is cached in for a client that wants `wanted`: identity clients are
/// answered from the gzip form.
fn stored_encoding(wanted: Encoding) -> Encoding {
    match wanted {
        Encoding::Zstd => Encoding::Zstd,
        Encoding::Gzip | Encoding::Identity => Encoding::Gzip,
    }
}

/// True when the client's Accept-Encoding allows gzip (and does not set q=0 for it).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    Encoding::allows_gzip(accept_encoding(headers))
}

/// The ETag of some bytes: a stable hash, so it changes exactly when they do.
pub(crate) fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", crate::model::stable_hash(&[bytes]))
}

pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

/// `GET /tiles/{layers}/{z}/{x}/{y}.mvt`. The common request, an anonymous one for a
/// cached tile of public layers without a query, is answered straight from the cache;
/// everything else takes the full path.
async fn tile(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    if let Some(answer) = super::archive_tiles::direct(&state, &request) {
        return answer;
    }
    if let Some(answer) = from_cache(&state, &request) {
        return Ok(answer);
    }
    let (mut parts, _) = request.into_parts();
    let Auth(reader) = Auth::from_request_parts(&mut parts, &state).await?;
    let Path((layers, z, x, y)) =
        Path::<(String, String, String, String)>::from_request_parts(&mut parts, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(query) = Query::<HashMap<String, String>>::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let headers = parts.headers;
    let asked = resolve_layers(&state, &reader, &layers)?;
    if let ([], [archive]) = (&asked.defs[..], &asked.archives[..]) {
        return super::archive_tiles::tile(archive, &z, &x, &y, &query, &headers);
    }
    let y = y
        .strip_suffix(".mvt")
        .or_else(|| y.strip_suffix(".pbf"))
        .ok_or_else(|| ApiError::NotFound(format!("tile {y:?} must end in .mvt")))?;
    let coord = parse_coord(&z, &x, y)?;
    serve(
        &state,
        &layers,
        &asked.defs,
        &asked.archives,
        coord,
        &query,
        &headers,
    )
    .await
}

/// The answer for tile `coord` of `defs` and the vector `archives` after them, whose ids
/// joined by commas are `layers` (the
/// cache key, as the `{layers}` segment of `/tiles/{layers}/{z}/{x}/{y}.mvt` names it):
/// every route that serves these tiles answers through here, so that equal requests give
/// equal bytes, headers and cache entries. `query` holds the tile parameters
/// ([`tile_query`]) and nothing else.
pub(crate) async fn serve(
    state: &AppState,
    layers: &str,
    defs: &[&LayerDef],
    archives: &[&Archive],
    coord: TileCoord,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let asked = tile_query(query)?;
    let wanted = accepted_encoding(headers);
    let stored = stored_encoding(wanted);
    let cache = state.data.cache();
    let key = asked.cache_key.as_ref().map(|q| TileKey {
        layers: layers.into(),
        query: q.as_str().into(),
        tile: coord,
        encoding: stored,
    });
    let (tile, raw) = match key.as_ref().and_then(|k| cache.get(k)) {
        Some(hit) => (hit, None),
        None => {
            let layers: Vec<usize> = defs
                .iter()
                .filter_map(|d| state.data.layers().iter().position(|l| l.id == d.id))
                .collect();
            let archives: Vec<usize> = archives
                .iter()
                .filter_map(|a| state.data.archives().iter().position(|b| b.id() == a.id()))
                .collect();
            let compress = (wanted != Encoding::Identity || cache.enabled()).then_some(stored);
            // Most tiles are light: tried in place first, on the pool if they prove not.
            // Archives' tiles are inflated whole, which no allowance bounds as it goes.
            let here = archives.is_empty().then(|| {
                state
                    .data
                    .compute()
                    .run_here(|| cut(&state.data, &layers, &archives, &asked, coord, compress))
            });
            let (tile, bytes, versions) = match here.flatten() {
                Some(done) => done??,
                None => {
                    state
                        .on_pool(move |data| cut(data, &layers, &archives, &asked, coord, compress))
                        .await?
                }
            };
            if let Some(key) = key {
                let ids: Arc<[LayerId]> = defs.iter().map(|d| d.id.clone()).collect();
                cache.insert(key, ids, &versions, tile.clone());
            }
            (tile, Some(bytes))
        }
    };

    answer(tile, raw, wanted, headers)
}

/// The answer for a tile: 204 when empty, 304 when the client has it, else its bytes in
/// the encoding `wanted` (`raw`, the uncompressed bytes, saves decoding when the caller has
/// them).
fn answer(
    tile: CachedTile,
    raw: Option<Vec<u8>>,
    wanted: Encoding,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut out_headers = HeaderMap::with_capacity(6);
    // A tile of a private layer must not be kept by a shared cache that would hand it to
    // someone without the key.
    if tile.public {
        out_headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        out_headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    } else {
        out_headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(PRIVATE_CACHE_CONTROL),
        );
        out_headers.insert(
            header::VARY,
            HeaderValue::from_static("Accept-Encoding, Authorization"),
        );
    }
    let Some(etag) = &tile.etag else {
        return Ok((StatusCode::NO_CONTENT, out_headers).into_response());
    };
    out_headers.insert(header::ETAG, header_value(etag));
    if if_none_match(headers, etag) {
        return Ok((StatusCode::NOT_MODIFIED, out_headers).into_response());
    }
    out_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(MVT_CONTENT_TYPE),
    );
    let body = match wanted.header() {
        Some(coding) if wanted == tile.encoding && !tile.body.is_empty() => {
            out_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
            tile.body
        }
        _ => match raw {
            Some(raw) => raw.into(),
            None => decode(&tile.body, tile.encoding)
                .map_err(|e| ApiError::Internal(format!("decoding a cached tile: {e}")))?
                .into(),
        },
    };
    Ok((StatusCode::OK, out_headers, Body::from(body)).into_response())
}

/// The cached answer to an anonymous request without a query (or with only the `v` cache
/// buster) for a tile of public layers; `None` sends the request down the full path,
/// which also produces every error.
fn from_cache(state: &AppState, request: &axum::extract::Request) -> Option<Response> {
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
    let y = parts.next()?;
    let y = y.strip_suffix(".mvt").or_else(|| y.strip_suffix(".pbf"))?;
    let (x, z, layers) = (parts.next()?, parts.next()?, parts.next()?);
    if layers.contains('%') {
        return None;
    }
    let tile = TileCoord::new(z.parse().ok()?, x.parse().ok()?, y.parse().ok()?).ok()?;
    cached(state, layers, tile, headers)
}

/// The cached answer for tile `tile` of `layers` (the cache key, as [`serve`] takes it)
/// without a query, if the cache holds it and it shows public layers only.
pub(crate) fn cached(
    state: &AppState,
    layers: &str,
    tile: TileCoord,
    headers: &HeaderMap,
) -> Option<Response> {
    let wanted = accepted_encoding(headers);
    let key = TileKey {
        layers: layers.into(),
        query: state.data.cache().no_query(),
        tile,
        encoding: stored_encoding(wanted),
    };
    // A miss is counted once, by the full path's own lookup.
    let hit = state.data.cache().get_hit(&key)?;
    if !hit.public {
        return None;
    }
    answer(hit, None, wanted, headers).ok()
}

/// Cuts a tile ([`crate::dataset::Dataset::cut_tile`], the one cut `export` packs too),
/// appends the archives' layers, and compresses it (in `compress`, if any): the tile, its
/// uncompressed bytes and the versions of the layers it was cut from. Runs on the compute
/// pool, or in place within its allowance ([`crate::compute::Compute::run_here`]);
/// `layers` are positions in [`crate::dataset::Dataset::layers`], `archives` in
/// [`crate::dataset::Dataset::archives`] (vector ones).
fn cut(
    data: &crate::dataset::Dataset,
    layers: &[usize],
    archives: &[usize],
    asked: &TileQuery,
    coord: TileCoord,
    compress: Option<Encoding>,
) -> Result<(CachedTile, Vec<u8>, Vec<u64>), ApiError> {
    let ask = TileAsk {
        time: asked.time,
        filter: asked
            .filter
            .as_ref()
            .map(|(text, lang)| (text.as_str(), lang.as_str())),
    };
    let rendered = if layers.is_empty() {
        crate::composite::Rendered::default()
    } else {
        data.cut_tile(layers, ask, coord)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    let mut bytes = rendered.bytes;
    for &i in archives {
        let archive = &data.archives()[i];
        let layers = archive.mvt(coord).map_err(|e| {
            ApiError::Internal(format!(
                "decompressing tile {coord} of archive {}: {e}",
                archive.id()
            ))
        })?;
        bytes.extend_from_slice(&layers);
    }
    if !crate::compute::afford_bytes(bytes.len()) {
        // Too big to compress in place; the job is dropped and goes to the pool.
        return Err(ApiError::Internal("a tile too big to make in place".into()));
    }
    data.metrics().tile_cut(coord.z, bytes.len());
    let etag = (!bytes.is_empty()).then(|| etag_of(&bytes).into());
    // Compressed once, for this answer and for every later one from the cache.
    let encoding = compress.unwrap_or(Encoding::Identity);
    let body = match compress {
        Some(encoding) if !bytes.is_empty() => encode(&bytes, encoding)
            .map_err(|e| ApiError::Internal(format!("compressing a tile: {e}")))?
            .into(),
        _ => Bytes::new(),
    };
    let public = layers.iter().all(|&i| !data.layers()[i].private);
    let tile = CachedTile {
        body,
        encoding,
        etag,
        public,
    };
    Ok((tile, bytes, rendered.versions))
}

async fn tilejson(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(tileset): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = tileset
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::NotFound(format!("{tileset:?}: a TileJSON path ends in .json")))?;
    let Resolved { defs, archives } = resolve_layers(&state, &reader, list)?;
    let positions: Vec<usize> = defs
        .iter()
        .filter_map(|d| state.data.layers().iter().position(|l| l.id == d.id))
        .collect();
    let (mut vector_layers, bounds) = if defs.is_empty() {
        (Vec::new(), None)
    } else {
        state.data.vector_layers(&positions)
    };
    let zooms = defs
        .iter()
        .map(|d| (d.minzoom, d.maxzoom))
        .chain(archives.iter().map(|a| a.zooms()));
    let minzoom = zooms.clone().map(|z| z.0).min().unwrap_or(0);
    let maxzoom = zooms.map(|z| z.1).max().unwrap_or(0);
    let bounds = archives
        .iter()
        .map(|a| a.bounds())
        .chain(bounds)
        .reduce(crate::model::Bbox::union)
        .map_or([-180.0, -85.051_128_78, 180.0, 85.051_128_78], |b| {
            b.to_array()
        });
    let center = match (&defs[..], &archives[..]) {
        ([], [a]) => {
            let (lon, lat, z) = a.center();
            json!([lon, lat, z])
        }
        _ => json!([
            (bounds[0] + bounds[2]) / 2.0,
            (bounds[1] + bounds[3]) / 2.0,
            maxzoom.saturating_sub(2).max(minzoom)
        ]),
    };
    let name = defs
        .iter()
        .map(|d| d.title.as_str())
        .chain(archives.iter().map(|a| a.def().title.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut attribution = vec![ATTRIBUTION];
    if defs.is_empty() {
        attribution.clear();
    }
    attribution.extend(archives.iter().filter_map(|a| a.attribution()));
    let extension = match &archives[..] {
        [a] if defs.is_empty() => a.format().extension(),
        _ => "mvt",
    };
    for a in &archives {
        vector_layers.extend(a.vector_layers().iter().cloned());
    }
    let mut doc = json!({
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [format!("{}/tiles/{}/{{z}}/{{x}}/{{y}}.{extension}", base_url(&headers), list)],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": bounds,
        "center": center,
        "attribution": attribution.join("; "),
    });
    if extension == "mvt" {
        doc["vector_layers"] = vector_layers.into();
    }
    match (&defs[..], &archives[..]) {
        ([d], []) => doc["description"] = d.description.clone().into(),
        ([], [a]) => doc["description"] = a.def().description.clone().into(),
        _ => {}
    }
    if defs.iter().any(|d| d.time.is_some()) {
        doc["query_parameters"] = json!({
            "datetime": "Only features valid at this RFC 3339 instant or within this interval \
                         (a/b, `..` for an open end, or `now`) on the layers with a time field",
        });
    }
    Ok(Json(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn gzip_is_accepted_unless_refused_with_q_zero() {
        assert!(accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )));
        assert!(accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "br;q=1.0, gzip;q=0.8"
        )));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip;q=0")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "br")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn an_etag_matches_itself_its_weak_form_and_a_star() {
        let tag = etag_of(b"tile");
        assert!(if_none_match(&headers(header::IF_NONE_MATCH, "*"), &tag));
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            header_value(&format!("\"x\", W/{tag}")),
        );
        assert!(if_none_match(&h, &tag));
        assert!(!if_none_match(
            &headers(header::IF_NONE_MATCH, "\"other\""),
            &tag
        ));
        assert_ne!(etag_of(b"tile"), etag_of(b"tilf"));
    }

    #[test]
    fn coordinates_must_be_numbers_inside_the_scheme() {
        assert!(parse_coord("14", "9327", "4742").is_ok());
        for (z, x, y) in [
            ("a", "0", "0"),
            ("-1", "0", "0"),
            ("3", "8", "0"),
            ("99999999999", "0", "0"),
            ("25", "0", "0"),
        ] {
            assert!(
                matches!(parse_coord(z, x, y), Err(ApiError::BadRequest(_))),
                "{z}/{x}/{y}"
            );
        }
    }
}
