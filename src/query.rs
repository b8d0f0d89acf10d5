//! Feature queries of OGC API - Features Part 1: raw query parameters -> a validated
//! [`ItemsQuery`] (bbox, datetime, limit, offset, property equality, `properties`, `sortby`)
//! -> the matching features' ids in a stable order, from the in-memory index. Fetching the
//! page's features and rendering them is the caller's job.
//!
//! Every feature a layer holds has only the layer's declared properties (ingest drops the
//! rest), so filters and sorting run on the index's attribute values and never scan the
//! store. A bbox uses the R*-tree first, then an exact intersection test.

use std::cmp::Ordering;

use geo::{Intersects, Rect};

use crate::config::LayerDef;
use crate::filter::Filter;
use crate::index::{FieldType, IndexedFeature, LayerIndex};
use crate::model::schema::PropertyType;
use crate::model::time::parse_datetime_param;
use crate::model::{Bbox, FeatureId, TimeRange};
use crate::tiles::ProjectedGeometry;
use crate::tiles::Value;
use crate::tiles::mercator::{Rect3857, lon_lat_to_3857};

/// Default and largest page sizes (larger `limit`s are clamped, as OGC API allows).
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 10_000;

/// How `limit` applies: its value when absent, and the most it may ask for (larger ones
/// are clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub default: usize,
    pub max: usize,
}

/// Pages of GeoJSON or HTML: [`DEFAULT_LIMIT`] and [`MAX_LIMIT`].
pub const PAGES: Paging = Paging {
    default: DEFAULT_LIMIT,
    max: MAX_LIMIT,
};

/// Query parameters that are not property names.
pub const RESERVED: &[&str] = &[
    "bbox",
    "filter",
    "filter-lang",
    "filter-crs",
    "bbox-crs",
    "datetime",
    "limit",
    "offset",
    "properties",
    "sortby",
    "f",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct QueryError {
    pub parameter: String,
    pub reason: String,
}

fn err(parameter: &str, reason: impl Into<String>) -> QueryError {
    QueryError {
        parameter: parameter.to_owned(),
        reason: reason.into(),
    }
}

/// One sort key: a declared property (by index) or the feature id, and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// `None` sorts by feature id.
    pub property: Option<usize>,
    pub descending: bool,
}

/// A validated items request against one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsQuery {
    pub bbox: Option<Bbox>,
    pub time: Option<TimeRange>,
    pub limit: usize,
    pub offset: usize,
    /// (declared property index, the text it must equal).
    pub equals: Vec<(usize, String)>,
    /// Declared property indexes to return; `None` for all.
    pub properties: Option<Vec<usize>>,
    pub sortby: Vec<SortKey>,
    /// A CQL2 `filter`, checked against the layer.
    pub filter: Option<Filter>,
}

fn property_index(def: &LayerDef, name: &str, parameter: &str) -> Result<usize, QueryError> {
    def.properties
        .iter()
        .position(|p| p == name)
        .ok_or_else(|| {
            err(
                parameter,
                format!(
                    "{name:?} is not a property of {}; it has: {}",
                    def.id,
                    def.properties.join(", ")
                ),
            )
        })
}

/// Parses a CRS84 `bbox`: four numbers west,south,east,north (six with heights, which are
/// ignored). A box may cross the antimeridian only as two requests.
pub fn parse_bbox(text: &str) -> Result<Bbox, QueryError> {
    let nums: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| err("bbox", format!("{text:?} is not a comma list of numbers")))?;
    let (w, s, e, n) = match nums.as_slice() {
        [w, s, e, n] => (*w, *s, *e, *n),
        [w, s, _, e, n, _] => (*w, *s, *e, *n),
        _ => {
            return Err(err(
                "bbox",
                format!(
                    "needs 4 numbers (west,south,east,north), got {}",
                    nums.len()
                ),
            ));
        }
    };
    if nums.iter().any(|v| !v.is_finite()) {
        return Err(err("bbox", "numbers must be finite"));
    }
    if !(-180.0..=180.0).contains(&w) || !(-180.0..=180.0).contains(&e) {
        return Err(err("bbox", "longitudes must be within -180..180"));
    }
    if !(-90.0..=90.0).contains(&s) || !(-90.0..=90.0).contains(&n) {
        return Err(err("bbox", "latitudes must be within -90..90"));
    }
    if s > n {
        return Err(err("bbox", format!("south {s} is north of north {n}")));
    }
    // West east of east is a box across the antimeridian (OGC API - Features 7.15.3).
    Ok(Bbox {
        west: w,
        south: s,
        east: e,
        north: n,
    })
}

