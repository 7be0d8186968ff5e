//! The RFC 6962 / RFC 9162 Merkle tree the audit log is: hashing, appending, proofs and
//! their verification.
//!
//! - A leaf is `SHA-256(0x00 ‖ event)`, an interior node `SHA-256(0x01 ‖ left ‖ right)`,
//!   and the empty tree's root `SHA-256("")` (RFC 9162 section 2.1.1).
//! - A store keeps the hash of every *complete* subtree, addressed by [`NodeId`]: level `l`,
//!   index `i` is the root of leaves `i·2^l .. (i+1)·2^l`. A log of `n` events keeps fewer
//!   than `2n` of them. [`Frontier`] says which ones each append adds.
//! - Any root, inclusion proof or consistency proof, for any earlier tree size, is then
//!   computed from `O(log n)` stored nodes: [`inclusion_plan`] and [`consistency_plan`] name
//!   them, so a store can read them in one query, and [`inclusion_proof`] /
//!   [`consistency_proof`] assemble the proof from what was read.
//! - [`verify_inclusion`] and [`verify_consistency`] are the RFC 9162 section 2.1.3.2 and
//!   2.1.4.2 algorithms. They accept exactly the valid cases of the transparency-dev test
//!   vectors (`testdata/tlog`).

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// A SHA-256 tree hash: a leaf, an interior node or a root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The length of a hash in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a hash from a slice of exactly 32 bytes.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, ProofError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| ProofError::HashLength { len: bytes.len() })
    }

    /// The hash's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The leaf hash of one entry: `SHA-256(0x00 ‖ data)`.
    pub fn leaf(data: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(data);
        Self(h.finalize().into())
    }

    /// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
    pub fn node(left: &Hash, right: &Hash) -> Self {
        // One contiguous input: a verification hashes about one node per event, and one
        // `digest` call is cheaper than three buffered updates.
        let mut input = [0x01; 65];
        let (l, r) = input[1..].split_at_mut(32);
        l.copy_from_slice(&left.0);
        r.copy_from_slice(&right.0);
        Self(Sha256::digest(input).into())
    }

    /// The root of the empty tree: `SHA-256("")`.
    pub fn empty() -> Self {
        Self(Sha256::digest([]).into())
    }

    /// Standard base64 (RFC 4648 section 4), as checkpoints write it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, ProofError> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| ProofError::HashEncoding)?;
        Self::try_from_slice(&bytes)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, ProofError> {
        let bytes = hex::decode(text).map_err(|_| ProofError::HashEncoding)?;
        Self::try_from_slice(&bytes)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The address of a complete subtree: the root of leaves `index·2^level .. (index+1)·2^level`.
/// Level 0 is the leaves themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// The subtree's height: it covers `2^level` leaves.
    pub level: u8,
    /// Its position among the subtrees of that height, from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` and `index`.
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// The first leaf the subtree covers.
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }
}

/// Why a proof could not be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// A hash was not 32 bytes long.
    #[error("a hash must be 32 bytes, got {len}")]
    HashLength {
        /// The length found.
        len: usize,
    },
    /// A hash was not valid base64 or hex.
    #[error("a hash is not valid base64 or hex")]
    HashEncoding,
    /// The leaf index is not inside the tree.
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was asked for from a larger tree to a smaller one, or from the
    /// empty tree (which every tree extends, so there is nothing to prove).
    #[error("no consistency proof from size {from} to size {to}")]
    SizesOutOfOrder {
        /// The older size.
        from: u64,
        /// The newer size.
        to: u64,
    },
    /// The proof has more or fewer hashes than the sizes call for.
    #[error("the proof has the wrong number of hashes ({got}, expected {expected})")]
    WrongLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the sizes call for.
        expected: usize,
    },
    /// The hashes do not lead to the expected root.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    /// A stored node the proof needs is missing.
    #[error("the stored tree lacks node {level}/{index}")]
    MissingNode {
        /// The node's level.
        level: u8,
        /// The node's index.
        index: u64,
    },
}

