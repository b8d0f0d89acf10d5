//! CQL2 filters (OGC API - Features Part 3) for items and tiles: `cql2-text` and
//! `cql2-json` parsed into one [`Filter`] checked against a layer (properties exist, types
//! fit), then evaluated on the index's features.
//!
//! Supported: `AND`, `OR`, `NOT`, comparisons (`= <> < <= > >=`), `LIKE` (`%` and `_`),
//! `IN`, `BETWEEN`, `IS [NOT] NULL`; `S_INTERSECTS`, `S_DISJOINT`, `S_WITHIN`, `S_CONTAINS`
//! with WKT points, lines, polygons (and multi-) and `BBOX(w,s,e,n)`; `T_INTERSECTS`,
//! `T_BEFORE`, `T_AFTER`, `T_DURING` with `TIMESTAMP`, `DATE` and `INTERVAL` on layers with
//! a validity interval (a time property stands for the feature's whole interval).
//! Geometry literals are CRS84; they are projected to Web Mercator and prepared for
//! relate tests (an R-tree over their edges) once, at parse time: a filter is parsed per
//! request, and used by one thread.
//!
//! Every filter comes from an anonymous client, so its cost is bounded: its length
//! ([`MAX_FILTER_BYTES`]), its nesting ([`MAX_FILTER_DEPTH`]), and `LIKE` patterns
//! ([`MAX_LIKE_PATTERN`] characters, matched in time linear in pattern x value).

use std::cmp::Ordering;

use geo::{Geometry, PreparedGeometry, Relate};

mod parse;

use parse::{Node, parse_json, parse_text};

use crate::config::LayerDef;
use crate::index::{FieldType, IndexedFeature, LayerIndex};
use crate::limits::{MAX_FILTER_BYTES, MAX_FILTER_DEPTH, MAX_LIKE_PATTERN, json_depth};
use crate::model::TimeRange;
use crate::model::time::parse_rfc3339;
use crate::tiles::Value;
use crate::tiles::mercator::{ProjectedGeometry, Rect3857};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("filter: {0}")]
pub struct FilterError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Time(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Property(usize),
    Lit(Lit),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Spatial {
    Intersects,
    Disjoint,
    Within,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Temporal {
    Intersects,
    Before,
    After,
    During,
}

/// A parsed, layer-checked filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Cond);

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Const(bool),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Compare(Operand, Cmp, Operand),
    Like(Operand, Like),
    In(Operand, Vec<Lit>),
    Between(Operand, Operand, Operand),
    IsNull(Operand),
    Spatial(Spatial, Box<Literal>, Rect3857),
    Temporal(Temporal, TimeRange),
}

/// A geometry literal in Web Mercator, prepared once for the relate tests against every
/// feature.
#[derive(Clone)]
struct Literal(PreparedGeometry<'static, Geometry<f64>>);

impl std::fmt::Debug for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.geometry().fmt(f)
    }
}

impl PartialEq for Literal {
    fn eq(&self, other: &Literal) -> bool {
        self.0.geometry() == other.0.geometry()
    }
}

/// A `LIKE` pattern, compiled once: runs of `%` folded into one.
#[derive(Debug, Clone, PartialEq)]
struct Like(Vec<LikeTok>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum LikeTok {
    /// `%`: any run of characters, the empty one too.
    Any,
    /// `_`: exactly one character.
    One,
    Char(char),
}

// ---------------------------------------------------------------------------------------
// Checking against a layer
// ---------------------------------------------------------------------------------------

struct Checker<'a> {
    def: &'a LayerDef,
    index: &'a LayerIndex,
}

fn instant(text: &str) -> Result<Option<i64>, FilterError> {
    if text == ".." || text.is_empty() {
        return Ok(None);
    }
    parse_rfc3339(text)
        .map(Some)
        .map_err(|e| FilterError(format!("time {e}")))
}