impl ItemsQuery {
    /// Validates raw parameters (in request order) for layer `def`. Unknown parameters,
    /// malformed values and unknown property names are errors naming the parameter.
    pub fn parse(
        def: &LayerDef,
        index: &LayerIndex,
        params: &[(String, String)],
        now_secs: i64,
    ) -> Result<ItemsQuery, QueryError> {
        Self::parse_with(def, index, params, now_secs, PAGES)
    }

    /// [`ItemsQuery::parse`] with `limit` applying as `paging` says (file exports take the
    /// whole result by default).
    pub fn parse_with(
        def: &LayerDef,
        index: &LayerIndex,
        params: &[(String, String)],
        now_secs: i64,
        paging: Paging,
    ) -> Result<ItemsQuery, QueryError> {
        let mut q = ItemsQuery {
            bbox: None,
            time: None,
            limit: paging.default,
            offset: 0,
            equals: Vec::new(),
            properties: None,
            sortby: Vec::new(),
            filter: None,
        };
        let (mut filter_text, mut filter_lang) = (None, "cql2-text");
        let mut seen = std::collections::HashSet::new();
        for (k, v) in params {
            if !seen.insert(k.as_str()) {
                return Err(err(k, "is given more than once"));
            }
            // An empty optional parameter (as an HTML form sends it) means "not given".
            let optional = matches!(
                k.as_str(),
                "bbox" | "datetime" | "filter" | "properties" | "sortby"
            );
            if v.trim().is_empty() && optional {
                seen.remove(k.as_str());
                continue;
            }
            match k.as_str() {
                "f" => {}
                "filter" => filter_text = Some(v.as_str()),
                "filter-lang" => {
                    if v != "cql2-text" && v != "cql2-json" {
                        return Err(err(
                            k,
                            format!("{v:?} is not supported; use cql2-text or cql2-json"),
                        ));
                    }
                    filter_lang = v.as_str();
                }
                "filter-crs" => {
                    if !v.ends_with("/OGC/1.3/CRS84") {
                        return Err(err(
                            k,
                            format!("{v:?} is not supported; geometry literals are CRS84"),
                        ));
                    }
                }
                "bbox" => q.bbox = Some(parse_bbox(v)?),
                "bbox-crs" => {
                    if !v.ends_with("/OGC/1.3/CRS84") {
                        return Err(err(
                            k,
                            format!(
                                "{v:?} is not supported; use http://www.opengis.net/def/crs/OGC/1.3/CRS84"
                            ),
                        ));
                    }
                }
                "datetime" => {
                    if def.time.is_none() {
                        return Err(err(
                            k,
                            format!("layer {} has no validity interval to filter on", def.id),
                        ));
                    }
                    q.time = Some(parse_datetime_param(v, now_secs).map_err(|e| err(k, e))?);
                }
                "limit" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| err(k, format!("{v:?} is not a whole number")))?;
                    if n == 0 {
                        return Err(err(k, "must be at least 1"));
                    }
                    q.limit = n.min(paging.max);
                }
                "offset" => {
                    q.offset = v
                        .parse()
                        .map_err(|_| err(k, format!("{v:?} is not a whole number")))?;
                }
                "properties" => {
                    let list = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|p| property_index(def, p.trim(), k))
                        .collect::<Result<Vec<_>, _>>()?;
                    q.properties = Some(list);
                }
                "sortby" => {
                    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let (descending, name) = match item.as_bytes()[0] {
                            b'-' => (true, &item[1..]),
                            b'+' => (false, &item[1..]),
                            _ => (false, item),
                        };
                        let property = if name == "id" {
                            None
                        } else {
                            Some(property_index(def, name, k)?)
                        };
                        q.sortby.push(SortKey {
                            property,
                            descending,
                        });
                    }
                }
                name => {
                    let i = def
                        .properties
                        .iter()
                        .position(|p| p == name)
                        .ok_or_else(|| {
                            err(
                                name,
                                format!(
                                    "unknown parameter; items take {} or a property of {} ({})",
                                    RESERVED.join(", "),
                                    def.id,
                                    def.properties.join(", ")
                                ),
                            )
                        })?;
                    // The value must be of the property's type, as the queryables say:
                    // the declared one, or the one read from the data.
                    if let Some(t) = def.declared_type(i) {
                        if !param_fits(t, v) {
                            return Err(err(
                                name,
                                format!("{v:?} is not {}, the type of {name}", t.described()),
                            ));
                        }
                        q.equals.push((i, v.clone()));
                        continue;
                    }
                    let fits = match index.field_types().get(i).copied().flatten() {
                        Some(FieldType::Number) => {
                            v.trim().parse::<f64>().is_ok_and(f64::is_finite)
                        }
                        Some(FieldType::Boolean) => matches!(v.as_str(), "true" | "false"),
                        _ => true,
                    };
                    if !fits {
                        let t = index.field_types()[i].map_or("string", FieldType::as_str);
                        return Err(err(name, format!("{v:?} is not a {t}, the type of {name}")));
                    }
                    q.equals.push((i, v.clone()));
                }
            }
        }
        // A filter-lang without a filter changes nothing, as with an empty form field.
        if let Some(text) = filter_text {
            q.filter =
                Some(Filter::parse(def, index, text, filter_lang).map_err(|e| err("filter", e.0))?);
        }
        Ok(q)
    }
}

