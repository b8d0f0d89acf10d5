//! MBTiles 1.3 packs: an SQLite file (through sqlx) with the spec's `metadata` table and a
//! `tiles` view over `map` and `images`, so that identical tiles are stored once. Rows are
//! in TMS order (`tile_row` counted from the south), as the spec says; tiles are gzip MVT.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::archive::mbtiles::tms_row;
use crate::export::{ExportError, PackMeta, Sink};
use crate::tiles::TileCoord;

/// Rows written per INSERT.
const BATCH: usize = 200;

const SCHEMA: &str = "
CREATE TABLE metadata (name TEXT NOT NULL, value TEXT);
CREATE UNIQUE INDEX metadata_name ON metadata (name);
CREATE TABLE map (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL,
                  tile_row INTEGER NOT NULL, tile_id TEXT NOT NULL);
CREATE UNIQUE INDEX map_index ON map (zoom_level, tile_column, tile_row);
CREATE TABLE images (tile_id TEXT NOT NULL, tile_data BLOB NOT NULL);
CREATE UNIQUE INDEX images_id ON images (tile_id);
CREATE VIEW tiles AS
  SELECT map.zoom_level AS zoom_level, map.tile_column AS tile_column,
         map.tile_row AS tile_row, images.tile_data AS tile_data
  FROM map JOIN images ON images.tile_id = map.tile_id;
";

/// An MBTiles archive being written, in one transaction. sqlx is async: the writer runs
/// it on a small runtime of its own, since it is driven from a plain thread.
pub struct Writer {
    runtime: tokio::runtime::Runtime,
    conn: SqliteConnection,
    seen: rustc_hash::FxHashSet<u128>,
    map_rows: Vec<(TileCoord, u128)>,
    images: Vec<(u128, Vec<u8>)>,
}

fn key_text(key: u128) -> String {
    format!("{key:032x}")
}

impl Writer {
    pub fn create(path: &Path) -> Result<Writer, ExportError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ExportError::Io {
                path: path.to_owned(),
                source,
            })?;
        let conn = runtime.block_on(async {
            let mut conn = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                // One file, nothing beside it, once closed.
                .journal_mode(SqliteJournalMode::Delete)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
                .connect()
                .await?;
            conn.execute(sqlx::raw_sql(SCHEMA)).await?;
            conn.execute("BEGIN").await?;
            Ok::<_, sqlx::Error>(conn)
        })?;
        Ok(Writer {
            runtime,
            conn,
            seen: Default::default(),
            map_rows: Vec::with_capacity(BATCH),
            images: Vec::with_capacity(BATCH),
        })
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        let (map_rows, images) = (
            std::mem::take(&mut self.map_rows),
            std::mem::take(&mut self.images),
        );
        let conn = &mut self.conn;
        self.runtime.block_on(async {
            if !images.is_empty() {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO images (tile_id, tile_data) ");
                q.push_values(&images, |mut row, (key, data)| {
                    row.push_bind(key_text(*key)).push_bind(data.as_slice());
                });
                q.build().execute(&mut *conn).await?;
            }
            if !map_rows.is_empty() {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO map (zoom_level, tile_column, tile_row, tile_id) ",
                );
                q.push_values(&map_rows, |mut row, (tile, key)| {
                    row.push_bind(i64::from(tile.z))
                        .push_bind(i64::from(tile.x))
                        .push_bind(i64::from(tms_row(*tile)))
                        .push_bind(key_text(*key));
                });
                q.build().execute(&mut *conn).await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}

impl Sink for Writer {
    fn add(&mut self, tile: TileCoord, gzip: &[u8], key: u128) -> Result<(), ExportError> {
        if self.seen.insert(key) {
            self.images.push((key, gzip.to_vec()));
        }
        self.map_rows.push((tile, key));
        if self.map_rows.len() >= BATCH || self.images.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, meta: &PackMeta) -> Result<(), ExportError> {
        self.flush()?;
        let b = meta.bounds;
        let json = serde_json::json!({
            "vector_layers": meta.vector_layers,
            "urbantile": meta.urbantile,
        });
        let rows: Vec<(&str, String)> = vec![
            ("name", meta.name.clone()),
            ("format", "pbf".into()),
            (
                "bounds",
                format!("{},{},{},{}", b.west, b.south, b.east, b.north),
            ),
            (
                "center",
                format!("{},{},{}", meta.center.0, meta.center.1, meta.center.2),
            ),
            ("minzoom", meta.minzoom.to_string()),
            ("maxzoom", meta.maxzoom.to_string()),
            ("attribution", crate::dataset::tile::ATTRIBUTION.into()),
            ("description", meta.description.clone()),
            ("type", "overlay".into()),
            ("version", "1.0.0".into()),
            ("json", json.to_string()),
        ];
        let Writer {
            runtime, mut conn, ..
        } = *self;
        runtime.block_on(async {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO metadata (name, value) ");
            q.push_values(&rows, |mut row, (name, value)| {
                row.push_bind(*name).push_bind(value.as_str());
            });
            q.build().execute(&mut conn).await?;
            conn.execute("COMMIT").await?;
            conn.close().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}
