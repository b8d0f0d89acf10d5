//! Point clusters over a whole layer, one level per zoom: the greedy hierarchical grouping
//! that the JavaScript library supercluster made the map convention, written here from its
//! documented behaviour (so that a city map shows the same groups a MapLibre user knows).
//!
//! At the points' own level (`maxzoom + 1`) every point is an item. Going down one zoom
//! at a time, from `maxzoom` to `minzoom`, the items of the level above are visited in
//! order; each one not yet taken becomes a seed and takes every item not yet taken within
//! `radius` of it. A seed that took nothing is carried down as it is (a point stays a
//! point, a cluster keeps its id); otherwise the group becomes a new cluster at the
//! weighted centre of its members, counting their points and adding up their sums. A
//! cluster is never cut by a tile border: tiles only choose which items to draw.
//!
//! This module owns the algorithm and the queries on its result ([`ClusterTree`]); which
//! points take part (time, filter) and when a tree is rebuilt belong to
//! [`crate::dataset`], drawing the items to [`crate::composite`]. Pure and sync.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::tiles::mercator::{HALF_WORLD, Rect3857};

/// `created` of an item that is a point, not a cluster.
const POINT: u8 = u8::MAX;

/// How a layer's points are grouped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterParams {
    /// Points closer than this, in pixels of a tile `extent` pixels wide, are grouped.
    pub radius_px: f64,
    /// The tile width, in pixels, that `radius_px` is measured on. MapLibre shows a vector
    /// tile 512 CSS pixels wide, which is also supercluster's default.
    pub extent: f64,
    /// The lowest zoom with a level.
    pub minzoom: u8,
    /// The highest zoom with clusters; from `maxzoom + 1` on, the points themselves.
    pub maxzoom: u8,
}

impl ClusterParams {
    /// The grouping radius at zoom `z`, in world units (the width of the world is 1).
    pub fn radius_world(&self, z: u8) -> f64 {
        self.radius_px / (self.extent * f64::powi(2.0, i32::from(z)))
    }
}

/// A layer's clusters built from one version of its index.
#[derive(Debug, Clone)]
pub struct Clustered {
    /// The [`crate::index::LayerIndex::version`] the tree was built from: a tile drawn
    /// from it is as old as that.
    pub version: u64,
    pub tree: std::sync::Arc<ClusterTree>,
}

/// A point to cluster: its feature id and its position in world units (see
/// [`to_world`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leaf {
    pub id: u64,
    pub world: [f64; 2],
}

/// Web Mercator (EPSG:3857, metres) to world units: x from 0 (180° W) to 1 (180° E), y
/// from 0 (north edge) to 1 (south edge), as tiles count them.
pub fn to_world(x: f64, y: f64) -> [f64; 2] {
    let span = 2.0 * HALF_WORLD;
    [x / span + 0.5, 0.5 - y / span]
}

/// World units back to EPSG:3857 metres.
pub fn from_world(world: [f64; 2]) -> [f64; 2] {
    let span = 2.0 * HALF_WORLD;
    [(world[0] - 0.5) * span, (0.5 - world[1]) * span]
}

/// Cluster ids start here, so that a cluster's id (also its MVT feature id) never equals a
/// point's: MVT 2.1 asks for ids unique in a layer, and a tile holds both.
pub const CLUSTER_ID_BASE: u64 = 1 << 52;

/// The id a cluster is known by in tiles and in the leaves route: [`CLUSTER_ID_BASE`] plus
/// the id of its seed's first point and the zoom it was formed at (`(seed << 5) | zoom`),
/// so that it is unique in the tree and the same in every tile that shows it. Feature ids
/// below 2^47 keep it under 2^53, exact in JavaScript.
pub fn cluster_id(seed: u64, zoom: u8) -> u64 {
    CLUSTER_ID_BASE + ((seed << 5) | u64::from(zoom))
}

