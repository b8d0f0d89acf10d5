//! Live data: edits to single features (OGC API - Features Part 4) and the change feed.
//!
//! An edit is, in this order: checked against the layer, written and logged in one store
//! transaction, and committed (durable). Edits run side by side; the store keeps them
//! apart (SQLite has one writer at a time, PostgreSQL checks row versions). The committed
//! change then reaches this server's index and tile cache the way every other change does:
//! through the follower ([`super::follow`]), which applies the store's change log in `seq`
//! order, one path for this server's edits and for those of other processes sharing the
//! store (an `ingest --replace` from the command line, another server). The edit waits for
//! the follower to pass its changes, and only then is it answered, so the next tile or
//! query sees it.
//!
//! The follower also broadcasts every change to `GET /changes` subscribers.
//!
//! Single-feature creates of one layer that arrive together share a transaction
//! ([`group`]): the commonest write pays for a commit once per group, not once per feature.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, RwLock, broadcast, watch};

use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::index::FieldType;
use crate::ingest::validate::{OnInvalid, validate_with};
use crate::ingest::{Position, RecordError};
use crate::model::{Feature, FeatureId, LayerId, StoredFeature};
use crate::store::{Change, ChangeKind, ErrorKind, StoreError, WriteMode};
use crate::tiles::ProjectedGeometry;

mod group;
pub(super) use group::Creates;

/// How many change-log entries the store keeps for clients that reconnect.
pub const CHANGE_LOG_KEEP: u64 = 100_000;

/// Runs of an edit that lose a race in the store ([`ErrorKind::Conflict`]) before it fails.
const EDIT_ATTEMPTS: u32 = 4;

/// How long at most an edit waits, once committed, for the follower to put it in the index
/// before it is answered anyway (the follower is then behind, a big layer reload under
/// way, say; it applies the edit when it can). An edit stops waiting sooner when the
/// follower fails (the store unreachable for reads).
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// One edit of a feature.
#[derive(Debug, Clone)]
pub enum Edit {
    Create(Feature),
    /// Replace a feature whole (PUT).
    Replace {
        id: FeatureId,
        feature: Feature,
        if_match: Option<String>,
    },
    /// Apply a JSON merge patch (RFC 7396) to the feature's GeoJSON (PATCH).
    Patch {
        id: FeatureId,
        patch: serde_json::Value,
        if_match: Option<String>,
    },
    Delete {
        id: FeatureId,
        if_match: Option<String>,
    },
}

/// How edits treat what they are sent, and for whom they are made.
#[derive(Debug, Clone, Default)]
pub struct EditOptions {
    /// Make an invalid geometry valid ([`crate::ingest::repair`]) instead of refusing it.
    pub repair: bool,
    /// The signed-in person making the edit ([`crate::auth::token::owner_of`]): the
    /// features they create record them as owner.
    pub owner: Option<Arc<str>>,
    /// Replace, patch and delete only features whose owner is `owner`.
    pub own_only: bool,
}

