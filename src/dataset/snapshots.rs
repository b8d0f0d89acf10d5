//! Index snapshots in a folder (`--snapshots DIR`): each layer's index written at a
//! change-log position ([`crate::index::snapshot`]), so that the next start, or an export,
//! reads it back instead of reading the layer from the store and indexing it again.
//!
//! A snapshot is used only when it fits, else the layer is loaded from the store as
//! without one:
//! - it was written by this very program for this definition of the layer (the
//!   fingerprint: the layer's definition, the snapshot format, the program file's size and
//!   modification time);
//! - the store's change log still holds the entry at its position, the same entry (which
//!   also tells a database from another, or from itself recreated): the changes after it
//!   are then all in the log, and the follower applies them, as it applies the changes
//!   made while a store-loaded layer was read;
//! - for an export, which follows nothing, its position is the log's last.
//!
//! A server writes its snapshots when it stops, once edits under way have reached the
//! index; an export writes those of the layers it had to read from the store. Files are
//! written whole under another name, then renamed into place.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::index::snapshot::{self, Stamp};
use crate::model::{LayerId, error_chain};
use crate::store::Change;

impl Dataset {
    /// The same dataset reading and writing index snapshots in `dir` (created if need be).
    pub fn with_snapshots(mut self, dir: PathBuf) -> Dataset {
        self.snapshots = Some(dir);
        self
    }

    fn snapshot_path(dir: &Path, id: &LayerId) -> PathBuf {
        dir.join(format!("{id}.index"))
    }

    /// Loads from their snapshots the layers `wanted` picks whose snapshot fits;
    /// `exactly_at` asks for snapshots at that log position only. Returns each layer
    /// loaded and the position its snapshot reflects.
    pub(super) async fn load_snapshots(
        &self,
        wanted: &impl Fn(&LayerId) -> bool,
        exactly_at: Option<u64>,
    ) -> Vec<(LayerId, u64)> {
        let Some(dir) = &self.snapshots else {
            return Vec::new();
        };
        sweep_partials(dir);
        // Checked one by one (a log read each), then read back on blocking threads, all
        // at once: a big layer's read does not hold up the small ones.
        let mut reading = tokio::task::JoinSet::new();
        for def in self.layers.iter().filter(|d| wanted(&d.id)) {
            let path = Self::snapshot_path(dir, &def.id);
            match self.open_snapshot(def, &path, exactly_at).await {
                Ok(Some((position, bytes))) => {
                    let def = def.clone();
                    reading.spawn_blocking(move || {
                        let started = Instant::now();
                        let read = snapshot::read(&def, &bytes);
                        (def.id, path, position, read, started.elapsed())
                    });
                }
                Ok(None) => {}
                Err(why) => tracing::info!(
                    layer = %def.id,
                    "index snapshot {} not used: {why}",
                    path.display()
                ),
            }
        }
        let mut loaded = Vec::new();
        while let Some(done) = reading.join_next().await {
            let (id, path, position, read, took) = match done {
                Ok(done) => done,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            match read {
                Ok((_, index)) => {
                    tracing::info!(
                        layer = %id,
                        features = index.len(),
                        position,
                        ms = took.as_millis() as u64,
                        "layer read from its index snapshot"
                    );
                    self.index.replace(&id, index);
                    loaded.push((id, position));
                }
                Err(why) => tracing::warn!(
                    layer = %id,
                    "index snapshot {} not used: {why}",
                    path.display()
                ),
            }
        }
        loaded
    }

    /// The layer's snapshot, mapped, with its position, once its stamp is checked; `None`
    /// when there is none.
    async fn open_snapshot(
        &self,
        def: &LayerDef,
        path: &Path,
        exactly_at: Option<u64>,
    ) -> Result<Option<(u64, memmap2::Mmap)>, String> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        // SAFETY: the file is only read, and only while mapped here; a snapshot is
        // replaced by a rename, never written in place.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
        let stamp = snapshot::stamp(&bytes).map_err(|e| e.to_string())?;
        if stamp.fingerprint != fingerprint(def) {
            return Err("written for another layer definition or program".into());
        }
        if exactly_at.is_some_and(|at| at != stamp.position) {
            return Err(format!(
                "it reflects the change log at {}, not at its end",
                stamp.position
            ));
        }
        let entry = self
            .log_entry(stamp.position)
            .await
            .map_err(|e| format!("reading the change log: {e}"))?;
        if entry != Some(stamp.entry) {
            return Err(format!(
                "the change log no longer holds its position {} as it was",
                stamp.position
            ));
        }
        Ok(Some((stamp.position, bytes)))
    }

    /// A hash of the change log's entry at `position`; `None` when the log does not hold
    /// it (pruned, or never written: another database).
    async fn log_entry(&self, position: u64) -> Result<Option<u64>, crate::store::StoreError> {
        if position == 0 {
            return Ok(None);
        }
        let read = self.store.changes_since(position - 1, 1).await?;
        Ok(read.first().filter(|c| c.seq == position).map(entry_hash))
    }