/// supercluster's `point_count_abbreviated`: 999, 1.2k, 12k.
pub fn abbreviated(count: u32) -> String {
    if count >= 10_000 {
        format!("{}k", (f64::from(count) / 1000.0).round())
    } else if count >= 1000 {
        let tenths = (f64::from(count) / 100.0).round() / 10.0;
        format!("{tenths}k")
    } else {
        count.to_string()
    }
}

#[derive(Debug, Clone, Copy)]
struct Item {
    world: [f64; 2],
    count: u32,
    /// The first point of the seed chain: the point's own id for a point.
    seed: u64,
    /// Zoom the cluster was formed at; [`POINT`] for a point.
    created: u8,
    /// Where this item's points start in [`ClusterTree::leaf_ids`].
    start: u32,
    /// The item it belongs to one zoom down.
    parent: u32,
}

/// Items at one zoom.
#[derive(Debug, Default)]
struct Level {
    items: Vec<Item>,
    /// `n_sums` values per item.
    sums: Vec<f64>,
    cells: CellIndex,
    /// Clusters formed at this zoom, by seed.
    formed: FxHashMap<u64, u32>,
}

/// What a tile draws at one place: a cluster or a point left alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node<'a> {
    pub world: [f64; 2],
    pub kind: NodeKind<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeKind<'a> {
    /// A point that no other joined at this zoom: drawn as the feature itself.
    Point { id: u64 },
    Cluster {
        id: u64,
        count: u32,
        /// The zoom at which it splits into its parts.
        expansion_zoom: u8,
        /// The layer's declared sums, in their order.
        sums: &'a [f64],
    },
}

/// A layer's points grouped at every zoom from `minzoom` to `maxzoom`.
///
/// Positions are in world units of Web Mercator ([`to_world`]); radius in pixels of a tile
/// `extent` pixels wide. Building costs O(Z n log n) time for n points over Z zooms (each
/// zoom sorts its items into a grid of cells one radius wide and looks at the 3 x 3 cells
/// around each seed) and O(Z n) memory; queries cost a binary search per grid row plus the
/// items found.
///
/// # Examples
/// ```
/// use urbantile::cluster::{ClusterParams, ClusterTree, Leaf, NodeKind};
/// let params = ClusterParams { radius_px: 40.0, extent: 512.0, minzoom: 0, maxzoom: 16 };
/// let leaves = [Leaf { id: 1, world: [0.5, 0.5] }, Leaf { id: 2, world: [0.500001, 0.5] }];
/// let tree = ClusterTree::build(params, &leaves, &[], 0);
/// let top: Vec<_> = tree.nodes_in(0, [0.0, 0.0], [1.0, 1.0]).collect();
/// assert!(matches!(top[0].kind, NodeKind::Cluster { count: 2, .. }));
/// ```
#[derive(Debug)]
pub struct ClusterTree {
    params: ClusterParams,
    n_sums: usize,
    /// `levels[z - minzoom]`, for z in `minzoom..=maxzoom + 1`.
    levels: Vec<Level>,
    /// Point ids ordered so that every item's points are one run.
    leaf_ids: Vec<u64>,
}

