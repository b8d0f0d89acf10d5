//! The `urbantile` command: parse the command line, set up logging, call the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use urbantile::api::{AppState, router};
use urbantile::dataset::{Dataset, log_report};
use urbantile::ingest::Format;
use urbantile::ingest::run::{IngestOptions, OsmCache, ingest_records, open_records, progress};

#[derive(Parser)]
#[command(
    name = "urbantile",
    version,
    about = "Vector tiles and feature queries for a city's map"
)]
struct Cli {
    /// Folder of layer files (*.toml).
    #[arg(
        long,
        global = true,
        env = "URBANTILE_LAYERS",
        default_value = "layers"
    )]
    layers: PathBuf,
    /// The store: sqlite://PATH, or postgres://USER:PASSWORD@HOST/DB (PostGIS, shared by replicas).
    #[arg(
        long,
        global = true,
        env = "URBANTILE_DATABASE",
        default_value = "sqlite://data/urbantile.db"
    )]
    database: String,
    /// PostGIS: connections for queries per process (one more listens for changes); the
    /// same as `?pool_size=` in the URL, which it overrides.
    #[arg(long, global = true, env = "URBANTILE_DB_POOL_SIZE")]
    db_pool_size: Option<u32>,
    /// PostGIS: seconds to wait for a connection before a request gets 503; the same as
    /// `?pool_timeout_secs=` in the URL, which it overrides.
    #[arg(long, global = true, env = "URBANTILE_DB_TIMEOUT_SECS")]
    db_timeout_secs: Option<f64>,
    /// Folder of index snapshots (`serve` writes them when it stops, `export` after it
    /// reads layers from the store): a start or an export reads a layer's snapshot back,
    /// when it fits the layer file and the change log, instead of indexing the layer anew.
    #[arg(long, global = true, env = "URBANTILE_SNAPSHOTS")]
    snapshots: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The database URL with the pool flags written into it, where the PostGIS store
    /// reads them; the SQLite store has no pool to size, so the flags are refused there.
    fn database_url(&self) -> anyhow::Result<String> {
        let mut extra = Vec::new();
        if let Some(n) = self.db_pool_size {
            extra.push(("pool_size", n.to_string()));
        }
        if let Some(s) = self.db_timeout_secs {
            extra.push(("pool_timeout_secs", s.to_string()));
        }
        if extra.is_empty() {
            return Ok(self.database.clone());
        }
        if !self.database.starts_with("postgres://") && !self.database.starts_with("postgresql://")
        {
            anyhow::bail!("--db-pool-size and --db-timeout-secs apply to a postgres:// database");
        }
        let (base, query) = self
            .database
            .split_once('?')
            .unwrap_or((self.database.as_str(), ""));
        let kept = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| !extra.iter().any(|(k, _)| p.split('=').next() == Some(*k)));
        let params: Vec<String> = kept
            .map(str::to_owned)
            .chain(extra.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        Ok(format!("{base}?{}", params.join("&")))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve tiles over HTTP; a first start ingests every layer's [source].
    Serve {
        #[arg(long, env = "URBANTILE_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Raster base map tile URL template for the map page, e.g.
        /// https://tile.example.org/{z}/{x}/{y}.png (none by default: the map works offline).
        #[arg(long, env = "URBANTILE_BASEMAP")]
        basemap: Option<String>,
        /// Memory for cached tiles (compressed), in MiB; 0 turns the cache off.
        #[arg(long, env = "URBANTILE_CACHE_MB", default_value_t = 256)]
        cache_mb: usize,
        /// Tile size budget, in KiB before compression, of each layer's part of a tile, for
        /// the layers whose files declare no `budget_kb`; a tile over it leaves out whole
        /// features (smallest, or densest, first); 0 turns budgets off.
        #[arg(long, env = "URBANTILE_TILE_BUDGET_KB", default_value_t = urbantile::config::DEFAULT_BUDGET_KB,
              value_parser = clap::value_parser!(u32).range(0..=urbantile::config::MAX_BUDGET_KB as i64))]
        tile_budget_kb: u32,
        /// Largest request body accepted (feature writes), in MiB; larger ones get 413.
        #[arg(long, env = "URBANTILE_MAX_BODY_MB", default_value_t = 32)]
        max_body_mb: usize,
        /// Threads for CPU-heavy work (uncached tiles, item queries, nearest, containing,
        /// aggregate); by default one per core.
        #[arg(long, env = "URBANTILE_WORKERS")]
        workers: Option<usize>,
        /// Expensive requests that may wait for a worker; past it they get 503 at once.
        #[arg(long, env = "URBANTILE_QUEUE", default_value_t = urbantile::compute::DEFAULT_QUEUE)]
        queue: usize,
        /// Seconds an expensive request may take, waiting included; past it, 503.
        #[arg(long, env = "URBANTILE_DEADLINE_SECS", default_value_t = 10.0)]
        deadline_secs: f64,
        /// `/changes` streams open at once; past it, 503.
        #[arg(long, env = "URBANTILE_MAX_SUBSCRIBERS", default_value_t = urbantile::api::changes::DEFAULT_MAX_SUBSCRIBERS)]
        max_subscribers: usize,
        /// Folder of the offline packs served under /packs (see `export`).
        #[arg(long, env = "URBANTILE_PACKS", default_value = urbantile::api::DEFAULT_PACKS)]
        packs: PathBuf,
        /// Seconds a shutdown (SIGTERM, SIGINT) waits for requests under way.
        #[arg(long, env = "URBANTILE_DRAIN_SECS", default_value_t = 10.0)]
        drain_secs: f64,
        /// Also serve GET /metrics, without a key, on this address (an internal interface
        /// the monitoring network reaches); on --bind it needs a key with read scope `*`.
        #[arg(long, env = "URBANTILE_METRICS_BIND")]
        metrics_bind: Option<SocketAddr>,
        /// Count no requests by route (no request counters or latency histograms); the
        /// other metrics stay.
        #[arg(long, env = "URBANTILE_NO_REQUEST_METRICS")]
        no_request_metrics: bool,
        /// Most features one `f=fgb` or `f=csv` items answer streams (its `limit` at most).
        #[arg(long, env = "URBANTILE_MAX_EXPORT_FEATURES", default_value_t = urbantile::api::export::DEFAULT_MAX_EXPORT)]
        max_export_features: usize,
        /// The city's OpenID Connect provider (the tokens' `iss`): signed-in residents and
        /// staff send its tokens as `Authorization: Bearer`, and the layers' `[access]`
        /// rules say what they may do. Without it only access keys are taken.
        #[arg(long, env = "URBANTILE_OIDC_ISSUER", requires = "oidc_audience")]
        oidc_issuer: Option<String>,
        /// The audiences (`aud`) a token must be for, comma separated: this server's client
        /// ids at the provider.
        #[arg(long, env = "URBANTILE_OIDC_AUDIENCE", value_delimiter = ',')]
        oidc_audience: Vec<String>,
        /// The provider's signing keys: a JWKS file, or its URL; by default the URL its
        /// discovery document (ISSUER/.well-known/openid-configuration) names.
        #[arg(long, env = "URBANTILE_OIDC_JWKS")]
        oidc_jwks: Option<String>,
        /// Clock skew allowed on a token's `exp` and `nbf`, in seconds.
        #[arg(long, env = "URBANTILE_OIDC_LEEWAY_SECS", default_value_t = urbantile::auth::token::DEFAULT_LEEWAY_S)]
        oidc_leeway_secs: u64,
    },
    /// Load a file into a layer.
    Ingest {
        /// Layer id (a file stem in the layers folder).
        layer: String,
        /// Input file, or - for standard input.
        file: PathBuf,
        /// geojson, geojsonseq, csv, osm, gpkg, shp (zipped) or fgb; by default from the
        /// file name.
        #[arg(long, env = "URBANTILE_FORMAT")]
        format: Option<Format>,
        /// Only this table of a GeoPackage (or shapefile of a zip); by default every one.
        #[arg(long)]
        table: Option<String>,
        /// Replace the layer's features atomically instead of adding to them.
        #[arg(long)]
        replace: bool,
        /// Stop at the first bad record, writing nothing.
        #[arg(long)]
        strict: bool,
        /// OSM tag filter for .osm.pbf input (default: the layer's [source] filter).
        #[arg(long)]
        osm: Option<String>,
    },
    /// List each layer with its feature count, bounds and zooms.
    Layers,
    /// Write an offline pack: every tile the server serves for an area, as PMTiles or
    /// MBTiles (by the file's extension), with the change-log position it was cut at.
    Export {
        /// The pack to write: OUT.pmtiles or OUT.mbtiles.
        out: PathBuf,
        /// Layer ids, in the tiles' layer order (repeat it, or give a comma list); by
        /// default every public layer. `--layers a,b` after `export` is the same (the layer
        /// folder is then given before the subcommand, or by URBANTILE_LAYERS).
        #[arg(long = "layer", value_name = "ID[,ID...]")]
        layer: Vec<String>,
        /// First zoom; by default the layers' lowest minzoom.
        #[arg(long)]
        minzoom: Option<u8>,
        /// Last zoom; by default the layers' highest maxzoom.
        #[arg(long)]
        maxzoom: Option<u8>,
        /// The area, in degrees: west,south,east,north. By default the layers' bounds.
        #[arg(
            long,
            value_name = "W,S,E,N",
            conflicts_with = "within",
            allow_hyphen_values = true
        )]
        bbox: Option<String>,
        /// The area: the polygon of a feature, e.g. zoning:123 (only tiles meeting it).
        #[arg(long, value_name = "LAYER:FEATURE_ID")]
        within: Option<String>,
        /// Only features valid at this RFC 3339 instant or in this interval (as `/tiles`).
        #[arg(long)]
        datetime: Option<String>,
        /// Threads cutting tiles; by default one per core.
        #[arg(long, env = "URBANTILE_EXPORT_THREADS")]
        threads: Option<usize>,
        /// Tile size budget in KiB, as `serve --tile-budget-kb`: give a pack the tiles of a
        /// server started with the same value (0 turns budgets off).
        #[arg(long, env = "URBANTILE_TILE_BUDGET_KB", default_value_t = urbantile::config::DEFAULT_BUDGET_KB,
              value_parser = clap::value_parser!(u32).range(0..=urbantile::config::MAX_BUDGET_KB as i64))]
        tile_budget_kb: u32,
    },
    /// Manage access keys (stored hashed; a new key is shown once).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Make a key; prints it alone on the last line.
    Add {
        name: String,
        /// Layers the key may write: `*` or a comma list.
        #[arg(long)]
        write: Option<String>,
        /// Layers the key may read beyond the public ones (private layers): `*` or a comma list.
        #[arg(long)]
        read: Option<String>,
    },
    /// List keys with their scopes (never the secrets).
    List,
    /// Revoke a key: requests with it get 401 from then on.
    Revoke { name: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "urbantile=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut cli = Cli::parse_from(export_layers_alias(std::env::args_os().collect()));
    cli.database = cli.database_url()?;
    match cli.command {
        Command::Serve {
            bind,
            basemap,
            cache_mb,
            tile_budget_kb,
            max_body_mb,
            workers,
            queue,
            deadline_secs,
            max_subscribers,
            packs,
            drain_secs,
            metrics_bind,
            no_request_metrics,
            max_export_features,
            oidc_issuer,
            oidc_audience,
            oidc_jwks,
            oidc_leeway_secs,
        } => {
            let seconds = |flag: &str, s: f64| {
                if s.is_finite() && s > 0.0 {
                    Ok(std::time::Duration::from_secs_f64(s))
                } else {
                    Err(anyhow::anyhow!(
                        "--{flag} must be a positive number of seconds"
                    ))
                }
            };
            let defaults = urbantile::compute::Limits::default();
            let options = ServeOptions {
                bind,
                basemap,
                cache_bytes: cache_mb << 20,
                tile_budget_kb,
                max_body: max_body_mb << 20,
                compute: urbantile::compute::Limits {
                    threads: workers.unwrap_or(defaults.threads).max(1),
                    queue,
                    deadline: seconds("deadline-secs", deadline_secs)?,
                },
                drain: seconds("drain-secs", drain_secs)?,
                max_subscribers,
                metrics_bind,
                request_metrics: !no_request_metrics,
                max_export: max_export_features.max(1),
                packs,
                snapshots: cli.snapshots.clone(),
                oidc: oidc_issuer.map(|issuer| urbantile::auth::token::OidcConfig {
                    jwks: urbantile::auth::jwks::JwksSource::parse(oidc_jwks.as_deref(), &issuer),
                    issuer,
                    audiences: oidc_audience,
                    leeway_s: oidc_leeway_secs,
                }),
            };
            serve(&cli.layers, &cli.database, options).await
        }
        Command::Ingest {
            layer,
            file,
            format,
            table,
            replace,
            strict,
            osm,
        } => {
            let data = Dataset::open(&cli.layers, &cli.database).await?;
            let Some(def) = data.layer(&layer) else {
                let known: Vec<_> = data.layers().iter().map(|l| l.id.as_str()).collect();
                bail!(
                    "unknown layer {layer:?}; the layers are: {}",
                    known.join(", ")
                );
            };
            let filter = match osm {
                Some(f) => Some(
                    f.parse()
                        .map_err(|e: String| anyhow::anyhow!("--osm: {e}"))?,
                ),
                None => def.source.as_ref().and_then(|s| s.osm.clone()),
            };
            let records = open_records(
                &file,
                format,
                filter.as_ref(),
                table.as_deref(),
                def,
                &mut OsmCache::default(),
            )?;
            let bar = progress(def.id.as_str());
            let report = ingest_records(
                data.store().as_ref(),
                def,
                &file,
                records,
                IngestOptions { replace, strict },
                &bar,
            )
            .await?;
            bar.finish_and_clear();
            log_report(def, &report);
            println!(
                "{}: {} written ({} repaired), {} skipped ({} read) in {:.2} s",
                def.id,
                report.written,
                report.repaired,
                report.skipped,
                report.read,
                report.elapsed.as_secs_f64()
            );
            for (what, kept, total) in [
                ("repaired", &report.repairs, report.repaired),
                ("skipped", &report.errors, report.skipped),
            ] {
                for e in kept {
                    println!("  {what} {e}");
                }
                if total as usize > kept.len() {
                    println!("  ... and {} more {what}", total as usize - kept.len());
                }
            }
            Ok(())
        }
        Command::Keys { action } => keys(&cli.layers, &cli.database, action).await,
        Command::Export {
            out,
            layer,
            minzoom,
            maxzoom,
            bbox,
            within,
            datetime,
            threads,
            tile_budget_kb,
        } => {
            let args = urbantile::export::args::ExportArgs {
                layers: layer,
                minzoom,
                maxzoom,
                bbox,
                within,
                datetime,
                threads,
            };
            let snapshots = cli.snapshots.clone();
            export(
                &cli.layers,
                &cli.database,
                &out,
                args,
                tile_budget_kb,
                snapshots,
            )
            .await
        }
        Command::Layers => {
            let data = Dataset::open(&cli.layers, &cli.database).await?;
            println!(
                "{:<22} {:<8} {:>8}  {:<5}  bounds (w,s,e,n)",
                "layer", "geometry", "count", "zooms"
            );
            for def in data.layers() {
                let stats = data.store().stats(&def.id).await?;
                let bounds = stats.bounds.map_or("-".to_owned(), |b| {
                    format!("{:.5},{:.5},{:.5},{:.5}", b.west, b.south, b.east, b.north)
                });
                println!(
                    "{:<22} {:<8} {:>8}  {:>2}-{:<2}  {}",
                    def.id.as_str(),
                    def.geometry.as_str(),
                    stats.count,
                    def.minzoom,
                    def.maxzoom,
                    bounds
                );
            }
            // Tile archives: their format in place of a geometry, their tile entries as
            // the count.
            for a in data.archives() {
                let (b, (minzoom, maxzoom)) = (a.bounds(), a.zooms());
                println!(
                    "{:<22} {:<8} {:>8}  {:>2}-{:<2}  {:.5},{:.5},{:.5},{:.5}  archive {}",
                    a.id().as_str(),
                    a.format().extension(),
                    a.entry_count(),
                    minzoom,
                    maxzoom,
                    b.west,
                    b.south,
                    b.east,
                    b.north,
                    a.def().path.display()
                );
            }
            Ok(())
        }
    }
}

