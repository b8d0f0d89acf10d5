//! The store contract (`src/store/mod.rs`: `Features`, `Keys`, `ChangeLog`), written once
//! and run on every backend: SQLite in a temp file (`sqlite::...`) and PostGIS in a
//! throwaway database (`postgis::...`; see tests/common/pg.rs for `URBANTILE_TEST_PG`).
//! The tests after the contract cover what only a database shared by several servers
//! meets: commits out of order, rollbacks, edits made directly in SQL, writers racing for
//! one feature, replicas seeding one store.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pg::PgDatabase;
use urbantile::auth::{KeyInfo, Scope};
use urbantile::model::{Feature, FeatureId, LayerId, Properties, TimeRange};
use urbantile::store::{
    self, Change, ChangeKind, ErrorKind, FeatureStore, NewFeature, StoreError, WriteMode,
};

/// One store under test, and what keeps it alive.
struct Backend {
    url: String,
    store: Arc<dyn FeatureStore>,
    _dir: Option<tempfile::TempDir>,
    /// Declared last: dropped after the store's connections.
    pg: Option<PgDatabase>,
}

impl Backend {
    async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Backend {
            store: store::open(&url).await.unwrap(),
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgis() -> Option<Backend> {
        let db = PgDatabase::create().await?;
        Some(Backend {
            store: store::open(&db.url).await.unwrap(),
            url: db.url.clone(),
            _dir: None,
            pg: Some(db),
        })
    }

    /// Another handle on the same store, as another server (or the command line) opens it.
    async fn another(&self) -> Arc<dyn FeatureStore> {
        store::open(&self.url).await.unwrap()
    }
}

/// Each contract test once per backend: `sqlite::NAME` and `postgis::NAME`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Backend::sqlite().await).await;
                }
            )*
        }
        mod postgis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = super::Backend::postgis().await {
                        super::$name(&b).await;
                    }
                }
            )*
        }
    };
}

contract!(
    features_written_are_read_back_exactly,
    single_feature_edits_change_only_their_feature,
    a_dropped_writer_leaves_nothing_and_replace_swaps_the_layer,
    ids_are_never_reused,
    a_feature_read_then_changed_elsewhere_is_a_conflict,
    keys_are_added_found_by_hash_and_revoked,
    every_commit_is_logged_densely_in_order_and_once,
    pruning_drops_the_oldest_and_positions_go_on,
    a_second_handle_sees_the_first_ones_changes_with_its_origin,
    owners_are_kept_through_edits_and_only_for_their_layer,
    a_batch_of_creates_is_one_commit_with_ids_in_order,
    the_log_read_with_its_features_agrees_with_reading_them_apart,
);

fn layer(id: &str) -> LayerId {
    LayerId::new(id).unwrap()
}

fn point(lon: f64, lat: f64, name: &str) -> NewFeature {
    let mut properties = Properties::new();
    properties.insert("name".into(), name.into());
    NewFeature {
        feature: Feature {
            geometry: geo::Point::new(lon, lat).into(),
            properties,
        },
        time: TimeRange::default(),
    }
}

fn polygon(west: f64, south: f64, size: f64) -> NewFeature {
    let mut properties = Properties::new();
    properties.insert("floors".into(), 7.into());
    properties.insert("height_m".into(), 21.25.into());
    properties.insert("listed".into(), true.into());
    properties.insert("name".into(), "Ateneum \"taidemuseo\" ü".into());
    let ring = vec![
        (west, south),
        (west + size, south),
        (west + size, south + size),
        (west, south + size),
        (west, south),
    ];
    NewFeature {
        feature: Feature {
            geometry: geo::Polygon::new(ring.into(), vec![]).into(),
            properties,
        },
        time: TimeRange {
            start: Some(1_700_000_000),
            end: None,
        },
    }
}

fn name(f: &urbantile::model::StoredFeature) -> String {
    f.feature.properties["name"].as_str().unwrap().to_owned()
}

