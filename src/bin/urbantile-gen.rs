//! `urbantile-gen`: writes deterministic generated layers as GeoJSONSeq fixtures.
//!
//! Each generator is one subcommand with its own argument struct, so a new one (e.g.
//! `metro`) is a new [`Command`] variant, its `Args` struct and one match arm in `main`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use urbantile::generate::{self, city};
use urbantile::ingest::osm::read_osm;
use urbantile::model::Feature;

#[derive(Debug, Parser)]
#[command(
    name = "urbantile-gen",
    version,
    about = "Generate deterministic test layers as GeoJSONSeq files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// City-operations layers (permits, accidents, events, toll zones, roads...) derived
    /// from a real OSM extract.
    City(CityArgs),
    /// The metropolitan benchmark set: every layer's first-start data repeated over an
    /// N x N grid, one `<layer>.geojsonseq` per layer for `urbantile ingest`.
    Metro(MetroArgs),
}

#[derive(Debug, Args)]
struct MetroArgs {
    /// Copies along each side: 10 gives about 10 x 17 km and 400k features.
    #[arg(long, default_value_t = 10)]
    n: u32,
    /// Folder of layer files whose [source]s are repeated.
    #[arg(long, default_value = "layers")]
    layers: PathBuf,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct CityArgs {
    /// The OSM extract to take geometry from (.osm.pbf).
    #[arg(long, value_name = "FILE")]
    osm: PathBuf,
    /// Output directory; one `<layer>.geojsonseq` per layer is (over)written there.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Seed of the generator: the same extract and seed give byte-identical files.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::City(args) => run_city(&args),
        Command::Metro(args) => {
            let layers = urbantile::config::load_layers(&args.layers)?.live;
            let counts = generate::metro::write_metro(&layers, args.n, &args.out)?;
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            for (layer, n) in &counts {
                println!("{layer:<24} {n:>9} features");
            }
            println!("{total} features in {}", args.out.display());
            Ok(())
        }
    }
}

fn run_city(args: &CityArgs) -> anyhow::Result<()> {
    let osm = read_osm(&args.osm)?;
    let layers = city::generate_city(&osm, args.seed);
    write_layers(&args.out, &layers)
}

/// Writes every layer as `<out>/<stem>.geojsonseq` and prints one line per file.
fn write_layers(out: &Path, layers: &[(String, Vec<Feature>)]) -> anyhow::Result<()> {
    fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let mut total = 0;
    for (stem, features) in layers {
        let path = out.join(format!("{stem}.geojsonseq"));
        let bytes = generate::write_geojsonseq(&path, features)
            .with_context(|| format!("cannot write {}", path.display()))?;
        total += bytes;
        println!(
            "{:<40} {:>6} features {:>10} bytes",
            path.display(),
            features.len(),
            bytes
        );
    }
    println!(
        "{} layers, {total} bytes in {}",
        layers.len(),
        out.display()
    );
    Ok(())
}