impl ClusterTree {
    /// Groups `leaves` (visited in this order, which decides ties) whose sums are
    /// `sums[i * n_sums..][..n_sums]`.
    pub fn build(params: ClusterParams, leaves: &[Leaf], sums: &[f64], n_sums: usize) -> Self {
        assert!(params.minzoom <= params.maxzoom && params.maxzoom < POINT - 1);
        assert_eq!(sums.len(), leaves.len() * n_sums);
        let points = Level {
            items: leaves
                .iter()
                .map(|l| Item {
                    world: l.world,
                    count: 1,
                    seed: l.id,
                    created: POINT,
                    start: 0,
                    parent: 0,
                })
                .collect(),
            sums: sums.to_vec(),
            ..Default::default()
        };
        let mut levels = vec![points];
        let mut taken = Vec::new();
        let mut found = Vec::new();
        for z in (params.minzoom..=params.maxzoom).rev() {
            let r = params.radius_world(z);
            let above = levels.last_mut().expect("the points' level");
            above.cells = CellIndex::build(&above.items, r);
            let next = group(above, z, r, n_sums, &mut taken, &mut found);
            levels.push(next);
        }
        let lowest = levels.last_mut().expect("at least one zoom");
        lowest.cells = CellIndex::build(&lowest.items, params.radius_world(params.minzoom) * 2.0);
        levels.reverse();
        // Each item's points as one run: the lowest zoom's items in order, then each
        // level's items packed into their parent's run in order.
        let mut next = 0;
        for item in &mut levels[0].items {
            item.start = next;
            next += item.count;
        }
        for z in 1..levels.len() {
            let (below, above) = levels.split_at_mut(z);
            let mut cursor: Vec<u32> = below[z - 1].items.iter().map(|i| i.start).collect();
            for item in &mut above[0].items {
                let c = &mut cursor[item.parent as usize];
                item.start = *c;
                *c += item.count;
            }
        }
        let mut leaf_ids = vec![0; leaves.len()];
        for item in &levels.last().expect("the points' level").items {
            leaf_ids[item.start as usize] = item.seed;
        }
        ClusterTree {
            params,
            n_sums,
            levels,
            leaf_ids,
        }
    }

    pub fn params(&self) -> ClusterParams {
        self.params
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.leaf_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaf_ids.is_empty()
    }

    fn level(&self, z: u8) -> Option<&Level> {
        if z < self.params.minzoom || z > self.params.maxzoom {
            return None;
        }
        self.levels.get(usize::from(z - self.params.minzoom))
    }

    fn node<'a>(&'a self, level: &'a Level, i: usize) -> Node<'a> {
        let item = &level.items[i];
        let kind = if item.created == POINT {
            NodeKind::Point { id: item.seed }
        } else {
            NodeKind::Cluster {
                id: cluster_id(item.seed, item.created),
                count: item.count,
                // A cluster is formed from at least two items of the zoom above, so it
                // splits right there.
                expansion_zoom: item.created + 1,
                sums: &level.sums[i * self.n_sums..(i + 1) * self.n_sums],
            }
        };
        Node {
            world: item.world,
            kind,
        }
    }

    /// Every item at zoom `z` (none outside `minzoom..=maxzoom`), in the tree's order.
    pub fn nodes(&self, z: u8) -> impl Iterator<Item = Node<'_>> {
        let level = self.level(z);
        (0..level.map_or(0, |l| l.items.len())).map(move |i| self.node(level.expect("set"), i))
    }

    /// The items at zoom `z` inside the box `min..=max` (world units), in the tree's order.
    pub fn nodes_in(&self, z: u8, min: [f64; 2], max: [f64; 2]) -> impl Iterator<Item = Node<'_>> {
        let mut hits = Vec::new();
        if let Some(level) = self.level(z) {
            level.cells.for_each_in(min, max, |i, w| {
                if (min[0]..=max[0]).contains(&w[0]) && (min[1]..=max[1]).contains(&w[1]) {
                    hits.push(i);
                }
            });
        }
        hits.sort_unstable();
        let level = self.level(z);
        hits.into_iter()
            .map(move |i| self.node(level.expect("hits come from a level"), i as usize))
    }

    /// Like [`ClusterTree::nodes_in`] for a box in EPSG:3857.
    pub fn nodes_in_3857(&self, z: u8, rect: Rect3857) -> impl Iterator<Item = Node<'_>> {
        let a = to_world(rect.min_x, rect.max_y);
        let b = to_world(rect.max_x, rect.min_y);
        self.nodes_in(z, a, b)
    }

    /// The cluster with this id, and the ids of all its points.
    pub fn cluster(&self, id: u64) -> Option<(Node<'_>, &[u64])> {
        let id = id.checked_sub(CLUSTER_ID_BASE)?;
        let zoom = (id & 31) as u8;
        let level = self.level(zoom)?;
        let &i = level.formed.get(&(id >> 5))?;
        let item = &level.items[i as usize];
        let leaves = &self.leaf_ids[item.start as usize..(item.start + item.count) as usize];
        Some((self.node(level, i as usize), leaves))
    }

    /// Where, at each zoom, this tree draws something `old` did not or the other way round:
    /// `(zoom, position in world units)` of every item present in one and not the other.
    /// Tiles that hold none of these positions are the same from both trees (except for a
    /// point's own properties, which its own position covers).
    pub fn changes_from(&self, old: &ClusterTree) -> Vec<(u8, [f64; 2])> {
        fn keyed(tree: &ClusterTree, z: u8) -> Vec<(NodeKey<'_>, [f64; 2])> {
            tree.nodes(z).map(|n| (NodeKey::of(&n), n.world)).collect()
        }
        fn set<'a>(nodes: &[(NodeKey<'a>, [f64; 2])]) -> FxHashSet<NodeKey<'a>> {
            nodes.iter().map(|(k, _)| *k).collect()
        }
        let mut out = Vec::new();
        let zooms = self.params.minzoom.min(old.params.minzoom)
            ..=self.params.maxzoom.max(old.params.maxzoom);
        for z in zooms {
            let (after, before) = (keyed(self, z), keyed(old, z));
            let (in_after, in_before) = (set(&after), set(&before));
            out.extend(
                after
                    .iter()
                    .filter(|(k, _)| !in_before.contains(k))
                    .chain(before.iter().filter(|(k, _)| !in_after.contains(k)))
                    .map(|(_, w)| (z, *w)),
            );
        }
        out
    }
}