/// The right edge of a tree: the roots of its complete subtrees, largest first. Enough to
/// append to the tree and to compute its root, in `O(log n)` memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)`, levels strictly decreasing: the binary digits of `size`.
    edge: Vec<(u8, Hash)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored nodes: the nodes
    /// [`Frontier::nodes_for`] names, in that order.
    pub fn from_nodes(size: u64, hashes: &[Hash]) -> Result<Self, ProofError> {
        let ids = Self::nodes_for(size);
        if ids.len() != hashes.len() {
            return Err(ProofError::WrongLength {
                got: hashes.len(),
                expected: ids.len(),
            });
        }
        let edge = ids
            .iter()
            .zip(hashes)
            .map(|(id, h)| (id.level, *h))
            .collect();
        Ok(Self { size, edge })
    }

    /// The stored nodes that make up the frontier of a tree of `size` leaves, largest first.
    pub fn nodes_for(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            let span = 1u64 << level;
            if size & span != 0 {
                ids.push(NodeId::new(level, start >> level));
                start += span;
            }
        }
        ids
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash and returns the complete subtrees it finished, the leaf itself
    /// first: what a store must keep.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut done = Vec::with_capacity(1 + self.size.trailing_ones() as usize);
        done.push((NodeId::new(0, self.size), leaf));
        self.push_interior(leaf, &mut done);
        done
    }

    /// Appends one leaf hash and adds the interior nodes (level 1 and up) it completed to
    /// `done`, smallest first: [`push`](Self::push) without the leaf or an allocation.
    pub fn push_interior(&mut self, leaf: Hash, done: &mut Vec<(NodeId, Hash)>) {
        let mut hash = leaf;
        let mut level = 0u8;
        let mut index = self.size;
        while index & 1 == 1 {
            // The left sibling is the last, smallest subtree of the edge, of the same level.
            let Some((_, left)) = self.edge.pop() else {
                break;
            };
            hash = Hash::node(&left, &hash);
            level += 1;
            index >>= 1;
            done.push((NodeId::new(level, index), hash));
        }
        self.edge.push((level, hash));
        self.size += 1;
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        let mut iter = self.edge.iter().rev();
        let Some((_, last)) = iter.next() else {
            return Hash::empty();
        };
        iter.fold(*last, |acc, (_, left)| Hash::node(left, &acc))
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `lo..hi`, from the complete subtrees `get` returns. `lo` is a multiple of a power of two at least `hi - lo` (every range the
/// RFC 6962 recursion visits is).
fn range_hash<F>(lo: u64, hi: u64, get: &mut F) -> Result<Hash, ProofError>
where
    F: FnMut(NodeId) -> Result<Hash, ProofError>,
{
    let n = hi - lo;
    if n.is_power_of_two() {
        let level = n.trailing_zeros() as u8;
        return get(NodeId::new(level, lo >> level));
    }
    // The right part's hash first (it is a suffix), folded from the right.
    let k = split(n);
    let level = k.trailing_zeros() as u8;
    let left = get(NodeId::new(level, lo >> level))?;
    let right = range_hash(lo + k, hi, get)?;
    Ok(Hash::node(&left, &right))
}

fn inclusion_with<F>(index: u64, size: u64, get: &mut F) -> Result<Vec<Hash>, ProofError>
where
    F: FnMut(NodeId) -> Result<Hash, ProofError>,
{
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // PATH(m, D[lo:hi]) of RFC 6962 section 2.1.1, walked from the root down; the sibling
    // hashes come out root first and are reversed at the end.
    let mut path = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            path.push(range_hash(lo + k, hi, get)?);
            hi = lo + k;
        } else {
            path.push(range_hash(lo, lo + k, get)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

fn consistency_with<F>(from: u64, to: u64, get: &mut F) -> Result<Vec<Hash>, ProofError>
where
    F: FnMut(NodeId) -> Result<Hash, ProofError>,
{
    if from == 0 || from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    // SUBPROOF(m, D[lo:hi], b) of RFC 6962 section 2.1.2, walked from the root down.
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut m, mut whole) = (0u64, to, from, true);
    while m != hi - lo {
        let k = split(hi - lo);
        if m <= k {
            proof.push(range_hash(lo + k, hi, get)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(lo, lo + k, get)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        proof.push(range_hash(lo, hi, get)?);
    }
    proof.reverse();
    Ok(proof)
}

fn plan_with(
    run: impl FnOnce(&mut dyn FnMut(NodeId) -> Result<Hash, ProofError>) -> Result<(), ProofError>,
) -> Result<Vec<NodeId>, ProofError> {
    let mut seen = Vec::new();
    let mut record = |id: NodeId| {
        if !seen.contains(&id) {
            seen.push(id);
        }
        Ok(Hash::empty())
    };
    run(&mut record)?;
    Ok(seen)
}

/// The stored nodes an inclusion proof of leaf `index` in the tree of `size` leaves needs:
/// at most `2·log2(size)`.
pub fn inclusion_plan(index: u64, size: u64) -> Result<Vec<NodeId>, ProofError> {
    plan_with(|get| inclusion_with(index, size, &mut |id| get(id)).map(drop))
}

/// The stored nodes a consistency proof from `from` leaves to `to` leaves needs.
pub fn consistency_plan(from: u64, to: u64) -> Result<Vec<NodeId>, ProofError> {
    if from == to && from > 0 {
        return Ok(Vec::new());
    }
    plan_with(|get| consistency_with(from, to, &mut |id| get(id)).map(drop))
}

/// The stored nodes the root of the tree of `size` leaves needs.
pub fn root_plan(size: u64) -> Vec<NodeId> {
    Frontier::nodes_for(size)
}

fn lookup(nodes: &HashMap<NodeId, Hash>) -> impl FnMut(NodeId) -> Result<Hash, ProofError> + '_ {
    |id| {
        nodes.get(&id).copied().ok_or(ProofError::MissingNode {
            level: id.level,
            index: id.index,
        })
    }
}

/// The RFC 6962 inclusion proof (audit path) of leaf `index` in the tree of `size` leaves,
/// from the nodes [`inclusion_plan`] named.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    nodes: &HashMap<NodeId, Hash>,
) -> Result<Vec<Hash>, ProofError> {
    inclusion_with(index, size, &mut lookup(nodes))
}

/// The RFC 6962 consistency proof from the tree of `from` leaves to the tree of `to`
/// leaves, from the nodes [`consistency_plan`] named. Empty when the sizes are equal.
pub fn consistency_proof(
    from: u64,
    to: u64,
    nodes: &HashMap<NodeId, Hash>,
) -> Result<Vec<Hash>, ProofError> {
    if from == to && from > 0 {
        return Ok(Vec::new());
    }
    consistency_with(from, to, &mut lookup(nodes))
}

/// The root of the tree of `size` leaves, from the nodes [`root_plan`] named.
pub fn root_from_nodes(size: u64, nodes: &HashMap<NodeId, Hash>) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(Hash::empty());
    }
    range_hash(0, size, &mut lookup(nodes))
}

/// The root of a tree over the given leaf hashes, computed directly (for checks and tests;
/// a log keeps a [`Frontier`] instead).
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(wrong_length(proof.len(), index, size));
        }
        if f & 1 == 1 || f == s {
            r = Hash::node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = Hash::node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(wrong_length(proof.len(), index, size));
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A proof-length error: the length the same walk that makes the proof gives.
fn wrong_length(got: usize, index: u64, size: u64) -> ProofError {
    let expected = inclusion_with(index, size, &mut |_| Ok(Hash::empty())).map_or(0, |p| p.len());
    ProofError::WrongLength { got, expected }
}

/// Checks that the tree of `to` leaves with root `to_root` extends the tree of `from`
/// leaves with root `from_root` (RFC 9162 section 2.1.4.2). Equal sizes need an empty
/// proof and equal roots; a proof from the empty tree proves nothing and is refused.
pub fn verify_consistency(
    from: u64,
    to: u64,
    proof: &[Hash],
    from_root: &Hash,
    to_root: &Hash,
) -> Result<(), ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return if from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let expected = consistency_len(from, to);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    // When `from` is a power of two its root is the first hash of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength { got: 0, expected });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected,
            });
        }
        if f & 1 == 1 || f == s {
            fr = Hash::node(c, &fr);
            sr = Hash::node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = Hash::node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    if fr != *from_root || sr != *to_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The number of hashes in the consistency proof from `from` to `to` leaves
/// (`0 < from < to`): the same walk that makes the proof, on placeholder hashes.
fn consistency_len(from: u64, to: u64) -> usize {
    consistency_with(from, to, &mut |_| Ok(Hash::empty())).map_or(0, |p| p.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    /// Every node a tree of `n` leaves stores, from a frontier.
    fn build(n: u64) -> (Vec<Hash>, HashMap<NodeId, Hash>, Vec<Hash>) {
        let mut frontier = Frontier::new();
        let mut nodes = HashMap::new();
        let mut leaves = Vec::new();
        let mut roots = vec![Hash::empty()];
        for i in 0..n {
            let leaf = Hash::leaf(&i.to_be_bytes());
            leaves.push(leaf);
            nodes.extend(frontier.push(leaf));
            roots.push(frontier.root());
        }
        (leaves, nodes, roots)
    }

    /// MTH of RFC 6962, written recursively from the definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Hash::empty(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                Hash::node(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_proofs_and_plans_agree_for_every_small_tree() {
        let (leaves, nodes, roots) = build(70);
        for size in 1..=70u64 {
            let root = roots[size as usize];
            assert_eq!(root, mth(&leaves[..size as usize]), "size {size}");
            assert_eq!(root_from_nodes(size, &nodes).unwrap(), root);
            for index in 0..size {
                let proof = inclusion_proof(index, size, &nodes).unwrap();
                let plan = inclusion_plan(index, size).unwrap();
                assert!(plan.len() <= 2 * 64);
                let only: HashMap<_, _> = plan.iter().map(|id| (*id, nodes[id])).collect();
                assert_eq!(inclusion_proof(index, size, &only).unwrap(), proof);
                verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
                assert_eq!(
                    verify_inclusion(&leaves[index as usize], index, size, &proof, &roots[0]),
                    Err(ProofError::RootMismatch)
                );
            }
            for from in 1..=size {
                let proof = consistency_proof(from, size, &nodes).unwrap();
                let plan = consistency_plan(from, size).unwrap();
                let only: HashMap<_, _> = plan.iter().map(|id| (*id, nodes[id])).collect();
                assert_eq!(consistency_proof(from, size, &only).unwrap(), proof);
                verify_consistency(from, size, &proof, &roots[from as usize], &root).unwrap();
                if from < size {
                    assert!(
                        verify_consistency(from, size, &proof, &roots[from as usize - 1], &root)
                            .is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn a_store_keeps_fewer_than_two_nodes_per_leaf() {
        let (_, nodes, _) = build(1000);
        assert_eq!(nodes.len(), 1000 + 1000 - 1000u64.count_ones() as usize);
    }

    #[test]
    fn frontier_rebuilds_from_its_nodes() {
        let (_, nodes, roots) = build(45);
        let ids = Frontier::nodes_for(45);
        let hashes: Vec<Hash> = ids.iter().map(|id| nodes[id]).collect();
        let mut f = Frontier::from_nodes(45, &hashes).unwrap();
        assert_eq!(f.root(), roots[45]);
        f.push(Hash::leaf(&45u64.to_be_bytes()));
        assert_eq!(f.size(), 46);
    }

    #[test]
    fn bad_requests_are_errors() {
        let (_, nodes, _) = build(4);
        assert_eq!(
            inclusion_proof(4, 4, &nodes),
            Err(ProofError::IndexOutOfRange { index: 4, size: 4 })
        );
        assert!(consistency_proof(0, 4, &nodes).is_err());
        assert!(consistency_proof(5, 4, &nodes).is_err());
        assert_eq!(
            inclusion_proof(1, 4, &HashMap::new()),
            Err(ProofError::MissingNode { level: 1, index: 1 })
        );
        assert!(Hash::from_base64("AAAA").is_err());
        assert!(Hash::from_hex("zz").is_err());
    }
}