/// The whole log from the start, after letting the store number what was committed
/// (PostgreSQL numbers after commit; on SQLite this is a 1 ms sleep).
async fn whole_log(s: &dyn FeatureStore) -> Vec<Change> {
    // Twice: the first wait may end at once on an older notification (of a sequencer run,
    // which numbers nothing); the second then numbers what SQL clients wrote since.
    for _ in 0..2 {
        s.wait_for_changes(Duration::from_millis(1)).await;
    }
    let mut out = Vec::new();
    loop {
        let from = out.last().map_or(0, |c: &Change| c.seq);
        let batch = s.changes_since(from, 100).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

fn assert_dense(log: &[Change], first: u64) {
    let seqs: Vec<u64> = log.iter().map(|c| c.seq).collect();
    let want: Vec<u64> = (first..first + log.len() as u64).collect();
    assert_eq!(seqs, want, "log positions are not dense from {first}");
}

async fn features_written_are_read_back_exactly(b: &Backend) {
    let s = b.store.as_ref();
    let schools = layer("schools");
    assert!(s.is_empty().await.unwrap());
    let written = [
        point(24.9123456789, 60.1, "a"),
        polygon(24.93, 60.16, 0.01),
        point(-179.5, -89.25, "c"),
    ];
    let mut w = s.begin_write(&schools, WriteMode::Append).await.unwrap();
    let ids = w.insert(&written).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|p| p[0] < p[1]));
    w.commit().await.unwrap();
    assert!(!s.is_empty().await.unwrap());

    let back = s.load_layer(&schools).await.unwrap();
    assert_eq!(back.iter().map(|f| f.id).collect::<Vec<_>>(), ids);
    for (f, want) in back.iter().zip(&written) {
        assert_eq!(
            f.feature, want.feature,
            "feature {} changed on its way",
            f.id
        );
    }
    let picked = s
        .features_by_ids(&schools, &[ids[2], FeatureId(999_999), ids[0]])
        .await
        .unwrap();
    assert_eq!(
        picked.iter().map(|f| f.id).collect::<Vec<_>>(),
        [ids[2], ids[0]]
    );
    assert!(
        s.features_by_ids(&layer("parks"), &ids)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = s.stats(&schools).await.unwrap();
    assert_eq!(stats.count, 3);
    let bounds = stats.bounds.unwrap();
    assert_eq!(
        (bounds.west, bounds.south, bounds.east, bounds.north),
        (-179.5, -89.25, 24.93 + 0.01, 60.16 + 0.01)
    );
    let empty = s.stats(&layer("parks")).await.unwrap();
    assert_eq!((empty.count, empty.bounds), (0, None));
}

async fn owners_are_kept_through_edits_and_only_for_their_layer(b: &Backend) {
    let s = b.store.as_ref();
    let l = layer("urban_problems");
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let owned = w
        .create_owned(&point(24.9, 60.1, "mine"), Some("a1b2"))
        .await
        .unwrap();
    let plain = w.create(&point(24.9, 60.2, "nobody's")).await.unwrap();
    // The writer sees the owner it wrote before the commit.
    assert_eq!(w.owner(owned).await.unwrap().as_deref(), Some("a1b2"));
    w.commit().await.unwrap();

    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    w.get(owned).await.unwrap().unwrap();
    w.overwrite(owned, &point(25.0, 60.1, "moved"), ChangeKind::Update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.owner(owned).await.unwrap().as_deref(), Some("a1b2"));
    assert_eq!(w.owner(plain).await.unwrap(), None);
    assert_eq!(w.owner(FeatureId(999_999)).await.unwrap(), None);
    w.commit().await.unwrap();
    // Another layer's writer does not see it: owners are per layer's feature.
    let mut other = s
        .begin_write(&layer("schools"), WriteMode::Append)
        .await
        .unwrap();
    assert_eq!(other.owner(owned).await.unwrap(), None);
    drop(other);
    // The owner is not a property.
    let loaded = s.load_layer(&l).await.unwrap();
    let f = loaded.iter().find(|f| f.id == owned).unwrap();
    assert!(
        !serde_json::to_string(&f.feature.properties)
            .unwrap()
            .contains("a1b2")
    );
}

async fn a_batch_of_creates_is_one_commit_with_ids_in_order(b: &Backend) {
    let s = b.store.as_ref();
    let l = layer("urban_problems");
    let before = whole_log(s).await.last().map_or(0, |c| c.seq);
    let features: Vec<NewFeature> = (0..5)
        .map(|i| {
            if i == 2 {
                polygon(24.9, 60.1, 0.01)
            } else {
                point(24.9 + i as f64 * 0.01, 60.2, &format!("batch {i}"))
            }
        })
        .collect();
    let owners = [Some("o0"), None, Some("o2"), None, Some("o4")];
    let batch: Vec<(&NewFeature, Option<&str>)> = features.iter().zip(owners).collect();
    let (ids, changes) = s.create_batch(&l, &batch).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // One creation logged per feature, at the next positions, answered with the commit.
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind, c.feature))
            .collect::<Vec<_>>(),
        ids.iter()
            .map(|&id| (ChangeKind::Create, Some(id)))
            .collect::<Vec<_>>()
    );
    assert_dense(&changes, before + 1);
    assert_eq!(whole_log(s).await[before as usize..], changes[..]);
    // Logged as an edit of this handle is, each with its feature's extent.
    for (c, sent) in changes.iter().zip(&features) {
        use geo::BoundingRect;
        let extent = sent.feature.geometry.bounding_rect().unwrap();
        let logged = c.bbox.unwrap();
        assert_eq!((&c.layer, c.origin), (&l, s.origin()));
        assert_eq!(
            (logged.west, logged.south, logged.east, logged.north),
            (
                extent.min().x,
                extent.min().y,
                extent.max().x,
                extent.max().y
            )
        );
    }
    // Each id is the feature sent in its place, with its owner.
    let stored = s.features_by_ids(&l, &ids).await.unwrap();
    for ((f, sent), owner) in stored.iter().zip(&features).zip(owners) {
        assert_eq!(f.version, 0);
        assert_eq!(f.feature, sent.feature);
        let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
        assert_eq!(w.owner(f.id).await.unwrap().as_deref(), owner);
    }
    assert!(s.create_batch(&l, &[]).await.unwrap().0.is_empty());
}