/// What tells two drawn items apart: position, id, count and sums, all compared exactly
/// (bit for bit; a point's key has no count and no sums).
#[derive(Debug, Clone, Copy)]
struct NodeKey<'a> {
    world: [u64; 2],
    id: u64,
    count: u32,
    sums: &'a [f64],
}

impl<'a> NodeKey<'a> {
    fn of(n: &Node<'a>) -> NodeKey<'a> {
        let (id, count, sums) = match n.kind {
            NodeKind::Point { id } => (id, 0, &[][..]),
            NodeKind::Cluster {
                id, count, sums, ..
            } => (id, count, sums),
        };
        NodeKey {
            world: n.world.map(f64::to_bits),
            id,
            count,
            sums,
        }
    }
}

impl PartialEq for NodeKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.world, self.id, self.count) == (other.world, other.id, other.count)
            && self.sums.len() == other.sums.len()
            && self
                .sums
                .iter()
                .zip(other.sums)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Eq for NodeKey<'_> {}

impl std::hash::Hash for NodeKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.world, self.id, self.count).hash(h);
        for s in self.sums {
            h.write_u64(s.to_bits());
        }
    }
}

/// One zoom of the greedy grouping: the items of `above` (indexed with cells of `r`) into
/// the items of zoom `z`; sets each item's `parent`.
fn group(
    above: &mut Level,
    z: u8,
    r: f64,
    n_sums: usize,
    taken: &mut Vec<bool>,
    found: &mut Vec<u32>,
) -> Level {
    let r2 = r * r;
    let n = above.items.len();
    taken.clear();
    taken.resize(n, false);
    let mut next = Level::default();
    for i in 0..n {
        if taken[i] {
            continue;
        }
        taken[i] = true;
        let seed = above.items[i];
        let [x, y] = seed.world;
        found.clear();
        above
            .cells
            .for_each_in([x - r, y - r], [x + r, y + r], |k, [kx, ky]| {
                let k = k as usize;
                if taken[k] {
                    return;
                }
                if (kx - x) * (kx - x) + (ky - y) * (ky - y) <= r2 {
                    found.push(k as u32);
                }
            });
        let at = next.items.len() as u32;
        above.items[i].parent = at;
        let seed_sums = &above.sums[i * n_sums..(i + 1) * n_sums];
        if found.is_empty() {
            next.items.push(seed);
            next.sums.extend_from_slice(seed_sums);
            continue;
        }
        // The seed's neighbours in the order of the level above, so that the centre's
        // rounding does not depend on the grid.
        found.sort_unstable();
        let mut count = seed.count;
        let mut wx = x * f64::from(seed.count);
        let mut wy = y * f64::from(seed.count);
        let sums_at = next.sums.len();
        next.sums.extend_from_slice(seed_sums);
        for &k in found.iter() {
            let k = k as usize;
            taken[k] = true;
            let m = &mut above.items[k];
            m.parent = at;
            count += m.count;
            wx += m.world[0] * f64::from(m.count);
            wy += m.world[1] * f64::from(m.count);
            for s in 0..n_sums {
                next.sums[sums_at + s] += above.sums[k * n_sums + s];
            }
        }
        next.formed.insert(seed.seed, at);
        next.items.push(Item {
            world: [wx / f64::from(count), wy / f64::from(count)],
            count,
            seed: seed.seed,
            created: z,
            start: 0,
            parent: 0,
        });
    }
    next
}