/// Whether a query parameter's text is a value of declared type `t`.
fn param_fits(t: PropertyType, text: &str) -> bool {
    match t {
        PropertyType::String => true,
        PropertyType::Integer => PropertyType::Integer
            .coerce(serde_json::Value::String(text.into()))
            .is_ok(),
        PropertyType::Number => text.trim().parse::<f64>().is_ok_and(f64::is_finite),
        PropertyType::Boolean => matches!(text, "true" | "false"),
        PropertyType::DateTime => crate::model::time::parse_rfc3339(text).is_ok(),
    }
}

/// Does the feature's value equal the request's text? Text compares as text, numbers and
/// booleans by value (so `?levels=4` matches 4 and 4.0).
fn value_equals(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => **s == *text,
        Value::Bool(b) => text.parse::<bool>().is_ok_and(|t| t == *b),
        Value::Uint(u) => text.parse::<f64>().is_ok_and(|t| t == *u as f64),
        Value::Sint(i) => text.parse::<f64>().is_ok_and(|t| t == *i as f64),
        Value::Double(d) => text.parse::<f64>().is_ok_and(|t| t == *d),
    }
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn num(v: &Value) -> Option<f64> {
        match v {
            Value::Uint(u) => Some(*u as f64),
            Value::Sint(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }
    match (a, b) {
        (None, None) => Ordering::Equal,
        // Features without the property come last, as SQL's NULLS LAST.
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => match (num(x), num(y)) {
            (Some(p), Some(q)) => p.total_cmp(&q),
            _ => match (x, y) {
                (Value::String(s), Value::String(t)) => s.cmp(t),
                (Value::Bool(s), Value::Bool(t)) => s.cmp(t),
                _ => format!("{x:?}").cmp(&format!("{y:?}")),
            },
        },
    }
}

fn meets_bbox(geometry: &ProjectedGeometry, rect: &Rect<f64>) -> bool {
    match geometry {
        ProjectedGeometry::Points(g) => g.intersects(rect),
        ProjectedGeometry::Lines(g) => g.intersects(rect),
        ProjectedGeometry::Polygons(g) => g.intersects(rect),
    }
}

/// The result of a query: how many features match, and the ids of the requested page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub matched: usize,
    pub ids: Vec<FeatureId>,
}

