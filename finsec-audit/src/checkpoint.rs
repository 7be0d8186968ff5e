//! Signed checkpoints: the C2SP `tlog-checkpoint` body in a C2SP `signed-note`, signed
//! with Ed25519.
//!
//! A checkpoint commits to the whole log at one size: its origin (the log's name), the
//! number of events and the Merkle root. Signed, it is what the firm hands an examiner and
//! what witnesses keep. Its text is
//!
//! ```text
//! <origin>
//! <size>
//! <base64 root hash>
//! [extension lines]
//!
//! — <key name> <base64(key id ‖ Ed25519 signature)>
//! ```
//!
//! where the key id is the first four bytes of `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public
//! key)`, and the signature covers the text up to and including its last newline. A
//! verifier key is shared as `<name>+<hex key id>+<base64(0x01 ‖ public key)>`, the form
//! other signed-note tools read.
//!
//! The signing key is a 32-byte Ed25519 seed. [`NoteSigner::seal`] encrypts it with a
//! finsec-crypto [`Envelope`], bound to the key name, so it is kept at rest like every other
//! secret and rotates with the key-encryption key.

use std::fmt;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use finsec_crypto::{Envelope, Key256, KeyProvider};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signed-note signature type byte of Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// The prefix of a signature line: an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines are read from one note.
const MAX_SIGNATURES: usize = 100;
/// A note longer than this is refused before it is parsed.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// Why a checkpoint or signed note was refused, or a signer could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint text is not a C2SP checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The note is not a C2SP signed note.
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    /// An origin, key name or extension line breaks the format's rules.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid: `origin`, `key name`, `extension line`.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A verifier key is not `<name>+<hex id>+<base64 key>` for an Ed25519 key.
    #[error("invalid verifier key: {0}")]
    VerifierKey(&'static str),
    /// The note carries no signature from the verifier's key.
    #[error("the note has no signature by {name}")]
    NotSigned {
        /// The verifier's key name.
        name: String,
    },
    /// The verifier's key signed the note, and the signature does not verify.
    #[error("the signature by {name} does not verify")]
    BadSignature {
        /// The verifier's key name.
        name: String,
    },
    /// The checkpoint names another log.
    #[error("the checkpoint is for origin {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// The origin expected.
        expected: String,
        /// The origin found.
        found: String,
    },
    /// The Ed25519 seed was refused.
    #[error("the signing key is not a valid Ed25519 seed")]
    SigningKey,
    /// Sealing or opening the signing key, or drawing a new one, failed.
    #[error("signing key storage: {0}")]
    Crypto(#[from] finsec_crypto::Error),
}

/// A tree head: the log's origin, its size and its root hash, with optional extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

fn check_line(what: &'static str, text: &str) -> Result<(), CheckpointError> {
    if text.is_empty() {
        return Err(CheckpointError::Invalid {
            what,
            reason: "empty",
        });
    }
    if text.chars().any(char::is_control) {
        return Err(CheckpointError::Invalid {
            what,
            reason: "contains a control character",
        });
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint of `size` events with root `root` for the log named `origin`.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        check_line("origin", &origin)?;
        Ok(Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (any non-empty text without control characters).
    pub fn with_extension(mut self, line: impl Into<String>) -> Result<Self, CheckpointError> {
        let line = line.into();
        check_line("extension line", &line)?;
        self.extensions.push(line);
        Ok(self)
    }

    /// The log's name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of events the checkpoint covers.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle root of those events.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The extension lines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The checkpoint's text: the bytes a note signature covers.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint's text.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("does not end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_line("origin", origin)?;
        let size = lines
            .next()
            .ok_or(CheckpointError::Malformed("no size line"))?;
        let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
        if !canonical || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CheckpointError::Malformed(
                "the size is not a decimal number",
            ));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| CheckpointError::Malformed("the size is out of range"))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::Malformed("no root hash line"))?;
        let root = Hash::from_base64(root)
            .map_err(|_| CheckpointError::Malformed("the root hash is not 32 bytes of base64"))?;
        let mut checkpoint = Self::new(origin, size, root)?;
        for line in lines {
            checkpoint = checkpoint.with_extension(line)?;
        }
        Ok(checkpoint)
    }
}

/// A checkpoint and the signed note that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: String,
}

impl SignedCheckpoint {
    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The whole signed note, as stored and shipped to witnesses.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Adds the signature lines of another note over the same checkpoint text (a
    /// witness's cosignature, say), keeping this note's own.
    pub fn merge_signatures(&mut self, other: &str) -> Result<(), CheckpointError> {
        let (text, sigs) = split_note(other)?;
        if text != self.checkpoint.to_text() {
            return Err(CheckpointError::MalformedNote(
                "the other note signs a different checkpoint",
            ));
        }
        let (_, mine) = split_note(&self.note)?;
        let mut added = String::new();
        for line in sigs {
            if !mine.contains(&line) && !added.lines().any(|l| l == line) {
                added.push_str(line);
                added.push('\n');
            }
        }
        self.note.push_str(&added);
        Ok(())
    }
}

fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() {
        return Err(CheckpointError::Invalid {
            what: "key name",
            reason: "empty",
        });
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(CheckpointError::Invalid {
            what: "key name",
            reason: "contains a space, a control character or '+'",
        });
    }
    Ok(())
}

