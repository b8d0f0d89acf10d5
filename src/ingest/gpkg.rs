//! GeoPackage (OGC 12-128r18) input: every feature table of a `.gpkg` file, or one by name,
//! read through sqlx's SQLite driver (the store's own), with geometries decoded from
//! GeoPackage binary by geozero and brought to WGS84 by [`super::crs`].
//!
//! The file is opened read-only and immutable, so reading it never writes (no journal, no
//! WAL), and only ordinary tables are read: a view, a virtual table or a generated column
//! would run SQL the file wrote (a recursive view never ends), so a file that uses one
//! where urbantile reads is refused. sqlx is asynchronous while readers are iterators, so a thread of its own runs the
//! query on a one-thread runtime and hands records over a bounded channel: the table is
//! streamed, never held whole, and dropping the iterator stops the thread.
//!
//! Each record's position is its table and fid. Properties are the table's other columns:
//! INTEGER, REAL and TEXT values as they are, a `BOOLEAN` column's 0/1 as false/true; BLOB
//! values are left out (a property cannot hold bytes). Checking them against the layer's
//! declared types is [`super::validate`]'s job.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{Column, ConnectOptions, Row, TypeInfo, ValueRef};

use crate::ingest::crs::{Crs, UnsupportedCrs};
use crate::ingest::wkb::gpkg_geometry;
use crate::ingest::{Position, Record, RecordError};
use crate::model::{Feature, Properties};

/// Records in flight between the reading thread and the ingest.
const CHANNEL: usize = 1024;
/// Largest text value of a property, in bytes; a longer one costs its record.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GpkgError {
    #[error("{}: not a readable GeoPackage: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{}: no feature table named {table:?}; its feature tables are: {}", path.display(), tables.join(", "))]
    NoSuchTable {
        path: PathBuf,
        table: String,
        tables: Vec<String>,
    },
    #[error("{}: no feature tables (gpkg_contents lists none with data_type 'features')", path.display())]
    NoTables { path: PathBuf },
    #[error("{}, table {table:?}: {source}", path.display())]
    Crs {
        path: PathBuf,
        table: String,
        source: UnsupportedCrs,
    },
    #[error("{}, table {table:?}: {reason}", path.display())]
    Table {
        path: PathBuf,
        table: String,
        reason: String,
    },
}

/// One feature table to read: its geometry column, integer key, other columns and CRS.
struct Table {
    name: String,
    geometry: String,
    key: String,
    /// Other columns, with whether each is declared BOOLEAN.
    columns: Vec<(String, bool)>,
    crs: Crs,
}

/// SQL identifier quoting: a table name comes from the file.
fn quote(id: &str) -> String {
    format!("\"{}\"", id.replace('"', "\"\""))
}

/// The records of a GeoPackage's feature tables (`table`: only that one), in table order
/// then fid order. Everything about the file and its tables is checked before the first
/// record: a missing table, a table without an integer key, an unsupported CRS.
pub fn read_gpkg(path: &Path, table: Option<&str>) -> Result<GpkgRecords, GpkgError> {
    let (head_tx, head_rx) = sync_channel::<Result<(), GpkgError>>(1);
    let (tx, rx) = sync_channel::<Record>(CHANNEL);
    let path = path.to_owned();
    let shown = path.clone();
    let table = table.map(str::to_owned);
    std::thread::Builder::new()
        .name("gpkg-reader".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = head_tx.send(Err(GpkgError::Open {
                        path,
                        reason: format!("no runtime for the reader: {e}"),
                    }));
                    return;
                }
            };
            runtime.block_on(read_all(path, table, head_tx, tx));
        })
        .map_err(|e| GpkgError::Open {
            path: shown.clone(),
            reason: format!("cannot start the reader: {e}"),
        })?;
    match head_rx.recv() {
        Ok(Ok(())) => Ok(GpkgRecords { rx }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(GpkgError::Open {
            path: shown,
            reason: "the reader stopped".into(),
        }),
    }
}

/// The records of [`read_gpkg`], as the reading thread sends them.
pub struct GpkgRecords {
    rx: Receiver<Record>,
}

impl Iterator for GpkgRecords {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        self.rx.recv().ok()
    }
}

async fn read_all(
    path: PathBuf,
    only: Option<String>,
    head: SyncSender<Result<(), GpkgError>>,
    tx: SyncSender<Record>,
) {
    let open_err = |e: sqlx::Error| GpkgError::Open {
        path: path.clone(),
        reason: e.to_string(),
    };
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .read_only(true)
        .immutable(true);
    let mut conn = match options.connect().await.map_err(open_err) {
        Ok(c) => c,
        Err(e) => {
            let _ = head.send(Err(e));
            return;
        }
    };
    let tables = match tables(&mut conn, &path, only.as_deref()).await {
        Ok(t) => t,
        Err(e) => {
            let _ = head.send(Err(e));
            return;
        }
    };
    if head.send(Ok(())).is_err() {
        return;
    }
    for table in &tables {
        if !read_table(&mut conn, table, &tx).await {
            return;
        }
    }
}