impl Checker<'_> {
    fn property(&self, name: &str) -> Result<usize, FilterError> {
        self.def
            .properties
            .iter()
            .position(|p| p == name)
            .ok_or_else(|| {
                FilterError(format!(
                    "unknown property {name:?}; {} has: {}",
                    self.def.id,
                    self.def.properties.join(", ")
                ))
            })
    }

    fn operand(&self, n: &Node) -> Result<Operand, FilterError> {
        Ok(match n {
            Node::Prop(p) => Operand::Property(self.property(p)?),
            Node::Str(s) => Operand::Lit(Lit::Str(s.clone())),
            Node::Num(x) => Operand::Lit(Lit::Num(*x)),
            Node::Bool(b) => Operand::Lit(Lit::Bool(*b)),
            Node::Timestamp(t) | Node::Date(t) => Operand::Lit(Lit::Time(
                instant(t)?.ok_or_else(|| FilterError("an open time is not a value".into()))?,
            )),
            other => return fail(format!("{other:?} cannot be compared")),
        })
    }

    /// The type a property holds, for checking comparisons.
    fn kind(&self, o: &Operand) -> Option<&'static str> {
        match o {
            Operand::Property(i) => {
                let is_time = self.def.time.as_ref().is_some_and(|t| {
                    t.start == self.def.properties[*i]
                        || t.end.as_deref() == Some(self.def.properties[*i].as_str())
                });
                if is_time {
                    return Some("time");
                }
                match self.index.field_types().get(*i).copied().flatten() {
                    Some(FieldType::Number) => Some("number"),
                    Some(FieldType::Boolean) => Some("boolean"),
                    Some(FieldType::String) => Some("string"),
                    None => None,
                }
            }
            Operand::Lit(Lit::Str(_)) => Some("string"),
            Operand::Lit(Lit::Num(_)) => Some("number"),
            Operand::Lit(Lit::Bool(_)) => Some("boolean"),
            Operand::Lit(Lit::Time(_)) => Some("time"),
        }
    }

    fn same_kind(&self, a: &Operand, b: &Operand) -> Result<(), FilterError> {
        match (self.kind(a), self.kind(b)) {
            (Some(x), Some(y))
                if x != y && !(x == "time" && y == "string" || x == "string" && y == "time") =>
            {
                fail(format!(
                    "cannot compare {} ({x}) with {} ({y})",
                    self.describe(a),
                    self.describe(b)
                ))
            }
            _ => Ok(()),
        }
    }

    fn describe(&self, o: &Operand) -> String {
        match o {
            Operand::Property(i) => format!("property {:?}", self.def.properties[*i]),
            Operand::Lit(l) => format!("{l:?}"),
        }
    }

    fn geometry(&self, n: &Node) -> Result<ProjectedGeometry, FilterError> {
        let lon_lat: Geometry<f64> = match n {
            Node::Wkt(text) => {
                let w: wkt::Wkt<f64> = text
                    .parse()
                    .map_err(|e| FilterError(format!("{text:?} is not valid WKT: {e}")))?;
                Geometry::try_from(w).map_err(|e| FilterError(format!("{text:?}: {e}")))?
            }
            Node::Bbox(b) => match b.as_slice() {
                [w, s, e, nn] | [w, s, _, e, nn, _] if w <= e && s <= nn => {
                    geo::Rect::new((*w, *s), (*e, *nn)).to_polygon().into()
                }
                _ => {
                    return fail(format!(
                        "BBOX needs west,south,east,north with west <= east, south <= north; got {b:?}"
                    ));
                }
            },
            Node::GeoJson(v) => {
                let g: geojson::Geometry = serde_json::from_value(v.clone())
                    .map_err(|e| FilterError(format!("geometry: {e}")))?;
                crate::ingest::geojson::to_geo(&g.value)
                    .map_err(|e| FilterError(format!("geometry: {e}")))?
            }
            other => return fail(format!("{other:?} is not a geometry")),
        };
        // CRS84 bounds first: Web Mercator clamps latitudes, and a clamped literal can
        // fold onto itself, which geo's relate does not survive.
        if let Some((i, c)) = geo::CoordsIter::coords_iter(&lon_lat)
            .enumerate()
            .find(|(_, c)| !((-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y)))
        {
            return fail(format!(
                "coordinate {i} of the geometry literal ({} {}) is outside -180..180, -90..90",
                c.x, c.y
            ));
        }
        if let Some(problem) = geo::Validation::validation_errors(&lon_lat).first() {
            return fail(format!("the geometry literal is invalid: {problem}"));
        }
        let projected = ProjectedGeometry::from_lon_lat(&lon_lat)
            .ok_or_else(|| FilterError("a mixed geometry collection is not supported".into()))?;
        let in_3857 = to_geometry(projected.clone());
        if let Some(problem) = geo::Validation::validation_errors(&in_3857).first() {
            return fail(format!(
                "the geometry literal is invalid in Web Mercator (near a pole?): {problem}"
            ));
        }
        Ok(projected)
    }

    fn interval(&self, n: &Node) -> Result<TimeRange, FilterError> {
        match n {
            Node::Timestamp(t) | Node::Date(t) => {
                let at = instant(t)?;
                // A date stands for the whole day.
                let end = match n {
                    Node::Date(_) => at.map(|a| a + 86_399),
                    _ => at,
                };
                Ok(TimeRange { start: at, end })
            }
            Node::Interval(a, b) => {
                let side = |n: &Node| match n {
                    Node::Str(s) | Node::Timestamp(s) | Node::Date(s) => instant(s),
                    other => fail(format!("{other:?} is not an instant")),
                };
                Ok(TimeRange {
                    start: side(a)?,
                    end: side(b)?,
                })
            }
            other => fail(format!("{other:?} is not a time")),
        }
    }

    /// The feature side of a temporal predicate: one of the layer's time properties (or an
    /// INTERVAL of them) stands for the feature's validity interval.
    fn feature_time(&self, n: &Node) -> Result<(), FilterError> {
        let Some(t) = &self.def.time else {
            return fail(format!(
                "layer {} has no validity interval for temporal functions",
                self.def.id
            ));
        };
        let ok = |name: &str| name == t.start || t.end.as_deref() == Some(name);
        match n {
            Node::Prop(p) if ok(p) => Ok(()),
            Node::Interval(a, b) if matches!((&**a, &**b), (Node::Prop(x), Node::Prop(y)) if ok(x) && ok(y)) => {
                Ok(())
            }
            Node::Prop(p) => fail(format!(
                "{p:?} is not a time property of {} ({})",
                self.def.id, t.start
            )),
            other => fail(format!(
                "{other:?}: the first argument of a temporal function must be a time property"
            )),
        }
    }

    fn check(&self, n: &Node) -> Result<Cond, FilterError> {
        let Node::Op(op, args) = n else {
            return match n {
                Node::Bool(b) => Ok(Cond::Const(*b)),
                other => fail(format!("{other:?} is not a condition")),
            };
        };
        let arity = |k: usize| {
            if args.len() == k {
                Ok(())
            } else {
                fail(format!("{op} takes {k} arguments, got {}", args.len()))
            }
        };
        Ok(match op.as_str() {
            "and" => Cond::And(
                args.iter()
                    .map(|a| self.check(a))
                    .collect::<Result<_, _>>()?,
            ),
            "or" => Cond::Or(
                args.iter()
                    .map(|a| self.check(a))
                    .collect::<Result<_, _>>()?,
            ),
            "not" => {
                arity(1)?;
                Cond::Not(Box::new(self.check(&args[0])?))
            }
            "=" | "<>" | "<" | "<=" | ">" | ">=" => {
                arity(2)?;
                let (a, b) = (self.operand(&args[0])?, self.operand(&args[1])?);
                self.same_kind(&a, &b)?;
                let cmp = match op.as_str() {
                    "=" => Cmp::Eq,
                    "<>" => Cmp::Ne,
                    "<" => Cmp::Lt,
                    "<=" => Cmp::Le,
                    ">" => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                Cond::Compare(a, cmp, b)
            }
            "like" => {
                arity(2)?;
                let Node::Str(pattern) = &args[1] else {
                    return fail("LIKE needs a text pattern");
                };
                Cond::Like(self.operand(&args[0])?, Like::compile(pattern)?)
            }
            "between" => {
                arity(3)?;
                let (a, lo, hi) = (
                    self.operand(&args[0])?,
                    self.operand(&args[1])?,
                    self.operand(&args[2])?,
                );
                self.same_kind(&a, &lo)?;
                self.same_kind(&a, &hi)?;
                Cond::Between(a, lo, hi)
            }
            "in" => {
                arity(2)?;
                let a = self.operand(&args[0])?;
                let Node::Op(l, items) = &args[1] else {
                    return fail("IN needs a list");
                };
                debug_assert_eq!(l, "list");
                let mut list = Vec::new();
                for item in items {
                    let o = self.operand(item)?;
                    self.same_kind(&a, &o)?;
                    match o {
                        Operand::Lit(lit) => list.push(lit),
                        Operand::Property(_) => {
                            return fail("IN lists hold values, not properties");
                        }
                    }
                }
                Cond::In(a, list)
            }
            "isNull" => {
                arity(1)?;
                Cond::IsNull(self.operand(&args[0])?)
            }
            s @ ("s_intersects" | "s_disjoint" | "s_within" | "s_contains") => {
                arity(2)?;
                let (feature_side, literal) = match (&args[0], &args[1]) {
                    (Node::Prop(p), lit) if p == "geometry" || p == "geom" => (true, lit),
                    (lit, Node::Prop(p)) if p == "geometry" || p == "geom" => (false, lit),
                    _ => {
                        return fail(format!(
                            "{s} compares the feature's geometry (property \"geometry\") with a geometry"
                        ));
                    }
                };
                let g = self.geometry(literal)?;
                let r = g
                    .bounds()
                    .ok_or_else(|| FilterError("the geometry is empty".into()))?;
                let mut kind = match s {
                    "s_intersects" => Spatial::Intersects,
                    "s_disjoint" => Spatial::Disjoint,
                    "s_within" => Spatial::Within,
                    _ => Spatial::Contains,
                };
                if !feature_side {
                    // S_WITHIN(literal, geometry) is S_CONTAINS(geometry, literal).
                    kind = match kind {
                        Spatial::Within => Spatial::Contains,
                        Spatial::Contains => Spatial::Within,
                        k => k,
                    };
                }
                let literal = Literal(PreparedGeometry::from(to_geometry(g)));
                Cond::Spatial(kind, Box::new(literal), r)
            }
            t @ ("t_intersects" | "t_before" | "t_after" | "t_during") => {
                arity(2)?;
                self.feature_time(&args[0])?;
                let range = self.interval(&args[1])?;
                let kind = match t {
                    "t_intersects" => Temporal::Intersects,
                    "t_before" => Temporal::Before,
                    "t_after" => Temporal::After,
                    _ => Temporal::During,
                };
                Cond::Temporal(kind, range)
            }
            other => return fail(format!("{other:?} is not supported")),
        })
    }
}

