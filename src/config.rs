//! Layer files: `layers/*.toml` -> raw serde structs -> validated [`LayerDef`].
//!
//! Every problem is reported with the file and the key, and says what is allowed: an unknown
//! key, a bad value, a zoom range that is upside down. Reading the data a layer points at is
//! left to [`crate::ingest`]. A layer file with an `[archive]` table is a tile archive
//! served as it is ([`archive`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::schema::PropertyType;
use crate::model::tag_filter::TagFilter;
use crate::model::{GeometryKind, LayerId};
use crate::tiles::MAX_ZOOM;

mod access;
pub mod archive;
mod thinning;
pub use access::{Access, Right, Rule};
pub use archive::{ArchiveDef, ArchiveKind};
pub use thinning::{DEFAULT_BUDGET_KB, MAX_BUDGET_KB, RankBy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read layer folder {path}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    BadValue {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
    #[error("no layer files (*.toml) in {0}")]
    Empty(PathBuf),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    title: String,
    #[serde(default)]
    description: String,
    geometry: GeometryKind,
    #[serde(default)]
    minzoom: Option<u8>,
    #[serde(default)]
    maxzoom: Option<u8>,
    #[serde(default)]
    properties: RawProperties,
    #[serde(default)]
    time: Option<RawTime>,
    #[serde(default)]
    feature_minzoom: Option<RawFeatureMinzoom>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    cluster: Option<RawCluster>,
    #[serde(default)]
    budget_kb: Option<u32>,
    #[serde(default)]
    rank_by: Option<thinning::RawRankBy>,
    #[serde(default)]
    source: Option<RawSource>,
    #[serde(default)]
    style: Option<RawStyle>,
    #[serde(default)]
    access: Option<access::RawAccess>,
}

/// `properties` as written: a table of names and declared types in file order
/// (`{ name = "string", levels = "integer" }`), or the older list of names whose types
/// are left to the data.
#[derive(Debug, Default)]
enum RawProperties {
    #[default]
    None,
    List(Vec<String>),
    Typed(Vec<(String, String)>),
}

impl<'de> Deserialize<'de> for RawProperties {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawProperties;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of property names and types, such as { name = \"string\", levels = \"integer\" }")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(RawProperties::List(names))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut typed = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    typed.push(entry);
                }
                Ok(RawProperties::Typed(typed))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    start: String,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatureMinzoom {
    property: String,
    values: std::collections::BTreeMap<String, u8>,
    default: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(default = "default_radius_px")]
    radius_px: u16,
    maxzoom: u8,
    #[serde(default)]
    sum: Vec<String>,
}

fn default_radius_px() -> u16 {
    40
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    path: PathBuf,
    #[serde(default)]
    osm: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// The property names that hold a feature's validity interval (RFC 3339 timestamps).
/// A layer with only `start` holds instants (an accident happens at one time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFields {
    pub start: String,
    pub end: Option<String>,
}

/// A zoom for each feature from one of its properties, so that a layer can thin out at low
/// zooms the way maps do: major roads from z12, every footway only from z14.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureMinzoom {
    /// Index of the deciding property in the layer's `properties`.
    pub property: usize,
    /// First zoom for each value (compared as text); ordered, so that the definition prints
    /// the same in every process (index snapshots fingerprint it).
    pub values: std::collections::BTreeMap<String, u8>,
    /// First zoom for values not listed, and for features without the property.
    pub default: u8,
}

impl FeatureMinzoom {
    /// The zoom from which a feature with these properties is drawn.
    pub fn of(&self, keys: &[String], properties: &crate::model::Properties) -> u8 {
        let value = properties.get(&keys[self.property]).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        });
        value
            .and_then(|v| self.values.get(&v).copied())
            .unwrap_or(self.default)
    }
}

/// A point layer's clusters (see [`crate::cluster`]): at zooms from the layer's minzoom to
/// `maxzoom`, tiles carry groups of nearby points instead of the points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDef {
    /// Points closer than this many pixels (of a 512-pixel tile, as MapLibre shows a vector
    /// tile) are grouped.
    pub radius_px: u16,
    /// The highest zoom with clusters; the points themselves from `maxzoom + 1` on.
    pub maxzoom: u8,
    /// Numeric properties (indexes into the layer's `properties`) that clusters add up.
    pub sum: Vec<usize>,
}

