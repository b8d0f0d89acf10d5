//! Planners' routes beside OGC API - Features, and the queryables of Part 3:
//!
//! - `GET /collections/{id}/nearest?point=lon,lat&k=5[&max_distance=m]`: the k nearest
//!   features, closest first, each with `distance_m` (ground metres);
//! - `GET /collections/{id}/containing?point=lon,lat`: the features that contain a point
//!   (which zone is this plot in);
//! - `GET /collections/{id}/aggregate?by=LAYER[&sum=PROPERTY]`: counts (and sums) of the
//!   collection's features grouped by the polygons of another layer;
//! - `GET /collections/{id}/queryables`: the JSON Schema of the properties one can filter on.
//!
//! All three questions take the items filters too (`bbox`, `datetime`, `property=value`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::api::features::{GEOJSON, feature_json, with_type};
use crate::api::{ApiError, AppState, Auth, base_url, visible_layer};
use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::index::FieldType;
use crate::model::{FeatureId, GeometryKind, LayerId};
use crate::planner::{self, MAX_K};
use crate::query::ItemsQuery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/collections/{id}/nearest", get(nearest))
        .route("/collections/{id}/containing", get(containing))
        .route("/collections/{id}/aggregate", get(aggregate))
        .route("/collections/{id}/queryables", get(queryables))
}

type Params = Query<Vec<(String, String)>>;
/// Query parameters in request order.
type Pairs = Vec<(String, String)>;

fn bad(parameter: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{parameter}: {reason}"))
}

/// Splits off this route's own parameters (`own`); the rest must be item filters, parsed
/// by [`filters`] on the compute pool.
fn split(params: Pairs, own: &[&str]) -> Result<(Pairs, Pairs), ApiError> {
    let (mine, rest): (Vec<_>, Vec<_>) = params
        .into_iter()
        .partition(|(k, _)| own.contains(&k.as_str()));
    if let Some((k, _)) = rest
        .iter()
        .find(|(k, _)| matches!(k.as_str(), "limit" | "offset" | "sortby" | "properties"))
    {
        return Err(bad(k, "is not used by this route"));
    }
    // An empty value is not a value of any of these parameters (schemathesis's negative
    // data checks): leave the parameter out to get its default.
    if let Some((k, _)) = mine.iter().find(|(k, v)| k != "f" && v.trim().is_empty()) {
        return Err(bad(k, "is empty; give a value or leave it out"));
    }
    Ok((mine, rest))
}

/// The item filters of a planner's question, checked against the layer.
fn filters(
    def: &LayerDef,
    index: &crate::index::LayerIndex,
    rest: &[(String, String)],
) -> Result<ItemsQuery, ApiError> {
    ItemsQuery::parse(def, index, rest, crate::model::time::now_secs())
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A layer of the dataset by id, on the compute pool (its visibility was checked before).
fn layer_of<'a>(data: &'a Dataset, id: &LayerId) -> Result<&'a LayerDef, ApiError> {
    data.layer(id.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("unknown layer {:?}", id.as_str())))
}

/// A route parameter ([`split`] has refused empty ones).
fn param<'a>(own: &'a [(String, String)], name: &str) -> Option<&'a str> {
    own.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `lon,lat` in degrees.
fn parse_point(own: &[(String, String)]) -> Result<(f64, f64), ApiError> {
    let text = param(own, "point").ok_or_else(|| bad("point", "is required, as lon,lat"))?;
    let nums: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("point", format!("{text:?} is not lon,lat")))?;
    match nums.as_slice() {
        [lon, lat] if (-180.0..=180.0).contains(lon) && (-90.0..=90.0).contains(lat) => {
            Ok((*lon, *lat))
        }
        [_, _] => Err(bad(
            "point",
            format!("{text:?} is outside -180..180, -90..90"),
        )),
        _ => Err(bad("point", format!("{text:?} is not lon,lat"))),
    }
}

async fn nearest(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    let (own, rest) = split(params, &["point", "k", "max_distance", "f"])?;
    let (lon, lat) = parse_point(&own)?;
    let k = match param(&own, "k") {
        None => 5,
        Some(v) => match v.parse::<usize>() {
            Ok(k) if (1..=MAX_K).contains(&k) => k,
            _ => {
                return Err(bad(
                    "k",
                    format!("{v:?} is not a whole number in 1..={MAX_K}"),
                ));
            }
        },
    };
    let max = match param(&own, "max_distance") {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(m) if m.is_finite() && m >= 0.0 => Some(m),
            _ => {
                return Err(bad(
                    "max_distance",
                    format!("{v:?} is not a distance in metres"),
                ));
            }
        },
    };
    let layer = def.id.clone();
    let hits = state
        .on_pool(move |data| {
            let def = layer_of(data, &layer)?;
            let index = data.index().read(&def.id);
            let filter = filters(def, &index, &rest)?;
            Ok(planner::nearest(&index, &filter, lon, lat, k, max))
        })
        .await?;
    let ids: Vec<FeatureId> = hits.iter().map(|(id, _)| *id).collect();
    let (mut features, from_memory) = features_of(&state, def, &ids).await?;
    // Joined by id: a feature deleted since the index answered is simply missing.
    let distance: std::collections::HashMap<u64, f64> =
        hits.iter().map(|(id, d)| (id.0, *d)).collect();
    for f in &mut features {
        if let Some(d) = f["id"].as_u64().and_then(|id| distance.get(&id)) {
            f["distance_m"] = json!((d * 100.0).round() / 100.0);
        }
    }
    Ok(feature_collection(features, from_memory))
}

