//! The packs folder a server offers (`--packs`): pack names checked so that a request can
//! only reach a file directly inside it, each pack memory-mapped once (and mapped again
//! when the file is replaced), and what each pack says of itself (area, zooms, layers, the
//! change-log position it was cut at), read from its metadata and kept until it changes.
//!
//! A pack is replaced by writing a new file and renaming it over the old one, as `export`
//! does: the old map stays valid for answers under way, and the new file is seen within
//! [`RECHECK`] (a range request for a map checked more recently makes no file-system call).
//! A file must never be rewritten in place while served (a map of a file that shrinks
//! faults on read).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

use crate::export::Format;
use crate::export::area::Area;
use crate::model::Bbox;

/// How long a kept map is served without checking the file again: a replaced pack is
/// seen within this time.
pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Packs listed by `GET /packs` at most.
pub const MAX_LISTED: usize = 1000;
/// Longest pack name.
pub const MAX_NAME: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ShelfError {
    #[error(
        "{0:?}: a pack is NAME.pmtiles or NAME.mbtiles, NAME of letters, digits, '-' and '_' (at most {MAX_NAME})"
    )]
    BadName(String),
    #[error("no pack named {0:?}")]
    NotFound(String),
    #[error("reading pack {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pack {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// A pack's file, mapped, with what identifies this version of it.
pub struct Mapped {
    pub map: Arc<memmap2::Mmap>,
    pub format: Format,
    /// Changes whenever the file does (size, modification time, inode).
    pub etag: String,
    pub modified: SystemTime,
    stamp: Stamp,
    /// When the file was last found unchanged.
    checked: Mutex<std::time::Instant>,
}

impl Mapped {
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes `range` of the file, sharing the map (no copy).
    pub fn slice(&self, range: std::ops::Range<usize>) -> bytes::Bytes {
        struct Part(Arc<memmap2::Mmap>, std::ops::Range<usize>);
        impl AsRef<[u8]> for Part {
            fn as_ref(&self) -> &[u8] {
                &self.0[self.1.clone()]
            }
        }
        bytes::Bytes::from_owner(Part(self.map.clone(), range))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified_ns: u128,
    inode: u64,
}

/// What `GET /packs` says of a pack.
#[derive(Debug, Clone, Serialize)]
pub struct PackInfo {
    pub name: String,
    pub format: &'static str,
    /// The file's path under `/packs/`.
    pub file: String,
    pub size: u64,
    /// When the pack was cut (RFC 3339).
    pub created: Option<String>,
    /// The change-log position it was cut at: ask `/packs/{name}/changes?since=` this.
    pub position: Option<u64>,
    pub bounds: Option<[f64; 4]>,
    pub minzoom: Option<u8>,
    pub maxzoom: Option<u8>,
    pub layers: Vec<String>,
    #[serde(skip)]
    pub area: Option<Area>,
    #[serde(skip)]
    pub datetime: Option<String>,
}

/// The packs folder.
pub struct Shelf {
    dir: PathBuf,
    maps: Mutex<HashMap<String, Arc<Mapped>>>,
    infos: Mutex<HashMap<String, (Stamp, PackInfo)>>,
}

/// The name and format of a pack's file name (`NAME.pmtiles`, `NAME.mbtiles`), checked: the
/// name alone can never leave the folder.
pub fn parse_file_name(file: &str) -> Result<(&str, Format), ShelfError> {
    let bad = || ShelfError::BadName(file.chars().take(MAX_NAME + 10).collect());
    let (name, ext) = file.rsplit_once('.').ok_or_else(bad)?;
    let format = match ext {
        "pmtiles" => Format::PmTiles,
        "mbtiles" => Format::MbTiles,
        _ => return Err(bad()),
    };
    check_name(name).map_err(|_| bad())?;
    Ok((name, format))
}

/// Checks a pack name: letters, digits, `-` and `_`, not empty, at most [`MAX_NAME`].
pub fn check_name(name: &str) -> Result<(), ShelfError> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ShelfError::BadName(
            name.chars().take(MAX_NAME + 10).collect(),
        ));
    }
    Ok(())
}

fn stamp_of(meta: &std::fs::Metadata) -> Stamp {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    Stamp {
        len: meta.len(),
        modified_ns: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos()),
        inode,
    }
}

