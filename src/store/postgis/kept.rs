//! Connections kept out of the pool between the statements of the busiest paths: the
//! group writer's creates, and reads of features by id and of the log (the follower's,
//! and item pages' property reads).
//!
//! The pool checks a connection with a round trip (a `Sync` and its answer) every time
//! it is given back, and [`super::PgStore::open`] lets it check one before use only after
//! it sat idle. On a server taking a stream of writes, those checks were a round trip more
//! per statement, in the database's CPU and in every write's latency. A kept connection is
//! given to the next of these statements as it is, if it answered one less than
//! [`CHECK_IDLE_AFTER`] ago; one kept longer goes back to the pool. A connection whose
//! statement failed, or whose future was dropped midway, goes back to the pool too, which
//! checks it and closes it if it is broken. (A connection that died less than a second
//! before its next statement, in a restart of PostgreSQL, fails that statement as a
//! database out of reach, as it would have failed a moment earlier.)

use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

use super::{CHECK_IDLE_AFTER, PgPool};

/// A kept connection is handed back to the pool once it has been in use this long, so
/// that the pool's own lifetime limit goes on renewing connections.
const KEEP_AT_MOST: Duration = Duration::from_secs(30 * 60);

pub(super) struct Kept {
    pool: PgPool,
    /// Connections and (when each was first kept, when it was last put back).
    stash: parking_lot::Mutex<Vec<(PoolConnection<Postgres>, Instant, Instant)>>,
    /// The most kept at once: a small share of the pool, so that everything else still
    /// finds connections in it (none for a pool of fewer than 4).
    most: usize,
}

impl Kept {
    pub(super) fn new(pool: PgPool, pool_size: u32) -> Kept {
        Kept {
            pool,
            stash: Default::default(),
            most: (pool_size as usize / 4).min(2),
        }
    }

    /// A kept connection used within the last [`CHECK_IDLE_AFTER`], or else one from the
    /// pool. One kept longer goes back to the pool, which checks it in the background,
    /// rather than being checked here: a connection the network dropped silently could
    /// take TCP's own time to fail, while the pool's checks on taking one are bounded by
    /// its acquire timeout.
    pub(super) async fn take(&self) -> Result<KeptConn<'_>, sqlx::Error> {
        loop {
            let taken = self.stash.lock().pop();
            let Some((conn, first, last)) = taken else {
                break;
            };
            if last.elapsed() < CHECK_IDLE_AFTER {
                return Ok(KeptConn {
                    conn: Some(conn),
                    first,
                    kept: self,
                });
            }
            drop(conn);
        }
        Ok(KeptConn {
            conn: Some(self.pool.acquire().await?),
            first: Instant::now(),
            kept: self,
        })
    }

    /// Gives every kept connection back to the pool; called once the pool is marked
    /// closed, before waiting for it to close (it waits for its connections).
    pub(super) fn release_all(&self) {
        self.stash.lock().clear();
    }
}

/// A connection for one statement; [`KeptConn::done`] keeps it for the next, dropping it
/// gives it back to the pool.
pub(super) struct KeptConn<'a> {
    conn: Option<PoolConnection<Postgres>>,
    first: Instant,
    kept: &'a Kept,
}

impl KeptConn<'_> {
    pub(super) fn conn(&mut self) -> &mut sqlx::PgConnection {
        self.conn.as_mut().expect("a connection until done")
    }

    /// The statement succeeded: the connection is kept for the next one, unless enough
    /// are kept already or it has been kept long enough.
    pub(super) fn done(mut self) {
        let conn = self.conn.take().expect("a connection until done");
        if self.first.elapsed() >= KEEP_AT_MOST {
            return;
        }
        let mut stash = self.kept.stash.lock();
        // Checked under the stash's lock: closing marks the pool closed before it empties
        // the stash, so no connection is kept after that (the pool would wait for it).
        if !self.kept.pool.is_closed() && stash.len() < self.kept.most {
            stash.push((conn, self.first, Instant::now()));
            return;
        }
        drop(stash);
        drop(conn);
    }
}
