//! `GET /collections/{id}/clusters/{cluster_id}/leaves`: the points of a cluster that a
//! clustered layer's tiles show, paged like items (`limit`, `offset`, `next` links).
//!
//! A cluster id is only known to the tree it came from: a tile asked with `datetime` or
//! `filter` groups other points, so the same parameters find its clusters here. An id
//! that the layer's clusters, as they are now, do not have is a 404 (a write since the
//! tile was drawn can do that).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::features::{GEOJSON, feature_json, with_type};
use crate::api::{ApiError, AppState, Auth, base_url, visible_layer};
use crate::dataset::clusters::Subset;
use crate::filter::Filter;
use crate::model::time::parse_datetime_param;
use crate::query::{DEFAULT_LIMIT, MAX_LIMIT};

pub fn routes() -> Router<AppState> {
    Router::new().route("/collections/{id}/clusters/{cluster}/leaves", get(leaves))
}

/// What a leaves request asks, checked.
struct LeavesQuery {
    limit: usize,
    offset: usize,
    datetime: Option<String>,
    /// Text and language.
    filter: Option<(String, String)>,
}

fn parse(params: &[(String, String)]) -> Result<LeavesQuery, ApiError> {
    let bad = |k: &str, m: String| ApiError::BadRequest(format!("{k}: {m}"));
    let mut q = LeavesQuery {
        limit: DEFAULT_LIMIT,
        offset: 0,
        datetime: None,
        filter: None,
    };
    let mut lang = None;
    let mut seen = std::collections::HashSet::new();
    for (k, v) in params {
        if !seen.insert(k.as_str()) {
            return Err(bad(k, "is given twice".into()));
        }
        let whole = || {
            v.parse::<usize>()
                .map_err(|_| bad(k, format!("{v:?} is not a whole number")))
        };
        match k.as_str() {
            "limit" => {
                let n = whole()?;
                if n == 0 {
                    return Err(bad(k, "must be at least 1".into()));
                }
                q.limit = n.min(MAX_LIMIT);
            }
            "offset" => q.offset = whole()?,
            "datetime" => q.datetime = Some(v.clone()),
            "filter" => q.filter = Some((v.clone(), String::new())),
            "filter-lang" => lang = Some(v.clone()),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (leaves accept: limit, offset, datetime, filter, filter-lang)"
                )));
            }
        }
    }
    match (&mut q.filter, lang) {
        (Some((_, l)), lang) => *l = lang.unwrap_or_else(|| "cql2-text".into()),
        (None, Some(_)) => return Err(bad("filter-lang", "is given without a filter".into())),
        (None, None) => {}
    }
    Ok(q)
}

/// The request's query string with `offset` replaced, for paging links.
fn with_offset(params: &[(String, String)], offset: usize) -> String {
    let mut out: Vec<(&str, String)> = params
        .iter()
        .filter(|(k, _)| k != "offset")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if offset > 0 {
        out.push(("offset", offset.to_string()));
    }
    let q = serde_urlencoded::to_string(&out).unwrap_or_default();
    if q.is_empty() { q } else { format!("?{q}") }
}

async fn leaves(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, cluster)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    if def.cluster.is_none() {
        return Err(ApiError::NotFound(format!("layer {id:?} has no clusters")));
    }
    let cluster: u64 = cluster.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "cluster id {cluster:?} is not a whole number (take it from a tile's cluster_id)"
        ))
    })?;
    let q = parse(&params)?;
    let time = q
        .datetime
        .as_deref()
        .map(|v| parse_datetime_param(v, crate::model::time::now_secs()))
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("datetime: {e}")))?;
    let layer = def.id.clone();
    let filter = q.filter.clone();
    let (count, page) = state
        .on_pool(move |data| {
            let def = data
                .layer(layer.as_str())
                .ok_or_else(|| ApiError::NotFound(format!("unknown layer {layer}")))?;
            let parsed = match &filter {
                None => None,
                Some((text, lang)) => Some(
                    Filter::parse(def, &data.index().read(&def.id), text, lang)
                        .map_err(|e| ApiError::BadRequest(format!("filter: {e}")))?,
                ),
            };
            let key = filter.as_ref().map(|(text, lang)| format!("{lang}:{text}"));
            let subset = Subset {
                time,
                filter: parsed.as_ref().zip(key.as_deref()),
            };
            let clustered = data
                .clusters(def, subset)
                .ok_or_else(|| ApiError::NotFound(format!("layer {layer} has no clusters")))?;
            let (_, leaves) = clustered.tree.cluster(cluster).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "layer {layer} has no cluster {cluster} now (tiles drawn before a write may name clusters that are gone)"
                ))
            })?;
            let page: Vec<crate::model::FeatureId> = leaves
                .iter()
                .skip(q.offset)
                .take(q.limit)
                .map(|&id| crate::model::FeatureId(id))
                .collect();
            Ok::<_, ApiError>((leaves.len(), page))
        })
        .await?;
    let stored = state.data.stored_features(&def.id, &page).await?;
    let from_memory = stored.from_memory;
    let mut features = stored.features;
    // In the cluster's order, whatever order the store answers in.
    let rank: std::collections::HashMap<_, _> =
        page.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    features.sort_by_key(|f| rank.get(&f.id).copied().unwrap_or(usize::MAX));

    let base = base_url(&headers);
    let path = format!("{base}/collections/{id}/clusters/{cluster}/leaves");
    let link = |offset: usize, rel: &str, title: &str| json!({"href": format!("{path}{}", with_offset(&params, offset)), "rel": rel, "type": GEOJSON, "title": title});
    let mut links = vec![
        link(q.offset, "self", "This page"),
        json!({"href": format!("{base}/collections/{id}"), "rel": "collection", "type": "application/json", "title": def.title}),
    ];
    if q.offset.saturating_add(q.limit) < count {
        links.push(link(q.offset + q.limit, "next", "Next page"));
    }
    if q.offset > 0 {
        links.push(link(
            q.offset.saturating_sub(q.limit),
            "prev",
            "Previous page",
        ));
    }
    let doc = json!({
        "type": "FeatureCollection",
        "features": features.iter().map(|f| feature_json(def, f, None)).collect::<Vec<Value>>(),
        "numberMatched": count,
        "numberReturned": features.len(),
        "links": links,
    });
    let mut response = with_type(doc, GEOJSON);
    if from_memory {
        crate::api::features::mark_from_memory(&mut response);
    }
    Ok(response)
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
    fn paging_parameters_are_checked_and_named() {
        let q = parse(&params(&[("limit", "999999"), ("offset", "20")])).unwrap();
        assert_eq!((q.limit, q.offset), (MAX_LIMIT, 20));
        for (k, v, says) in [
            ("limit", "-1", "limit: \"-1\" is not a whole number"),
            ("limit", "0", "limit: must be at least 1"),
            (
                "offset",
                "99999999999999999999999",
                "offset: \"99999999999999999999999\"",
            ),
            ("bbox", "1,2,3,4", "unknown query parameter \"bbox\""),
            (
                "filter-lang",
                "cql2-json",
                "filter-lang: is given without a filter",
            ),
        ] {
            let Err(ApiError::BadRequest(m)) = parse(&params(&[(k, v)])) else {
                panic!("{k}={v} passed");
            };
            assert!(m.contains(says), "{m}");
        }
        assert_eq!(
            with_offset(&params(&[("limit", "5"), ("offset", "5")]), 10),
            "?limit=5&offset=10"
        );
    }
}