impl Shelf {
    pub fn new(dir: impl Into<PathBuf>) -> Shelf {
        Shelf {
            dir: dir.into(),
            maps: Default::default(),
            infos: Default::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kept map of `file` if the file was last checked within [`RECHECK`]: the hot
    /// path of range requests, with no file-system call.
    pub fn recently_opened(&self, file: &str) -> Option<Arc<Mapped>> {
        let maps = self.maps.lock();
        let kept = maps.get(file)?;
        (kept.checked.lock().elapsed() < RECHECK).then(|| kept.clone())
    }

    /// The pack file `file` (`NAME.pmtiles`, `NAME.mbtiles`), mapped; the map is kept and
    /// made again when the file changes. Blocking file-system calls: a `stat` when the map
    /// is kept.
    pub fn open(&self, file: &str) -> Result<Arc<Mapped>, ShelfError> {
        let (_, format) = parse_file_name(file)?;
        let path = self.dir.join(file);
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ShelfError::NotFound(file.to_owned())
            } else {
                ShelfError::Io {
                    path: path.clone(),
                    source,
                }
            }
        };
        let meta = std::fs::metadata(&path).map_err(io)?;
        if !meta.is_file() {
            return Err(ShelfError::NotFound(file.to_owned()));
        }
        let stamp = stamp_of(&meta);
        if let Some(kept) = self.maps.lock().get(file)
            && kept.stamp == stamp
        {
            *kept.checked.lock() = std::time::Instant::now();
            return Ok(kept.clone());
        }
        let f = std::fs::File::open(&path).map_err(io)?;
        // Re-read after opening: the stamp must describe the file that is mapped.
        let stamp = stamp_of(&f.metadata().map_err(io)?);
        // SAFETY: packs are replaced by renaming a new file over the old one, never
        // written in place (see the module's header), so the mapped bytes do not change.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
        let mapped = Arc::new(Mapped {
            map: Arc::new(map),
            format,
            etag: format!(
                "\"{:x}-{:x}-{:x}\"",
                stamp.len, stamp.modified_ns, stamp.inode
            ),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            stamp,
            checked: Mutex::new(std::time::Instant::now()),
        });
        self.maps.lock().insert(file.to_owned(), mapped.clone());
        Ok(mapped)
    }

    /// What the pack `file` says of itself, read from its metadata (and kept until the
    /// file changes).
    pub async fn info(&self, file: &str) -> Result<PackInfo, ShelfError> {
        let mapped = self.open(file)?;
        if let Some((stamp, info)) = self.infos.lock().get(file)
            && *stamp == mapped.stamp
        {
            return Ok(info.clone());
        }
        let (name, format) = parse_file_name(file)?;
        let path = self.dir.join(file);
        let invalid = |reason: String| ShelfError::Invalid {
            path: path.clone(),
            reason,
        };
        let (meta, header_bounds, header_zooms) = match format {
            Format::PmTiles => {
                let reader = crate::archive::pmtiles::Reader::new(&mapped.map)
                    .map_err(|e| invalid(crate::model::error_chain(&e)))?;
                let h = reader.header;
                let meta = reader
                    .metadata()
                    .map_err(|e| invalid(crate::model::error_chain(&e)))?;
                (meta, Some(h.bounds), Some((h.minzoom, h.maxzoom)))
            }
            Format::MbTiles => {
                let rows = crate::archive::mbtiles::read_metadata_file(&path)
                    .await
                    .map_err(|e| invalid(crate::model::error_chain(&e)))?;
                let meta: serde_json::Value = rows
                    .get("json")
                    .and_then(|j| serde_json::from_str(j).ok())
                    .unwrap_or_else(|| serde_json::json!({}));
                let bounds = rows.get("bounds").and_then(|b| {
                    let v: Vec<f64> = b.split(',').filter_map(|x| x.trim().parse().ok()).collect();
                    <[f64; 4]>::try_from(v).ok()
                });
                let zoom = |k: &str| rows.get(k).and_then(|z| z.parse::<u8>().ok());
                let zooms = zoom("minzoom").zip(zoom("maxzoom"));
                (meta, bounds, zooms)
            }
        };
        let own = &meta["urbantile"];
        let info = PackInfo {
            name: name.to_owned(),
            format: format.extension(),
            file: file.to_owned(),
            size: mapped.len(),
            created: own["created"].as_str().map(str::to_owned),
            position: own["position"].as_u64(),
            bounds: header_bounds,
            minzoom: header_zooms.map(|z| z.0),
            maxzoom: header_zooms.map(|z| z.1),
            layers: own["layers"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            area: Area::from_json(&own["area"]),
            datetime: own["datetime"].as_str().map(str::to_owned),
        };
        self.infos
            .lock()
            .insert(file.to_owned(), (mapped.stamp, info.clone()));
        Ok(info)
    }

    /// Every pack in the folder (up to [`MAX_LISTED`], by name); files that are not packs,
    /// and packs that cannot be read, are left out (the latter with a warning).
    pub async fn list(&self) -> Result<Vec<PackInfo>, ShelfError> {
        let mut files: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|f| parse_file_name(f).is_ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(ShelfError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        files.sort();
        files.truncate(MAX_LISTED);
        let mut out = Vec::with_capacity(files.len());
        for file in files {
            match self.info(&file).await {
                Ok(info) => out.push(info),
                Err(ShelfError::NotFound(_)) => {}
                Err(e) => tracing::warn!("{}", crate::model::error_chain(&e)),
            }
        }
        Ok(out)
    }
}

impl PackInfo {
    /// The pack's box in lon/lat, from its header or metadata.
    pub fn bbox(&self) -> Option<Bbox> {
        self.bounds.map(|[west, south, east, north]| Bbox {
            west,
            south,
            east,
            north,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names_cannot_leave_the_folder() {
        assert!(parse_file_name("centre.pmtiles").is_ok());
        assert!(parse_file_name("district_12-b.mbtiles").is_ok());
        for bad in [
            "../etc/passwd.pmtiles",
            "..pmtiles",
            ".pmtiles",
            "a/b.pmtiles",
            "a\\b.pmtiles",
            "centre.pmtiles.part",
            "centre",
            "centre.zip",
            "c%2e.pmtiles",
            "é.pmtiles",
            "a b.pmtiles",
            "a.b.pmtiles",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad}");
        }
        assert!(parse_file_name(&format!("{}.pmtiles", "a".repeat(MAX_NAME + 1))).is_err());
    }
}