impl ItemsQuery {
    /// The bbox as an EPSG:3857 rectangle.
    /// The bbox as EPSG:3857 rectangles: none without a bbox, two for a box across the
    /// antimeridian.
    fn bbox_3857(&self) -> Vec<Rect<f64>> {
        let Some(b) = self.bbox else {
            return Vec::new();
        };
        let rect = |w: f64, e: f64| {
            let (x0, y0) = lon_lat_to_3857(w, b.south);
            let (x1, y1) = lon_lat_to_3857(e, b.north);
            Rect::new((x0, y0), (x1, y1))
        };
        if b.west <= b.east {
            vec![rect(b.west, b.east)]
        } else {
            vec![rect(b.west, 180.0), rect(-180.0, b.east)]
        }
    }

    fn meets_bbox(&self, rects: &[Rect<f64>], f: &IndexedFeature) -> bool {
        rects.is_empty() || rects.iter().any(|r| meets_bbox(&f.geometry, r))
    }

    /// Whether a feature passes the filters (bbox, datetime, property equality); paging
    /// and sorting aside.
    pub fn matches(&self, index: &LayerIndex, f: &IndexedFeature) -> bool {
        self.filters_match(index, f) && self.meets_bbox(&self.bbox_3857(), f)
    }

    fn filters_match(&self, index: &LayerIndex, f: &IndexedFeature) -> bool {
        self.time.is_none_or(|t| f.time.overlaps(&t))
            && self.equals.iter().all(|(key, text)| {
                index
                    .value_of(f, *key)
                    .is_some_and(|v| value_equals(v, text))
            })
            && self.filter.as_ref().is_none_or(|flt| flt.matches(index, f))
    }