async fn single_feature_edits_change_only_their_feature(b: &Backend) {
    let s = b.store.as_ref();
    let l = layer("buildings");
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let a = w.create(&polygon(24.0, 60.0, 0.5)).await.unwrap();
    let c = w.create(&point(25.0, 61.0, "c")).await.unwrap();
    // The writer sees its own uncommitted work; nobody else does.
    assert_eq!(
        w.get(a).await.unwrap().unwrap().feature,
        polygon(24.0, 60.0, 0.5).feature
    );
    assert!(s.load_layer(&l).await.unwrap().is_empty());
    let changes = w.commit().await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind, c.feature))
            .collect::<Vec<_>>(),
        [(ChangeKind::Create, Some(a)), (ChangeKind::Create, Some(c))]
    );

    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    assert!(w.get(FeatureId(999_999)).await.unwrap().is_none());
    // A created feature is at version 0; each overwrite makes the next one.
    assert_eq!(w.get(a).await.unwrap().unwrap().version, 0);
    assert_eq!(
        w.overwrite(a, &point(24.5, 60.25, "a2"), ChangeKind::Replace)
            .await
            .unwrap(),
        Some(1)
    );
    assert!(
        w.overwrite(
            FeatureId(999_999),
            &point(1.0, 1.0, "x"),
            ChangeKind::Update
        )
        .await
        .unwrap()
        .is_none()
    );
    assert!(w.delete(c).await.unwrap());
    assert!(!w.delete(c).await.unwrap());
    assert!(!w.delete(FeatureId(999_999)).await.unwrap());
    let changes = w.commit().await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind, c.feature))
            .collect::<Vec<_>>(),
        [
            (ChangeKind::Replace, Some(a)),
            (ChangeKind::Delete, Some(c))
        ]
    );
    // The bbox of a move covers where the feature was and where it is.
    let moved = changes[0].bbox.unwrap();
    assert_eq!(
        (moved.west, moved.south, moved.east, moved.north),
        (24.0, 60.0, 24.5, 60.5)
    );
    let deleted = changes[1].bbox.unwrap();
    assert_eq!((deleted.west, deleted.north), (25.0, 61.0));
    let now = s.load_layer(&l).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].feature, point(24.5, 60.25, "a2").feature);
    assert_eq!(now[0].version, 1);
    assert_eq!(s.features_by_ids(&l, &[a]).await.unwrap()[0].version, 1);

    // A feature of another layer is not this writer's to touch.
    let mut w = s
        .begin_write(&layer("parks"), WriteMode::Append)
        .await
        .unwrap();
    assert!(w.get(a).await.unwrap().is_none());
    assert!(!w.delete(a).await.unwrap());
    assert!(
        w.overwrite(a, &point(1.0, 1.0, "x"), ChangeKind::Update)
            .await
            .unwrap()
            .is_none()
    );
    w.commit().await.unwrap();
    assert_eq!(s.load_layer(&l).await.unwrap().len(), 1);
}