impl Filter {
    /// Parses `text` as `lang` (`cql2-text` or `cql2-json`) and checks it against a layer.
    pub fn parse(
        def: &LayerDef,
        index: &LayerIndex,
        text: &str,
        lang: &str,
    ) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_BYTES {
            return fail(format!(
                "is {} bytes long, over the limit of {MAX_FILTER_BYTES} bytes",
                text.len()
            ));
        }
        let node = match lang {
            "cql2-text" => parse_text(text)?,
            "cql2-json" => {
                let depth = json_depth(text.as_bytes());
                if depth > MAX_FILTER_DEPTH {
                    return fail(format!(
                        "nests {depth} levels deep, over the limit of {MAX_FILTER_DEPTH} levels"
                    ));
                }
                let v: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| FilterError(format!("not JSON: {e}")))?;
                parse_json(&v)?
            }
            other => {
                return fail(format!(
                    "filter-lang {other:?} is not supported; use cql2-text or cql2-json"
                ));
            }
        };
        Checker { def, index }.check(&node).map(Filter)
    }

    /// A box that every matching feature's bounding box meets, when the filter says so
    /// (a spatial predicate other than S_DISJOINT at the top or under AND).
    pub fn prefilter(&self) -> Option<Rect3857> {
        self.0.prefilter()
    }

    /// Does a feature of `index` pass?
    pub fn matches(&self, index: &LayerIndex, f: &IndexedFeature) -> bool {
        self.0.matches(index, f)
    }
}

