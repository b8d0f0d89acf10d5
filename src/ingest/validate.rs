//! Checks a read feature against its layer before it is stored: the geometry kind, finite
//! coordinates inside WGS84 bounds, OGC validity (closed and non-self-intersecting rings,
//! holes inside their shell), and RFC 3339 validity fields. Keeps only the layer's declared
//! properties.
//!
//! A geometry that is not OGC-valid is either refused, with a reason that says whether it
//! could be repaired, or made valid by [`super::repair`] (ingest does that by default).

use geo::{CoordsIter, Validation};

use crate::config::LayerDef;
use crate::ingest::repair::{locate, make_valid};
use crate::ingest::{Position, RecordError};
use crate::model::time::parse_rfc3339;
use crate::model::{Feature, GeometryKind, Properties, TimeRange};
use crate::store::NewFeature;

/// What to do with a geometry that is not OGC-valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Refuse the record. The reason says whether the geometry could be repaired and, when
    /// it could, `how` the sender asks for that (e.g. "resend with ?repair=true").
    Refuse { how: &'static str },
    /// Make it valid and keep it; refuse only a geometry with no area (or length) left.
    Repair,
}

/// A feature that passed: as the store will keep it, and what was repaired (the first
/// thing: a geometry made valid, or a value of the wrong type dropped).
#[derive(Debug, Clone)]
pub struct Checked {
    pub feature: NewFeature,
    pub repaired: Option<RecordError>,
}

/// The feature as the store will keep it, or what is wrong with it and where. An invalid
/// geometry is refused (see [`validate_with`] to repair it).
pub fn validate(
    def: &LayerDef,
    position: &Position,
    feature: Feature,
) -> Result<NewFeature, RecordError> {
    validate_with(def, position, feature, OnInvalid::Refuse { how: "" }).map(|c| c.feature)
}

