//! Everything that turns features into Mapbox Vector Tiles, and nothing else: the Web
//! Mercator tile scheme, projection, clipping, simplification, quantisation and the MVT 2.1
//! protobuf encoding. Pure and synchronous: no HTTP, no database.
//!
//! Up to a layer's maxzoom, the per-feature work that does not depend on the tile is done
//! once per zoom when the index is built ([`grid`]): project to the zoom's grid, simplify,
//! round, drop what collapsed, fix winding, encode commands. A tile then copies the
//! commands of features wholly inside it and clips the others ([`render`]). Overzoomed
//! tiles are cut from the projected geometry in one pass per feature: tile-local float
//! coordinates -> clip to the tile plus buffer -> round to the extent grid -> drop what
//! collapsed -> fix winding -> encode.

pub mod clip;
pub mod compress;
pub mod coord;
pub mod grid;
pub mod mercator;
pub mod mvt;
pub mod quantise;
pub mod render;
pub mod simplify;
pub mod tms;

pub use coord::{TileCoord, TileCoordError};
pub use mercator::ProjectedGeometry;
pub use mvt::Value;
pub use render::LayerRenderer;

/// Deepest zoom the server renders; deeper requests are out of the tile scheme.
pub const MAX_ZOOM: u8 = 24;

/// Tile extent in MVT units: coordinates run 0..EXTENT across a tile.
pub const EXTENT: u32 = 4096;
/// Geometry is kept this many extent units beyond each tile edge so that strokes and point
/// symbols do not show seams at tile edges. 64 units of 4096 is the usual default of
/// PostGIS-based servers, so tiles line up with theirs.
pub const BUFFER_UNITS: u32 = 64;
