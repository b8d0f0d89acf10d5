//! Archive layer files: a layer that is a read-only tile archive (`[archive] path =
//! "basemap.pmtiles"`, or `.mbtiles`) served as it is, instead of a store layer. Such a
//! file has a title, a description, an attribution and a `[style]` colour and theme, and
//! nothing about features: no source, properties, geometry, zooms, clusters, budget or time
//! (the archive's own metadata says its zooms and bounds). Opening the archive is left to
//! [`crate::archive`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, StyleDef, THEMES, is_hex_color};
use crate::model::LayerId;

/// The keys of a store layer file that an archive layer file must not have.
const STORE_KEYS: &[&str] = &[
    "geometry",
    "minzoom",
    "maxzoom",
    "properties",
    "time",
    "feature_minzoom",
    "private",
    "cluster",
    "budget_kb",
    "rank_by",
    "source",
];

/// What an archive layer file may hold, for error messages.
const ALLOWED: &str = "title, description, attribution, [style] color and theme, [archive] path";

/// The colour of an archive's vector layers on the map when `[style] color` is not given:
/// a quiet grey, since an archive lies under the live layers.
const DEFAULT_COLOR: &str = "#8c8c8c";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchiveLayer {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    attribution: Option<String>,
    archive: RawArchive,
    #[serde(default)]
    style: Option<RawArchiveStyle>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchiveStyle {
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// The two kinds of archive a layer can point at, by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    PmTiles,
    MbTiles,
}

/// A validated archive layer file.
#[derive(Debug, Clone)]
pub struct ArchiveDef {
    pub id: LayerId,
    pub title: String,
    pub description: String,
    /// Shown for the layer's tiles; `None` takes the archive's own (its metadata's
    /// `attribution`), if any.
    pub attribution: Option<String>,
    /// The archive file: relative paths in the file are relative to the layer file's folder.
    pub path: PathBuf,
    pub kind: ArchiveKind,
    /// Colour of a vector archive's shapes on the map, and the map page group; no label.
    pub style: StyleDef,
}

impl ArchiveDef {
    /// Parses an archive layer file (one whose text has an `[archive]` table, `table`);
    /// `path`'s stem is the layer id.
    pub fn from_toml(
        path: &Path,
        text: &str,
        table: &toml::Table,
    ) -> Result<ArchiveDef, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let bad = |key: &'static str, message: String| ConfigError::BadValue {
            path: path.to_owned(),
            key,
            message,
        };
        if let Some(&key) = STORE_KEYS.iter().find(|k| table.contains_key(**k)) {
            return Err(bad(
                key,
                format!(
                    "an archive layer serves its tiles as they are and takes no `{key}`; \
                     it has {ALLOWED}"
                ),
            ));
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| invalid("file name is not valid UTF-8".into()))?;
        let id = LayerId::new(stem).map_err(|e| invalid(e.to_string()))?;
        let raw: RawArchiveLayer = toml::from_str(text)
            .map_err(|e| invalid(format!("{e} (an archive layer has {ALLOWED})")))?;
        if raw.title.trim().is_empty() {
            return Err(bad("title", "must not be empty".into()));
        }
        let kind = match raw.archive.path.extension().and_then(|e| e.to_str()) {
            Some("pmtiles") => ArchiveKind::PmTiles,
            Some("mbtiles") => ArchiveKind::MbTiles,
            _ => {
                return Err(bad(
                    "archive.path",
                    format!(
                        "{} must end in .pmtiles or .mbtiles",
                        raw.archive.path.display()
                    ),
                ));
            }
        };
        let file = if raw.archive.path.is_absolute() {
            raw.archive.path
        } else {
            path.parent()
                .unwrap_or(Path::new(""))
                .join(raw.archive.path)
        };
        let style = raw.style.unwrap_or(RawArchiveStyle {
            color: None,
            theme: None,
            label: None,
        });
        if style.label.is_some() {
            return Err(bad(
                "style.label",
                "an archive layer has no declared properties to label with".into(),
            ));
        }
        let color = style.color.unwrap_or_else(|| DEFAULT_COLOR.into());
        if !is_hex_color(&color) {
            return Err(bad(
                "style.color",
                format!("{color:?} is not a #rrggbb colour"),
            ));
        }
        let theme = style.theme.unwrap_or_else(|| "planning".into());
        if !THEMES.contains(&theme.as_str()) {
            return Err(bad(
                "style.theme",
                format!("{theme:?} is not one of {}", THEMES.join(", ")),
            ));
        }
        Ok(ArchiveDef {
            id,
            title: raw.title,
            description: raw.description,
            attribution: raw.attribution,
            path: file,
            kind,
            style: StyleDef {
                color,
                theme,
                label: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LayerFile, parse_layer_file};

    fn parse(text: &str) -> Result<LayerFile, ConfigError> {
        parse_layer_file(Path::new("layers/basemap.toml"), text)
    }

    #[test]
    fn an_archive_path_is_relative_to_the_layer_files_folder() {
        let LayerFile::Archive(def) = parse(
            "title = \"Base map\"\nattribution = \"© City\"\n[archive]\npath = \"../maps/base.pmtiles\"\n",
        )
        .unwrap() else {
            panic!("not an archive layer")
        };
        assert_eq!(def.id.as_str(), "basemap");
        assert_eq!(def.path, Path::new("layers/../maps/base.pmtiles"));
        assert_eq!(def.kind, ArchiveKind::PmTiles);
        assert_eq!(def.attribution.as_deref(), Some("© City"));
        let LayerFile::Archive(def) =
            parse("title = \"Air\"\n[archive]\npath = \"/srv/air.mbtiles\"\n").unwrap()
        else {
            panic!("not an archive layer")
        };
        assert_eq!(
            (def.path.as_path(), def.kind),
            (Path::new("/srv/air.mbtiles"), ArchiveKind::MbTiles)
        );
    }

    #[test]
    fn an_archive_layer_with_store_layer_keys_is_refused_naming_the_key() {
        for key in [
            "geometry = \"point\"",
            "properties = { name = \"string\" }",
            "budget_kb = 100",
            "minzoom = 3",
            "cluster = { maxzoom = 10 }",
            "time = { start = \"a\" }",
            "[source]\npath = \"x.geojson\"",
        ] {
            let text = format!("title = \"B\"\n{key}\n[archive]\npath = \"b.pmtiles\"\n");
            let err = parse(&text).unwrap_err().to_string();
            let name = key
                .trim_start_matches('[')
                .split([' ', ']'])
                .next()
                .unwrap();
            assert!(
                err.contains("basemap.toml")
                    && err.contains(&format!("`{name}`"))
                    && err.contains("archive layer"),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn an_unknown_key_a_bad_extension_or_a_label_is_refused() {
        let err = parse("title = \"B\"\nzoom = 3\n[archive]\npath = \"b.pmtiles\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("zoom") && err.contains("[archive] path"),
            "{err}"
        );
        let err = parse("title = \"B\"\n[archive]\npath = \"b.zip\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("archive.path") && err.contains(".pmtiles"),
            "{err}"
        );
        let err = parse("title = \"B\"\n[archive]\npath = \"b.pmtiles\"\nformat = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format"), "{err}");
        let err =
            parse("title = \"B\"\n[archive]\npath = \"b.pmtiles\"\n[style]\nlabel = \"name\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("style.label"), "{err}");
    }
}