/// The stored features with these ids, as GeoJSON, in the order given, and whether they
/// came from memory ([`crate::dataset::Stored::from_memory`]).
async fn features_of(
    state: &AppState,
    def: &LayerDef,
    ids: &[FeatureId],
) -> Result<(Vec<Value>, bool), ApiError> {
    let found = state.data.stored_features(&def.id, ids).await?;
    let features = found
        .features
        .iter()
        .map(|f| feature_json(def, f, None))
        .collect();
    Ok((features, found.from_memory))
}

fn feature_collection(features: Vec<Value>, from_memory: bool) -> Response {
    let mut response = with_type(
        json!({
            "type": "FeatureCollection",
            "numberReturned": features.len(),
            "features": features,
        }),
        GEOJSON,
    );
    if from_memory {
        crate::api::features::mark_from_memory(&mut response);
    }
    response
}

async fn containing(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    let (own, rest) = split(params, &["point", "f"])?;
    let (lon, lat) = parse_point(&own)?;
    let layer = def.id.clone();
    let ids = state
        .on_pool(move |data| {
            let def = layer_of(data, &layer)?;
            let index = data.index().read(&def.id);
            let filter = filters(def, &index, &rest)?;
            Ok(planner::containing(&index, &filter, lon, lat))
        })
        .await?;
    let (features, from_memory) = features_of(&state, def, &ids).await?;
    Ok(feature_collection(features, from_memory))
}

async fn aggregate(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    let (own, rest) = split(params, &["by", "sum", "f"])?;
    let by_id =
        param(&own, "by").ok_or_else(|| bad("by", "is required: a polygon layer to group by"))?;
    let by = state
        .data
        .layer(by_id)
        .filter(|d| reader.can_read(d))
        .ok_or_else(|| bad("by", format!("unknown layer {by_id:?}")))?;
    if by.geometry != GeometryKind::Polygon {
        return Err(bad(
            "by",
            format!(
                "layer {by_id} holds {}s; group by a polygon layer",
                by.geometry
            ),
        ));
    }
    let sum = match param(&own, "sum") {
        None => None,
        Some(name) => {
            let i = def
                .properties
                .iter()
                .position(|p| p == name)
                .ok_or_else(|| bad("sum", format!("{name:?} is not a property of {}", def.id)))?;
            Some(i)
        }
    };
    let (layer, by_layer) = (def.id.clone(), by.id.clone());
    // Counting on the compute pool; the groups' properties read from the store here, off
    // the pool (a store that is slow or away must not hold a worker); the answer, up to
    // every polygon of the grouping layer, written on the pool again.
    let groups = state
        .on_pool(move |data| {
            let def = layer_of(data, &layer)?;
            let (index, groups_index) = data.index().read_both(&def.id, &by_layer);
            if let Some(i) = sum
                && index
                    .field_types()
                    .get(i)
                    .copied()
                    .flatten()
                    .is_some_and(|t| t != FieldType::Number)
            {
                return Err(bad(
                    "sum",
                    format!("{:?} is not a number", def.properties[i]),
                ));
            }
            let filter = filters(def, &index, &rest)?;
            Ok(planner::aggregate(&index, &filter, &groups_index, sum))
        })
        .await?;
    let ids: Vec<FeatureId> = groups.iter().map(|g| g.id).collect();
    let stored = state.data.stored_features(&by.id, &ids).await?;
    let (found, from_memory) = (stored.features, stored.from_memory);
    let (layer, by_layer) = (def.id.clone(), by.id.clone());
    let doc = state
        .on_pool(move |data| {
            let def = layer_of(data, &layer)?;
            let props: std::collections::HashMap<FeatureId, &crate::model::Properties> = found
                .iter()
                .map(|f| (f.id, &f.feature.properties))
                .collect();
            Ok(json!({
                "collection": def.id,
                "by": by_layer,
                "sum": sum.map(|i| def.properties[i].clone()),
                "numberOfGroups": groups.len(),
                "groups": groups.iter().map(|g| {
                    let mut o = json!({"id": g.id.0, "properties": props.get(&g.id), "count": g.count});
                    if let Some(s) = g.sum {
                        o["sum"] = json!(s);
                    }
                    o
                }).collect::<Vec<_>>(),
            }))
        })
        .await?;
    let mut response = Json(doc).into_response();
    if from_memory {
        crate::api::features::mark_from_memory(&mut response);
    }
    Ok(response)
}

async fn queryables(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    let index = state.data.index().read(&def.id);
    let mut properties = serde_json::Map::new();
    properties.insert(
        "geometry".into(),
        json!({"$ref": "https://geojson.org/schema/Geometry.json"}),
    );
    for (i, (name, t)) in def.properties.iter().zip(index.field_types()).enumerate() {
        let mut schema = super::property_schema(def, i, *t);
        schema["title"] = json!(name);
        properties.insert(name.clone(), schema);
    }
    let mut r = Json(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{}/collections/{}/queryables", base_url(&headers), def.id),
        "type": "object",
        "title": def.title,
        "properties": properties,
        "additionalProperties": false,
    }))
    .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/schema+json"),
    );
    Ok(r)
}