/// Largest `cluster.radius_px`: a radius of a whole tile would draw one blob.
pub const MAX_CLUSTER_RADIUS_PX: u16 = 256;

/// What a first start ingests into an empty store.
#[derive(Debug, Clone)]
pub struct SourceDef {
    /// Relative paths are relative to the working directory, like the CLI's paths.
    pub path: PathBuf,
    pub osm: Option<TagFilter>,
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleDef {
    /// `#rrggbb`.
    pub color: String,
    /// Group on the map page: planning, transport, permits, events, services, citizens.
    pub theme: String,
    /// The property whose text labels the features on the map (along lines for a line
    /// layer), if any: one of the layer's properties.
    pub label: Option<String>,
}

/// A validated layer definition.
#[derive(Debug, Clone)]
pub struct LayerDef {
    pub id: LayerId,
    pub title: String,
    pub description: String,
    pub geometry: GeometryKind,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// Attributes kept at ingest, in this order; also the MVT key table of the layer.
    pub properties: Vec<String>,
    /// The declared type of each of `properties` (same order); `None` for a layer file
    /// that lists names only, whose types are then read from the data.
    pub types: Option<Vec<PropertyType>>,
    pub time: Option<TimeFields>,
    pub feature_minzoom: Option<FeatureMinzoom>,
    pub private: bool,
    pub cluster: Option<ClusterDef>,
    /// This layer's part of any tile, in KiB before compression, as the file declares it
    /// (0: no budget); `None` takes the server's (see [`LayerDef::budget_bytes`]).
    pub budget_kb: Option<u32>,
    /// What decides which features give way first when a tile is over the budget; `None`
    /// for the geometry's own order (see [`crate::index::thinning`]).
    pub rank_by: Option<RankBy>,
    pub source: Option<SourceDef>,
    pub style: StyleDef,
    /// What signed-in residents and staff may do here (`[access]`).
    pub access: Access,
}

impl LayerDef {
    /// The tile size budget of this layer's part of a tile, in bytes before compression;
    /// `None` when it has none.
    pub fn budget_bytes(&self) -> Option<usize> {
        match self.budget_kb.unwrap_or(DEFAULT_BUDGET_KB) {
            0 => None,
            kb => Some(kb as usize * 1024),
        }
    }

    /// The declared type of the property at `index` of [`LayerDef::properties`]; `None`
    /// when the layer file lists names only.
    pub fn declared_type(&self, index: usize) -> Option<PropertyType> {
        self.types.as_ref().and_then(|t| t.get(index).copied())
    }