/// What an edit left: the feature's id and, unless it was deleted, its new state and ETag.
#[derive(Debug, Clone)]
pub struct Done {
    pub id: FeatureId,
    /// The feature's new version (0 when deleted).
    pub version: u64,
    pub feature: Option<Feature>,
    pub etag: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("layer {layer} has no feature {id}")]
    NotFound { layer: String, id: FeatureId },
    #[error("feature {id} of layer {layer} belongs to someone else: only its owner may change it")]
    NotOwner { layer: String, id: FeatureId },
    #[error("feature {id} has changed: its ETag is now {current}")]
    Precondition { id: FeatureId, current: String },
    /// A well-formed request whose content does not fit the layer.
    #[error("{0}")]
    Invalid(RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store error that failed several edits at once (a group of creates whose commit
    /// failed, see [`group`]).
    #[error(transparent)]
    Shared(Arc<StoreError>),
    #[error("the edit stopped: {0}")]
    Aborted(String),
}

/// The ETag of a feature's stored state: its row version, which every server sharing the
/// store reads alike and which changes with every write, then a short hash of its geometry
/// and properties. The version alone would name one state only while ids are never reused;
/// on PostgreSQL an SQL client can reuse them (`TRUNCATE ... RESTART IDENTITY`, explicit
/// ids), and a new feature at version 0 must not match an If-Match kept from an old one.
pub fn feature_etag(version: u64, f: &Feature) -> String {
    use geozero::{CoordDimensions, ToWkb};
    let wkb = f.geometry.to_wkb(CoordDimensions::xy()).unwrap_or_default();
    let props = serde_json::to_vec(&f.properties).unwrap_or_default();
    let content = crate::model::stable_hash(&[&wkb, &props]) as u32;
    format!("\"{version}-{content:08x}\"")
}

/// True when an `If-Match` value allows changing a feature whose ETag is `current`. The
/// comparison is strong (RFC 9110): a weak tag never matches.
fn matches(if_match: &str, current: &str) -> bool {
    if_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current)
}

/// The change feed: what the follower has applied and broadcast, and who waits for it.
#[derive(Debug)]
pub struct Feed {
    pub(super) sender: broadcast::Sender<Arc<Change>>,
    /// Tells the follower to read the log now (an edit of this server committed): see
    /// [`Feed::committed`].
    wake: Notify,
    /// The highest position this server's edits committed at, and whether one committed
    /// at a position not known yet: a follower that has applied the first, with the
    /// second unset, has nothing to read when woken.
    committed_through: std::sync::atomic::AtomicU64,
    committed_unknown: std::sync::atomic::AtomicBool,
    pub(super) progress: watch::Sender<Progress>,
    /// Held (shared) by every edit under way, and taken whole by shutdown, which so waits
    /// for them.
    pub(super) edits: Arc<RwLock<()>>,
}

/// How far the follower has come.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    /// The last `seq` applied to the index and broadcast.
    pub applied: u64,
    /// How many times the follower has failed to read or apply the log (the store is
    /// unreachable, say): an edit waiting for it stops waiting at the next failure.
    pub failures: u64,
}

impl Feed {
    /// An edit of this server committed with these log entries: the follower reads them.
    pub(super) fn committed(&self, changes: &[Change]) {
        use std::sync::atomic::Ordering;
        match changes.iter().map(|c| c.seq).max() {
            Some(last) => {
                self.committed_through.fetch_max(last, Ordering::AcqRel);
            }
            None => self.committed_unknown.store(true, Ordering::Release),
        }
        self.wake.notify_one();
    }

    /// Waits until an edit of this server commits something past `applied`.
    pub(super) async fn committed_past(&self, applied: u64) {
        use std::sync::atomic::Ordering;
        loop {
            self.wake.notified().await;
            if self.committed_unknown.swap(false, Ordering::AcqRel)
                || self.committed_through.load(Ordering::Acquire) > applied
            {
                return;
            }
        }
    }
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            sender: broadcast::channel(4096).0,
            wake: Notify::new(),
            committed_through: Default::default(),
            committed_unknown: Default::default(),
            progress: watch::Sender::new(Progress::default()),
            edits: Arc::new(RwLock::new(())),
        }
    }
}

impl Feed {
    /// Changes broadcast from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }

    /// The last change broadcast; a subscriber reads anything older from the store.
    pub fn last(&self) -> u64 {
        self.progress.borrow().applied
    }

    /// Where the feed starts: the log position the index reflects when serving begins.
    pub fn start_at(&self, seq: u64) {
        self.progress.send_modify(|p| p.applied = seq);
    }

    /// Records that every change through `seq` is applied and broadcast.
    pub(super) fn applied_through(&self, seq: u64) {
        self.progress.send_modify(|p| p.applied = seq);
    }

    /// Records that the follower could not read or apply the log.
    pub(super) fn failed(&self) {
        self.progress.send_modify(|p| p.failures += 1);
    }

