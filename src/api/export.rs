//! Items as files: `GET /collections/{id}/items?f=fgb` (FlatGeobuf) and `?f=csv` (CSV
//! with WKT), for any query the GeoJSON answer takes (bbox, datetime, property equality,
//! CQL2 `filter`, `sortby`, `properties`, `offset`), streamed.
//!
//! `limit` works differently from GeoJSON pages: a file is the whole result by default,
//! up to `--max-export-features` (1,000,000), which a larger `limit` is clamped to. The
//! answer says what it holds in `OGC-NumberMatched` and `OGC-NumberReturned` headers,
//! and a `Link: <...>; rel="next"` header when the result went past the bound, so that a
//! client pages with `offset` as it would through JSON.
//!
//! How it streams: the query runs on the compute pool and gives the matching ids in order
//! (8 bytes each); the features are then read from the store and encoded a run of
//! [`RUN`] (1,000) at a time, each run on the pool, and handed to the body through a channel of
//! two runs, so memory stays bounded whatever the size of the result and a slow client
//! slows the reading down instead of piling up. The first run is made before the answer's
//! head is sent, so that a store or pool failure is still an error status; a failure
//! after that cuts the body short (the chunked encoding is not finished), which clients
//! report as an error.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::api::{ApiError, AppState, header_value};
use crate::compute::Refused;
use crate::config::LayerDef;
use crate::files::{Encoder, Format};
use crate::model::{FeatureId, LayerId, StoredFeature};
use crate::query::{ItemsQuery, Paging, run};

/// Default for `--max-export-features`.
pub const DEFAULT_MAX_EXPORT: usize = 1_000_000;

/// Features read and encoded together.
const RUN: usize = 1_000;

/// The file format an items request asks for with `f`, or `None` for GeoJSON and HTML;
/// a 400 naming the formats for any other value.
pub(crate) fn format_param(params: &[(String, String)]) -> Result<Option<Format>, ApiError> {
    let Some((_, f)) = params.iter().find(|(k, _)| k == "f") else {
        return Ok(None);
    };
    match f.as_str() {
        "json" | "geojson" | "html" => Ok(None),
        "fgb" | "flatgeobuf" => Ok(Some(Format::FlatGeobuf)),
        "csv" => Ok(Some(Format::Csv)),
        other => Err(ApiError::BadRequest(format!(
            "f: {other:?} is not a format of items; use json, html, fgb (FlatGeobuf) or csv"
        ))),
    }
}

/// What the query found, for the answer's head and the stream.
struct Found {
    matched: usize,
    offset: usize,
    ids: Vec<FeatureId>,
    encoder: Arc<dyn Encoder>,
}

