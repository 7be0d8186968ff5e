#![cfg(test)]
//! finsec-audit's own Merkle proofs, checkpoints and signed notes against independent
//! implementations: Cloudflare's `tlog_tiles` (a port of Go's sumdb `tlog`) and
//! `signed_note` (a port of Go's `sumdb/note`).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use finsec_audit::merkle::{self, Frontier, Hash, NodeId};
use finsec_audit::{Checkpoint, NoteSigner, NoteVerifier};
use finsec_crypto::Key256;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::tlog;

/// `tlog`'s stored hashes, in its own layout.
struct Stored(Vec<tlog::Hash>);

impl tlog::HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        Ok(indexes
            .iter()
            .map(|i| self.0[usize::try_from(*i).unwrap()])
            .collect())
    }
}

fn ours(h: &tlog::Hash) -> Hash {
    Hash::from_bytes(h.0)
}

#[test]
fn proofs_match_tlog_for_every_size_up_to_130() {
    const N: u64 = 130;
    let mut stored = Stored(Vec::new());
    let mut frontier = Frontier::new();
    let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
    let mut roots = vec![Hash::empty()];
    for i in 0..N {
        let data = format!("event {i}");
        let new = tlog::stored_hashes(i, data.as_bytes(), &stored).unwrap();
        stored.0.extend(new);
        nodes.extend(frontier.push(Hash::leaf(data.as_bytes())));
        roots.push(frontier.root());
    }
    let mut checked = 0u64;
    for size in 1..=N {
        let root = tlog::tree_hash(size, &stored).unwrap();
        assert_eq!(ours(&root), roots[size as usize], "root at {size}");
        for index in 0..size {
            let theirs = tlog::prove_record(size, index, &stored).unwrap();
            let mine = merkle::inclusion_proof(index, size, &nodes).unwrap();
            assert_eq!(mine, theirs.iter().map(ours).collect::<Vec<_>>());
            let leaf = tlog::record_hash(format!("event {index}").as_bytes());
            tlog::check_record(&theirs, size, root, index, leaf).unwrap();
            checked += 1;
        }
        for from in 1..size {
            let theirs = tlog::prove_tree(size, from, &stored).unwrap();
            let mine = merkle::consistency_proof(from, size, &nodes).unwrap();
            assert_eq!(mine, theirs.iter().map(ours).collect::<Vec<_>>());
            let old = tlog::tree_hash(from, &stored).unwrap();
            tlog::check_tree(&theirs, size, root, from, old).unwrap();
            checked += 1;
        }
    }
    // Every (index, size) pair and every (from, to) pair with from < to.
    assert_eq!(checked, N * (N + 1) / 2 + N * (N - 1) / 2);
}

#[test]
fn checkpoints_parse_both_ways() {
    let root = Hash::leaf(b"root");
    let cp = Checkpoint::new("audit.example.com/trading", 1234, root)
        .unwrap()
        .with_extension("time 1796464800")
        .unwrap();
    let theirs = tlog_tiles::Checkpoint::from_bytes(cp.to_text().as_bytes()).unwrap();
    assert_eq!(theirs.origin(), "audit.example.com/trading");
    assert_eq!(theirs.size(), 1234);
    assert_eq!(theirs.hash().0, *root.as_bytes());
    assert_eq!(theirs.extension(), "time 1796464800\n");
    assert_eq!(theirs.to_bytes(), cp.to_text().into_bytes());
}

/// The signed-note private key text for an Ed25519 seed.
fn skey(name: &str, seed: &[u8; 32], id: u32) -> String {
    let mut key = vec![0x01];
    key.extend_from_slice(seed);
    format!("PRIVATE+KEY+{name}+{id:08x}+{}", STANDARD.encode(key))
}

#[test]
fn signed_notes_verify_both_ways_and_match_byte_for_byte() {
    let name = "audit.example.com/trading";
    let seed = [42u8; 32];
    let signer = NoteSigner::from_seed(name, Key256::from_bytes(seed)).unwrap();
    let vkey = signer.verifier().to_vkey();
    let cp = Checkpoint::new(name, 99, Hash::leaf(b"x")).unwrap();
    let mine = signer.sign(cp.clone());

    // Theirs verifies ours.
    let their_verifier = StandardVerifier::new(&vkey).unwrap();
    let note = Note::from_bytes(mine.note().as_bytes()).unwrap();
    let (verified, _) = note
        .verify(&VerifierList::new(vec![Box::new(their_verifier.clone())]))
        .unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(note.text(), cp.to_text().as_bytes());

    // Ours verifies theirs, and Ed25519 being deterministic, the notes are identical.
    let their_signer = StandardSigner::new(&skey(name, &seed, signer.key_id())).unwrap();
    let mut theirs = Note::new(cp.to_text().as_bytes(), &[]).unwrap();
    theirs.add_sigs(&[&their_signer]).unwrap();
    let theirs = String::from_utf8(theirs.to_bytes()).unwrap();
    assert_eq!(theirs, mine.note());
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    assert_eq!(verifier.verify(&theirs).unwrap().checkpoint(), &cp);

    // A note one of them refuses, the other refuses too.
    let forged = theirs.replacen("\n99\n", "\n100\n", 1);
    assert!(verifier.verify(&forged).is_err());
    let forged_note = Note::from_bytes(forged.as_bytes()).unwrap();
    assert!(
        forged_note
            .verify(&VerifierList::new(vec![Box::new(their_verifier)]))
            .is_err()
    );
}