    /// Parses one layer file; `path`'s stem is the layer id.
    pub fn from_toml(path: &Path, text: &str) -> Result<LayerDef, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let bad = |key: &'static str, message: String| ConfigError::BadValue {
            path: path.to_owned(),
            key,
            message,
        };
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| invalid("file name is not valid UTF-8".into()))?;
        let id = LayerId::new(stem).map_err(|e| invalid(e.to_string()))?;
        let raw: RawLayer = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;

        let minzoom = raw.minzoom.unwrap_or(0);
        let maxzoom = raw.maxzoom.unwrap_or(16);
        if minzoom > MAX_ZOOM {
            return Err(bad("minzoom", format!("{minzoom} is above {MAX_ZOOM}")));
        }
        if maxzoom > MAX_ZOOM {
            return Err(bad("maxzoom", format!("{maxzoom} is above {MAX_ZOOM}")));
        }
        if minzoom > maxzoom {
            return Err(bad(
                "minzoom",
                format!("{minzoom} is above maxzoom {maxzoom}"),
            ));
        }
        let (properties, types) = match raw.properties {
            RawProperties::None => (Vec::new(), Some(Vec::new())),
            RawProperties::List(names) => (names, None),
            RawProperties::Typed(typed) => {
                let mut names = Vec::with_capacity(typed.len());
                let mut types = Vec::with_capacity(typed.len());
                for (name, t) in typed {
                    let Some(t) = PropertyType::parse(&t) else {
                        return Err(bad(
                            "properties",
                            format!(
                                "{name:?} has type {t:?}; the types are {}",
                                PropertyType::NAMES.join(", ")
                            ),
                        ));
                    };
                    names.push(name);
                    types.push(t);
                }
                (names, Some(types))
            }
        };
        let mut seen = std::collections::HashSet::new();
        for p in &properties {
            if p.is_empty() {
                return Err(bad("properties", "an empty name is not allowed".into()));
            }
            if !seen.insert(p.as_str()) {
                return Err(bad("properties", format!("{p:?} is listed twice")));
            }
        }
        if raw.title.trim().is_empty() {
            return Err(bad("title", "must not be empty".into()));
        }
        let time = raw.time.map(|t| TimeFields {
            start: t.start,
            end: t.end,
        });
        if let Some(t) = &time {
            for f in std::iter::once(&t.start).chain(t.end.as_ref()) {
                let Some(i) = properties.iter().position(|p| p == f) else {
                    return Err(bad(
                        "time",
                        format!("{f:?} is not one of the layer's properties"),
                    ));
                };
                if let Some(t) = types.as_ref().map(|types| types[i])
                    && t != PropertyType::DateTime
                {
                    return Err(bad(
                        "time",
                        format!("{f:?} is declared {t}; a time field must be a datetime"),
                    ));
                }
            }
        }
        let feature_minzoom = match raw.feature_minzoom {
            None => None,
            Some(r) => {
                let property = properties
                    .iter()
                    .position(|p| *p == r.property)
                    .ok_or_else(|| {
                        bad(
                            "feature_minzoom.property",
                            format!("{:?} is not one of the layer's properties", r.property),
                        )
                    })?;
                for (value, z) in r
                    .values
                    .iter()
                    .map(|(v, z)| (v.as_str(), *z))
                    .chain([("default", r.default)])
                {
                    if !(minzoom..=maxzoom).contains(&z) {
                        return Err(bad(
                            "feature_minzoom",
                            format!(
                                "{value} = {z} is outside the layer's zooms {minzoom}..={maxzoom}"
                            ),
                        ));
                    }
                }
                Some(FeatureMinzoom {
                    property,
                    values: r.values.into_iter().collect(),
                    default: r.default,
                })
            }
        };
        let cluster = match raw.cluster {
            None => None,
            Some(c) => Some(
                cluster_def(
                    c,
                    raw.geometry,
                    minzoom,
                    maxzoom,
                    &properties,
                    &types,
                    feature_minzoom.is_some(),
                )
                .map_err(|(key, m)| bad(key, m))?,
            ),
        };
        let budget_kb = match raw.budget_kb {
            None => None,
            Some(kb) => Some(thinning::budget_kb(kb).map_err(|m| bad("budget_kb", m))?),
        };
        let rank_by = match raw.rank_by {
            None => None,
            Some(r) => {
                Some(thinning::rank_by(r, &properties, &types).map_err(|m| bad("rank_by", m))?)
            }
        };
        let access = match raw.access {
            None => Access::default(),
            Some(a) => access::access(a, &properties, &types).map_err(|(k, m)| bad(k, m))?,
        };
        let source = match raw.source {
            None => None,
            Some(s) => {
                let osm = match s.osm {
                    None => None,
                    Some(f) => Some(f.parse::<TagFilter>().map_err(|e| bad("source.osm", e))?),
                };
                if let Some(f) = &s.format
                    && !FORMATS.contains(&f.as_str())
                {
                    return Err(bad(
                        "source.format",
                        format!("{f:?} is not one of {}", FORMATS.join(", ")),
                    ));
                }
                Some(SourceDef {
                    path: s.path,
                    osm,
                    format: s.format,
                })
            }
        };
        let raw_style = raw.style.unwrap_or(RawStyle {
            color: None,
            theme: None,
            label: None,
        });
        let color = raw_style.color.unwrap_or_else(|| "#3388ff".into());
        if !is_hex_color(&color) {
            return Err(bad(
                "style.color",
                format!("{color:?} is not a #rrggbb colour"),
            ));
        }
        let theme = raw_style.theme.unwrap_or_else(|| "services".into());
        if !THEMES.contains(&theme.as_str()) {
            return Err(bad(
                "style.theme",
                format!("{theme:?} is not one of {}", THEMES.join(", ")),
            ));
        }
        if let Some(label) = &raw_style.label
            && !properties.contains(label)
        {
            return Err(bad(
                "style.label",
                format!("{label:?} is not one of the layer's properties"),
            ));
        }
        Ok(LayerDef {
            id,
            title: raw.title,
            description: raw.description,
            geometry: raw.geometry,
            minzoom,
            maxzoom,
            properties,
            types,
            time,
            feature_minzoom,
            private: raw.private,
            cluster,
            budget_kb,
            rank_by,
            source,
            style: StyleDef {
                color,
                theme,
                label: raw_style.label,
            },
            access,
        })
    }
}