async fn keys(layers: &std::path::Path, database: &str, action: KeysAction) -> anyhow::Result<()> {
    use urbantile::auth::{KeyInfo, Scope, generate_key, hash_key};
    let data = Dataset::open(layers, database).await?;
    let now = urbantile::model::time::now_secs();
    match action {
        KeysAction::Add { name, write, read } => {
            if write.is_none() && read.is_none() {
                bail!("a key needs --write LAYERS or --read LAYERS (`*` for every layer)");
            }
            let scope = |s: Option<String>, flag: &str| -> anyhow::Result<Scope> {
                Scope::parse(s.as_deref().unwrap_or(""), data.layers())
                    .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            };
            let info = KeyInfo {
                name,
                read: scope(read, "read")?,
                write: scope(write, "write")?,
                created_at: now,
                revoked_at: None,
            };
            let key = generate_key()?;
            data.store().add_key(&info, &hash_key(&key)).await?;
            println!(
                "key {:?}: read {}, write {}; it is shown only now:",
                info.name, info.read, info.write
            );
            println!("{key}");
        }
        KeysAction::List => {
            println!("{:<20} {:<30} {:<30} state", "name", "read", "write");
            for k in data.store().keys().await? {
                let state = match k.revoked_at {
                    Some(t) => format!("revoked {}", urbantile::model::time::format_rfc3339(t)),
                    None => format!(
                        "since {}",
                        urbantile::model::time::format_rfc3339(k.created_at)
                    ),
                };
                println!(
                    "{:<20} {:<30} {:<30} {state}",
                    k.name,
                    k.read.to_string(),
                    k.write.to_string()
                );
            }
        }
        KeysAction::Revoke { name } => {
            if !data.store().revoke_key(&name, now).await? {
                bail!("no live key named {name:?}");
            }
            println!("key {name:?} revoked");
        }
    }
    Ok(())
}

