//! MBTiles 1.3 archives read back: the `metadata` table and tiles one by one (packs'
//! deltas). Rows are in TMS order (`tile_row` counted from the south). Writing is
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
