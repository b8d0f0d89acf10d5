//! OGC API - Features Part 4 (create, replace, update, delete) on
//! `/collections/{id}/items[/{fid}]`. Every write needs a key with the layer in its write
//! scope: none gets 401, a key without the scope 403. The edit itself is
//! [`crate::dataset::live`]'s: all or nothing, durable before the answer, and visible to the next
//! tile or query.
//!
//! An invalid geometry gets 422, saying whether it could be repaired; POST, PUT and PATCH
//! take `?repair=true` to store it made valid instead. Other query parameters are 400.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::api::features::{GEOJSON, feature_json};
use crate::api::{ApiError, AppState, Auth, base_url, header_value, visible_layer};
use crate::auth::{Action, Reader};
use crate::config::{LayerDef, Right};
use crate::dataset::live::{Done, Edit, EditOptions};
use crate::ingest::Position;
use crate::ingest::geojson::{feature_record, read_collection};
use crate::model::{Feature, FeatureId, StoredFeature};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/collections/{id}/items", post(create))
        .route(
            "/collections/{id}/items/{fid}",
            axum::routing::put(replace).patch(update).delete(remove),
        )
}

/// The layer a write goes to, after the checks of who asks (401, then 404, then 403), and
/// whom the edit is made for: a signed-in person's new features record them as owner, and
/// a right to their own features only limits the edit to those.
fn writable<'a>(
    state: &'a AppState,
    reader: &Reader,
    id: &str,
    action: Action,
) -> Result<(&'a LayerDef, EditOptions), ApiError> {
    if !reader.is_known() {
        return Err(ApiError::Unauthorized(
            "writing needs a key or a signed-in token: send Authorization: Bearer <key or token>"
                .into(),
        ));
    }
    let def = visible_layer(state, reader, id)?;
    let owner = reader.user.as_ref().map(|u| Arc::from(u.owner.as_str()));
    let own_only = match reader.right(def, action) {
        Right::Any => false,
        Right::Own => true,
        Right::None => {
            let who = match &reader.key {
                Some(k) => format!("key {:?}", k.name),
                None => "this sign-in".to_owned(),
            };
            let what = match action {
                Action::Create => "create features in",
                Action::Update => "change features of",
                Action::Delete => "delete features of",
            };
            return Err(ApiError::Forbidden(format!(
                "{who} may not {what} layer {}",
                def.id
            )));
        }
    };
    Ok((
        def,
        EditOptions {
            owner,
            own_only,
            ..EditOptions::default()
        },
    ))
}

/// The query string of a write: `repair=true|false` where `repairs` says it applies.
fn write_options(
    params: &[(String, String)],
    repairs: bool,
    mut options: EditOptions,
) -> Result<EditOptions, ApiError> {
    for (k, v) in params {
        match (k.as_str(), v.as_str()) {
            ("repair", "true") if repairs => options.repair = true,
            ("repair", "false") if repairs => options.repair = false,
            ("repair", other) if repairs => {
                return Err(ApiError::BadRequest(format!(
                    "repair must be true or false, not {other:?}"
                )));
            }
            (other, _) => {
                let accepted = if repairs { "repair" } else { "none" };
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (this write accepts: {accepted})"
                )));
            }
        }
    }
    Ok(options)
}

fn feature_id(id: &str, fid: &str) -> Result<FeatureId, ApiError> {
    fid.parse()
        .map(FeatureId)
        .map_err(|_| ApiError::NotFound(format!("collection {id:?} has no feature {fid:?}")))
}

/// The request body, checked for its media type, size and nesting. A body that breaks off
/// before its announced length is a 400; one over the limit a 413, refused before it is
/// read when its length is announced; one that nests deeper than
/// [`crate::limits::MAX_JSON_DEPTH`] a 400.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    types: &[&str],
) -> Result<Bytes, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !types.contains(&media.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {media:?} is not accepted here; send one of: {}",
            types.join(", ")
        )));
    }
    let limit = state.max_body;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than this server's limit of {limit} bytes (serve --max-body-mb)"
        ))
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        ApiError::BadRequest(format!(
            "the request body could not be read whole: {}",
            crate::model::error_chain(&e)
        ))
    })?;
    // Bounded before any recursive JSON reader walks it.
    crate::limits::check_json_depth("the body", &bytes, crate::limits::MAX_JSON_DEPTH)?;
    Ok(bytes)
}

const FEATURE_TYPES: &[&str] = &["application/geo+json", "application/json"];

/// One GeoJSON Feature from a body (PUT).
fn one_feature(body: &[u8], at: Position) -> Result<Feature, ApiError> {
    let f: geojson::Feature = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a GeoJSON Feature: {e}")))?;
    feature_record(at, f)
        .map(|(_, f)| f)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))
}