/// `urbantile export`: loads the index as `serve` does, then cuts and writes the pack.
async fn export(
    layers: &std::path::Path,
    database: &str,
    out: &std::path::Path,
    args: urbantile::export::args::ExportArgs,
    tile_budget_kb: u32,
    snapshots: Option<PathBuf>,
) -> anyhow::Result<()> {
    use urbantile::export::{ExportError, Format};
    if Format::of_path(out).is_none() {
        return Err(ExportError::Extension(out.to_owned()).into());
    }
    let data = Dataset::open(layers, database)
        .await
        .with_context(|| format!("opening the layers from {}", layers.display()))?
        .with_tile_budget(tile_budget_kb);
    let data = match snapshots {
        Some(dir) => data.with_snapshots(dir),
        None => data,
    };
    // Read before the index is loaded: a change made in between is then in the pack and
    // also after its position, never missed by a later delta. An export follows no
    // changes, so a snapshot serves only when it reflects that very position.
    let position = data.change_span().await?.map_or(0, |(_, last)| last);
    let read = args.layers_read(&data);
    data.load_index_at(|id| read.contains(id), Some(position))
        .await?;
    let spec = args.resolve(&data, position)?;
    let data = std::sync::Arc::new(data);
    let out_path = out.to_owned();
    let cutting = data.clone();
    let (report, spec) = tokio::task::spawn_blocking(move || {
        urbantile::export::export(&cutting, &spec, &out_path).map(|r| (r, spec))
    })
    .await??;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}: {} tiles ({} distinct) of {} cut at zooms {}-{}, in {:.2} s ({:.0} tiles/s); \
         tiles {} bytes, stored {} bytes, file {} bytes; change-log position {}",
        out.display(),
        report.tiles,
        report.contents,
        report.tiles_cut,
        spec.minzoom,
        spec.maxzoom,
        secs,
        report.tiles_cut as f64 / secs,
        report.tile_bytes,
        report.stored_tile_bytes,
        report.file_bytes,
        spec.position,
    );
    // For the next export, or a start: the layers read from the store (those read from
    // their snapshots are skipped, unchanged).
    data.write_snapshots(|id| read.contains(id), position).await;
    Ok(())
}

