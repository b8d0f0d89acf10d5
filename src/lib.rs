//! urbantile: a geospatial tile and map-layer server for a city's interactive map.
//!
//! An indexed spatial store ingests the city's layers (zoning, buildings, roads, permits,
//! accidents, events, citizens' reports...) and serves them as Mapbox Vector Tiles.
//!
//! # Module map
//! Dependencies run one way: `api -> export -> dataset / style / query / planner / composite / files -> filter -> cache / store / index / ingest / metrics / archive -> auth / config / glyphs -> cluster / tiles / model`; no cycles (`dataset::live` and `dataset::follow` are parts of `dataset`).
//!
//! | module | owns |
//! | --- | --- |
//! | [`model`] | plain data: `LayerId`, `Feature`, `FeatureId`, `TimeRange`, `Bbox`; RFC 3339 time; declared property types and their checks |
//! | [`limits`] | the size and depth bounds of every parser of client input, and the JSON depth scan |
//! | [`compute`] | the pool sized to the cores where CPU-heavy request work runs: bounded queue (503 past it), deadline per job, checked cooperatively; light work tried in place on the runtime first, within an allowance and a share of the threads' time |
//! | [`auth`] | who asks: access keys (random secret, stored hashed) and their read/write scopes; `auth::token`: signed-in residents' JWTs (RS256/ES256, `iss`, `aud`, `exp`, `nbf`), verified tokens remembered until they expire, owners hashed; `auth::jwks`: the identity provider's key set from a file or URL (discovery), kept, read again on age or an unknown `kid` at most every 30 s; rights from a layer's `[access]` |
//! | [`config`] | `layers/*.toml` -> validated `LayerDef` with declared property types, clusters, tile size budgets and `[access]` rules over tokens' claims (`config::access`), or `ArchiveDef` for a layer that is a tile archive (`config::archive`) (errors name file and key) |
//! | [`tiles`] | Web Mercator tile scheme and its OGC description (WebMercatorQuad, tile set limits), clip, simplify, quantise, grid geometry (MVT commands per zoom), MVT 2.1 encoding, gzip and zstd (pure, sync) |
//! | [`index`] | per layer: projected features, their grid geometry per zoom, a packed R-tree for tiles and R*-trees for queries, behind one lock and updated in place by writes; `index::thinning`: the tile size budget's plan, which features each zoom keeps; `index::snapshot`: a layer's index written to a file and read back, checked |
//! | [`cluster`] | point clusters over a whole layer, one level per zoom (greedy, as supercluster does): build, tile queries, a cluster's points, what changed between two trees (pure, sync) |
//! | [`composite`] | a composite tile: one MVT layer per requested layer, cut from the layers' indexes through their filters, on the compute pool's deadline |
//! | [`cache`] | encoded tiles kept compressed (zstd or gzip, as asked), bounded in bytes, invalidated exactly by writes |
//! | [`store`] | the store contract (`Features`, `Keys`, `ChangeLog`, bundled by `FeatureStore`; error kinds), the SQLite backend (sqlx, WAL) and the PostGIS one shared by replicas (row versions, a logging trigger, a change-log sequencer, LISTEN/NOTIFY naming positions, the log read with its features, connections kept between the busiest statements), with their migrations |
//! | [`ingest`] | readers (GeoJSON, GeoJSONSeq, CSV, OSM PBF, GeoPackage, Shapefile, FlatGeobuf) -> validated features, with per-record errors; files' coordinate systems (`ingest::crs`) and the projection maths back to WGS84 (`ingest::projection`, pure) |
//! | [`generate`] | deterministic generators: city-operations layers and the metropolitan benchmark set |
//! | [`dataset`] | the running server's layers as one service with private parts: layer definitions, store, index, tile cache, change feed, compute pool and the open tile archives; first-start ingest, the reads the API makes, shutdown; `dataset::live`: feature edits (validate, one transaction, wait for the follower; `live::group`: concurrent single creates share a transaction) and the feed; `dataset::follow`: following the store's change log, the one path by which every change reaches the index and cache; `dataset::recall`: features answered from memory while the store is unreachable; `dataset::clusters`: clustered layers' trees per index version and query, rebuilt after writes, with their exact tile invalidation; `dataset::snapshots`: index snapshots in a folder, read back at start or export when they fit the layer file, the program and the change log; `dataset::thinning`: tile size budgets planned anew after writes, outside the layer's lock (`index::thinning::PlanInput`) |
//! | [`archive`] | tile archives served as layers: PMTiles memory-mapped with their directories read at start, MBTiles read once into one buffer, checked at start (errors name layer and file); format, zooms, bounds, `vector_layers`; a tile as a slice with its ETag; the PMTiles v3 reader over bytes and the MBTiles readers that packs use too |
//! | [`export`] | offline packs: the area and its tiles, the parallel cut in tile-id order, PMTiles (writer through the `pmtiles` crate) and MBTiles (sqlx) archives with TileJSON metadata and the change-log position; read back through [`archive`]'s readers |
//! | [`style`] | the MapLibre style generated from the layer files: fills, lines, circles, clusters with their counts, labels (`[style] label`), tile archives under the live layers |
//! | [`glyphs`] | label glyphs: the fonts shipped in `fonts/`, rendered as SDF glyph ranges (pbf_font_tools, FreeType) on first use and kept |
//! | [`files`] | feature files written piece by piece for streaming: FlatGeobuf (the `flatgeobuf` crate's tables, no index, count 0) and CSV with WKT (pure, sync) |
//! | [`metrics`] | operations metrics: lock-free handles recorded as things happen (requests by route template, tile sizes, writes, applied changes, ingest), read with the cache's and the log's state at scrape time and written as OpenMetrics text (`prometheus-client`) |
//! | [`query`] | OGC API - Features item queries: validated parameters, run on the index |
//! | [`filter`] | CQL2 (text and JSON) filters for items and tiles, checked against a layer |
//! | [`planner`] | nearest, containing and aggregate-by-polygon questions on the index |
//! | [`api`] | the axum router: tiles, TileJSON, OGC API - Tiles (`ogc_tiles`), catalog, health, style, map page, features and their edits (and `OPTIONS`), items as files (`export`, over [`files`]), clusters' leaves, `/changes`, glyphs (`/fonts`), `/metrics`, offline packs (`/packs`), tile archives' tiles (`archive_tiles`); CORS that lets plain `OPTIONS` through; `ApiError` |

pub mod api;
pub mod archive;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod composite;
pub mod compute;
pub mod config;
pub mod dataset;
pub mod export;
pub mod files;
pub mod filter;
pub mod generate;
pub mod glyphs;
pub mod index;
pub mod ingest;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod planner;
pub mod query;
pub mod store;
pub mod style;
pub mod tiles;