impl Cond {
    fn prefilter(&self) -> Option<Rect3857> {
        match self {
            Cond::Spatial(Spatial::Disjoint, _, _) => None,
            Cond::Spatial(_, _, r) => Some(*r),
            Cond::And(items) => items.iter().find_map(Cond::prefilter),
            _ => None,
        }
    }

    fn matches(&self, index: &LayerIndex, f: &IndexedFeature) -> bool {
        match self {
            Cond::Const(b) => *b,
            Cond::And(items) => items.iter().all(|i| i.matches(index, f)),
            Cond::Or(items) => items.iter().any(|i| i.matches(index, f)),
            Cond::Not(inner) => !inner.matches(index, f),
            Cond::Compare(a, op, b) => match compare(index, f, a, b) {
                Some(o) => match op {
                    Cmp::Eq => o == Ordering::Equal,
                    Cmp::Ne => o != Ordering::Equal,
                    Cmp::Lt => o == Ordering::Less,
                    Cmp::Le => o != Ordering::Greater,
                    Cmp::Gt => o == Ordering::Greater,
                    Cmp::Ge => o != Ordering::Less,
                },
                None => false,
            },
            Cond::Like(a, pattern) => match resolve(index, f, a) {
                Some(Lit::Str(s)) => pattern.matches(&s),
                _ => false,
            },
            Cond::In(a, list) => list
                .iter()
                .any(|l| compare(index, f, a, &Operand::Lit(l.clone())) == Some(Ordering::Equal)),
            Cond::Between(a, lo, hi) => {
                compare(index, f, a, lo).is_some_and(|o| o != Ordering::Less)
                    && compare(index, f, a, hi).is_some_and(|o| o != Ordering::Greater)
            }
            Cond::IsNull(a) => resolve(index, f, a).is_none(),
            Cond::Spatial(kind, literal, r) => spatial(*kind, &f.geometry, literal, r),
            Cond::Temporal(kind, t) => temporal(*kind, &f.time, t),
        }
    }
}