struct ServeOptions {
    bind: SocketAddr,
    basemap: Option<String>,
    cache_bytes: usize,
    tile_budget_kb: u32,
    max_body: usize,
    compute: urbantile::compute::Limits,
    drain: std::time::Duration,
    max_subscribers: usize,
    metrics_bind: Option<SocketAddr>,
    request_metrics: bool,
    max_export: usize,
    packs: PathBuf,
    snapshots: Option<PathBuf>,
    oidc: Option<urbantile::auth::token::OidcConfig>,
}

/// The verifier of the identity provider's tokens. A key set file must read; a provider
/// that cannot be reached at start is only logged (tokens get 503 until it answers), so
/// that the map stays up when the provider is down.
async fn identity(
    config: Option<urbantile::auth::token::OidcConfig>,
) -> anyhow::Result<Option<std::sync::Arc<urbantile::auth::token::Verifier>>> {
    use urbantile::auth::jwks::JwksSource;
    let Some(config) = config else {
        return Ok(None);
    };
    if config.audiences.iter().all(|a| a.trim().is_empty()) {
        anyhow::bail!("--oidc-audience must name at least one audience");
    }
    let verifier = urbantile::auth::token::Verifier::new(config).map_err(anyhow::Error::msg)?;
    match verifier.keys().refresh().await {
        Ok(n) => tracing::info!(
            issuer = %verifier.config().issuer,
            keys = n,
            "signed-in tokens accepted"
        ),
        Err(e) if matches!(verifier.keys().source(), JwksSource::File(_)) => {
            anyhow::bail!("--oidc-jwks: {e}")
        }
        Err(e) => tracing::warn!("signed-in tokens get 503 until the provider answers: {e}"),
    }
    Ok(Some(std::sync::Arc::new(verifier)))
}