/// True when a JSON value has U+0000 in a string, at any depth.
fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Like [`validate`], with a choice of what to do with an invalid geometry. The repair
/// runs only on a geometry that fails validation (its cost is in [`super::repair`]).
pub fn validate_with(
    def: &LayerDef,
    position: &Position,
    mut feature: Feature,
    on_invalid: OnInvalid,
) -> Result<Checked, RecordError> {
    let err = |field: &str, reason: String| RecordError::new(position.clone(), Some(field), reason);
    let g = &feature.geometry;
    match GeometryKind::of(g) {
        Some(kind) if kind == def.geometry => {}
        Some(kind) => {
            return Err(err(
                "geometry",
                format!("is a {kind}; layer {} holds {}s", def.id, def.geometry),
            ));
        }
        None => {
            return Err(err(
                "geometry",
                format!(
                    "is a mixed collection; layer {} holds {}s",
                    def.id, def.geometry
                ),
            ));
        }
    }
    if g.coords_count() == 0 {
        return Err(err("geometry", "is empty".into()));
    }
    for (i, c) in g.coords_iter().enumerate() {
        if !c.x.is_finite() || !c.y.is_finite() {
            return Err(err(
                "geometry",
                format!("coordinate {i} is not a finite number"),
            ));
        }
        if !(-180.0..=180.0).contains(&c.x) {
            return Err(err(
                "geometry",
                format!("coordinate {i} has longitude {} outside -180..180", c.x),
            ));
        }
        if !(-90.0..=90.0).contains(&c.y) {
            return Err(err(
                "geometry",
                format!("coordinate {i} has latitude {} outside -90..90", c.y),
            ));
        }
    }
    let mut repaired = None;
    // geo's validation relates a polygon's rings to each other through its relate graph,
    // which panics on some shapes ("topology position conflict"); such a shape is
    // refused as invalid, not repaired, rather than taking the ingest or request down.
    let problems = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.validation_errors()))
        .map_err(|_| {
            err(
                "geometry",
                "is invalid: its rings could not be related to each other".into(),
            )
        })?;
    if let Some(problem) = problems.first() {
        let at = locate(g, problem)
            .map(|c| format!(" at ({:.6}, {:.6})", c.x, c.y))
            .unwrap_or_default();
        let problem = format!("is invalid: {problem}{at}");
        match (make_valid(g), on_invalid) {
            (Ok(valid), OnInvalid::Repair) => {
                feature.geometry = valid;
                repaired = Some(err("geometry", format!("{problem}; repaired")));
            }
            (Ok(_), OnInvalid::Refuse { how }) => {
                let how = if how.is_empty() {
                    String::new()
                } else {
                    format!(": {how}")
                };
                return Err(err(
                    "geometry",
                    format!("{problem}; it can be repaired{how}"),
                ));
            }
            (Err(why), _) => {
                return Err(err(
                    "geometry",
                    format!("{problem}; it cannot be repaired: {why}"),
                ));
            }
        }
    }

    let mut kept = Properties::new();
    let mut all = feature.properties;
    for (i, name) in def.properties.iter().enumerate() {
        if let Some(v) = all.remove(name) {
            // PostgreSQL's jsonb cannot hold U+0000, so no store takes it (one rule for
            // both stores, named here rather than failing in the database).
            if has_nul(&v) {
                let reason = "contains the NUL character (\\u0000), which the store cannot keep";
                match on_invalid {
                    OnInvalid::Refuse { .. } => return Err(err(name, reason.into())),
                    OnInvalid::Repair => {
                        if repaired.is_none() {
                            repaired = Some(err(name, format!("{reason}; dropped")));
                        }
                        continue;
                    }
                }
            }
            // Files carry text (CSV cells, OSM tags): a value is made of the declared type
            // where that loses nothing, and refused otherwise.
            // Repairing drops the one value and keeps the feature, as a map would rather
            // show the building without its height than not at all.
            let Some(t) = def.declared_type(i) else {
                kept.insert(name.clone(), v);
                continue;
            };
            let v = match (t.coerce(v), on_invalid) {
                (Ok(v), _) => v,
                (Err(reason), OnInvalid::Refuse { .. }) => return Err(err(name, reason)),
                (Err(reason), OnInvalid::Repair) => {
                    if repaired.is_none() {
                        repaired = Some(err(name, format!("{reason}; dropped")));
                    }
                    continue;
                }
            };
            kept.insert(name.clone(), v);
        }
    }
    let mut time = TimeRange::default();
    if let Some(fields) = &def.time {
        let read = |name: &str| -> Result<Option<i64>, RecordError> {
            match kept.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => {
                    parse_rfc3339(s).map(Some).map_err(|e| err(name, e))
                }
                Some(other) => Err(err(
                    name,
                    format!("{other} is not an RFC 3339 timestamp string"),
                )),
            }
        };
        time.start = read(&fields.start)?;
        time.end = match &fields.end {
            Some(e) => read(e)?,
            None => time.start,
        };
        if let (Some(s), Some(e)) = (time.start, time.end)
            && e < s
        {
            return Err(err(
                fields.end.as_deref().unwrap_or(&fields.start),
                "ends before it starts".into(),
            ));
        }
    }
    Ok(Checked {
        feature: NewFeature {
            feature: Feature {
                geometry: feature.geometry,
                properties: kept,
            },
            time,
        },
        repaired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn def(geometry: &str) -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("permits.toml"),
            &format!(
                "title = \"P\"\ngeometry = \"{geometry}\"\nproperties = [\"status\", \"from\", \"to\"]\ntime = {{ start = \"from\", end = \"to\" }}\n"
            ),
        )
        .unwrap()
    }

    fn feature(geometry: geo::Geometry<f64>, props: serde_json::Value) -> Feature {
        Feature {
            geometry,
            properties: props.as_object().unwrap().clone(),
        }
    }

    const AT: Position = Position::Line(7);

    #[test]
    fn undeclared_properties_are_dropped_and_time_is_read() {
        let f = feature(
            geo::Point::new(24.9, 60.1).into(),
            serde_json::json!({"status": "open", "from": "2026-01-01", "to": null, "junk": 1}),
        );
        let nf = validate(&def("point"), &AT, f).unwrap();
        assert_eq!(nf.feature.properties.len(), 3);
        assert!(!nf.feature.properties.contains_key("junk"));
        assert_eq!(
            nf.time,
            TimeRange {
                start: Some(1_767_225_600),
                end: None
            }
        );
    }

    #[test]
    fn declared_types_coerce_text_and_refuse_what_does_not_fit() {
        let def = LayerDef::from_toml(
            std::path::Path::new("buildings.toml"),
            "title = \"B\"\ngeometry = \"point\"\n\
             properties = { name = \"string\", levels = \"integer\", open = \"boolean\" }\n",
        )
        .unwrap();
        let at = |props| feature(geo::Point::new(24.9, 60.1).into(), props);
        let nf = validate(
            &def,
            &AT,
            at(serde_json::json!({"name": 12, "levels": "3", "open": "yes"})),
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(nf.feature.properties),
            serde_json::json!({"name": "12", "levels": 3, "open": true})
        );
        let e = validate(&def, &AT, at(serde_json::json!({"levels": "3;4"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 7, field \"levels\": is \"3;4\"; it must be an integer"
        );
        // Repairing keeps the feature without the value, and says so.
        let checked = validate_with(
            &def,
            &AT,
            at(serde_json::json!({"name": "A", "levels": "3;4"})),
            OnInvalid::Repair,
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(checked.feature.feature.properties),
            serde_json::json!({"name": "A"})
        );
        assert_eq!(
            checked.repaired.unwrap().to_string(),
            "line 7, field \"levels\": is \"3;4\"; it must be an integer; dropped"
        );
    }

    #[test]
    fn a_nul_character_in_a_value_is_refused_or_dropped() {
        let f = || {
            feature(
                geo::Point::new(24.9, 60.1).into(),
                serde_json::json!({"status": "open\u{0}now", "from": "2026-01-01"}),
            )
        };
        let e = validate(&def("point"), &AT, f()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("status"));
        assert!(e.reason.contains("NUL"), "{e}");
        let checked = validate_with(&def("point"), &AT, f(), OnInvalid::Repair).unwrap();
        assert!(!checked.feature.feature.properties.contains_key("status"));
        assert!(checked.repaired.unwrap().reason.contains("dropped"));
    }

    #[test]
    fn a_wrong_geometry_kind_names_both_kinds() {
        let f = feature(geo::Point::new(24.9, 60.1).into(), serde_json::json!({}));
        let e = validate(&def("polygon"), &AT, f).unwrap_err();
        assert!(
            e.to_string().contains("line 7")
                && e.reason.contains("point")
                && e.reason.contains("polygons"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_and_non_finite_coordinates_are_refused() {
        for (lon, lat, what) in [
            (200.0, 10.0, "longitude"),
            (10.0, -91.0, "latitude"),
            (f64::NAN, 0.0, "finite"),
        ] {
            let f = feature(geo::Point::new(lon, lat).into(), serde_json::json!({}));
            let e = validate(&def("point"), &AT, f).unwrap_err();
            assert!(e.reason.contains(what), "{e}");
        }
    }

    #[test]
    fn a_self_intersecting_polygon_is_refused() {
        let bowtie =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)];
        let f = feature(bowtie.into(), serde_json::json!({}));
        let e = validate(&def("polygon"), &AT, f).unwrap_err();
        assert!(e.reason.contains("invalid"), "{e}");
    }

    #[test]
    fn a_self_intersecting_polygon_is_repaired_when_asked_and_says_so() {
        let bowtie =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)];
        let f = feature(bowtie.into(), serde_json::json!({"status": "open"}));
        let how = "resend with ?repair=true";
        let e =
            validate_with(&def("polygon"), &AT, f.clone(), OnInvalid::Refuse { how }).unwrap_err();
        assert!(
            e.reason.contains("self-intersection")
                && e.reason
                    .ends_with("it can be repaired: resend with ?repair=true"),
            "{e}"
        );
        let checked = validate_with(&def("polygon"), &AT, f, OnInvalid::Repair).unwrap();
        assert!(checked.feature.feature.geometry.is_valid());
        assert!(matches!(
            checked.feature.feature.geometry,
            geo::Geometry::MultiPolygon(ref mp) if mp.0.len() == 2
        ));
        let note = checked.repaired.unwrap();
        assert!(
            note.to_string()
                .starts_with("line 7, field \"geometry\": is invalid")
                && note.reason.ends_with("; repaired"),
            "{note}"
        );
    }

    #[test]
    fn a_polygon_with_no_area_cannot_be_repaired() {
        let flat = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 0.0)];
        let f = feature(flat.into(), serde_json::json!({}));
        let e = validate_with(&def("polygon"), &AT, f, OnInvalid::Repair).unwrap_err();
        assert!(
            e.reason.contains("it cannot be repaired: no area is left"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_geometry_is_kept_as_it_is() {
        let square =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)];
        let f = feature(square.clone().into(), serde_json::json!({}));
        let checked = validate_with(&def("polygon"), &AT, f, OnInvalid::Repair).unwrap();
        assert!(checked.repaired.is_none());
        assert_eq!(checked.feature.feature.geometry, square.into());
    }

    #[test]
    fn a_bad_timestamp_names_its_field() {
        let f = feature(
            geo::Point::new(24.9, 60.1).into(),
            serde_json::json!({"from": "yesterday"}),
        );
        let e = validate(&def("point"), &AT, f).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("from"));
    }

    #[test]
    fn an_interval_that_ends_before_it_starts_is_refused() {
        let f = feature(
            geo::Point::new(24.9, 60.1).into(),
            serde_json::json!({"from": "2026-02-01", "to": "2026-01-01"}),
        );
        let e = validate(&def("point"), &AT, f).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("to"));
    }
}
