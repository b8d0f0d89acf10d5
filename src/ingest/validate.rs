//! Checks a read feature against its layer before it is stored: the geometry kind, finite
//! coordinates inside WGS84 bounds, OGC validity (closed and non-self-intersecting rings,
//! holes inside their shell), and RFC 3339 validity fields. Keeps only the layer's declared
//! properties.

use geo::{CoordsIter, Validation};

use crate::config::LayerDef;
use crate::ingest::{Position, RecordError};
use crate::model::time::parse_rfc3339;
use crate::model::{Feature, GeometryKind, Properties, TimeRange};
use crate::store::NewFeature;

/// The feature as the store will keep it, or what is wrong with it and where.
pub fn validate(
    def: &LayerDef,
    position: &Position,
    feature: Feature,
) -> Result<NewFeature, RecordError> {
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
    if let Some(problem) = g.validation_errors().first() {
        return Err(err("geometry", format!("is invalid: {problem}")));
    }

    let mut kept = Properties::new();
    let mut all = feature.properties;
    for name in &def.properties {
        if let Some(v) = all.remove(name) {
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
    Ok(NewFeature {
        feature: Feature {
            geometry: feature.geometry,
            properties: kept,
        },
        time,
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