async fn a_dropped_writer_leaves_nothing_and_replace_swaps_the_layer(b: &Backend) {
    let s = b.store.as_ref();
    let roads = layer("roads");
    let parks = layer("parks");
    let mut w = s.begin_write(&roads, WriteMode::Append).await.unwrap();
    w.insert(&[point(1.0, 1.0, "old1"), point(2.0, 2.0, "old2")])
        .await
        .unwrap();
    w.commit().await.unwrap();
    let mut w = s.begin_write(&parks, WriteMode::Append).await.unwrap();
    w.insert(&[point(5.0, 5.0, "park")]).await.unwrap();
    w.commit().await.unwrap();
    let before = whole_log(s).await;

    let mut w = s.begin_write(&roads, WriteMode::Replace).await.unwrap();
    w.insert(&[point(3.0, 3.0, "half")]).await.unwrap();
    w.create(&point(3.0, 3.0, "half too")).await.unwrap();
    drop(w);
    let mut w = s.begin_write(&roads, WriteMode::Append).await.unwrap();
    w.create(&point(3.0, 3.0, "lost")).await.unwrap();
    drop(w);
    assert_eq!(s.stats(&roads).await.unwrap().count, 2);
    assert_eq!(whole_log(s).await, before, "an abandoned write was logged");

    let mut w = s.begin_write(&roads, WriteMode::Replace).await.unwrap();
    w.insert(&[point(-3.0, 3.0, "new1")]).await.unwrap();
    w.insert(&[point(4.0, 4.5, "new2")]).await.unwrap();
    let reload = w.commit().await.unwrap();
    let names: Vec<_> = s
        .load_layer(&roads)
        .await
        .unwrap()
        .iter()
        .map(name)
        .collect();
    assert_eq!(names, ["new1", "new2"]);
    assert_eq!(
        s.stats(&parks).await.unwrap().count,
        1,
        "another layer was touched"
    );
    // One `reload` for the whole swap, over the old extent and the new.
    assert_eq!(reload.len(), 1);
    assert_eq!(
        (reload[0].kind, reload[0].feature, reload[0].layer.as_str()),
        (ChangeKind::Reload, None, "roads")
    );
    let bb = reload[0].bbox.unwrap();
    assert_eq!(
        (bb.west, bb.south, bb.east, bb.north),
        (-3.0, 1.0, 4.0, 4.5)
    );
    assert_eq!(whole_log(s).await.last(), reload.last());

    // A bulk insert appended to a layer is one `reload` too.
    let mut w = s.begin_write(&parks, WriteMode::Append).await.unwrap();
    w.insert(&[point(6.0, 6.0, "p2"), point(7.0, 7.0, "p3")])
        .await
        .unwrap();
    let appended = w.commit().await.unwrap();
    assert_eq!(appended.len(), 1);
    assert_eq!(appended[0].kind, ChangeKind::Reload);
    assert_eq!(s.stats(&parks).await.unwrap().count, 3);
}

async fn ids_are_never_reused(b: &Backend) {
    let s = b.store.as_ref();
    let l = layer("schools");
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let a = w.create(&point(1.0, 1.0, "a")).await.unwrap();
    let newest = w.create(&point(1.0, 1.0, "b")).await.unwrap();
    w.commit().await.unwrap();
    // Not even the newest id, once deleted, nor across a replace of the layer.
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    assert!(w.delete(newest).await.unwrap());
    w.commit().await.unwrap();
    let mut w = s.begin_write(&l, WriteMode::Replace).await.unwrap();
    let after_replace = w.insert(&[point(2.0, 2.0, "c")]).await.unwrap()[0];
    w.commit().await.unwrap();
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let c = w.create(&point(1.0, 1.0, "d")).await.unwrap();
    w.commit().await.unwrap();
    assert!(a < newest && newest < after_replace && after_replace < c);
}

async fn a_feature_read_then_changed_elsewhere_is_a_conflict(b: &Backend) {
    let s = b.store.as_ref();
    let l = layer("urban_problems");
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let a = w.create(&point(1.0, 1.0, "a")).await.unwrap();
    let d = w.create(&point(2.0, 2.0, "d")).await.unwrap();
    w.commit().await.unwrap();

    // Read, then overwrite: fine, and again on the version it made itself.
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    assert!(w.get(a).await.unwrap().is_some());
    assert_eq!(
        w.overwrite(a, &point(1.5, 1.0, "a2"), ChangeKind::Update)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        w.overwrite(a, &point(1.5, 1.5, "a3"), ChangeKind::Update)
            .await
            .unwrap(),
        Some(2)
    );
    assert!(w.get(d).await.unwrap().is_some());
    assert!(w.delete(d).await.unwrap());
    w.commit().await.unwrap();
    let now = s.load_layer(&l).await.unwrap();
    assert_eq!(now.iter().map(name).collect::<Vec<_>>(), ["a3"]);

    if b.pg.is_none() {
        // SQLite has one writer at a time (the second waits for the first), so a feature
        // cannot change between a writer's read and its write; the PostgreSQL tests below
        // race two writers.
        return;
    }
    let other = b.another().await;
    for finish_with_delete in [false, true] {
        let mut slow = s.begin_write(&l, WriteMode::Append).await.unwrap();
        assert!(slow.get(a).await.unwrap().is_some());
        let mut fast = other.begin_write(&l, WriteMode::Append).await.unwrap();
        assert!(fast.get(a).await.unwrap().is_some());
        assert!(
            fast.overwrite(a, &point(9.0, 9.0, "fast"), ChangeKind::Update)
                .await
                .unwrap()
                .is_some()
        );
        fast.commit().await.unwrap();
        let lost = if finish_with_delete {
            slow.delete(a).await
        } else {
            slow.overwrite(a, &point(8.0, 8.0, "slow"), ChangeKind::Update)
                .await
                .map(|v| v.is_some())
        };
        let e = lost.expect_err("a write over an unseen change went through");
        assert!(
            matches!(e, StoreError::Changed { id, .. } if id == a),
            "{e}"
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
        drop(slow);
        let now = s.features_by_ids(&l, &[a]).await.unwrap();
        assert_eq!(name(&now[0]), "fast");
    }
}

async fn keys_are_added_found_by_hash_and_revoked(b: &Backend) {
    let s = b.store.as_ref();
    let key = |name: &str| KeyInfo {
        name: name.into(),
        read: Scope::from_stored("*"),
        write: Scope::from_stored("accidents,traffic_jams"),
        created_at: 1_700_000_000,
        revoked_at: None,
    };
    s.add_key(&key("traffic"), "hash-1").await.unwrap();
    s.add_key(&key("city"), "hash-2").await.unwrap();
    let e = s.add_key(&key("traffic"), "hash-3").await.unwrap_err();
    assert!(
        matches!(e, StoreError::KeyExists(ref n) if n == "traffic"),
        "{e}"
    );
    let found = s.key_by_hash("hash-1").await.unwrap().unwrap();
    assert_eq!(found.name, "traffic");
    assert_eq!(found.write.to_string(), "accidents,traffic_jams");
    assert_eq!(found.read.to_string(), "*");
    assert!(s.key_by_hash("hash-3").await.unwrap().is_none());

    assert!(s.revoke_key("traffic", 1_800_000_000).await.unwrap());
    assert!(!s.revoke_key("traffic", 1_800_000_001).await.unwrap());
    assert!(!s.revoke_key("nobody", 1_800_000_000).await.unwrap());
    assert!(s.key_by_hash("hash-1").await.unwrap().is_none());
    let all = s.keys().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|k| (k.name.as_str(), k.revoked_at))
            .collect::<Vec<_>>(),
        [("city", None), ("traffic", Some(1_800_000_000))]
    );
}