async fn serve(
    layers: &std::path::Path,
    database: &str,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let data = Dataset::open(layers, database)
        .await
        .with_context(|| format!("starting with layers from {}", layers.display()))?
        .with_cache(urbantile::cache::TileCache::new(options.cache_bytes))
        .with_tile_budget(options.tile_budget_kb)
        .with_compute(urbantile::compute::Compute::new(options.compute));
    let data = match options.snapshots {
        Some(dir) => data.with_snapshots(dir),
        None => data,
    };
    let data = if options.request_metrics {
        data
    } else {
        data.without_request_metrics()
    };
    let oidc = identity(options.oidc).await?;
    data.ingest_sources_if_empty().await?;
    let data = data.go_live().await?;
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let app = router(AppState {
        data: data.clone(),
        basemap: options.basemap.map(Into::into),
        max_body: options.max_body,
        closing: closing_rx.clone(),
        subscribers: urbantile::api::changes::Subscribers::new(options.max_subscribers),
        fonts: std::sync::Arc::new(urbantile::glyphs::Fonts::bundled()),
        max_export: options.max_export,
        packs: std::sync::Arc::new(urbantile::export::shelf::Shelf::new(options.packs)),
        oidc,
    });
    if let Some(addr) = options.metrics_bind {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding --metrics-bind {addr}"))?;
        tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
        let mut closing = closing_rx.clone();
        let metrics = urbantile::api::metrics::router(data.clone());
        tokio::spawn(async move {
            let served = axum::serve(listener, metrics)
                .with_graceful_shutdown(async move {
                    let _ = closing.wait_for(|c| *c).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!("the metrics listener stopped: {e}");
            }
        });
    }
    let bind = options.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    tracing::info!(
        workers = options.compute.threads,
        queue = options.compute.queue,
        deadline_s = options.compute.deadline.as_secs_f64(),
        "serving on http://{}",
        listener.local_addr()?
    );
    let mut stop_accepting = closing_rx;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_accepting.wait_for(|c| *c).await;
    });
    let mut server = tokio::spawn(async move { server.await });
    tokio::select! {
        done = &mut server => return Ok(done??),
        signal = shutdown_signal() => tracing::info!(
            "{signal}: shutting down; no new connections, up to {:.1} s for requests under way",
            options.drain.as_secs_f64()
        ),
    }
    // Stop accepting, end the change streams, and let requests under way finish.
    let _ = closing.send(true);
    match tokio::time::timeout(options.drain, server).await {
        Ok(done) => done??,
        Err(_) => tracing::warn!("requests were still under way at the end of the drain"),
    }
    // An edit under way commits (or rolls back) before the store is closed; the WAL is
    // then checkpointed into the database file.
    match tokio::time::timeout(options.drain, data.shut_down()).await {
        Ok(Ok(())) => tracing::info!("stopped; the store is checkpointed and closed"),
        Ok(Err(e)) => tracing::warn!("closing the store: {}", urbantile::model::error_chain(&e)),
        Err(_) => tracing::warn!("an edit was still under way at the end of the drain"),
    }
    Ok(())
}