    /// Writes the snapshots of the layers `which` picks, at `position`, a log position the
    /// index reflects at least. Returns the layers written; a layer that fails is logged
    /// and left out.
    pub async fn write_snapshots(
        &self,
        which: impl Fn(&LayerId) -> bool,
        position: u64,
    ) -> Vec<LayerId> {
        let Some(dir) = &self.snapshots else {
            return Vec::new();
        };
        let entry = match self.log_entry(position).await {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                tracing::info!(
                    position,
                    "no index snapshots: the change log does not hold their position"
                );
                return Vec::new();
            }
            Err(e) => {
                tracing::warn!("no index snapshots: {}", error_chain(&e));
                return Vec::new();
            }
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!("no index snapshots: {}: {e}", dir.display());
            return Vec::new();
        }
        let mut written = Vec::new();
        for def in self.layers.iter().filter(|d| which(&d.id)) {
            let stamp = Stamp {
                fingerprint: fingerprint(def),
                position,
                entry,
            };
            let path = Self::snapshot_path(dir, &def.id);
            // Already written at this position (the layer was read from it, and has not
            // changed since).
            if stamp_of(&path) == Some(stamp) {
                continue;
            }
            let layer = self.index.read(&def.id);
            let started = Instant::now();
            // A layer is written under its read lock, in place: a few hundred milliseconds
            // for a big one, at a server's stop or after an export's load.
            let done = write_file(&path, &layer, stamp);
            drop(layer);
            match done {
                Ok(bytes) => {
                    tracing::info!(
                        layer = %def.id,
                        bytes,
                        position,
                        ms = started.elapsed().as_millis() as u64,
                        "index snapshot written"
                    );
                    written.push(def.id.clone());
                }
                Err(e) => tracing::warn!(layer = %def.id, "index snapshot {}: {e}", path.display()),
            }
        }
        written
    }
}

/// The stamp of the snapshot at `path`, from its first bytes.
fn stamp_of(path: &Path) -> Option<Stamp> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_end(&mut head)
        .ok()?;
    snapshot::stamp(&head).ok()
}

fn write_file(path: &Path, index: &crate::index::LayerIndex, stamp: Stamp) -> std::io::Result<u64> {
    // Named for this process: a server and an export writing at once each rename a whole
    // file into place.
    let partial = path.with_extension(format!("index.{}.partial", std::process::id()));
    let done = std::fs::File::create(&partial).and_then(|file| {
        let written = snapshot::write(
            index,
            stamp,
            std::io::BufWriter::with_capacity(1 << 20, file),
        )?;
        std::fs::rename(&partial, path)?;
        Ok(written)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    done
}

/// Removes the files in `dir` that a writer which has since ended left half written
/// (`<layer>.index.<pid>.partial`: the writer stopped mid-file, cut off by its drain time
/// or killed). A file whose process still runs is another writer's, under way, and is
/// kept; so is everything where the system cannot say which processes run (no `/proc`).
fn sweep_partials(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".partial"))
            .and_then(|n| n.rsplit_once(".index."))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || proc.join(pid.to_string()).exists() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::info!(
                "removed a half-written index snapshot: {}",
                entry.path().display()
            ),
            Err(e) => tracing::warn!(
                "half-written index snapshot {}: {e}",
                entry.path().display()
            ),
        }
    }
}

/// The layer's definition, the snapshot format and this program file: a snapshot written
/// by another build, or for a layer file since edited, is not read.
fn fingerprint(def: &LayerDef) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    snapshot::FORMAT.hash(&mut h);
    format!("{def:?}").hash(&mut h);
    program().hash(&mut h);
    h.finish()
}

/// This program file: its size, modification time and first 64 KiB (where the linker puts
/// the build's id), read once.
fn program() -> u64 {
    static PROGRAM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PROGRAM.get_or_init(|| {
        use std::io::Read;
        let mut h = std::hash::DefaultHasher::new();
        if let Ok(exe) = std::env::current_exe()
            && let Ok(file) = std::fs::File::open(exe)
        {
            if let Ok(meta) = file.metadata() {
                meta.len().hash(&mut h);
                meta.modified().ok().hash(&mut h);
            }
            let mut head = Vec::with_capacity(1 << 16);
            let _ = file.take(1 << 16).read_to_end(&mut head);
            head.hash(&mut h);
        }
        h.finish()
    })
}

fn entry_hash(c: &Change) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (
        c.seq,
        c.layer.as_str(),
        c.feature.map(|f| f.0),
        c.at_ms,
        c.origin,
    )
        .hash(&mut h);
    format!("{:?}", c.kind).hash(&mut h);
    h.finish()
}