/// A grid over one level's items: each item's cell, sorted by row then column, so that a
/// box is a binary search per row.
#[derive(Debug, Default)]
struct CellIndex {
    cell: f64,
    /// `(row << 32) | column`, ascending.
    keys: Vec<u64>,
    /// The item at each key, and its position (kept here, in the keys' order, so that a
    /// search reads positions from memory next to each other).
    items: Vec<u32>,
    worlds: Vec<[f64; 2]>,
    /// The rows that hold items, ascending, and where each one's keys start (one more
    /// entry: the end of the last). A box looks its rows up here, a short array that stays
    /// in cache, and searches only their keys: a search over all the keys missed the
    /// cache at every step and took half of a build.
    rows: Vec<u32>,
    row_starts: Vec<u32>,
}

impl CellIndex {
    fn build(items: &[Item], cell: f64) -> CellIndex {
        let mut pairs: Vec<(u64, u32)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let [cx, cy] = cell_of(item.world, cell);
                ((u64::from(cy) << 32) | u64::from(cx), i as u32)
            })
            .collect();
        pairs.sort_unstable();
        let (mut rows, mut row_starts) = (Vec::new(), Vec::new());
        for (at, (key, _)) in pairs.iter().enumerate() {
            let row = (key >> 32) as u32;
            if rows.last() != Some(&row) {
                rows.push(row);
                row_starts.push(at as u32);
            }
        }
        row_starts.push(pairs.len() as u32);
        CellIndex {
            cell,
            keys: pairs.iter().map(|p| p.0).collect(),
            items: pairs.iter().map(|p| p.1).collect(),
            worlds: pairs.iter().map(|p| items[p.1 as usize].world).collect(),
            rows,
            row_starts,
        }
    }

    /// Calls `f` with every item in a cell that meets the box (a superset of the items in
    /// the box) and its position.
    fn for_each_in(&self, min: [f64; 2], max: [f64; 2], mut f: impl FnMut(u32, [f64; 2])) {
        if self.keys.is_empty() {
            return;
        }
        let [x0, y0] = cell_of(min, self.cell);
        let [x1, y1] = cell_of(max, self.cell);
        let first = self.rows.partition_point(|&r| r < y0);
        for (r, &row) in self.rows[first..].iter().enumerate() {
            if row > y1 {
                break;
            }
            let (from, to) = (
                self.row_starts[first + r] as usize,
                self.row_starts[first + r + 1] as usize,
            );
            let keys = &self.keys[from..to];
            let lo = (u64::from(row) << 32) | u64::from(x0);
            let hi = (u64::from(row) << 32) | u64::from(x1);
            let start = keys.partition_point(|&k| k < lo);
            let end = start + keys[start..].partition_point(|&k| k <= hi);
            let (from, to) = (from + start, from + end);
            for (&i, &w) in self.items[from..to].iter().zip(&self.worlds[from..to]) {
                f(i, w);
            }
        }
    }
}