/// A feature table as `gpkg_contents` and its neighbours describe it: name, geometry
/// column, srs_id, the srs's organization, code and WKT.
type ContentsRow = (
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The feature tables to read, checked.
async fn tables(
    conn: &mut sqlx::SqliteConnection,
    path: &Path,
    only: Option<&str>,
) -> Result<Vec<Table>, GpkgError> {
    let open = |e: sqlx::Error| GpkgError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    for meta in [
        "gpkg_contents",
        "gpkg_geometry_columns",
        "gpkg_spatial_ref_sys",
    ] {
        plain_table(conn, meta)
            .await
            .map_err(|reason| GpkgError::Open {
                path: path.to_owned(),
                reason,
            })?;
    }
    let rows: Vec<ContentsRow> = sqlx::query_as(
        "SELECT c.table_name, g.column_name, g.srs_id, s.organization, \
                    s.organization_coordsys_id, s.definition \
             FROM gpkg_contents c \
             JOIN gpkg_geometry_columns g ON g.table_name = c.table_name \
             LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id \
             WHERE c.data_type = 'features' ORDER BY c.table_name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(open)?;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    if names.is_empty() {
        return Err(GpkgError::NoTables {
            path: path.to_owned(),
        });
    }
    if let Some(t) = only
        && !names.iter().any(|n| n == t)
    {
        return Err(GpkgError::NoSuchTable {
            path: path.to_owned(),
            table: t.to_owned(),
            tables: names,
        });
    }
    let mut out = Vec::new();
    for (name, geometry, srs_id, org, code, definition) in rows {
        if only.is_some_and(|t| t != name) {
            continue;
        }
        let crs =
            table_crs(srs_id, org.as_deref(), code, definition.as_deref()).map_err(|source| {
                GpkgError::Crs {
                    path: path.to_owned(),
                    table: name.clone(),
                    source,
                }
            })?;
        plain_table(conn, &name)
            .await
            .map_err(|reason| GpkgError::Table {
                path: path.to_owned(),
                table: name.clone(),
                reason,
            })?;
        let info: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT name, type, pk, hidden FROM pragma_table_xinfo({})",
            quote_literal(&name)
        ))
        .fetch_all(&mut *conn)
        .await
        .map_err(open)?;
        if let Some((column, ..)) = info.iter().find(|c| c.3 != 0) {
            return Err(GpkgError::Table {
                path: path.to_owned(),
                table: name.clone(),
                reason: format!(
                    "its column {column:?} is computed when read (a generated column), which \
                     urbantile does not run"
                ),
            });
        }
        let info: Vec<(String, String, i64)> =
            info.into_iter().map(|(n, t, pk, _)| (n, t, pk)).collect();
        let key = info
            .iter()
            .find(|(_, ty, pk)| *pk == 1 && ty.eq_ignore_ascii_case("INTEGER"))
            .map(|(n, _, _)| n.clone())
            .ok_or_else(|| GpkgError::Table {
                path: path.to_owned(),
                table: name.clone(),
                reason: "has no INTEGER PRIMARY KEY column (a GeoPackage feature table needs one)"
                    .into(),
            })?;
        if !info.iter().any(|(n, _, _)| *n == geometry) {
            return Err(GpkgError::Table {
                path: path.to_owned(),
                table: name,
                reason: format!("has no column {geometry:?}, its registered geometry column"),
            });
        }
        let columns = info
            .into_iter()
            .filter(|(n, _, _)| *n != key && *n != geometry)
            .map(|(n, ty, _)| (n, ty.eq_ignore_ascii_case("BOOLEAN")))
            .collect();
        out.push(Table {
            name,
            geometry,
            key,
            columns,
            crs,
        });
    }
    Ok(out)
}

/// Checks that `name` is an ordinary table: reading a view, a virtual table or a
/// generated column runs SQL the file wrote (a recursive view never ends), while reading a
/// table costs what its rows weigh.
async fn plain_table(conn: &mut sqlx::SqliteConnection, name: &str) -> Result<(), String> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT type, sql FROM sqlite_master WHERE name = ?1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    match row {
        None => Err(format!("{name} is missing")),
        Some((kind, _)) if kind != "table" => Err(format!(
            "{name} is a {kind}, not a table; urbantile reads tables only"
        )),
        Some((_, Some(sql)))
            if sql
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("CREATE VIRTUAL") =>
        {
            Err(format!(
                "{name} is a virtual table; urbantile reads ordinary tables only"
            ))
        }
        Some(_) => Ok(()),
    }
}

