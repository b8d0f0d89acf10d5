//! Group commit of single-feature creates.
//!
//! A POST of one feature is the commonest write (a report from the street, a sensor's
//! reading), and alone it costs a whole transaction: its INSERT, the numbering of its log
//! row and a COMMIT that waits for the disk. Creates of one layer that arrive while a
//! transaction of that layer's creates is under way wait in a queue; when it commits, the
//! next transaction takes all of them (up to [`GROUP_MAX`] creates and about
//! [`GROUP_BYTES`]), written by [`crate::store::Features::create_batch`] (on PostGIS one
//! statement, one round trip). Nothing waits on a timer: a create that finds no
//! transaction under way starts one at once, so a lone writer pays no latency, and many
//! writers share a commit.
//!
//! Each create is checked on its own before it queues, so a bad feature is refused without
//! touching its neighbours. A group the store refuses before its commit (a constraint of
//! the database that one row breaks, say) is written again in halves, and so on down to
//! the one create that is refused alone and gets its own answer: a few more transactions,
//! and the others still share theirs. A group that fails because the store cannot be
//! reached fails whole, at once (halving it would only wait for the store again). A group
//! whose COMMIT fails has an unknown outcome, so it is not written again: every create in
//! it gets the error, as a lone create would.
//!
//! The writer does not wait for the follower: once a group commits, a task of its own
//! waits for the changes to reach the index and answers the group, while the writer starts
//! on the next one.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Done, EDIT_ATTEMPTS, EditError, EditOptions, check, publish_owner};
use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::ingest::Position;
use crate::model::{Feature, LayerId};
use crate::store::{BatchFailed, ErrorKind, NewFeature};

/// The most creates one transaction takes: bounds its statement and what a refused group
/// writes again.
const GROUP_MAX: usize = 256;

/// About the most bytes of features one transaction takes (each create may be as big as
/// a request body): a group stops before the create that would pass it, unless that
/// create is its first.
const GROUP_BYTES: usize = 16 << 20;

/// Creates waiting for a transaction, by layer.
#[derive(Default)]
pub(in crate::dataset) struct Creates {
    queues: parking_lot::Mutex<HashMap<LayerId, Queue>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Whether a writer task runs for the layer (it takes what waits when it is ready).
    writing: bool,
}

struct Waiting {
    /// An estimate of the feature's size as written ([`size_of_feature`]).
    bytes: usize,
    feature: NewFeature,
    owner: Option<Arc<str>>,
    reply: oneshot::Sender<Result<Done, EditError>>,
}

/// Marks a layer's writer stopped when it ends, even by a panic: the creates it left
/// waiting are then dropped (their requests fail as aborted) rather than left forever.
struct Writing<'a> {
    creates: &'a Creates,
    layer: &'a LayerId,
    armed: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut queues = self.creates.queues.lock();
            if let Some(q) = queues.get_mut(self.layer) {
                q.writing = false;
                q.waiting.clear();
            }
        }
    }
}