fn resolve(index: &LayerIndex, f: &IndexedFeature, o: &Operand) -> Option<Lit> {
    match o {
        Operand::Lit(l) => Some(l.clone()),
        Operand::Property(i) => Some(match index.value_of(f, *i)? {
            Value::String(s) => Lit::Str(s.to_string()),
            Value::Double(d) => Lit::Num(*d),
            Value::Uint(u) => Lit::Num(*u as f64),
            Value::Sint(s) => Lit::Num(*s as f64),
            Value::Bool(b) => Lit::Bool(*b),
        }),
    }
}

/// Orders two operands; `None` when either is missing or they cannot be compared. Times
/// compare with text holding RFC 3339 timestamps.
fn compare(index: &LayerIndex, f: &IndexedFeature, a: &Operand, b: &Operand) -> Option<Ordering> {
    let (x, y) = (resolve(index, f, a)?, resolve(index, f, b)?);
    let time = |l: &Lit| match l {
        Lit::Time(t) => Some(*t),
        Lit::Str(s) => parse_rfc3339(s).ok(),
        _ => None,
    };
    match (&x, &y) {
        (Lit::Num(p), Lit::Num(q)) => p.partial_cmp(q),
        (Lit::Bool(p), Lit::Bool(q)) => Some(p.cmp(q)),
        (Lit::Time(_), _) | (_, Lit::Time(_)) => Some(time(&x)?.cmp(&time(&y)?)),
        (Lit::Str(p), Lit::Str(q)) => Some(p.cmp(q)),
        _ => None,
    }
}

impl Like {
    /// SQL LIKE: `%` any run, `_` one character; a backslash escapes either (or itself).
    fn compile(pattern: &str) -> Result<Like, FilterError> {
        let n = pattern.chars().count();
        if n > MAX_LIKE_PATTERN {
            return fail(format!(
                "a LIKE pattern of {n} characters is over the limit of {MAX_LIKE_PATTERN} characters"
            ));
        }
        let mut toks = Vec::with_capacity(n);
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let tok = match c {
                '%' => LikeTok::Any,
                '_' => LikeTok::One,
                '\\' => LikeTok::Char(chars.next().unwrap_or('\\')),
                c => LikeTok::Char(c),
            };
            if !(tok == LikeTok::Any && toks.last() == Some(&LikeTok::Any)) {
                toks.push(tok);
            }
        }
        Ok(Like(toks))
    }

    /// Does `s` match? Greedy, remembering only the last `%`: when a later part fails, that
    /// `%` takes one more character and matching resumes after it. Earlier `%`s never need
    /// to be revisited (whatever they could take, the last one can take instead), so the
    /// cost is at most pattern x value steps, never exponential.
    fn matches(&self, s: &str) -> bool {
        let p = &self.0;
        let (mut si, mut pi) = (0, 0);
        // After the last `%` met: (pattern index after it, value index it resumes at).
        let mut retry: Option<(usize, usize)> = None;
        while si < s.len() {
            let c = s[si..].chars().next().unwrap_or_default();
            match p.get(pi) {
                Some(LikeTok::Any) => {
                    pi += 1;
                    retry = Some((pi, si));
                    continue;
                }
                Some(LikeTok::One) => {
                    si += c.len_utf8();
                    pi += 1;
                    continue;
                }
                Some(LikeTok::Char(want)) if *want == c => {
                    si += c.len_utf8();
                    pi += 1;
                    continue;
                }
                _ => {}
            }
            let Some((after, from)) = retry else {
                return false;
            };
            let skipped = s[from..].chars().next().unwrap_or_default();
            let from = from + skipped.len_utf8();
            retry = Some((after, from));
            (pi, si) = (after, from);
        }
        p[pi..].iter().all(|t| *t == LikeTok::Any)
    }
}

