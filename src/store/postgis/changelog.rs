//! The PostGIS change log: the listener that wakes a server when others write, the
//! sequencer call, and the [`ChangeLog`] implementation (see the parent module's docs for
//! the design).

use super::*;

/// What the listener tells the readers of the log.
#[derive(Default)]
pub(super) struct Wakeup {
    /// Set at every notification.
    pub(super) woken: tokio::sync::Notify,
    /// Set when rows may be waiting for a position: a notification from the logging
    /// trigger (a write made outside urbantile), or one missed while the listener was
    /// away. A sequencer's own notification (its payload is the last position) follows
    /// a run that numbered everything committed before it, so it does not set this.
    pub(super) unsequenced: std::sync::atomic::AtomicBool,
    /// The highest position a notification named (writers and the sequencer notify the
    /// last position they numbered).
    pub(super) through: std::sync::atomic::AtomicU64,
}

impl Wakeup {
    fn wake(&self, unsequenced: bool) {
        if unsequenced {
            self.unsequenced
                .store(true, std::sync::atomic::Ordering::Release);
        }
        self.woken.notify_one();
    }

    /// A notification: a position numbered, or (an empty or unreadable payload, from the
    /// logging trigger) rows that may wait for one.
    fn notified(&self, payload: &str) {
        match payload.parse::<u64>() {
            Ok(position) => {
                self.through
                    .fetch_max(position, std::sync::atomic::Ordering::AcqRel);
                self.wake(false);
            }
            Err(_) => self.wake(true),
        }
    }
}

/// Wakes the readers at every notification on [`CHANNEL`], for as long as the pool is
/// open; reconnects after a lost connection, and then wakes anyway (something may have
/// been missed meanwhile; the readers' poll covers the rest).
pub(super) async fn listen(pool: PgPool, wakeup: Arc<Wakeup>) {
    // An outage is logged once, when it starts, and once when it ends (the readers log
    // their own failures).
    let mut failing = false;
    let failed = |e: sqlx::Error, failing: &mut bool| {
        if !std::mem::replace(failing, true) {
            tracing::warn!("listening for store changes: {e}; retrying every second");
        }
    };
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                failed(e, &mut failing);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            failed(e, &mut failing);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if std::mem::take(&mut failing) {
            tracing::info!("listening for store changes again");
        }
        wakeup.wake(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => wakeup.notified(n.payload()),
                // The connection was lost (and is being made again): what was notified
                // meanwhile is gone, so the reader looks anyway.
                Ok(None) => {
                    wakeup.wake(true);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    failed(e, &mut failing);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Gives dense positions to the change-log rows of committed transactions that have none
/// yet, in one call of the database function `urbantile_sequence` (see the module docs and
/// migrations/postgres/0001_store.sql); a no-op, without a lock, when there are none.
pub(super) async fn sequence(pool: &PgPool) -> Result<(), StoreError> {
    on_conflict_again(|| async {
        sqlx::query("SELECT urbantile_sequence()")
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    })
    .await
}

/// Runs a sequencer call again when it loses a race (a deadlock with a pruner, say), a
/// few times, waiting a little longer each time.
async fn on_conflict_again<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.kind() == ErrorKind::Conflict && attempt < SEQUENCER_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
            }
            done => return done,
        }
    }
}

pub(super) const CHANGE_COLUMNS: &str =
    "pos, layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin, id";

#[async_trait]
impl ChangeLog for PgStore {
    fn origin(&self) -> u64 {
        self.origin
    }

    /// Only rows with a position: committed, and a prefix (see the module docs).
    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE pos > $1 ORDER BY pos LIMIT $2"
        ))
        .bind(seq as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        change_rows(&rows)
    }

    async fn change_span(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query("SELECT min(pos), max(pos) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        let first: Option<i64> = row.try_get(0)?;
        let last: Option<i64> = row.try_get(1)?;
        Ok(first.zip(last).map(|(a, b)| (a as u64, b as u64)))
    }

    async fn prune_changes_through(&self, seq: u64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !mine {
            return Ok(0);
        }
        // Rows without a position yet are never pruned (NULL <= n is not true).
        let done = sqlx::query("DELETE FROM changes WHERE pos <= $1")
            .bind(seq as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Returns at a notification or after `timeout`, and then runs the sequencer when
    /// rows may be waiting for it (a notification from the trigger, a reconnect, or a
    /// timeout: see [`Wakeup::unsequenced`]), so that rows written outside urbantile (or
    /// left by a writer that died after its commit) get their positions.
    ///
    /// Cancel-safe: the sequencer runs as a task of its own, to the end, even when the
    /// caller stops waiting (the feed does, when its own server wrote). A query cut off
    /// half-way would cost its connection, and a new one costs PostGIS's start-up in the
    /// server process (tens of milliseconds).
    async fn wait_for_changes(&self, timeout: Duration) -> Option<u64> {
        let notified = tokio::time::timeout(timeout, self.wakeup.woken.notified())
            .await
            .is_ok();
        // A poll that timed out numbers what a writer that died between its commit and
        // its numbering left; a sequencer's own notification needs no run (see
        // [`Wakeup::unsequenced`]).
        let unsequenced = self
            .wakeup
            .unsequenced
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        if notified && !unsequenced {
            return Some(
                self.wakeup
                    .through
                    .load(std::sync::atomic::Ordering::Acquire),
            );
        }
        let pool = self.pool.clone();
        if let Ok(Err(e)) = tokio::spawn(async move { sequence(&pool).await }).await {
            tracing::warn!(
                "numbering the change log: {}",
                crate::model::error_chain(&e)
            );
        }
        None
    }
}

/// Rows of [`CHANGE_COLUMNS`] as changes, one for one.
pub(super) fn change_rows(rows: &[PgRow]) -> Result<Vec<Change>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let layer: String = row.try_get(1)?;
        let kind: String = row.try_get(3)?;
        // A row this build cannot read (a layer name no layer file can have, written in
        // SQL; an unknown kind) is kept, as a reload of a layer no server has or of its
        // own layer, rather than skipped: a hole in the positions would read as pruning.
        let layer = LayerId::new(&layer)
            .unwrap_or_else(|_| LayerId::new("_unreadable").expect("a valid layer id"));
        let kind = ChangeKind::parse(&kind).unwrap_or(ChangeKind::Reload);
        out.push(Change {
            seq: row.try_get::<i64, _>(0)? as u64,
            layer,
            feature: row
                .try_get::<Option<i64>, _>(2)?
                .map(|i| FeatureId(i as u64)),
            kind,
            bbox: bbox_columns(row, 4)?,
            at_ms: row.try_get(8)?,
            origin: row.try_get::<i64, _>(9)? as u64,
        });
    }
    Ok(out)
}