    /// A mark to wait from: taken before a commit, so that a failure after it counts.
    pub(super) fn mark(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until the change at `seq` is applied; false when the follower fails after
    /// `since`, or `limit` passes, first.
    pub(super) async fn wait_for(&self, seq: u64, since: Progress, limit: Duration) -> bool {
        let mut progress = self.progress.subscribe();
        let done = tokio::time::timeout(
            limit,
            progress.wait_for(|p| p.applied >= seq || p.failures > since.failures),
        )
        .await;
        matches!(done, Ok(Ok(p)) if p.applied >= seq)
    }
}

/// A feature's shape before and after an edit, for cache invalidation.
struct Touched {
    old: Option<ProjectedGeometry>,
    new: Option<ProjectedGeometry>,
}

impl Dataset {
    /// Applies `edits` to one layer, all or nothing, refusing invalid geometry.
    pub async fn edit(
        self: &Arc<Self>,
        layer: &LayerId,
        edits: Vec<Edit>,
    ) -> Result<Vec<Done>, EditError> {
        self.edit_with(layer, edits, EditOptions::default()).await
    }

    /// Applies `edits` to one layer, all or nothing (see the module docs for the order).
    ///
    /// The edit runs as a task of its own, so that it finishes even if the request that
    /// asked for it is dropped (a client that hangs up): a transaction cut off half-way,
    /// say between its BEGIN and its first statement, would leave the store's write lock
    /// held by a pooled connection.
    pub async fn edit_with(
        self: &Arc<Self>,
        layer: &LayerId,
        edits: Vec<Edit>,
        options: EditOptions,
    ) -> Result<Vec<Done>, EditError> {
        let data = self.clone();
        let layer = layer.clone();
        tokio::spawn(async move {
            let Some(def) = data.layer(layer.as_str()) else {
                return Err(EditError::Aborted(format!("unknown layer {layer}")));
            };
            if matches!(edits.as_slice(), [Edit::Create(_)]) {
                let Some(Edit::Create(feature)) = edits.into_iter().next() else {
                    unreachable!("one create")
                };
                return Ok(vec![data.create_grouped(def, feature, &options).await?]);
            }
            // A store shared with other servers (PostGIS) fails an edit whose features
            // another server changed after this one read them (or that lost a deadlock):
            // run it again from its reads, which checks If-Match against the new state.
            let mut attempt = 1;
            loop {
                match data.edit_now(def, edits.clone(), options.clone()).await {
                    Err(EditError::Store(e))
                        if e.kind() == ErrorKind::Conflict && attempt < EDIT_ATTEMPTS =>
                    {
                        tracing::debug!(attempt, "edit lost a race in the store: {e}");
                        attempt += 1;
                    }
                    done => return done,
                }
            }
        })
        .await
        .map_err(|e| EditError::Aborted(e.to_string()))?
    }