fn to_geometry(g: ProjectedGeometry) -> Geometry<f64> {
    match g {
        ProjectedGeometry::Points(m) => Geometry::MultiPoint(m),
        ProjectedGeometry::Lines(m) => Geometry::MultiLineString(m),
        ProjectedGeometry::Polygons(m) => Geometry::MultiPolygon(m),
    }
}

fn spatial(
    kind: Spatial,
    feature: &ProjectedGeometry,
    literal: &Literal,
    literal_box: &Rect3857,
) -> bool {
    // Cheap rejection on the boxes first.
    let Some(a) = feature.bounds() else {
        return false;
    };
    if !a.intersects(literal_box) {
        return kind == Spatial::Disjoint;
    }
    // The matrix relates the literal to the feature: "the feature is within the literal"
    // reads "the literal contains the feature".
    let m = match feature {
        ProjectedGeometry::Points(g) => literal.0.relate(g),
        ProjectedGeometry::Lines(g) => literal.0.relate(g),
        ProjectedGeometry::Polygons(g) => literal.0.relate(g),
    };
    match kind {
        Spatial::Intersects => m.is_intersects(),
        Spatial::Disjoint => m.is_disjoint(),
        Spatial::Within => m.is_contains(),
        Spatial::Contains => m.is_within(),
    }
}

