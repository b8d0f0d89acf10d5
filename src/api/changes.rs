//! `GET /changes`: server-sent events, one per feature created, replaced, updated or
//! deleted, and one `reload` per bulk write to a layer. `?layers=a,b` subscribes to some
//! layers (default: every layer the reader may see). A client that reconnects with
//! `Last-Event-ID` first receives what it missed, from the store's change log; if the log no
//! longer reaches back that far, it gets a `reset` event and should reload what it shows.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;

use crate::api::{ApiError, AppState, Auth, visible_layer};
use crate::dataset::Dataset;
use crate::model::LayerId;
use crate::model::time::format_rfc3339;
use crate::store::Change;

pub fn routes() -> Router<AppState> {
    Router::new().route("/changes", get(changes))
}

/// Change-log rows read per store query when catching up.
const CATCH_UP: u32 = 500;

/// Default for `serve --max-subscribers`: open `/changes` streams at once.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 10_000;

/// Counts the open `/changes` streams against a bound: each holds a connection, a task
/// and a place in the broadcast channel for as long as the client stays, so an anonymous
/// client could otherwise open them until memory or file descriptors run out.
#[derive(Clone, Debug)]
pub struct Subscribers {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Subscribers {
    pub fn new(max: usize) -> Subscribers {
        Subscribers {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more stream, `None` when all are taken. The place is freed when
    /// the returned guard is dropped (the stream ends or the client goes).
    fn enter(&self) -> Option<Subscribed> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Subscribed(self.open.clone()))
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One open stream's place, given back on drop.
struct Subscribed(Arc<AtomicUsize>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn changes(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut layers = BTreeSet::new();
    let mut asked = false;
    for (k, v) in &params {
        match k.as_str() {
            "layers" => {
                asked = true;
                for id in v.split(',').filter(|s| !s.is_empty()) {
                    layers.insert(visible_layer(&state, &reader, id)?.id.clone());
                }
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (/changes accepts: layers)"
                )));
            }
        }
    }
    if !asked {
        layers = reader
            .visible(state.data.layers())
            .map(|d| d.id.clone())
            .collect();
    }
    let last_id = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) if v.trim().is_empty() => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "Last-Event-ID {v:?} is not an event id of this feed"
            ))
        })?),
    };
    let Some(place) = state.subscribers.enter() else {
        return Err(ApiError::Unavailable {
            description: format!(
                "{} change streams are open, the most this server keeps (--max-subscribers)",
                state.subscribers.max
            ),
            retry_after_s: 30,
        });
    };
    // Subscribe before reading the log, so that nothing falls between the two.
    let (receiver, last) = state.data.subscribe();
    let (cursor, reset) = match last_id {
        None => (last, false),
        Some(id) => {
            let span = state.data.change_span().await?;
            // Entries after `id` were pruned if the log now starts later than `id + 1`; an
            // id past the log's end is not one of this store's.
            let pruned = span
                .is_some_and(|(first, last)| first > id.saturating_add(1) || id > last)
                || (span.is_none() && id > 0);
            if pruned { (last, true) } else { (id, false) }
        }
    };
    let feed = Follow {
        data: state.data.clone(),
        layers: Arc::new(layers),
        receiver,
        cursor,
        backlog: std::collections::VecDeque::new(),
        reset,
        _place: place,
    };
    // The stream ends when the server starts shutting down, so that it can drain.
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    })
    .take_until(crate::api::closing(state.closing.clone()));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One subscriber's position in the feed.
struct Follow {
    /// Held for as long as the stream lives.
    _place: Subscribed,
    data: Arc<Dataset>,
    layers: Arc<BTreeSet<LayerId>>,
    receiver: broadcast::Receiver<Arc<Change>>,
    /// The last `seq` this subscriber has been given (or skipped).
    cursor: u64,
    backlog: std::collections::VecDeque<Change>,
    reset: bool,
}

impl Follow {
    /// The next event for this subscriber; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        if self.reset {
            return self.next_reset();
        }
        loop {
            if let Some(c) = self.backlog.pop_front() {
                self.cursor = c.seq;
                if let Some(e) = self.event(&c) {
                    return Some(e);
                }
                continue;
            }
            // Behind the feed (a reconnect, or a lagging subscriber): read the log, up to
            // what this server has applied and broadcast. Entries past it (written through
            // another server, not applied here yet) come with the broadcast, once this
            // server's tiles reflect them: a client that refetches on an event must not be
            // told of a change before the tiles here show it.
            let applied = self.data.last_change();
            if self.cursor < applied {
                let read = self.data.changes_since(self.cursor, CATCH_UP).await;
                let read = read.map(|mut batch| {
                    batch.retain(|c| c.seq <= applied);
                    batch
                });
                match read {
                    // The log is gap-free: a gap is entries pruned before this subscriber
                    // read them. Say so rather than skip them silently.
                    Ok(batch) if batch.first().is_some_and(|c| c.seq > self.cursor + 1) => {
                        self.cursor = batch[0].seq - 1;
                        self.reset = true;
                        return self.next_reset();
                    }
                    Ok(batch) if !batch.is_empty() => {
                        self.backlog.extend(batch);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("change feed: reading the log: {e}");
                        return None;
                    }
                }
            }
            match self.receiver.recv().await {
                Ok(c) if c.seq > self.cursor => {
                    self.cursor = c.seq;
                    if let Some(e) = self.event(&c) {
                        return Some(e);
                    }
                }
                Ok(_) => {}
                // Missed some: the log has them.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The `reset` event: what this subscriber shows may be missing changes.
    fn next_reset(&mut self) -> Option<Event> {
        self.reset = false;
        Some(
            Event::default()
                .event("reset")
                .id(self.cursor.to_string())
                .data(
                    json!({"reason": "the change log no longer holds the missed changes; reload"})
                        .to_string(),
                ),
        )
    }

    fn event(&self, c: &Change) -> Option<Event> {
        if !self.layers.contains(&c.layer) {
            return None;
        }
        let data = json!({
            "layer": c.layer,
            "id": c.feature.map(|f| f.0),
            "kind": c.kind,
            "bbox": c.bbox.map(|b| b.to_array()),
            "time": format_rfc3339(c.at_ms.div_euclid(1000)),
        });
        Some(
            Event::default()
                .event("change")
                .id(c.seq.to_string())
                .data(data.to_string()),
        )
    }
}