    async fn edit_now(
        &self,
        def: &LayerDef,
        edits: Vec<Edit>,
        options: EditOptions,
    ) -> Result<Vec<Done>, EditError> {
        let types = self.index.read(&def.id).field_types().to_vec();
        let _under_way = self.feed.edits.read().await;
        let mut w = self.store.begin_write(&def.id, WriteMode::Append).await?;
        let mut done = Vec::with_capacity(edits.len());
        for (i, edit) in edits.into_iter().enumerate() {
            let at = |id: Option<FeatureId>| match id {
                Some(id) => Position::Stored(id.0),
                None => Position::Feature(i as u64),
            };
            let not_found = |id| EditError::NotFound {
                layer: def.id.to_string(),
                id,
            };
            let current = |found: Option<StoredFeature>, id, if_match: &Option<String>| {
                // With If-Match, a missing feature fails the precondition (RFC 9110).
                let f = match (found, if_match) {
                    (Some(f), _) => f,
                    (None, Some(_)) => {
                        return Err(EditError::Precondition {
                            id,
                            current: "none: the feature does not exist".into(),
                        });
                    }
                    (None, None) => return Err(not_found(id)),
                };
                let etag = feature_etag(f.version, &f.feature);
                match if_match {
                    Some(m) if !matches(m, &etag) => {
                        Err(EditError::Precondition { id, current: etag })
                    }
                    _ => Ok(f),
                }
            };
            // Only the owner's own features, when the right is to those only.
            let owned = |owner: Option<String>, id| {
                if owner.is_none() || owner.as_deref() != options.owner.as_deref() {
                    return Err(EditError::NotOwner {
                        layer: def.id.to_string(),
                        id,
                    });
                }
                Ok(())
            };
            let publish = |feature: &mut Feature, owner: Option<&serde_json::Value>| {
                publish_owner(def, feature, owner)
            };
            let published = |old: &StoredFeature| {
                def.access
                    .owner_property
                    .and_then(|p| old.feature.properties.get(&def.properties[p]).cloned())
            };
            match edit {
                Edit::Create(mut feature) => {
                    if let Some(owner) = &options.owner {
                        publish(&mut feature, Some(&serde_json::Value::from(&**owner)));
                    }
                    let checked = check(def, &types, at(None), feature, &options)?;
                    let id = w.create_owned(&checked, options.owner.as_deref()).await?;
                    done.push(Done::new(id, 0, checked.feature));
                }
                Edit::Replace {
                    id,
                    mut feature,
                    if_match,
                } => {
                    let old = current(w.get(id).await?, id, &if_match)?;
                    if options.own_only {
                        owned(w.owner(id).await?, id)?;
                    }
                    publish(&mut feature, published(&old).as_ref());
                    let checked = check(def, &types, at(Some(id)), feature, &options)?;
                    let version = w.overwrite(id, &checked, ChangeKind::Replace).await?;
                    let version = version.ok_or_else(|| not_found(id))?;
                    done.push(Done::new(id, version, checked.feature));
                }
                Edit::Patch {
                    id,
                    patch,
                    if_match,
                } => {
                    let old = current(w.get(id).await?, id, &if_match)?;
                    if options.own_only {
                        owned(w.owner(id).await?, id)?;
                    }
                    let mut merged = merge_patch(&old.feature, &patch)
                        .map_err(|(field, reason)| invalid(at(Some(id)), field, reason))?;
                    publish(&mut merged, published(&old).as_ref());
                    let checked = check(def, &types, at(Some(id)), merged, &options)?;
                    let version = w.overwrite(id, &checked, ChangeKind::Update).await?;
                    let version = version.ok_or_else(|| not_found(id))?;
                    done.push(Done::new(id, version, checked.feature));
                }
                Edit::Delete { id, if_match } => {
                    current(w.get(id).await?, id, &if_match)?;
                    if options.own_only {
                        owned(w.owner(id).await?, id)?;
                    }
                    w.delete(id).await?;
                    done.push(Done {
                        id,
                        version: 0,
                        feature: None,
                        etag: None,
                    });
                }
            }
        }
        let mark = self.feed.mark();
        let changes = w.commit().await?;
        self.metrics.wrote(&changes);
        self.feed.committed(&changes);
        self.wait_applied(&changes, mark).await;
        Ok(done)
    }

    /// Waits until this server's index has `changes` (committed after `mark`), at most
    /// [`APPLY_WAIT`], so that an edit is answered when the next tile or query sees it.
    async fn wait_applied(&self, changes: &[Change], mark: Progress) {
        match changes.iter().map(|c| c.seq).max() {
            Some(last) => {
                if !self.feed.wait_for(last, mark, APPLY_WAIT).await {
                    tracing::warn!(
                        seq = last,
                        "an edit is answered before this server's index has it: the change \
                         feed is behind"
                    );
                }
            }
            // Committed, but the store could not number its log rows yet (PostgreSQL, the
            // connection lost right after COMMIT): the follower's next poll numbers and
            // applies them.
            None => tracing::warn!("an edit is answered before its log position is known"),
        }
    }