/// Checks a layer's `cluster` table: a point layer, a radius of 1 to
/// [`MAX_CLUSTER_RADIUS_PX`], a zoom inside the layer's that leaves a zoom for the points, and
/// sums over declared numeric properties.
fn cluster_def(
    c: RawCluster,
    geometry: GeometryKind,
    minzoom: u8,
    maxzoom: u8,
    properties: &[String],
    types: &Option<Vec<PropertyType>>,
    has_feature_minzoom: bool,
) -> Result<ClusterDef, (&'static str, String)> {
    if geometry != GeometryKind::Point {
        return Err((
            "cluster",
            format!(
                "only point layers cluster; this layer is {}",
                geometry.as_str()
            ),
        ));
    }
    if has_feature_minzoom {
        return Err((
            "cluster",
            "a clustered layer cannot also have feature_minzoom: its clusters decide what shows up to the cluster maxzoom".into(),
        ));
    }
    if !(1..=MAX_CLUSTER_RADIUS_PX).contains(&c.radius_px) {
        return Err((
            "cluster.radius_px",
            format!(
                "{} is outside 1..={MAX_CLUSTER_RADIUS_PX} (pixels of a 512-pixel tile)",
                c.radius_px
            ),
        ));
    }
    if !(minzoom..maxzoom).contains(&c.maxzoom) {
        return Err((
            "cluster.maxzoom",
            format!(
                "{} must be from the layer's minzoom {minzoom} to below its maxzoom {maxzoom}, \
                 so that some zoom shows the points",
                c.maxzoom
            ),
        ));
    }
    let mut sum = Vec::with_capacity(c.sum.len());
    for name in &c.sum {
        let Some(i) = properties.iter().position(|p| p == name) else {
            return Err((
                "cluster.sum",
                format!("{name:?} is not one of the layer's properties"),
            ));
        };
        let numeric = types
            .as_ref()
            .is_some_and(|t| matches!(t[i], PropertyType::Integer | PropertyType::Number));
        if !numeric {
            return Err((
                "cluster.sum",
                format!("{name:?} must be declared \"integer\" or \"number\" to be summed"),
            ));
        }
        if sum.contains(&i) {
            return Err(("cluster.sum", format!("{name:?} is listed twice")));
        }
        sum.push(i);
    }
    Ok(ClusterDef {
        radius_px: c.radius_px,
        maxzoom: c.maxzoom,
        sum,
    })
}

/// The input formats a layer's `source.format` (and `ingest --format`) may name.
pub const FORMATS: &[&str] = &["geojson", "geojsonseq", "csv", "osm", "gpkg", "shp", "fgb"];

/// Map page groups a layer can belong to.
pub const THEMES: &[&str] = &[
    "planning",
    "transport",
    "permits",
    "events",
    "services",
    "citizens",
];

fn is_hex_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// One layer file: a store layer, or a tile archive served as it is.
// One value per layer file, once at start: boxing the bigger variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LayerFile {
    Live(LayerDef),
    Archive(ArchiveDef),
}

