//! MBTiles 1.3 archives read back: the `metadata` table, tiles one by one (packs' deltas),
//! and every tile at once into one buffer (archive layers, see [`crate::archive`]). Rows
//! are in TMS order (`tile_row` counted from the south). Writing is
//! [`crate::export::mbtiles`]'s.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};

use crate::tiles::TileCoord;

/// The TMS row of a tile (rows counted from the south, MBTiles 1.3).
pub fn tms_row(tile: TileCoord) -> u32 {
    (1u32 << tile.z) - 1 - tile.y
}

/// What an MBTiles pack's `metadata` table says, by name.
pub async fn read_metadata(
    conn: &mut SqliteConnection,
) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, value FROM metadata")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
        .collect())
}

/// [`read_metadata`] of the MBTiles file at `path`, opened read-only.
pub async fn read_metadata_file(
    path: &Path,
) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let rows = read_metadata(&mut conn).await;
    conn.close().await?;
    rows
}

/// An MBTiles pack read tile by tile from a plain thread (sqlx on a runtime of its own).
pub struct Reader {
    runtime: tokio::runtime::Runtime,
    conn: SqliteConnection,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, sqlx::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(sqlx::Error::Io)?;
        let conn = runtime.block_on(
            SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .connect(),
        )?;
        Ok(Reader { runtime, conn })
    }

    /// The stored (gzip) bytes of a tile, if the pack has it.
    pub fn tile(&mut self, tile: TileCoord) -> Result<Option<Vec<u8>>, sqlx::Error> {
        let conn = &mut self.conn;
        self.runtime.block_on(async {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            )
            .bind(i64::from(tile.z))
            .bind(i64::from(tile.x))
            .bind(i64::from(tms_row(tile)))
            .fetch_optional(&mut *conn)
            .await
        })
    }
}

/// Why an MBTiles archive cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Says its cause itself (sqlx's text holds SQLite's message).
    #[error("not a readable MBTiles (SQLite) file: {0}")]
    Sqlite(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Reads an MBTiles archive whole: its metadata, and every distinct tile into one buffer
/// with an entry per tile (see [`crate::archive`] for why it is read at start).
pub(super) async fn load(path: &Path) -> Result<super::Opened, LoadError> {
    use futures_util::TryStreamExt;

    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .connect()
        .await?;
    // Every page checked once at start, so that a damaged file is an error now rather
    // than a tile missing later.
    let check = sqlx::query_scalar::<_, String>("PRAGMA quick_check(1)")
        .fetch_one(&mut conn)
        .await?;
    if check != "ok" {
        return Err(LoadError::Invalid(format!(
            "SQLite's check finds it damaged: {check}"
        )));
    }
    let meta = read_metadata(&mut conn).await?;
    let format = match meta.get("format") {
        None => return Err(LoadError::Invalid("its metadata has no `format`".into())),
        Some(f) => super::TileFormat::of_mbtiles(f).ok_or_else(|| {
            LoadError::Invalid(format!(
                "its metadata's format {f:?} is not one of pbf, png, jpg, webp"
            ))
        })?,
    };
    let json: serde_json::Value = match meta.get("json") {
        None => serde_json::Value::Null,
        Some(text) => serde_json::from_str(text)
            .map_err(|e| LoadError::Invalid(format!("its metadata's `json` is not JSON: {e}")))?,
    };
    let numbers = |key: &str| -> Result<Option<Vec<f64>>, LoadError> {
        meta.get(key)
            .map(|v| {
                v.split(',')
                    .map(|n| n.trim().parse::<f64>())
                    .collect::<Result<Vec<f64>, _>>()
                    .map_err(|_| {
                        LoadError::Invalid(format!("its metadata's {key} {v:?} is not numbers"))
                    })
            })
            .transpose()
    };

    let mut data = Vec::new();
    let mut entries = Vec::new();
    // Identical tiles once: the hash finds a candidate, the bytes decide.
    let mut seen: rustc_hash::FxHashMap<u64, (u64, u64)> = Default::default();
    let (mut minzoom, mut maxzoom) = (u8::MAX, 0u8);
    let mut rows = sqlx::query("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        .fetch(&mut conn);
    while let Some(row) = rows.try_next().await? {
        let (z, x, row_tms): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let bytes: &[u8] = row.try_get(3)?;
        let coord = u8::try_from(z)
            .ok()
            .filter(|z| *z <= crate::tiles::MAX_ZOOM)
            .and_then(|z| {
                let n = 1i64 << z;
                (0..n).contains(&x).then_some(())?;
                (0..n).contains(&row_tms).then_some(())?;
                Some(TileCoord {
                    z,
                    x: x as u32,
                    y: (n - 1 - row_tms) as u32,
                })
            })
            .ok_or_else(|| {
                LoadError::Invalid(format!(
                    "tile {z}/{x}/{row_tms} (TMS) is outside the tile scheme"
                ))
            })?;
        minzoom = minzoom.min(coord.z);
        maxzoom = maxzoom.max(coord.z);
        let hash = crate::model::stable_hash(&[bytes]);
        let (offset, length) = match seen.get(&hash) {
            Some(&(o, l)) if &data[o as usize..(o + l) as usize] == bytes => (o, l),
            _ => {
                let at = (data.len() as u64, bytes.len() as u64);
                data.extend_from_slice(bytes);
                seen.insert(hash, at);
                at
            }
        };
        entries.push(super::Entry {
            tile_id: super::pmtiles::tile_id(coord),
            offset,
            length,
            run_length: 1,
        });
    }
    drop(rows);
    conn.close().await?;
    entries.sort_unstable_by_key(|e| e.tile_id);
    if entries.windows(2).any(|w| w[0].tile_id == w[1].tile_id) {
        return Err(LoadError::Invalid("a tile is stored twice".into()));
    }
    let zoom = |key: &str, found: u8| -> Result<u8, LoadError> {
        match meta.get(key) {
            None => Ok(found),
            Some(v) => v.trim().parse::<u8>().map_err(|_| {
                LoadError::Invalid(format!("its metadata's {key} {v:?} is not a zoom"))
            }),
        }
    };
    let (minzoom, maxzoom) = if entries.is_empty() {
        (zoom("minzoom", 0)?, zoom("maxzoom", 0)?)
    } else {
        (zoom("minzoom", minzoom)?, zoom("maxzoom", maxzoom)?)
    };
    if minzoom > maxzoom || maxzoom > crate::tiles::MAX_ZOOM {
        return Err(LoadError::Invalid(format!(
            "zooms {minzoom}..{maxzoom} are not a zoom range"
        )));
    }
    let bounds = match numbers("bounds")?.as_deref() {
        None => [-180.0, -85.051_128_78, 180.0, 85.051_128_78],
        Some(&[w, s, e, n]) => [w, s, e, n],
        Some(_) => {
            return Err(LoadError::Invalid(
                "its metadata's bounds are not w,s,e,n".into(),
            ));
        }
    };
    let center = match numbers("center")?.as_deref() {
        Some(&[lon, lat, z]) => (lon, lat, z as u8),
        Some(&[lon, lat]) => (lon, lat, minzoom),
        _ => (
            (bounds[0] + bounds[2]) / 2.0,
            (bounds[1] + bounds[3]) / 2.0,
            minzoom,
        ),
    };
    Ok(super::Opened {
        format,
        minzoom,
        maxzoom,
        bounds: super::bbox_of(bounds),
        center,
        vector_layers: json["vector_layers"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        attribution: meta.get("attribution").cloned(),
        data: bytes::Bytes::from(data),
        entries,
    })
}