/// The cell of a position, clamped to the world (positions outside it share its edge
/// cells).
fn cell_of(world: [f64; 2], cell: f64) -> [u32; 2] {
    let most = (1.0 / cell).ceil().min(f64::from(u32::MAX - 1));
    world.map(|v| (v / cell).floor().clamp(0.0, most) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(maxzoom: u8) -> ClusterParams {
        ClusterParams {
            radius_px: 40.0,
            extent: 512.0,
            minzoom: 0,
            maxzoom,
        }
    }

    /// A seeded scatter of points around Helsinki, in world units.
    fn scatter(n: usize, seed: u64) -> Vec<Leaf> {
        let mut rng = crate::generate::rng::Rng::new(seed);
        (0..n)
            .map(|i| {
                let (x, y) = crate::tiles::mercator::lon_lat_to_3857(
                    24.90 + rng.below(10_000) as f64 * 1e-5,
                    60.15 + rng.below(5_000) as f64 * 1e-5,
                );
                Leaf {
                    id: i as u64 + 1,
                    world: to_world(x, y),
                }
            })
            .collect()
    }

    #[test]
    fn every_point_is_in_exactly_one_item_at_every_zoom() {
        let leaves = scatter(3000, 1);
        let sums: Vec<f64> = leaves.iter().map(|l| (l.id % 3) as f64).collect();
        let tree = ClusterTree::build(params(16), &leaves, &sums, 1);
        let total: f64 = sums.iter().sum();
        for z in 0..=16 {
            let mut seen = FxHashSet::default();
            let mut sum = 0.0;
            for n in tree.nodes(z) {
                match n.kind {
                    NodeKind::Point { id } => {
                        assert!(seen.insert(id));
                        sum += (id % 3) as f64;
                    }
                    NodeKind::Cluster {
                        id, count, sums, ..
                    } => {
                        let (_, leaves) = tree.cluster(id).unwrap();
                        assert_eq!(leaves.len(), count as usize);
                        for l in leaves {
                            assert!(seen.insert(*l), "point {l} twice at z{z}");
                        }
                        sum += sums[0];
                    }
                }
            }
            assert_eq!(seen.len(), leaves.len(), "z{z}");
            assert_eq!(sum, total);
        }
        // The whole scatter (1 x 0.5 km) is one cluster at low zooms.
        assert_eq!(tree.nodes(5).count(), 1);
        assert!(tree.nodes(16).count() > 1000);
    }

    #[test]
    fn points_farther_apart_than_the_radius_stay_points() {
        // 100 px apart at z10 on a 512 px tile.
        let step = 100.0 / (512.0 * 1024.0);
        let leaves: Vec<Leaf> = (0..3)
            .map(|i| Leaf {
                id: i,
                world: [0.5 + i as f64 * step, 0.5],
            })
            .collect();
        let tree = ClusterTree::build(params(12), &leaves, &[], 0);
        assert!(
            tree.nodes(10)
                .all(|n| matches!(n.kind, NodeKind::Point { .. }))
        );
        // At z8 they are 25 px apart: the first takes the second, not the third (50 px).
        let z8: Vec<_> = tree.nodes(8).collect();
        assert_eq!(z8.len(), 2);
        assert!(matches!(z8[0].kind, NodeKind::Cluster { count: 2, .. }));
        assert!((z8[0].world[0] - (0.5 + step / 2.0)).abs() < 1e-12);
        assert_eq!(z8[1].kind, NodeKind::Point { id: 2 });
        // At z7, all three: at their centre, splitting at z8.
        let z7: Vec<_> = tree.nodes(7).collect();
        assert_eq!(z7.len(), 1);
        let NodeKind::Cluster {
            id,
            count,
            expansion_zoom,
            ..
        } = z7[0].kind
        else {
            panic!("{z7:?}")
        };
        assert_eq!((count, expansion_zoom), (3, 8));
        assert!((z7[0].world[0] - (0.5 + step)).abs() < 1e-12);
        assert_eq!(tree.cluster(id).unwrap().1, [0, 1, 2]);
        assert!(tree.cluster(id + 32).is_none());
        assert!(tree.cluster(7).is_none());
        assert_eq!(tree.cluster(id + 1).unwrap().1, [0, 1]);
    }

    #[test]
    fn a_box_query_finds_the_items_inside_it() {
        let leaves = scatter(2000, 2);
        let tree = ClusterTree::build(params(16), &leaves, &[], 0);
        for z in [10, 13, 16] {
            let all: Vec<_> = tree.nodes(z).collect();
            let (min, max) = ([0.5663, 0.2895], [0.5664, 0.2896]);
            let inside = |w: [f64; 2]| {
                (min[0]..=max[0]).contains(&w[0]) && (min[1]..=max[1]).contains(&w[1])
            };
            let want: Vec<_> = all.iter().filter(|n| inside(n.world)).copied().collect();
            let got: Vec<_> = tree.nodes_in(z, min, max).collect();
            assert_eq!(got, want, "z{z}");
        }
    }

    #[test]
    fn moving_one_point_changes_only_items_near_it() {
        let mut leaves = scatter(2000, 3);
        let old = ClusterTree::build(params(16), &leaves, &[], 0);
        leaves[10].world[0] += 1e-6;
        let new = ClusterTree::build(params(16), &leaves, &[], 0);
        let changes = new.changes_from(&old);
        assert!(!changes.is_empty());
        for (z, w) in &changes {
            // Within a few radii of the moved point at that zoom (the clusters it joins).
            let d = ((w[0] - leaves[10].world[0]).powi(2) + (w[1] - leaves[10].world[1]).powi(2))
                .sqrt();
            assert!(d < 4.0 * params(16).radius_world(*z), "z{z} {d}");
        }
        assert!(old.changes_from(&old).is_empty());
    }

    #[test]
    fn a_changed_sum_changes_exactly_the_clusters_holding_its_point() {
        let leaves = scatter(2000, 4);
        let sums: Vec<f64> = (0..2000)
            .flat_map(|i| [f64::from(i % 7 + 1), 1.0])
            .collect();
        let old = ClusterTree::build(params(16), &leaves, &sums, 2);
        let mut edited = sums.clone();
        edited[2 * 10 + 1] = 2.0;
        let new = ClusterTree::build(params(16), &leaves, &edited, 2);
        let changes = new.changes_from(&old);
        // Both of its sums negated: still a change (a weighted sum of the bits would not
        // see it).
        let mut negated = sums.clone();
        negated[2 * 10] = -sums[2 * 10];
        negated[2 * 10 + 1] = -sums[2 * 10 + 1];
        let flipped = ClusterTree::build(params(16), &leaves, &negated, 2);
        assert_eq!(flipped.changes_from(&old).len(), changes.len());
        // Positions do not move: every change is a cluster holding point 11, drawn once
        // as it was and once as it is, at each zoom where it is clustered.
        let tree = &new;
        let holding: Vec<(u8, [f64; 2])> = (0..=16)
            .flat_map(|z| {
                tree.nodes(z).filter_map(move |n| match n.kind {
                    NodeKind::Cluster { id, .. } => {
                        let (_, ids) = tree.cluster(id).expect("a cluster of the tree");
                        ids.contains(&11).then_some((z, n.world))
                    }
                    NodeKind::Point { .. } => None,
                })
            })
            .collect();
        assert!(!holding.is_empty());
        let mut want: Vec<_> = holding.iter().chain(&holding).copied().collect();
        let mut got = changes;
        let order = |a: &(u8, [f64; 2]), b: &(u8, [f64; 2])| {
            (a.0, a.1[0].to_bits(), a.1[1].to_bits()).cmp(&(
                b.0,
                b.1[0].to_bits(),
                b.1[1].to_bits(),
            ))
        };
        want.sort_by(order);
        got.sort_by(order);
        assert_eq!(got, want);
    }

    #[test]
    fn counts_are_abbreviated_like_supercluster() {
        assert_eq!(abbreviated(999), "999");
        assert_eq!(abbreviated(1234), "1.2k");
        assert_eq!(abbreviated(12_345), "12k");
    }
}