fn item_url(headers: &HeaderMap, def: &LayerDef, id: FeatureId) -> String {
    format!("{}/collections/{}/items/{}", base_url(headers), def.id, id)
}

/// A written feature as the answer to its write: 200 (or 201 with Location), its ETag and
/// its GeoJSON.
fn written(headers: &HeaderMap, def: &LayerDef, done: Done, status: StatusCode) -> Response {
    let url = item_url(headers, def, done.id);
    let feature = done.feature.map(|feature| StoredFeature {
        id: done.id,
        version: done.version,
        feature,
    });
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, header_value(GEOJSON));
    if let Some(etag) = &done.etag {
        out.insert(header::ETAG, header_value(etag));
    }
    if status == StatusCode::CREATED {
        out.insert(header::LOCATION, header_value(&url));
    }
    let body = feature.map_or(Value::Null, |f| feature_json(def, &f, None));
    (status, out, body.to_string()).into_response()
}

/// `POST /collections/{id}/items`: a Feature, or a FeatureCollection created in one
/// transaction (all or none). 201 with the Location of the (first) new feature.
async fn create(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (def, options) = writable(&state, &reader, &id, Action::Create)?;
    let options = write_options(&params, true, options)?;
    let body = read_body(&state, &headers, body, FEATURE_TYPES).await?;
    let single = serde_json::from_slice::<Value>(&body)
        .ok()
        .is_some_and(|v| v.get("type") == Some(&json!("Feature")));
    let records = read_collection(&body[..]).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut edits = Vec::with_capacity(records.len());
    for r in records {
        let (_, feature) = r.map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        edits.push(Edit::Create(feature));
    }
    if edits.is_empty() {
        return Err(ApiError::Unprocessable(
            "the FeatureCollection has no features".into(),
        ));
    }
    let mut done = state.data.edit_with(&def.id, edits, options).await?;
    if single {
        let d = done.remove(0);
        return Ok(written(&headers, def, d, StatusCode::CREATED));
    }
    let location = item_url(&headers, def, done[0].id);
    let features: Vec<Value> = done
        .into_iter()
        .filter_map(|d| {
            let f = StoredFeature {
                id: d.id,
                version: d.version,
                feature: d.feature?,
            };
            Some(feature_json(def, &f, None))
        })
        .collect();
    let doc = json!({
        "type": "FeatureCollection",
        "numberCreated": features.len(),
        "features": features,
    });
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, header_value(GEOJSON)),
            (header::LOCATION, header_value(&location)),
        ],
        doc.to_string(),
    )
        .into_response())
}

/// Every `If-Match` header line, as one list.
fn if_match(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all(header::IF_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// `PUT /collections/{id}/items/{fid}`: replaces the feature whole.
async fn replace(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, fid)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (def, options) = writable(&state, &reader, &id, Action::Update)?;
    let options = write_options(&params, true, options)?;
    let fid = feature_id(&id, &fid)?;
    let body = read_body(&state, &headers, body, FEATURE_TYPES).await?;
    let feature = one_feature(&body, Position::Stored(fid.0))?;
    let edit = Edit::Replace {
        id: fid,
        feature,
        if_match: if_match(&headers),
    };
    one_edit(&state, &headers, def, edit, options).await
}

/// Applies one edit of one feature and answers with the feature as now stored.
async fn one_edit(
    state: &AppState,
    headers: &HeaderMap,
    def: &LayerDef,
    edit: Edit,
    options: EditOptions,
) -> Result<Response, ApiError> {
    let done = state
        .data
        .edit_with(&def.id, vec![edit], options)
        .await?
        .remove(0);
    Ok(written(headers, def, done, StatusCode::OK))
}

/// `PATCH /collections/{id}/items/{fid}`: a JSON merge patch of the feature.
async fn update(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, fid)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (def, options) = writable(&state, &reader, &id, Action::Update)?;
    let options = write_options(&params, true, options)?;
    let fid = feature_id(&id, &fid)?;
    let body = read_body(
        &state,
        &headers,
        body,
        &[
            "application/merge-patch+json",
            "application/json",
            "application/geo+json",
        ],
    )
    .await?;
    let patch: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let edit = Edit::Patch {
        id: fid,
        patch,
        if_match: if_match(&headers),
    };
    one_edit(&state, &headers, def, edit, options).await
}

/// `DELETE /collections/{id}/items/{fid}`: 204.
async fn remove(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, fid)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (def, options) = writable(&state, &reader, &id, Action::Delete)?;
    let options = write_options(&params, false, options)?;
    let fid = feature_id(&id, &fid)?;
    let edit = Edit::Delete {
        id: fid,
        if_match: if_match(&headers),
    };
    state.data.edit_with(&def.id, vec![edit], options).await?;
    Ok(StatusCode::NO_CONTENT)
}
