//! A static packed R-tree over a layer's features in storage order, for tiles.
//!
//! Storage is sorted spatially (Z-order), so runs of consecutive features are compact on
//! the map: the tree groups each run of [`FANOUT`] boxes under one node, those nodes in
//! runs of [`FANOUT`] again, up to a root of at most [`FANOUT`] nodes. Nodes are plain
//! arrays, one per level, with no pointers; a search visits children left to right, so it
//! yields storage positions already in write order and a tile needs no sort. Each node also
//! keeps the lowest minzoom below it, so that a low-zoom search skips whole runs of
//! features not drawn there.
//!
//! The tree covers the features present when it was built; [`crate::index::LayerIndex`]
//! keeps later writes apart until it is rebuilt.

/// Children per node.
pub const FANOUT: usize = 16;

/// A box in EPSG:3857 and the lowest zoom at which what it holds is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoomBox {
    pub min: [f64; 2],
    pub max: [f64; 2],
    pub minzoom: u8,
}

impl ZoomBox {
    /// Whether something under this box may be drawn at zoom `z` inside `q`.
    #[inline]
    pub fn meets(&self, q: &ZoomBox, z: u8) -> bool {
        self.minzoom <= z
            && self.min[0] <= q.max[0]
            && self.max[0] >= q.min[0]
            && self.min[1] <= q.max[1]
            && self.max[1] >= q.min[1]
    }

    fn union(boxes: &[ZoomBox]) -> ZoomBox {
        let mut u = ZoomBox {
            min: [f64::INFINITY; 2],
            max: [f64::NEG_INFINITY; 2],
            minzoom: u8::MAX,
        };
        for b in boxes {
            u.min = [u.min[0].min(b.min[0]), u.min[1].min(b.min[1])];
            u.max = [u.max[0].max(b.max[0]), u.max[1].max(b.max[1])];
            u.minzoom = u.minzoom.min(b.minzoom);
        }
        u
    }
}

/// The inner levels of the tree; the leaves are the caller's boxes.
#[derive(Debug, Default)]
pub struct PackedTree {
    /// `levels[0]` groups the leaves, each next level the one before; the last has at most
    /// [`FANOUT`] nodes.
    levels: Vec<Vec<ZoomBox>>,
    leaves: usize,
}

impl PackedTree {
    /// Builds the levels over `leaves`. O(n).
    pub fn build(leaves: &[ZoomBox]) -> PackedTree {
        let mut levels: Vec<Vec<ZoomBox>> = Vec::new();
        let mut below = leaves;
        while below.len() > FANOUT {
            let level: Vec<ZoomBox> = below.chunks(FANOUT).map(ZoomBox::union).collect();
            levels.push(level);
            below = levels.last().expect("just pushed");
        }
        PackedTree {
            levels,
            leaves: leaves.len(),
        }
    }

    /// Appends to `out`, in increasing order, the positions of the leaves that meet `q` at
    /// zoom `z`. `leaves` must be those the tree was built over.
    pub fn search(&self, leaves: &[ZoomBox], q: &ZoomBox, z: u8, out: &mut Vec<u32>) {
        self.search_upto(leaves, q, z, usize::MAX, out);
    }

    /// [`PackedTree::search`] that stops once it has appended more than `most` positions:
    /// false when it stopped there, and `out` holds only part of the answer.
    pub fn search_upto(
        &self,
        leaves: &[ZoomBox],
        q: &ZoomBox,
        z: u8,
        most: usize,
        out: &mut Vec<u32>,
    ) -> bool {
        debug_assert_eq!(leaves.len(), self.leaves);
        let top = self.levels.last().map_or(leaves.len(), Vec::len);
        let end = out.len().saturating_add(most);
        self.visit(leaves, self.levels.len(), 0..top, q, z, end, out)
    }

    /// Searches nodes `range` of level `depth` (0 = the leaves); false once `out` is
    /// longer than `end`.
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &self,
        leaves: &[ZoomBox],
        depth: usize,
        range: std::ops::Range<usize>,
        q: &ZoomBox,
        z: u8,
        end: usize,
        out: &mut Vec<u32>,
    ) -> bool {
        if depth == 0 {
            for i in range.clone() {
                if leaves[i].meets(q, z) {
                    out.push(i as u32);
                }
            }
            return out.len() <= end;
        }
        let nodes = &self.levels[depth - 1];
        let below = if depth == 1 {
            leaves.len()
        } else {
            self.levels[depth - 2].len()
        };
        for i in range {
            if nodes[i].meets(q, z) {
                let start = i * FANOUT;
                let children = start..(start + FANOUT).min(below);
                if !self.visit(leaves, depth - 1, children, q, z, end, out) {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f64, y: f64, size: f64, minzoom: u8) -> ZoomBox {
        ZoomBox {
            min: [x, y],
            max: [x + size, y + size],
            minzoom,
        }
    }

    #[test]
    fn a_search_finds_what_a_scan_finds_in_order() {
        let mut rng = crate::generate::rng::Rng::new(11);
        for n in [0, 1, 15, 16, 17, 256, 257, 5000] {
            let leaves: Vec<ZoomBox> = (0..n)
                .map(|_| {
                    at(
                        rng.below(1000) as f64,
                        rng.below(1000) as f64,
                        rng.below(50) as f64,
                        10 + rng.below(6) as u8,
                    )
                })
                .collect();
            let tree = PackedTree::build(&leaves);
            for _ in 0..50 {
                let q = at(
                    rng.below(1000) as f64,
                    rng.below(1000) as f64,
                    rng.below(300) as f64,
                    0,
                );
                let z = 10 + rng.below(7) as u8;
                let mut got = Vec::new();
                tree.search(&leaves, &q, z, &mut got);
                let want: Vec<u32> = (0..n as u32)
                    .filter(|&i| leaves[i as usize].meets(&q, z))
                    .collect();
                assert_eq!(got, want, "n={n}");
                // Bounded: whole when the answer fits, else stopped just past the bound
                // with a prefix of the answer.
                for most in [0, want.len().saturating_sub(1), want.len(), 40] {
                    let mut part = Vec::new();
                    let whole = tree.search_upto(&leaves, &q, z, most, &mut part);
                    assert_eq!(whole, want.len() <= most, "n={n} most={most}");
                    if whole {
                        assert_eq!(part, want);
                    } else {
                        assert!(part.len() > most && part.len() <= most + FANOUT);
                        assert_eq!(part[..], want[..part.len()]);
                    }
                }
            }
        }
    }
}