fn temporal(kind: Temporal, a: &TimeRange, b: &TimeRange) -> bool {
    let lo = |t: Option<i64>| t.unwrap_or(i64::MIN);
    let hi = |t: Option<i64>| t.unwrap_or(i64::MAX);
    match kind {
        Temporal::Intersects => a.overlaps(b),
        Temporal::Before => hi(a.end) < lo(b.start),
        Temporal::After => lo(a.start) > hi(b.end),
        Temporal::During => lo(b.start) < lo(a.start) && hi(a.end) < hi(b.end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Feature, FeatureId, Properties, StoredFeature};

    fn def() -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("spots.toml"),
            "title = \"S\"\ngeometry = \"point\"\nproperties = [\"name\", \"n\", \"status\", \"from\", \"to\"]\ntime = { start = \"from\", end = \"to\" }\n",
        )
        .unwrap()
    }

    fn index() -> LayerIndex {
        let fs = (0..10)
            .map(|i| {
                let mut p = Properties::new();
                p.insert("name".into(), format!("Spot {i}").into());
                p.insert("n".into(), i.into());
                if i % 3 != 0 {
                    p.insert(
                        "status".into(),
                        if i % 2 == 0 { "open" } else { "closed" }.into(),
                    );
                }
                p.insert(
                    "from".into(),
                    format!("2026-0{}-01T00:00:00Z", 1 + i % 9).into(),
                );
                p.insert(
                    "to".into(),
                    format!("2026-0{}-15T00:00:00Z", 1 + i % 9).into(),
                );
                StoredFeature {
                    id: FeatureId(i),
                    version: 0,
                    feature: Feature {
                        geometry: geo::Point::new(24.9 + i as f64 * 0.01, 60.1).into(),
                        properties: p,
                    },
                }
            })
            .collect();
        LayerIndex::build(&def(), fs)
    }

    fn ids(text: &str, lang: &str) -> Vec<u64> {
        let idx = index();
        let f = Filter::parse(&def(), &idx, text, lang).unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut v: Vec<u64> = idx
            .features()
            .filter(|x| f.matches(&idx, x))
            .map(|x| x.id.0)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(ids("n > 6", "cql2-text"), [7, 8, 9]);
        assert_eq!(
            ids("n >= 2 AND n < 4 OR name = 'Spot 9'", "cql2-text"),
            [2, 3, 9]
        );
        assert_eq!(ids("NOT (n <> 5)", "cql2-text"), [5]);
        assert_eq!(ids("n BETWEEN 3 AND 5", "cql2-text"), [3, 4, 5]);
        assert_eq!(ids("n NOT BETWEEN 1 AND 8", "cql2-text"), [0, 9]);
        assert_eq!(ids("n IN (1, 4, 11)", "cql2-text"), [1, 4]);
        assert_eq!(ids("status IS NULL", "cql2-text"), [0, 3, 6, 9]);
        assert_eq!(
            ids("status IS NOT NULL AND status = 'open'", "cql2-text"),
            [2, 4, 8]
        );
        assert_eq!(
            ids("name LIKE 'Spot _' AND name NOT LIKE '%7'", "cql2-text").len(),
            9
        );
    }

    #[test]
    fn spatial_and_temporal_functions() {
        assert_eq!(
            ids(
                "S_INTERSECTS(geometry, BBOX(24.905, 60.0, 24.935, 60.2))",
                "cql2-text"
            ),
            [1, 2, 3]
        );
        assert_eq!(
            ids(
                "S_WITHIN(geometry, POLYGON((24.905 60.0, 24.935 60.0, 24.935 60.2, 24.905 60.2, 24.905 60.0)))",
                "cql2-text"
            ),
            [1, 2, 3]
        );
        assert_eq!(
            ids(
                "S_DISJOINT(geometry, BBOX(24.905, 60.0, 24.995, 60.2))",
                "cql2-text"
            ),
            [0]
        );
        assert_eq!(
            ids(
                "S_INTERSECTS(geometry, MULTIPOLYGON(((24.915 60.05, 24.925 60.05, 24.925 60.15, 24.915 60.15, 24.915 60.05))))",
                "cql2-text"
            ),
            [2]
        );
        assert_eq!(
            ids("S_CONTAINS(geometry, POINT(24.9 60.1))", "cql2-text"),
            [0]
        );
        assert_eq!(
            ids(
                "T_BEFORE(from, TIMESTAMP('2026-02-10T00:00:00Z'))",
                "cql2-text"
            ),
            [0, 9]
        );
        assert_eq!(
            ids(
                "T_INTERSECTS(INTERVAL(from, to), DATE('2026-03-05'))",
                "cql2-text"
            ),
            [2]
        );
        assert_eq!(
            ids(
                "T_DURING(from, INTERVAL('2026-01-20', '2026-04-30'))",
                "cql2-text"
            ),
            [1, 2, 3]
        );
        assert_eq!(
            ids(
                "T_AFTER(to, TIMESTAMP('2026-08-20T00:00:00Z'))",
                "cql2-text"
            ),
            [8]
        );
    }

    #[test]
    fn cql2_json_means_the_same() {
        let json = r#"{"op":"and","args":[{"op":">","args":[{"property":"n"},2]},
            {"op":"s_intersects","args":[{"property":"geometry"},{"bbox":[24.905,60.0,24.955,60.2]}]},
            {"op":"in","args":[{"property":"status"},["open","closed"]]}]}"#;
        assert_eq!(ids(json, "cql2-json"), [4, 5]);
    }

    #[test]
    fn errors_say_what_and_where() {
        let idx = index();
        let err = |t: &str| {
            Filter::parse(&def(), &idx, t, "cql2-text")
                .unwrap_err()
                .to_string()
        };
        assert!(err("n > ").contains("ends"), "{}", err("n > "));
        assert!(err("n >> 3").contains("character 4"), "{}", err("n >> 3"));
        assert!(err("colour = 'red'").contains("unknown property \"colour\""));
        assert!(err("n = 'five'").contains("cannot compare"));
        let e = err("S_INTERSECTS(geometry, POLYGON((1 2, 3 4)))");
        assert!(e.contains("invalid"), "{e}");
        let e = err("S_INTERSECTS(geometry, POLYGON((1 2, 3 x)))");
        assert!(e.contains("not valid WKT"), "{e}");
        // Found by fuzzing: latitudes past the poles, clamped by Web Mercator, made a
        // literal that geo's relate panicked on.
        let e = err(
            "S_INTERSECTS(geometry, POLYGON((24.9 60.1,2.60 294.1,24962. 0.12, 4.9 60.12,24.9 60.1),(24.905 60.105,24.905 60.11,24.91 1e308,48.905 60.104)))",
        );
        assert!(e.contains("outside -180..180, -90..90"), "{e}");
        assert!(err("name = 'unterminated").contains("unterminated"));
        assert!(err("T_BEFORE(name, DATE('2026-01-01'))").contains("time property"));
        let e = Filter::parse(&def(), &idx, "{", "cql2-json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = Filter::parse(&def(), &idx, "n > 1", "sql")
            .unwrap_err()
            .to_string();
        assert!(e.contains("filter-lang"), "{e}");
    }

    #[test]
    fn a_spatial_predicate_gives_the_index_a_box() {
        let idx = index();
        let f = Filter::parse(
            &def(),
            &idx,
            "n > 1 AND S_INTERSECTS(geometry, BBOX(24.9, 60, 25, 61))",
            "cql2-text",
        )
        .unwrap();
        assert!(f.prefilter().is_some());
        let f = Filter::parse(
            &def(),
            &idx,
            "n > 1 OR S_INTERSECTS(geometry, BBOX(24.9, 60, 25, 61))",
            "cql2-text",
        )
        .unwrap();
        assert!(f.prefilter().is_none());
    }

    /// The plain backtracking reading of LIKE (exponential on hostile patterns), as the
    /// reference on small inputs.
    fn like_reference(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| like_reference(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && like_reference(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => {
                s.first() == Some(&p[1]) && like_reference(&s[1..], &p[2..])
            }
            Some(c) => s.first() == Some(c) && like_reference(&s[1..], &p[1..]),
        }
    }

    #[test]
    fn like_agrees_with_the_backtracking_reference() {
        let mut rng = crate::generate::rng::Rng::new(7);
        let pick = |rng: &mut crate::generate::rng::Rng, alphabet: &[char], n: usize| -> String {
            (0..n)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect()
        };
        for _ in 0..20_000 {
            let pn = rng.below(7) as usize;
            let sn = rng.below(9) as usize;
            let pattern = pick(&mut rng, &['a', 'b', 'ä', '%', '_', '\\'], pn);
            let value = pick(&mut rng, &['a', 'b', 'ä', '%', '\\'], sn);
            let want = like_reference(
                &value.chars().collect::<Vec<_>>(),
                &pattern.chars().collect::<Vec<_>>(),
            );
            let got = Like::compile(&pattern).unwrap().matches(&value);
            assert_eq!(got, want, "{value:?} LIKE {pattern:?}");
        }
    }

    /// Runs `work` on a thread with the stack of a compute thread (2 MiB), and fails if it
    /// takes more than a minute: the hostile inputs below took minutes to forever (or a
    /// stack overflow) before they were bounded.
    fn finishes<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || tx.send(work()))
            .unwrap();
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the work did not finish")
    }

    #[test]
    fn hostile_filters_are_refused_or_cheap() {
        // Deep nesting, on a small stack: a clear error that names the limit.
        for text in [
            format!("{}n = 1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("{}n = 1", "NOT ".repeat(3000)),
            format!(
                "T_INTERSECTS(from, {}'2026-01-01', '2026-01-02'{})",
                "INTERVAL(".repeat(1000),
                ")".repeat(1000)
            ),
        ] {
            let e =
                finishes(move || Filter::parse(&def(), &index(), &text, "cql2-text").map(|_| ()))
                    .unwrap_err();
            assert!(e.0.contains("limit of 64 levels"), "{e}");
        }
        let json = format!(
            "{}true{}",
            "{\"op\":\"not\",\"args\":[".repeat(200),
            "]}".repeat(200)
        );
        let e = finishes(move || Filter::parse(&def(), &index(), &json, "cql2-json").map(|_| ()))
            .unwrap_err();
        assert!(e.0.contains("limit of 64 levels"), "{e}");
        // Too long.
        let long = format!("name = '{}'", "x".repeat(20_000));
        let e = Filter::parse(&def(), &index(), &long, "cql2-text").unwrap_err();
        assert!(e.0.contains("limit of 16384 bytes"), "{e}");
        // Nesting at the limit is still answered.
        let ok = format!("{}n = 1{}", "(".repeat(60), ")".repeat(60));
        assert!(finishes(move || Filter::parse(
            &def(),
            &index(),
            &ok,
            "cql2-text"
        )
        .is_ok()));
        // A LIKE pattern that backtracks exponentially in a naive matcher.
        let pattern = format!("{}x", "%a".repeat(200));
        let value = "a".repeat(5000);
        assert!(!finishes(move || Like::compile(&pattern)
            .unwrap()
            .matches(&value)));
        let e = Filter::parse(
            &def(),
            &index(),
            &format!("name LIKE '{}'", "%".repeat(2000)),
            "cql2-text",
        )
        .unwrap_err();
        assert!(e.0.contains("limit of 1024 characters"), "{e}");
    }
}