async fn every_commit_is_logged_densely_in_order_and_once(b: &Backend) {
    let s = b.store.as_ref();
    assert_eq!(s.change_span().await.unwrap(), None);
    assert!(s.changes_since(0, 10).await.unwrap().is_empty());
    let mut returned = Vec::new();
    for i in 0..5 {
        let l = layer(if i % 2 == 0 { "schools" } else { "parks" });
        let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
        let f = w.create(&point(i as f64, 1.0, "x")).await.unwrap();
        w.overwrite(f, &point(i as f64, 2.0, "y"), ChangeKind::Update)
            .await
            .unwrap();
        returned.extend(w.commit().await.unwrap());
        // An empty write logs nothing.
        let w = s.begin_write(&l, WriteMode::Append).await.unwrap();
        assert!(w.commit().await.unwrap().is_empty());
    }
    let log = whole_log(s).await;
    assert_eq!(log.len(), 10);
    assert_dense(&log, 1);
    assert_eq!(
        log, returned,
        "commit returned other changes than the log holds"
    );
    assert!(log.iter().all(|c| c.origin == s.origin() && c.origin != 0));
    assert!(log.iter().all(|c| c.at_ms > 1_700_000_000_000));
    assert_eq!(s.change_span().await.unwrap(), Some((1, 10)));
    // Paging: after any position, at most `limit`, in order.
    assert_eq!(s.changes_since(3, 4).await.unwrap(), log[3..7]);
    assert_eq!(s.changes_since(9, 100).await.unwrap(), log[9..]);
    assert!(s.changes_since(10, 100).await.unwrap().is_empty());
    assert!(s.changes_since(99, 100).await.unwrap().is_empty());
}

async fn pruning_drops_the_oldest_and_positions_go_on(b: &Backend) {
    let s = b.store.as_ref();
    let l = layer("schools");
    for i in 0..6 {
        let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
        w.create(&point(i as f64, 0.0, "x")).await.unwrap();
        w.commit().await.unwrap();
    }
    assert_eq!(s.prune_changes_through(4).await.unwrap(), 4);
    assert_eq!(s.change_span().await.unwrap(), Some((5, 6)));
    // A reader that had read up to 2 sees the gap: 5 is the first it gets.
    assert_eq!(s.changes_since(2, 10).await.unwrap()[0].seq, 5);
    assert_eq!(s.prune_changes_through(4).await.unwrap(), 0);
    // Pruning everything does not let positions start again.
    assert_eq!(s.prune_changes_through(100).await.unwrap(), 2);
    assert_eq!(s.change_span().await.unwrap(), None);
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    w.create(&point(9.0, 0.0, "x")).await.unwrap();
    let next = w.commit().await.unwrap();
    assert_eq!(next[0].seq, 7);
    assert_eq!(whole_log(s).await, next);
}