    /// The end of a server's life: waits for the edits under way to commit (or roll back)
    /// and reach the index, stops the compute pool, writes the index snapshots (when the
    /// server keeps them), then checkpoints and closes the store.
    pub async fn shut_down(&self) -> Result<(), StoreError> {
        let _no_edit_under_way = self.feed.edits.write().await;
        self.compute.close();
        // The index as the follower has it: what it applies meanwhile is applied again by
        // the next start, from this position.
        self.write_snapshots(|_| true, self.feed.last()).await;
        self.store.close().await
    }

    /// Puts features' new states (`None`: deleted) into the layer's index and drops the
    /// cached tiles they change.
    pub(super) fn apply_to_index(
        &self,
        def: &LayerDef,
        states: impl IntoIterator<Item = (FeatureId, Option<StoredFeature>)>,
    ) {
        let mut touched = Vec::new();
        let version = {
            let Some(mut index) = self.index.write(&def.id) else {
                return;
            };
            for (id, state) in states {
                let (old, new) = match state {
                    Some(feature) => {
                        let old = index.upsert(def, feature);
                        (old, index.by_id(id).map(|f| f.geometry.clone()))
                    }
                    None => (index.remove(id), None),
                };
                touched.push(Touched { old, new });
            }
            index.version()
        };
        let shapes: Vec<&ProjectedGeometry> = touched
            .iter()
            .flat_map(|t| t.old.iter().chain(t.new.iter()))
            .collect();
        self.cache.invalidate(&def.id, version, &shapes);
    }
}

impl Done {
    fn new(id: FeatureId, version: u64, feature: Feature) -> Done {
        Done {
            etag: Some(feature_etag(version, &feature)),
            version,
            id,
            feature: Some(feature),
        }
    }
}

/// Writes the property that publishes a feature's owner, which is the server's to write: a
/// new feature gets its creator (a key's writes keep what they send), an edit keeps what
/// was there. `None` or null removes it.
fn publish_owner(def: &LayerDef, feature: &mut Feature, owner: Option<&serde_json::Value>) {
    if let Some(p) = def.access.owner_property {
        let name = def.properties[p].clone();
        match owner {
            Some(v) if !v.is_null() => {
                feature.properties.insert(name, v.clone());
            }
            _ => {
                feature.properties.remove(&name);
            }
        }
    }
}

fn invalid(at: Position, field: &str, reason: impl Into<String>) -> EditError {
    EditError::Invalid(RecordError::new(at, Some(field), reason))
}

/// Validates a written feature more strictly than an ingest does: besides geometry and
/// time fields, every property must be one the layer declares, of the type its values have.
/// An invalid geometry is refused unless `options.repair`; the refusal says whether it
/// could be repaired, in the words of the HTTP API that asks for it.
fn check(
    def: &LayerDef,
    types: &[Option<FieldType>],
    at: Position,
    feature: Feature,
    options: &EditOptions,
) -> Result<crate::store::NewFeature, EditError> {
    for (name, value) in &feature.properties {
        let Some(i) = def.properties.iter().position(|p| p == name) else {
            return Err(invalid(
                at,
                name,
                format!(
                    "is not a property of layer {}; it has: {}",
                    def.id,
                    def.properties.join(", ")
                ),
            ));
        };
        // A declared type is the contract, as it stands (no coercion of "3" to 3 here:
        // a client that sends JSON can send the right type).
        if let Some(t) = def.declared_type(i) {
            if !t.fits(value) {
                return Err(invalid(
                    at,
                    name,
                    format!("is {value}; it must be {}", t.described()),
                ));
            }
            continue;
        }
        let want = types.get(i).copied().flatten();
        let fits = match (value, want) {
            (serde_json::Value::Null, _) | (_, None) => true,
            (serde_json::Value::Object(_) | serde_json::Value::Array(_), _) => false,
            (serde_json::Value::String(_), Some(FieldType::String)) => true,
            (serde_json::Value::Number(_), Some(FieldType::Number)) => true,
            (serde_json::Value::Bool(_), Some(FieldType::Boolean)) => true,
            _ => false,
        };
        if !fits {
            let want = want.map_or("a string, number or boolean", |t| match t {
                FieldType::String => "a string",
                FieldType::Number => "a number",
                FieldType::Boolean => "a boolean",
            });
            return Err(invalid(at, name, format!("is {value}; it must be {want}")));
        }
    }
    let on_invalid = if options.repair {
        OnInvalid::Repair
    } else {
        OnInvalid::Refuse {
            how: "resend with ?repair=true",
        }
    };
    validate_with(def, &at, feature, on_invalid)
        .map(|checked| checked.feature)
        .map_err(EditError::Invalid)
}

/// Applies a JSON merge patch to a feature's GeoJSON members `geometry` and `properties`;
/// errors name the member.
fn merge_patch(
    feature: &Feature,
    patch: &serde_json::Value,
) -> Result<Feature, (&'static str, String)> {
    let serde_json::Value::Object(members) = patch else {
        return Err(("body", "a merge patch must be a JSON object".into()));
    };
    let mut out = feature.clone();
    for (k, v) in members {
        match k.as_str() {
            "type" | "id" | "links" => {}
            "geometry" => {
                let g: geojson::Geometry = serde_json::from_value(v.clone())
                    .map_err(|e| ("geometry", format!("is not a GeoJSON geometry: {e}")))?;
                out.geometry =
                    crate::ingest::geojson::to_geo(&g.value).map_err(|e| ("geometry", e))?;
            }
            "properties" => {
                let props = match v {
                    serde_json::Value::Object(props) => props,
                    // Merge-patching a member to null removes it: here, every property.
                    serde_json::Value::Null => {
                        out.properties.clear();
                        continue;
                    }
                    _ => return Err(("properties", "must be an object or null".into())),
                };
                for (name, value) in props {
                    if value.is_null() {
                        out.properties.remove(name);
                    } else {
                        out.properties.insert(name.clone(), value.clone());
                    }
                }
            }
            _ => {
                return Err((
                    "body",
                    format!("unknown member {k:?}; a feature patch has geometry and properties"),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_lists_stars_and_weak_forms() {
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("\"x\", \"a\"", "\"a\""));
        assert!(!matches("W/\"a\"", "\"a\""));
        assert!(matches("*", "\"a\""));
        assert!(!matches("\"b\"", "\"a\""));
    }

    #[test]
    fn a_merge_patch_sets_removes_and_keeps_properties() {
        let mut properties = crate::model::Properties::new();
        properties.insert("status".into(), "open".into());
        properties.insert("note".into(), "x".into());
        let f = Feature {
            geometry: geo::Point::new(24.9, 60.1).into(),
            properties,
        };
        let patched = merge_patch(
            &f,
            &serde_json::json!({"properties": {"status": "closed", "note": null}}),
        )
        .unwrap();
        assert_eq!(patched.properties["status"], "closed");
        assert!(!patched.properties.contains_key("note"));
        assert_eq!(patched.geometry, f.geometry);
        let moved = merge_patch(
            &f,
            &serde_json::json!({"geometry": {"type": "Point", "coordinates": [25.0, 60.2]}}),
        )
        .unwrap();
        assert_eq!(moved.geometry, geo::Point::new(25.0, 60.2).into());
        assert_eq!(
            merge_patch(&f, &serde_json::json!({"colour": 1}))
                .unwrap_err()
                .0,
            "body"
        );
        assert_eq!(
            merge_patch(&f, &serde_json::json!({"geometry": {"type": "Nope"}}))
                .unwrap_err()
                .0,
            "geometry"
        );
    }
}