/// Resolves at the first SIGTERM or SIGINT, with its name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The command line with `--layers` after `export` read as `--layer`: the design's
/// `urbantile export OUT [--layers a,b]` names the layers to export there, while the global
/// `--layers` (the layer folder) keeps its meaning before the subcommand. Every global
/// option takes a value, so the subcommand is the first word that is not an option or an
/// option's value.
fn export_layers_alias(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        if !arg.starts_with('-') {
            break;
        }
        i += if arg.starts_with("--") && !arg.contains('=') {
            2
        } else {
            1
        };
    }
    if args.get(i).and_then(|a| a.to_str()) != Some("export") {
        return args;
    }
    for arg in &mut args[i + 1..] {
        if arg.to_str() == Some("--") {
            break;
        }
        let renamed = arg
            .to_str()
            .and_then(|a| a.strip_prefix("--layers"))
            .filter(|rest| rest.is_empty() || rest.starts_with('='))
            .map(|rest| format!("--layer{rest}"));
        if let Some(renamed) = renamed {
            *arg = renamed.into();
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_after_export_names_the_layers_and_before_it_the_folder() {
        let parse = |args: &[&str]| {
            let args = export_layers_alias(args.iter().map(Into::into).collect());
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Export { layer, .. } = cli.command else {
                panic!("not export")
            };
            (cli.layers, layer)
        };
        assert_eq!(
            parse(&[
                "u",
                "--layers",
                "dir",
                "export",
                "o.pmtiles",
                "--layers",
                "a,b"
            ]),
            (PathBuf::from("dir"), vec!["a,b".to_owned()])
        );
        assert_eq!(
            parse(&[
                "u",
                "--database=sqlite://x",
                "export",
                "o.pmtiles",
                "--layers=a",
                "--layer",
                "b"
            ]),
            (
                PathBuf::from("layers"),
                vec!["a".to_owned(), "b".to_owned()]
            )
        );
        let serve = export_layers_alias(
            ["u", "serve", "--layers", "export"]
                .map(Into::into)
                .to_vec(),
        );
        assert_eq!(serve[3].to_str(), Some("export"));
    }

    fn url(args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["urbantile"];
        all.extend_from_slice(args);
        all.push("layers");
        Cli::try_parse_from(all)?.database_url()
    }

    #[test]
    fn pool_flags_go_into_a_postgres_url_and_override_it() {
        let db = "--database=postgres://u:pw@h/db?sslmode=disable&pool_size=3";
        assert_eq!(
            url(&[db]).unwrap(),
            "postgres://u:pw@h/db?sslmode=disable&pool_size=3"
        );
        assert_eq!(
            url(&[db, "--db-pool-size", "12", "--db-timeout-secs", "2.5"]).unwrap(),
            "postgres://u:pw@h/db?sslmode=disable&pool_size=12&pool_timeout_secs=2.5"
        );
        assert_eq!(
            url(&["--database=postgres://h/db", "--db-pool-size", "4"]).unwrap(),
            "postgres://h/db?pool_size=4"
        );
        let e = url(&["--database=sqlite://x.db", "--db-pool-size", "4"]).unwrap_err();
        assert!(e.to_string().contains("postgres://"), "{e}");
    }
}