async fn a_second_handle_sees_the_first_ones_changes_with_its_origin(b: &Backend) {
    let s = b.store.as_ref();
    let other = b.another().await;
    assert_ne!(s.origin(), other.origin());
    let l = layer("schools");
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let a = w.create(&point(1.0, 1.0, "a")).await.unwrap();
    w.commit().await.unwrap();
    let mut w = other.begin_write(&l, WriteMode::Append).await.unwrap();
    let b2 = w.create(&point(2.0, 2.0, "b")).await.unwrap();
    w.commit().await.unwrap();
    for handle in [s, other.as_ref()] {
        let log = whole_log(handle).await;
        assert_eq!(
            log.iter()
                .map(|c| (c.seq, c.feature, c.origin))
                .collect::<Vec<_>>(),
            [(1, Some(a), s.origin()), (2, Some(b2), other.origin())]
        );
        assert_eq!(handle.load_layer(&l).await.unwrap().len(), 2);
    }
}

// ---------------------------------------------------------------------------------------
// PostGIS only: a database shared by several servers and other SQL clients.

async fn pg_backend() -> Option<Backend> {
    Backend::postgis().await
}

/// Two writes whose transactions commit in the opposite order of their start, and one that
/// rolls back in between, leave the log dense and complete; a reader polling all along never
/// sees a position before the ones below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_commits_out_of_order_and_rollbacks_leave_the_log_dense() {
    let Some(b) = pg_backend().await else { return };
    let s = b.store.as_ref();
    let replica = b.another().await;
    let l = layer("accidents");

    let mut first = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let a = first
        .create(&point(1.0, 1.0, "first started"))
        .await
        .unwrap();
    let mut rolled_back = replica.begin_write(&l, WriteMode::Append).await.unwrap();
    rolled_back
        .create(&point(3.0, 3.0, "rolled back"))
        .await
        .unwrap();
    let mut second = replica.begin_write(&l, WriteMode::Append).await.unwrap();
    let c = second
        .create(&point(2.0, 2.0, "second started"))
        .await
        .unwrap();
    assert!(a < c);

    let second_done = second.commit().await.unwrap();
    assert_eq!(second_done.len(), 1);
    assert_eq!((second_done[0].seq, second_done[0].feature), (1, Some(c)));
    // The first is still open: the log ends at the second, on every handle.
    for h in [s, replica.as_ref()] {
        assert_eq!(whole_log(h).await, second_done);
    }
    drop(rolled_back);
    let first_done = first.commit().await.unwrap();
    assert_eq!((first_done[0].seq, first_done[0].feature), (2, Some(a)));
    for h in [s, replica.as_ref()] {
        let log = whole_log(h).await;
        assert_dense(&log, 1);
        assert_eq!(
            log.iter().map(|c| c.feature).collect::<Vec<_>>(),
            [Some(c), Some(a)]
        );
    }
}

/// Many writers on two handles, with random delays inside their transactions and some
/// rollbacks, plus an SQL client, while a reader follows the log as a server does: the
/// reader never meets a gap, and ends with every committed change exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_concurrent_writers_never_show_a_reader_a_gap() {
    // Six writers of 15 transactions, every fifth rolled back, and 10 SQL inserts.
    const COMMITTED: usize = 6 * 12 + 10;
    let Some(b) = pg_backend().await else { return };
    let handles = [b.store.clone(), b.another().await];
    let l = layer("traffic_jams");
    let mut writers = Vec::new();
    for w in 0..6u64 {
        let store = handles[w as usize % 2].clone();
        let l = l.clone();
        writers.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..15u64 {
                let mut tx = store.begin_write(&l, WriteMode::Append).await.unwrap();
                let id = tx.create(&point(w as f64, i as f64, "x")).await.unwrap();
                // A pseudo-random pause with the transaction open, so commits interleave.
                let pause = (w * 7 + i * 13) % 6;
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if (w + i) % 5 == 0 {
                    drop(tx);
                } else {
                    tx.commit().await.unwrap();
                    kept.push(id);
                }
            }
            kept
        }));
    }
    let sql_writer = {
        let db_url = b.url.clone();
        tokio::spawn(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db_url).await.unwrap();
            let mut kept = Vec::new();
            for i in 0..10 {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO features (layer, geom, properties) \
                     VALUES ('traffic_jams', ST_SetSRID(ST_MakePoint($1, 50), 4326), '{}') RETURNING id",
                )
                .bind(i as f64)
                .fetch_one(&mut conn)
                .await
                .unwrap();
                kept.push(FeatureId(id as u64));
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            kept
        })
    };
    let reader = {
        let store = b.another().await;
        tokio::spawn(async move {
            let mut seen: Vec<Change> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                store.wait_for_changes(Duration::from_millis(20)).await;
                let last = seen.last().map_or(0, |c| c.seq);
                let batch = store.changes_since(last, 1000).await.unwrap();
                if let Some(first) = batch.first() {
                    assert_eq!(first.seq, last + 1, "a gap after {last} in an unpruned log");
                }
                seen.extend(batch);
                if seen.len() >= COMMITTED {
                    break;
                }
            }
            seen
        })
    };
    let mut committed = BTreeSet::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    committed.extend(sql_writer.await.unwrap());
    assert_eq!(committed.len(), COMMITTED);
    let seen = reader.await.unwrap();
    assert_dense(&seen, 1);
    let logged: Vec<FeatureId> = seen.iter().filter_map(|c| c.feature).collect();
    assert_eq!(
        logged.len(),
        committed.len(),
        "a change is missing or doubled"
    );
    assert_eq!(logged.into_iter().collect::<BTreeSet<_>>(), committed);
    let from_sql = seen.iter().filter(|c| c.origin == 0).count();
    assert_eq!(from_sql, 10);
}