    /// The box the R*-tree can answer first: the bbox, the filter's spatial box, or both.
    fn search_box(&self) -> Option<Rect3857> {
        let rects = self.bbox_3857();
        let a = match rects.as_slice() {
            [r] => Some(Rect3857 {
                min_x: r.min().x,
                min_y: r.min().y,
                max_x: r.max().x,
                max_y: r.max().y,
            }),
            _ => None,
        };
        let b = self.filter.as_ref().and_then(Filter::prefilter);
        match (a, b) {
            (Some(a), Some(b)) => Some(Rect3857 {
                min_x: a.min_x.max(b.min_x),
                min_y: a.min_y.max(b.min_y),
                max_x: a.max_x.min(b.max_x),
                max_y: a.max_y.min(b.max_y),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// Runs `q` on a layer's index. Order: the `sortby` keys, then feature id, so that paging
/// with `offset` walks every feature exactly once. On the compute pool, the scan stops
/// early once the job's deadline has passed ([`crate::compute::expired`]); the pool then
/// throws the page away.
pub fn run(index: &LayerIndex, q: &ItemsQuery) -> Page {
    let bbox = q.bbox_3857();
    let pass = |f: &&IndexedFeature| q.meets_bbox(&bbox, f) && q.filters_match(index, f);
    let in_time = |_: &&IndexedFeature| !crate::compute::expired();
    let mut hits: Vec<&IndexedFeature> = match q.search_box() {
        Some(search) => index
            .query(search)
            .take_while(in_time)
            .filter(pass)
            .collect(),
        None => index.features().take_while(in_time).filter(pass).collect(),
    };
    hits.sort_unstable_by(|a, b| {
        for key in &q.sortby {
            let o = match key.property {
                None => a.id.cmp(&b.id),
                Some(p) => compare_values(index.value_of(a, p), index.value_of(b, p)),
            };
            let o = if key.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.id.cmp(&b.id)
    });
    let matched = hits.len();
    let ids = hits
        .into_iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|f| f.id)
        .collect();
    Page { matched, ids }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Feature, Properties, StoredFeature};

    fn def() -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("spots.toml"),
            "title = \"S\"\ngeometry = \"point\"\nproperties = [\"name\", \"n\", \"when\"]\ntime = { start = \"when\" }\n",
        )
        .unwrap()
    }

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn index() -> LayerIndex {
        let features = (0..20)
            .map(|i| {
                let mut p = Properties::new();
                p.insert("name".into(), format!("spot {}", i % 3).into());
                p.insert("n".into(), (i * 7 % 20).into());
                p.insert("when".into(), format!("2026-01-{:02}", i + 1).into());
                StoredFeature {
                    id: FeatureId(100 + i),
                    version: 0,
                    feature: Feature {
                        geometry: geo::Point::new(24.9 + i as f64 * 0.001, 60.1).into(),
                        properties: p,
                    },
                }
            })
            .collect();
        LayerIndex::build(&def(), features)
    }

    #[test]
    fn paging_walks_every_feature_once_in_id_order() {
        let idx = index();
        let mut seen = Vec::new();
        for offset in (0..20).step_by(6) {
            let q = ItemsQuery::parse(
                &def(),
                &LayerIndex::default(),
                &params(&[("limit", "6"), ("offset", &offset.to_string())]),
                0,
            )
            .unwrap();
            let page = run(&idx, &q);
            assert_eq!(page.matched, 20);
            seen.extend(page.ids);
        }
        let want: Vec<FeatureId> = (100..120).map(FeatureId).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn bbox_time_and_property_filters_combine() {
        let idx = index();
        // x from 24.9 to 24.919: the box keeps i = 0..=9; the name keeps i % 3 == 1.
        let q = ItemsQuery::parse(
            &def(),
            &LayerIndex::default(),
            &params(&[
                ("bbox", "24.8995,60.0,24.9095,60.2"),
                ("name", "spot 1"),
                ("limit", "100"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(run(&idx, &q).ids, [101, 104, 107].map(FeatureId));
        let q = ItemsQuery::parse(
            &def(),
            &LayerIndex::default(),
            &params(&[("datetime", "2026-01-18/..")]),
            0,
        )
        .unwrap();
        assert_eq!(run(&idx, &q).matched, 3);
    }

    #[test]
    fn a_bbox_across_the_antimeridian_covers_both_ends() {
        let idx = index();
        // From 24.9095 E eastwards round the world to 24.9005 E: all but i = 1..=9.
        let q = ItemsQuery::parse(
            &def(),
            &idx,
            &params(&[("bbox", "24.9095,60.0,24.9005,60.2"), ("limit", "100")]),
            0,
        )
        .unwrap();
        let got: Vec<u64> = run(&idx, &q).ids.iter().map(|i| i.0 - 100).collect();
        assert_eq!(got, [0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    }

    #[test]
    fn sortby_orders_by_value_then_id() {
        let idx = index();
        let q = ItemsQuery::parse(
            &def(),
            &LayerIndex::default(),
            &params(&[("sortby", "-n"), ("limit", "3")]),
            0,
        )
        .unwrap();
        let page = run(&idx, &q);
        let ns: Vec<u64> = page.ids.iter().map(|id| (id.0 - 100) * 7 % 20).collect();
        assert_eq!(ns, [19, 18, 17]);
    }

    #[test]
    fn limits_are_clamped_and_bad_parameters_named() {
        let d = def();
        let q = ItemsQuery::parse(
            &d,
            &LayerIndex::default(),
            &params(&[("limit", "999999")]),
            0,
        )
        .unwrap();
        assert_eq!(q.limit, MAX_LIMIT);
        for (k, v, says) in [
            ("limit", "0", "at least 1"),
            ("limit", "ten", "whole number"),
            ("bbox", "1,2,3", "4 numbers"),
            ("bbox", "10,60,15,50", "south"),
            ("bbox", "1,2,x,4", "numbers"),
            ("datetime", "2026-13-01", "month"),
            ("sortby", "colour", "\"colour\""),
            ("properties", "name,colour", "\"colour\""),
            ("colour", "red", "unknown parameter"),
        ] {
            let e =
                ItemsQuery::parse(&d, &LayerIndex::default(), &params(&[(k, v)]), 0).unwrap_err();
            assert_eq!(e.parameter, k);
            assert!(e.reason.contains(says), "{k}={v}: {e}");
        }
    }

    #[test]
    fn values_compare_by_type() {
        assert!(value_equals(&Value::Uint(4), "4.0"));
        assert!(!value_equals(&Value::Uint(4), "four"));
        assert!(value_equals(&Value::String("4".into()), "4"));
        assert!(value_equals(&Value::Bool(true), "true"));
    }
}