/// Parses one layer file of either kind: one with an `[archive]` table is an archive layer.
pub fn parse_layer_file(path: &Path, text: &str) -> Result<LayerFile, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if table.contains_key("archive") {
        ArchiveDef::from_toml(path, text, &table).map(LayerFile::Archive)
    } else {
        LayerDef::from_toml(path, text).map(LayerFile::Live)
    }
}

/// The layers of a layer folder, each kind sorted by id (ids are file stems, so unique
/// across both).
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// Store layers: features, indexed and cut into tiles.
    pub live: Vec<LayerDef>,
    /// Tile archives served as they are.
    pub archives: Vec<ArchiveDef>,
}

/// Reads every `*.toml` in `dir`, sorted by layer id.
pub fn load_layers(dir: &Path) -> Result<Layers, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Folder {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Folder {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(ConfigError::Empty(dir.to_owned()));
    }
    let mut layers = Layers::default();
    for path in &paths {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        match parse_layer_file(path, &text)? {
            LayerFile::Live(def) => layers.live.push(def),
            LayerFile::Archive(def) => layers.archives.push(def),
        }
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LayerDef, ConfigError> {
        LayerDef::from_toml(Path::new("layers/schools.toml"), text)
    }

    #[test]
    fn a_complete_layer_file_parses() {
        let def = parse(
            r##"
title = "Schools"
description = "Schools (OpenStreetMap)"
geometry = "point"
minzoom = 12
maxzoom = 16
properties = ["name", "valid_from"]
time = { start = "valid_from" }
[source]
path = "fixtures/helsinki.osm.pbf"
osm = "amenity=school"
[style]
color = "#d95f02"
theme = "services"
"##,
        )
        .unwrap();
        assert_eq!(def.id.as_str(), "schools");
        assert_eq!(def.geometry, GeometryKind::Point);
        assert_eq!((def.minzoom, def.maxzoom), (12, 16));
        assert_eq!(def.time.unwrap().start, "valid_from");
        assert!(def.source.unwrap().osm.is_some());
    }

    #[test]
    fn an_unknown_key_names_the_file_and_the_key() {
        let err = parse("title = \"S\"\ngeometry = \"point\"\ncolour = \"red\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("layers/schools.toml"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn a_bad_geometry_says_what_is_allowed() {
        let err = parse("title = \"S\"\ngeometry = \"blob\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("point"), "{err}");
        assert!(err.contains("polygon"), "{err}");
    }

    #[test]
    fn an_upside_down_zoom_range_is_refused() {
        let err = parse("title = \"S\"\ngeometry = \"point\"\nminzoom = 15\nmaxzoom = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("minzoom"), "{err}");
    }

    #[test]
    fn a_time_field_must_be_a_kept_property() {
        let err = parse(
            "title = \"S\"\ngeometry = \"point\"\nproperties = [\"a\"]\ntime = { start = \"b\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`time`") && err.contains("\"b\""), "{err}");
    }

    #[test]
    fn feature_minzoom_picks_a_zoom_per_value_within_the_layers_zooms() {
        let text = "title = \"R\"\ngeometry = \"line\"\nminzoom = 12\nproperties = [\"highway\"]\n\
                    [feature_minzoom]\nproperty = \"highway\"\nvalues = { primary = 12, residential = 13 }\ndefault = 14\n";
        let def = parse(text).unwrap();
        let rule = def.feature_minzoom.as_ref().unwrap();
        let props = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(
            rule.of(
                &def.properties,
                &props(serde_json::json!({"highway": "primary"}))
            ),
            12
        );
        assert_eq!(
            rule.of(
                &def.properties,
                &props(serde_json::json!({"highway": "footway"}))
            ),
            14
        );
        assert_eq!(rule.of(&def.properties, &props(serde_json::json!({}))), 14);
        let err = parse(&text.replace("default = 14", "default = 10"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("feature_minzoom") && err.contains("default = 10"),
            "{err}"
        );
        let err = parse(&text.replace("property = \"highway\"", "property = \"class\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"class\""), "{err}");
    }

    #[test]
    fn declared_types_keep_the_files_order() {
        let def = parse(
            "title = \"S\"\ngeometry = \"point\"\n\
             properties = { zeta = \"string\", levels = \"integer\", area = \"number\", open = \"boolean\", since = \"datetime\" }\n\
             time = { start = \"since\" }\n",
        )
        .unwrap();
        assert_eq!(def.properties, ["zeta", "levels", "area", "open", "since"]);
        use PropertyType::*;
        assert_eq!(
            def.types.as_deref(),
            Some(&[String, Integer, Number, Boolean, DateTime][..])
        );
        assert_eq!(def.declared_type(1), Some(Integer));
        let listed = parse("title = \"S\"\ngeometry = \"point\"\nproperties = [\"a\"]\n").unwrap();
        assert_eq!((listed.declared_type(0), listed.types), (None, None));
    }

    #[test]
    fn a_label_must_be_one_of_the_layers_properties() {
        let ok = parse("title = \"S\"\ngeometry = \"point\"\nproperties = [\"name\"]\n[style]\nlabel = \"name\"\n")
            .unwrap();
        assert_eq!(ok.style.label.as_deref(), Some("name"));
        let err = parse("title = \"S\"\ngeometry = \"point\"\nproperties = [\"name\"]\n[style]\nlabel = \"title\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("style.label") && err.contains("\"title\""),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_type_or_a_time_field_not_a_datetime_is_refused() {
        let err = parse("title = \"S\"\ngeometry = \"point\"\nproperties = { n = \"int\" }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`properties`") && err.contains("\"int\"") && err.contains("integer"),
            "{err}"
        );
        let err = parse(
            "title = \"S\"\ngeometry = \"point\"\nproperties = { at = \"string\" }\ntime = { start = \"at\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`time`") && err.contains("datetime"), "{err}");
        let err = parse("title = \"S\"\ngeometry = \"point\"\nproperties = { n = 3 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("schools.toml"), "{err}");
    }

    #[test]
    fn a_bad_colour_is_refused() {
        let err = parse("title = \"S\"\ngeometry = \"point\"\n[style]\ncolor = \"red\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("style.color"), "{err}");
    }

    #[test]
    fn a_cluster_table_is_checked_against_the_layer() {
        let layer = "title = \"A\"\ngeometry = \"point\"\nminzoom = 10\nmaxzoom = 16\n\
                     properties = { vehicles = \"integer\", kind = \"string\" }\n";
        let def = parse(&format!(
            "{layer}cluster = {{ radius_px = 50, maxzoom = 15, sum = [\"vehicles\"] }}\n"
        ))
        .unwrap();
        let c = def.cluster.unwrap();
        assert_eq!((c.radius_px, c.maxzoom, c.sum), (50, 15, vec![0]));
        for (table, key, says) in [
            (
                "{ maxzoom = 16 }",
                "cluster.maxzoom",
                "below its maxzoom 16",
            ),
            ("{ maxzoom = 9 }", "cluster.maxzoom", "minzoom 10"),
            (
                "{ maxzoom = 14, radius_px = 0 }",
                "cluster.radius_px",
                "1..=256",
            ),
            (
                "{ maxzoom = 14, sum = [\"kind\"] }",
                "cluster.sum",
                "\"integer\" or \"number\"",
            ),
            (
                "{ maxzoom = 14, sum = [\"nope\"] }",
                "cluster.sum",
                "not one of",
            ),
            (
                "{ maxzoom = 14, radius = 3 }",
                "unknown field `radius`",
                "radius_px",
            ),
        ] {
            let err = parse(&format!("{layer}cluster = {table}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(says), "{table}: {err}");
        }
        let err = parse("title = \"R\"\ngeometry = \"line\"\ncluster = { maxzoom = 10 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("only point layers cluster; this layer is line"),
            "{err}"
        );
        let err = parse(&format!(
            "{layer}cluster = {{ maxzoom = 14 }}\n[feature_minzoom]\nproperty = \"kind\"\nvalues = {{}}\ndefault = 12\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot also have feature_minzoom"), "{err}");
    }
}