/// INSERT, UPDATE and DELETE made directly in SQL are logged by the trigger (origin 0, with
/// their extent), wake the replicas, and bump the row version, so that a writer that read
/// the feature before fails rather than overwriting the SQL edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_edits_made_in_sql_are_logged_and_guarded() {
    let Some(b) = pg_backend().await else { return };
    let s = b.store.as_ref();
    let l = layer("events");
    // The listener wakes the readers once it listens (what came before it is unknown).
    assert_eq!(s.wait_for_changes(Duration::from_secs(5)).await, None);
    let mut w = s.begin_write(&l, WriteMode::Append).await.unwrap();
    let mine = w.create(&point(24.0, 60.0, "mine")).await.unwrap();
    let at = w.commit().await.unwrap()[0].seq;

    // This handle's own commit notifies the position it was numbered at, so that a reader
    // which applied it already does not read again.
    assert_eq!(s.wait_for_changes(Duration::from_secs(5)).await, Some(at));
    // Use up any wake-up still pending.
    s.wait_for_changes(Duration::from_millis(100)).await;
    let mut sql = b.pg.as_ref().unwrap().connect().await;
    let mut slow = s.begin_write(&l, WriteMode::Append).await.unwrap();
    assert!(slow.get(mine).await.unwrap().is_some());
    let started = Instant::now();
    let theirs: i64 = sqlx::query_scalar(
        "INSERT INTO features (layer, geom, properties) VALUES \
         ('events', ST_GeomFromText('LINESTRING(24.9 60.1, 25 60.2)', 4326), '{\"name\": \"sql\"}') \
         RETURNING id",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    // Woken by the trigger's NOTIFY well before the 5 s poll this waits at most; the
    // notice names no position (the row waits for one), so the reader must read.
    let woken = s.wait_for_changes(Duration::from_secs(5)).await;
    let woke_after = started.elapsed();
    assert_eq!(woken, None);
    let log = s.changes_since(1, 10).await.unwrap();
    assert!(
        woke_after < Duration::from_secs(2),
        "not woken: {woke_after:?}"
    );
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].kind, log[0].feature, log[0].origin),
        (ChangeKind::Create, Some(FeatureId(theirs as u64)), 0)
    );
    let bb = log[0].bbox.unwrap();
    assert_eq!(
        (bb.west, bb.south, bb.east, bb.north),
        (24.9, 60.1, 25.0, 60.2)
    );

    sqlx::query(
        "UPDATE features SET geom = ST_SetSRID(ST_MakePoint(24.5, 59.5), 4326), \
         properties = '{\"name\": \"moved in sql\"}' WHERE id = $1",
    )
    .bind(mine.0 as i64)
    .execute(&mut sql)
    .await
    .unwrap();
    let e = slow
        .overwrite(mine, &point(1.0, 1.0, "lost"), ChangeKind::Replace)
        .await
        .expect_err("overwrote an edit made in SQL");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    drop(slow);
    sqlx::query("DELETE FROM features WHERE id = $1")
        .bind(theirs)
        .execute(&mut sql)
        .await
        .unwrap();

    let log = whole_log(s).await;
    assert_dense(&log, 1);
    let tail: Vec<_> = log[2..]
        .iter()
        .map(|c| (c.kind, c.feature, c.origin))
        .collect();
    assert_eq!(
        tail,
        [
            (ChangeKind::Update, Some(mine), 0),
            (ChangeKind::Delete, Some(FeatureId(theirs as u64)), 0)
        ]
    );
    let moved = log[2].bbox.unwrap();
    assert_eq!(
        (moved.west, moved.south, moved.east, moved.north),
        (24.0, 59.5, 24.5, 60.0)
    );
    let now = s.load_layer(&l).await.unwrap();
    assert_eq!(now.iter().map(name).collect::<Vec<_>>(), ["moved in sql"]);

    // A row no layer file can name still takes its position (a hole would read as
    // pruning), as a change of a layer no server has.
    sqlx::query(
        "INSERT INTO features (layer, geom, properties) VALUES \
         ('Not A Layer!', ST_SetSRID(ST_MakePoint(1, 1), 4326), '{}')",
    )
    .execute(&mut sql)
    .await
    .unwrap();
    let log = whole_log(s).await;
    assert_dense(&log, 1);
    assert_eq!(log.len(), 5);
    assert_eq!(log[4].layer.as_str(), "_unreadable");

    // Rows urbantile could not read back are refused by the database itself, so that an
    // SQL edit cannot stop the replicas' feeds: properties that are not an object, a
    // curve, an empty geometry. Nothing is logged for them.
    for bad in [
        "('events', ST_SetSRID(ST_MakePoint(1, 1), 4326), 'null')",
        "('events', ST_GeomFromText('CIRCULARSTRING(0 0, 1 1, 2 0)', 4326), '{}')",
        "('events', ST_GeomFromText('POINT EMPTY', 4326), '{}')",
    ] {
        let e = sqlx::query(&format!(
            "INSERT INTO features (layer, geom, properties) VALUES {bad}"
        ))
        .execute(&mut sql)
        .await
        .expect_err(bad);
        assert!(
            e.to_string().contains("violates check constraint"),
            "{bad}: {e}"
        );
    }
    assert_eq!(whole_log(s).await.len(), 5);
}