fn key_id(name: &str, public: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519_TYPE]);
    h.update(public);
    let digest: [u8; 32] = h.finalize().into();
    let [a, b, c, d, ..] = digest;
    u32::from_be_bytes([a, b, c, d])
}

/// Splits a signed note into its text (ending in a newline) and its signature lines.
fn split_note(note: &str) -> Result<(&str, Vec<&str>), CheckpointError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(CheckpointError::MalformedNote("longer than 64 KiB"));
    }
    if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(CheckpointError::MalformedNote(
            "contains a control character other than newline",
        ));
    }
    let at = note.rfind("\n\n").ok_or(CheckpointError::MalformedNote(
        "no blank line before the signatures",
    ))?;
    let (text, sigs) = note.split_at(at + 1);
    let sigs = sigs
        .strip_prefix('\n')
        .and_then(|s| s.strip_suffix('\n'))
        .ok_or(CheckpointError::MalformedNote(
            "does not end with a newline",
        ))?;
    let lines: Vec<&str> = sigs.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(CheckpointError::MalformedNote("more than 100 signatures"));
    }
    for line in &lines {
        if !line.starts_with(SIG_PREFIX) {
            return Err(CheckpointError::MalformedNote(
                "a signature line does not start with an em dash and a space",
            ));
        }
    }
    Ok((text, lines))
}

/// Parses one signature line into its key name, key id and signature.
fn parse_signature(line: &str) -> Result<(&str, u32, Vec<u8>), CheckpointError> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or(CheckpointError::MalformedNote("bad signature line"))?;
    let (name, sig) = rest.split_once(' ').ok_or(CheckpointError::MalformedNote(
        "a signature line has no signature",
    ))?;
    check_key_name(name).map_err(|_| CheckpointError::MalformedNote("bad key name"))?;
    let bytes = STANDARD
        .decode(sig)
        .map_err(|_| CheckpointError::MalformedNote("a signature is not base64"))?;
    let (id, sig) = bytes
        .split_first_chunk::<4>()
        .ok_or(CheckpointError::MalformedNote(
            "a signature is shorter than its key id",
        ))?;
    Ok((name, u32::from_be_bytes(*id), sig.to_vec()))
}