/// The items of `def` for `params` as a file in `format`, streamed.
pub(crate) async fn items(
    state: AppState,
    def: &LayerDef,
    params: Vec<(String, String)>,
    format: Format,
    base: String,
) -> Result<Response, ApiError> {
    let layer = def.id.clone();
    let paging = Paging {
        default: state.max_export,
        max: state.max_export,
    };
    let asked = Arc::new(params);
    let query_params = asked.clone();
    let found = state
        .on_pool(move |data| {
            let def = data
                .layer(layer.as_str())
                .ok_or_else(|| ApiError::NotFound(format!("unknown layer {layer}")))?;
            let index = data.index().read(&def.id);
            let now = crate::model::time::now_secs();
            let q = ItemsQuery::parse_with(def, &index, &query_params, now, paging)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let page = run(&index, &q);
            let (id_column, columns) = crate::files::columns(def, q.properties.as_deref());
            Ok(Found {
                matched: page.matched,
                offset: q.offset,
                ids: page.ids,
                encoder: Arc::from(crate::files::encoder(format, def, id_column, columns)),
            })
        })
        .await?;

    let layer = def.id.clone();
    let returned = found.ids.len();
    let mut runs: Vec<Vec<FeatureId>> = found.ids.chunks(RUN).map(<[_]>::to_vec).collect();
    runs.reverse();
    let mut head = found.encoder.head();
    let first = read_run(&state, &layer, runs.pop().unwrap_or_default()).await?;
    let from_memory = first.from_memory;
    head.extend_from_slice(&encode_run(&state, &found.encoder, first.features).await?);

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let encoder = found.encoder.clone();
    let streamer = state.clone();
    let stream_layer = layer.clone();
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        // Run k is encoded on the pool while run k + 1 is read from the store.
        let mut next = match runs.pop() {
            Some(ids) => read_run(&streamer, &stream_layer, ids).await,
            None => return,
        };
        let fail = |e: ApiError| {
            tracing::warn!(layer = %stream_layer, "a streamed export stopped: {e}");
            Err(std::io::Error::other(e.to_string()))
        };
        loop {
            let stored = match next {
                Ok(stored) => stored,
                Err(e) => {
                    let _ = tx.send(fail(e)).await;
                    return;
                }
            };
            let reading = async {
                match runs.pop() {
                    Some(ids) => Some(read_run(&streamer, &stream_layer, ids).await),
                    None => None,
                }
            };
            let encoding = encode_run(&streamer, &encoder, stored.features);
            let (encoded, read) = futures_util::future::join(encoding, reading).await;
            let sent = match encoded {
                Ok(bytes) => tx.send(Ok(Bytes::from(bytes))).await,
                Err(e) => {
                    let _ = tx.send(fail(e)).await;
                    return;
                }
            };
            match (sent, read) {
                (Ok(()), Some(read)) => next = read,
                _ => return,
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));

    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!(
            "attachment; filename=\"{}.{}\"",
            def.id,
            format.extension()
        )),
    );
    headers.insert(
        "ogc-numbermatched",
        header_value(&found.matched.to_string()),
    );
    headers.insert("ogc-numberreturned", header_value(&returned.to_string()));
    let next = found.offset + returned;
    if next < found.matched && returned > 0 {
        let query = next_query(&asked, next);
        headers.insert(
            header::LINK,
            header_value(&format!(
                "<{base}/collections/{}/items?{query}>; rel=\"next\"; type=\"{}\"",
                def.id,
                format.content_type()
            )),
        );
    }
    if from_memory {
        crate::api::features::mark_from_memory(&mut response);
    }
    Ok(response)
}

/// The request's query with `offset` set to `offset`.
fn next_query(params: &[(String, String)], offset: usize) -> String {
    let mut out: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "offset")
        .cloned()
        .collect();
    out.push(("offset".into(), offset.to_string()));
    serde_urlencoded::to_string(&out).unwrap_or_default()
}

/// Reads a run of features from the store (from memory when it is unreachable).
async fn read_run(
    state: &AppState,
    layer: &LayerId,
    ids: Vec<FeatureId>,
) -> Result<crate::dataset::Stored, ApiError> {
    Ok(state.data.stored_features(layer, &ids).await?)
}

/// Encodes a run of features on the compute pool. A full pool is waited out, for a while,
/// rather than cutting a stream short.
async fn encode_run(
    state: &AppState,
    encoder: &Arc<dyn Encoder>,
    features: Vec<StoredFeature>,
) -> Result<Vec<u8>, ApiError> {
    if features.is_empty() {
        return Ok(Vec::new());
    }
    let features = Arc::new(features);
    let mut waited = 0;
    loop {
        let encoder = encoder.clone();
        let features = features.clone();
        let done = state
            .data
            .compute()
            .run(move || {
                let mut out = Vec::with_capacity(features.len() * 256);
                encoder.features(&features, &mut out);
                out
            })
            .await;
        match done {
            Ok(bytes) => return Ok(bytes),
            Err(Refused::Busy { .. }) if waited < 100 => {
                waited += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn f_picks_a_file_format_or_names_the_formats() {
        assert_eq!(format_param(&params(&[])).unwrap(), None);
        assert_eq!(format_param(&params(&[("f", "json")])).unwrap(), None);
        assert_eq!(
            format_param(&params(&[("f", "fgb")])).unwrap(),
            Some(Format::FlatGeobuf)
        );
        assert_eq!(
            format_param(&params(&[("f", "csv")])).unwrap(),
            Some(Format::Csv)
        );
        let e = format_param(&params(&[("f", "shp")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"shp\"") && e.contains("fgb") && e.contains("csv"),
            "{e}"
        );
    }

    #[test]
    fn the_next_link_keeps_the_query_and_moves_the_offset() {
        let p = params(&[("f", "csv"), ("offset", "5"), ("bbox", "1,2,3,4")]);
        assert_eq!(next_query(&p, 105), "f=csv&bbox=1%2C2%2C3%2C4&offset=105");
    }
}