/// While one server holds the seeding lock, another waits for it; a dropped lock lets it in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_replicas_seed_one_at_a_time() {
    let Some(b) = pg_backend().await else { return };
    let other = b.another().await;
    let held = b.store.seed_lock().await.unwrap();
    let waiting = tokio::spawn(async move {
        let lock = other.seed_lock().await.unwrap();
        (Instant::now(), lock)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "two servers seeding at once");
    let released = Instant::now();
    drop(held);
    let (got, _lock) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the lock was not handed on")
        .unwrap();
    assert!(got >= released);
}

/// A database that cannot be reached is an `Unavailable` error (503), and a password in the
/// URL appears in no error message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_errors_are_classified_and_never_show_the_password() {
    let Some(admin) = common::pg::server_url() else {
        return;
    };
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The pool's timeout (10 s by default) is how long a connection is retried.
    let url = format!("postgres://urbantile:s3cret-pw@127.0.0.1:{port}/x?pool_timeout_secs=1");
    let e = store::open(&url).await.err().expect("opened a closed port");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    let text = urbantile::model::error_chain(&e);
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(text.contains("urbantile:***@"), "{text}");

    // A wrong password on the real server: refused, and not echoed either.
    let wrong = admin.replacen("://urbantile:urbantile@", "://urbantile:wr0ng-pw@", 1);
    if wrong != admin {
        let e = store::open(&wrong)
            .await
            .err()
            .expect("a wrong password worked");
        let text = format!("{} / {e:?}", urbantile::model::error_chain(&e));
        assert!(!text.contains("wr0ng-pw"), "{text}");
    }
}

/// A follower's one read (the log and the features it names, where the backend joins them)
/// gives what reading the log and then each layer's features by id gives.
async fn the_log_read_with_its_features_agrees_with_reading_them_apart(b: &Backend) {
    let s = b.store.as_ref();
    let (buildings, schools) = (layer("buildings"), layer("schools"));
    let start = s.change_span().await.unwrap().map_or(0, |(_, last)| last);
    let mut w = s.begin_write(&buildings, WriteMode::Append).await.unwrap();
    let a = w.create(&polygon(24.0, 60.0, 0.5)).await.unwrap();
    let kept = w.create(&point(25.0, 61.0, "kept")).await.unwrap();
    let gone = w.create(&point(25.5, 61.5, "gone")).await.unwrap();
    w.commit().await.unwrap();
    let mut w = s.begin_write(&schools, WriteMode::Append).await.unwrap();
    let school = w.create(&point(24.9, 60.2, "school")).await.unwrap();
    w.commit().await.unwrap();
    let mut w = s.begin_write(&buildings, WriteMode::Append).await.unwrap();
    w.get(a).await.unwrap();
    w.overwrite(a, &point(24.5, 60.25, "a2"), ChangeKind::Replace)
        .await
        .unwrap();
    w.get(gone).await.unwrap();
    w.delete(gone).await.unwrap();
    w.commit().await.unwrap();

    let read = s.changes_and_features_since(start, 1000).await.unwrap();
    let apart = s.changes_since(start, 1000).await.unwrap();
    assert_eq!(read.changes, apart);
    assert_eq!(read.changes.len(), 6);
    let Some(features) = read.features else {
        // This backend reads the features apart.
        return;
    };
    for change in &read.changes {
        let id = change.feature.unwrap();
        let now = s.features_by_ids(&change.layer, &[id]).await.unwrap().pop();
        assert_eq!(features[&change.layer][&id], now, "{change:?}");
    }
    assert_eq!(features[&buildings][&gone], None);
    assert_eq!(name(features[&buildings][&a].as_ref().unwrap()), "a2");
    assert_eq!(name(features[&buildings][&kept].as_ref().unwrap()), "kept");
    assert_eq!(features[&schools][&school].as_ref().unwrap().version, 0);
}
