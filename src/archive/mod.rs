//! Tile archives read in place: the PMTiles v3 reader over bytes and the MBTiles readers.
//! `export` writes packs and reads them back through them.

pub mod mbtiles;
pub mod pmtiles;