impl Dataset {
    /// Creates one feature of `def`'s layer in a transaction shared with the creates that
    /// arrive meanwhile (see the module docs); answers once the index has it.
    pub(super) async fn create_grouped(
        self: &Arc<Self>,
        def: &LayerDef,
        mut feature: Feature,
        options: &EditOptions,
    ) -> Result<Done, EditError> {
        let types = self.index.read(&def.id).field_types().to_vec();
        if let Some(owner) = &options.owner {
            publish_owner(def, &mut feature, Some(&serde_json::Value::from(&**owner)));
        }
        let checked = check(def, &types, Position::Feature(0), feature, options)?;
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queues = self.creates.queues.lock();
            let queue = queues.entry(def.id.clone()).or_default();
            queue.waiting.push(Waiting {
                bytes: size_of_feature(&checked),
                feature: checked,
                owner: options.owner.clone(),
                reply,
            });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            let data = self.clone();
            let layer = def.id.clone();
            tokio::spawn(async move { data.write_creates(&layer).await });
        }
        answer
            .await
            .map_err(|_| EditError::Aborted("the transaction of this create stopped".into()))?
    }

    /// A layer's writer: writes what waits, group after group, until nothing does.
    async fn write_creates(self: &Arc<Self>, layer: &LayerId) {
        let mut writing = Writing {
            creates: &self.creates,
            layer,
            armed: true,
        };
        let Some(def) = self.layer(layer.as_str()) else {
            return;
        };
        loop {
            let group: Vec<Waiting> = {
                let mut queues = self.creates.queues.lock();
                let Some(queue) = queues.get_mut(layer) else {
                    return;
                };
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    writing.armed = false;
                    return;
                }
                let take = group_len(queue.waiting.iter().map(|w| w.bytes));
                queue.waiting.drain(..take).collect()
            };
            self.write_group(def, group).await;
        }
    }

    /// Writes one group in one transaction, retried when it loses a race; on a refusal
    /// before its commit, writes each half of it the same way.
    async fn write_group(self: &Arc<Self>, def: &LayerDef, group: Vec<Waiting>) {
        let mut attempt = 1;
        let error = loop {
            let under_way = self.feed.edits.clone().read_owned().await;
            let mark = self.feed.mark();
            let creates: Vec<(&NewFeature, Option<&str>)> = group
                .iter()
                .map(|waiting| (&waiting.feature, waiting.owner.as_deref()))
                .collect();
            let written = self.store.create_batch(&def.id, &creates).await;
            drop(creates);
            match written {
                Ok((ids, changes)) => {
                    self.metrics.wrote(&changes);
                    self.feed.committed(&changes);
                    let data = self.clone();
                    tokio::spawn(async move {
                        let _under_way = under_way;
                        data.wait_applied(&changes, mark).await;
                        for (waiting, id) in group.into_iter().zip(ids) {
                            let _ =
                                waiting
                                    .reply
                                    .send(Ok(Done::new(id, 0, waiting.feature.feature)));
                        }
                    });
                    return;
                }
                // A failure at or after the commit has an unknown outcome: not written again.
                Err(BatchFailed {
                    error,
                    maybe_stored: true,
                }) => break error,
                Err(BatchFailed { error: e, .. })
                    if e.kind() == ErrorKind::Conflict && attempt < EDIT_ATTEMPTS =>
                {
                    tracing::debug!(attempt, "a group of creates lost a race in the store: {e}");
                    attempt += 1;
                }
                Err(BatchFailed { error: e, .. })
                    if group.len() > 1
                        && matches!(e.kind(), ErrorKind::Refused | ErrorKind::Other) =>
                {
                    tracing::debug!(
                        creates = group.len(),
                        "a group of creates was refused, writing it in halves: {e}"
                    );
                    drop(under_way);
                    let mut first = group;
                    let second = first.split_off(first.len() / 2);
                    Box::pin(self.write_group(def, first)).await;
                    Box::pin(self.write_group(def, second)).await;
                    return;
                }
                Err(BatchFailed { error, .. }) => break error,
            }
        };
        if let [_] = group.as_slice() {
            let waiting = group.into_iter().next().expect("one create");
            let _ = waiting.reply.send(Err(EditError::Store(error)));
            return;
        }
        let shared = Arc::new(error);
        for waiting in group {
            let _ = waiting.reply.send(Err(EditError::Shared(shared.clone())));
        }
    }
}

/// How many of the creates waiting, of these sizes, the next group takes: at most
/// [`GROUP_MAX`], and no more than [`GROUP_BYTES`] unless the first alone is more.
fn group_len(sizes: impl Iterator<Item = usize>) -> usize {
    let mut total = 0;
    sizes
        .take(GROUP_MAX)
        .enumerate()
        .take_while(|&(i, bytes)| {
            total += bytes;
            i == 0 || total <= GROUP_BYTES
        })
        .count()
}

/// About the bytes a feature takes in a write: 16 per coordinate, and its properties'
/// strings (what else a property holds is small).
fn size_of_feature(f: &NewFeature) -> usize {
    use geo::CoordsIter;
    let props: usize = f
        .feature
        .properties
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(16, str::len))
        .sum();
    64 + 16 * f.feature.geometry.coords_count() + props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_stops_at_its_count_or_its_bytes_but_takes_at_least_one() {
        assert_eq!(group_len(std::iter::empty()), 0);
        assert_eq!(group_len(std::iter::repeat_n(100, 1000)), GROUP_MAX);
        let half = GROUP_BYTES / 2;
        assert_eq!(group_len([half, half, 1].into_iter()), 2);
        assert_eq!(group_len([GROUP_BYTES * 3, 1].into_iter()), 1);
        assert_eq!(group_len([1, GROUP_BYTES].into_iter()), 1);
    }
}