/// A string as an SQL literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A table's CRS: by EPSG code where the file says one, else by its WKT definition. The
/// GeoPackage's reserved srs_id 0 is "undefined geographic", taken as WGS84 as GDAL does;
/// -1 ("undefined Cartesian") cannot be placed on a map.
fn table_crs(
    srs_id: i64,
    org: Option<&str>,
    code: Option<i64>,
    definition: Option<&str>,
) -> Result<Crs, UnsupportedCrs> {
    if srs_id == 0 {
        return Ok(Crs::LonLat);
    }
    if let (Some(org), Some(code)) = (org, code)
        && org.eq_ignore_ascii_case("EPSG")
        && let Ok(crs) = Crs::from_epsg(code)
    {
        return Ok(crs);
    }
    match definition {
        Some(d) if !d.trim().eq_ignore_ascii_case("undefined") && !d.trim().is_empty() => {
            Crs::from_wkt(d).map_err(|mut e| {
                if let (Some(org), Some(code)) = (org, code) {
                    e.name = format!("{org}:{code} {}", e.name);
                }
                e
            })
        }
        _ => Err(UnsupportedCrs {
            name: format!("srs_id {srs_id}"),
            why: "the file does not define it".into(),
        }),
    }
}

/// Streams one table into `tx`; false when the receiver has gone.
async fn read_table(conn: &mut sqlx::SqliteConnection, t: &Table, tx: &SyncSender<Record>) -> bool {
    let mut select = vec![quote(&t.key), quote(&t.geometry)];
    select.extend(t.columns.iter().map(|(c, _)| quote(c)));
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        select.join(", "),
        quote(&t.name),
        quote(&t.key)
    );
    let mut rows = sqlx::query(&sql).fetch(&mut *conn);
    let mut last_fid = None;
    loop {
        let record = match rows.try_next().await {
            Ok(None) => return true,
            Ok(Some(row)) => {
                let r = record(t, &row);
                last_fid = Some(match &r {
                    Ok((Position::Table { fid, .. }, _)) => *fid,
                    Err(RecordError {
                        position: Position::Table { fid, .. },
                        ..
                    }) => *fid,
                    _ => 0,
                });
                r
            }
            Err(e) => {
                // A damaged page: the rest of the table is lost, which the report says.
                let after = last_fid
                    .map(|f| format!(" after fid {f}"))
                    .unwrap_or_default();
                let _ = tx.send(Err(RecordError::new(
                    Position::Table {
                        table: t.name.clone(),
                        fid: last_fid.unwrap_or(0),
                    },
                    None,
                    format!("the rest of the table{after} cannot be read: {e}"),
                )));
                return true;
            }
        };
        if tx.send(record).is_err() {
            return false;
        }
    }
}

fn record(t: &Table, row: &SqliteRow) -> Record {
    let fid: i64 = row.try_get(0).unwrap_or(0);
    let position = Position::Table {
        table: t.name.clone(),
        fid,
    };
    let err = |field: &str, reason: String| RecordError::new(position.clone(), Some(field), reason);
    let blob: Option<Vec<u8>> = row
        .try_get(1)
        .map_err(|_| err(&t.geometry, "is not a BLOB".into()))?;
    let Some(blob) = blob else {
        return Err(err(
            &t.geometry,
            "is null; every feature needs a geometry".into(),
        ));
    };
    // geozero is not known to panic on a blob that passed the bounds walk, but a panic
    // here would end the reading thread and silently end the table: it costs the record.
    let geometry = std::panic::catch_unwind(|| gpkg_geometry(&blob))
        .unwrap_or_else(|_| Err("could not be decoded".into()))
        .map_err(|e| err(&t.geometry, e))?;
    let mut properties = Properties::new();
    for (i, (name, boolean)) in t.columns.iter().enumerate() {
        let i = i + 2;
        let raw = row.try_get_raw(i).map_err(|e| err(name, e.to_string()))?;
        let value = if raw.is_null() {
            serde_json::Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => {
                    let v: i64 = row.try_get(i).map_err(|e| err(name, e.to_string()))?;
                    if *boolean {
                        serde_json::Value::Bool(v != 0)
                    } else {
                        v.into()
                    }
                }
                "REAL" => {
                    let v: f64 = row.try_get(i).map_err(|e| err(name, e.to_string()))?;
                    serde_json::Number::from_f64(v)
                        .map(serde_json::Value::Number)
                        .ok_or_else(|| err(name, format!("{v} is not a finite number")))?
                }
                "TEXT" => {
                    let v: String = row.try_get(i).map_err(|e| err(name, e.to_string()))?;
                    if v.len() > MAX_TEXT_BYTES {
                        return Err(err(
                            name,
                            format!("is {} bytes of text, over {MAX_TEXT_BYTES}", v.len()),
                        ));
                    }
                    v.into()
                }
                _ => continue,
            }
        };
        properties.insert(row.column(i).name().to_owned(), value);
    }
    Ok((
        position,
        Feature {
            geometry: t.crs.geometry_to_lon_lat(geometry),
            properties,
        },
    ))
}