/// The private half of a log's note key: signs checkpoints.
///
/// `Debug` shows the key name and id, never the seed.
pub struct NoteSigner {
    name: String,
    id: u32,
    seed: Key256,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A new random key named `name` (for example the log's origin).
    pub fn generate(name: impl Into<String>) -> Result<Self, CheckpointError> {
        Self::from_seed(name, Key256::generate()?)
    }

    /// The key with the given Ed25519 seed.
    pub fn from_seed(name: impl Into<String>, seed: Key256) -> Result<Self, CheckpointError> {
        let name = name.into();
        check_key_name(&name)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.expose_secret())
            .map_err(|_| CheckpointError::SigningKey)?;
        let id = key_id(&name, pair.public_key().as_ref());
        Ok(Self {
            name,
            id,
            seed,
            pair,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (the first four bytes of the key hash).
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The public half, to give verifiers.
    pub fn verifier(&self) -> NoteVerifier {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            public,
        }
    }

    /// Signs a checkpoint.
    pub fn sign(&self, checkpoint: Checkpoint) -> SignedCheckpoint {
        let text = checkpoint.to_text();
        let sig = self.pair.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(sig.as_ref());
        let note = format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        );
        SignedCheckpoint { checkpoint, note }
    }

    /// The seed, encrypted with `envelope` and bound to the key name, for storage.
    pub fn seal<P: KeyProvider>(&self, envelope: &Envelope<P>) -> Result<Vec<u8>, CheckpointError> {
        Ok(envelope.encrypt(self.seed.expose_secret(), &seal_aad(&self.name))?)
    }

    /// Opens a seed [`NoteSigner::seal`] stored under the same key name.
    pub fn open<P: KeyProvider>(
        envelope: &Envelope<P>,
        name: impl Into<String>,
        sealed: &[u8],
    ) -> Result<Self, CheckpointError> {
        let name = name.into();
        let seed = envelope.decrypt(sealed, &seal_aad(&name))?;
        let seed = Key256::try_from_slice(&seed)?;
        Self::from_seed(name, seed)
    }
}

fn seal_aad(name: &str) -> Vec<u8> {
    let mut aad = b"finsec-audit note key v1\n".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// The public half of a note key: checks checkpoints signed by it.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    public: [u8; 32],
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl NoteVerifier {
    /// Parses a verifier key, `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. The key id
    /// must match the name and key.
    pub fn from_vkey(vkey: &str) -> Result<Self, CheckpointError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CheckpointError::VerifierKey("expected name+id+key"));
        };
        check_key_name(name).map_err(|_| CheckpointError::VerifierKey("bad key name"))?;
        if id.len() != 8 {
            return Err(CheckpointError::VerifierKey(
                "the key id is not 8 hex digits",
            ));
        }
        let id = u32::from_str_radix(id, 16)
            .map_err(|_| CheckpointError::VerifierKey("the key id is not 8 hex digits"))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| CheckpointError::VerifierKey("the key is not base64"))?;
        let Some((&ED25519_TYPE, public)) = key.split_first() else {
            return Err(CheckpointError::VerifierKey("not an Ed25519 key"));
        };
        let public = <[u8; 32]>::try_from(public)
            .map_err(|_| CheckpointError::VerifierKey("an Ed25519 key is 32 bytes"))?;
        if key_id(name, &public) != id {
            return Err(CheckpointError::VerifierKey(
                "the key id does not match the name and key",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            public,
        })
    }

    /// The verifier key text.
    pub fn to_vkey(&self) -> String {
        let mut key = vec![ED25519_TYPE];
        key.extend_from_slice(&self.public);
        format!("{}+{:08x}+{}", self.name, self.id, STANDARD.encode(key))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// Checks a signed note carrying a checkpoint: the first signature line with this key's
    /// name and id decides (other signers' lines are ignored, as the format asks).
    pub fn verify(&self, note: &str) -> Result<SignedCheckpoint, CheckpointError> {
        let (text, lines) = split_note(note)?;
        for line in lines {
            let (name, id, sig) = parse_signature(line)?;
            if name != self.name || id != self.id {
                continue;
            }
            UnparsedPublicKey::new(&ED25519, &self.public)
                .verify(text.as_bytes(), &sig)
                .map_err(|_| CheckpointError::BadSignature {
                    name: self.name.clone(),
                })?;
            let checkpoint = Checkpoint::parse(text)?;
            return Ok(SignedCheckpoint {
                checkpoint,
                note: note.to_owned(),
            });
        }
        Err(CheckpointError::NotSigned {
            name: self.name.clone(),
        })
    }

    /// [`NoteVerifier::verify`], and the checkpoint must be for `origin`.
    pub fn verify_for(
        &self,
        note: &str,
        origin: &str,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let signed = self.verify(note)?;
        if signed.checkpoint.origin != origin {
            return Err(CheckpointError::WrongOrigin {
                expected: origin.to_owned(),
                found: signed.checkpoint.origin,
            });
        }
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("audit.example/log", Key256::from_bytes([7; 32])).unwrap()
    }

    #[test]
    fn sign_verify_round_trip() {
        let s = signer();
        let cp = Checkpoint::new("audit.example/log", 42, Hash::leaf(b"x")).unwrap();
        let signed = s.sign(cp.clone());
        let v = NoteVerifier::from_vkey(&s.verifier().to_vkey()).unwrap();
        assert_eq!(v.verify(signed.note()).unwrap().checkpoint(), &cp);
        assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
    }

    #[test]
    fn tampered_notes_are_refused() {
        let s = signer();
        let v = s.verifier();
        let cp = Checkpoint::new("audit.example/log", 42, Hash::leaf(b"x")).unwrap();
        let note = s.sign(cp).note().to_owned();
        let bigger = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            v.verify(&bigger),
            Err(CheckpointError::BadSignature { .. })
        ));
        let other =
            NoteSigner::from_seed("audit.example/log", Key256::from_bytes([8; 32])).unwrap();
        assert!(matches!(
            other.verifier().verify(&note),
            Err(CheckpointError::NotSigned { .. })
        ));
        assert!(v.verify("no signatures\n").is_err());
        assert!(v.verify(&note.replace('\u{2014}', "-")).is_err());
        assert!(matches!(
            v.verify_for(&note, "other"),
            Err(CheckpointError::WrongOrigin { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_seed() {
        let s = signer();
        let debug = format!("{s:?}");
        assert!(debug.contains("audit.example/log"));
        assert!(!debug.contains("0707"));
        assert!(!debug.contains("[7, 7"));
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        for text in [
            "",
            "origin\n",
            "origin\n01\nAAAA\n",
            "origin\n1\nnot base64\n",
            "origin\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
            "origin\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "origin\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
            "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        ] {
            assert!(Checkpoint::parse(text).is_err(), "{text:?}");
        }
    }
}
