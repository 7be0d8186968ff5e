//! The local keyring: named, versioned key-encryption keys (KEKs) with rotation, retirement
//! and usage counters, persisted as a JSON document (plaintext or sealed).
//!
//! A [`Keyring`] holds any number of named KEKs. Each name has one or more versions; the
//! newest is the *primary*, which wraps every new data key (DEK); older versions still
//! unwrap the DEKs they wrapped until they are retired. [`Keyring`] implements
//! [`KeyProvider`], so it plugs straight into [`Envelope`](crate::Envelope).
//!
//! All methods take `&self`: the keyring is [`Send`] + [`Sync`] and can be shared behind an
//! [`Arc`](std::sync::Arc). Key state sits behind an [`RwLock`]; the usage counters are
//! atomics, so [`wrap_dek`](KeyProvider::wrap_dek) and
//! [`unwrap_dek`](KeyProvider::unwrap_dek) only take the read lock. The AES-256-GCM key
//! schedule of each version is computed once, when the version is created or loaded.
//!
//! # Rotation workflow
//!
//! 1. [`Keyring::rotate`] adds a new random version and makes it the primary. New data keys
//!    are wrapped under it at once; existing ciphertexts still decrypt with older versions.
//! 2. Re-wrap stored data keys under the new primary
//!    ([`Envelope::rewrap`](crate::Envelope::rewrap)). Only the wrapped DEK in each header
//!    changes; the encrypted data is not touched.
//! 3. [`Keyring::retire_below`] raises the key's *minimum decryption version*: versions
//!    below it refuse to unwrap ([`Error::KeyRetired`]) but their key material is kept, so
//!    a forgotten ciphertext shows up as an error rather than as data loss. The minimum can
//!    only be raised, never lowered, and never above the primary.
//! 4. [`Keyring::purge_retired`] drops the key material of retired versions for good.
//!    Ciphertexts still wrapped under a purged version can never be decrypted again
//!    ([`Error::UnknownKey`]).
//!
//! # Usage counters
//!
//! Each data-key wrap under a version encrypts with that version's key under a fresh random
//! 96-bit nonce. NIST SP 800-38D (section 8.3) limits AES-GCM with random 96-bit nonces to
//! 2^32 invocations per key, to keep the probability of a repeated nonce (which breaks
//! confidentiality and authenticity) below 2^-32. Every version therefore counts its wraps.
//! Under the default [`RotationPolicy`], a primary that has wrapped 2^30 data keys is
//! reported by [`Keyring::rotation_due`] (and [`KeyStatus::rotation_due`]), and at 2^32
//! [`wrap_dek`](KeyProvider::wrap_dek) refuses with [`Error::KeyUsageExhausted`] until the key
//! is rotated. The counters are saved in the keyring document, so they survive restarts;
//! a long-running process that wraps keys should save its counters back (for example with
//! [`Keyring::update_sealed`] and [`Keyring::merge_counts_into`]) before it exits.
//!
//! # Wrapped data key format
//!
//! [`wrap_dek`](KeyProvider::wrap_dek) returns [`WRAPPED_DEK_LEN`] (60) bytes:
//!
//! ```text
//! nonce (12 random bytes) || AES-256-GCM ciphertext of the DEK (32 bytes) || tag (16 bytes)
//! ```
//!
//! encrypted under the KEK version's key with associated data
//!
//! ```text
//! b"finsec/dek-wrap/v1" || u8 len(name) || name || u32-BE version
//! ```
//!
//! so a wrapped DEK moved under another key name or version fails to unwrap
//! ([`Error::KeyUnwrap`]).
//!
//! # Plaintext document
//!
//! [`Keyring::to_json`], [`Keyring::from_json`], [`Keyring::save`], [`Keyring::load`] and
//! [`Keyring::from_env`] use this JSON document. It contains the raw key material: keep it
//! out of version control and logs, and prefer the sealed document on disk.
//!
//! ```json
//! {
//!   "format": "finsec-keyring",
//!   "version": 1,
//!   "policy": { "rotate_after": 1073741824, "hard_limit": 4294967296 },
//!   "keys": [
//!     {
//!       "name": "pii",
//!       "primary": 2,
//!       "min_decrypt_version": 1,
//!       "versions": [
//!         { "version": 1, "created_at": "2025-01-01T00:00:00Z",
//!           "key": "<base64url, 32 bytes>", "encrypted_count": 12 },
//!         { "version": 2, "created_at": "2025-06-01T00:00:00Z",
//!           "key": "<base64url, 32 bytes>", "encrypted_count": 0 }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! | field | meaning |
//! |-------|---------|
//! | `format` | always `"finsec-keyring"` |
//! | `version` | document format version, `1` ([`DOCUMENT_VERSION`]) |
//! | `policy.rotate_after` | wraps after which a primary is due for rotation, 1..=`hard_limit` |
//! | `policy.hard_limit` | wraps after which a version refuses to wrap more, at most 2^32 |
//! | `keys[].name` | the KEK name ([`KeyName`] rules), unique in the document |
//! | `keys[].primary` | the version that wraps new data keys; must be the newest version |
//! | `keys[].min_decrypt_version` | versions below this are retired; 1..=`primary` |
//! | `keys[].versions[].version` | version number, >= 1, unique within the key |
//! | `keys[].versions[].created_at` | RFC 3339 UTC timestamp of creation |
//! | `keys[].versions[].key` | the 32-byte key, base64url without padding |
//! | `keys[].versions[].encrypted_count` | data keys wrapped so far, at most `hard_limit` |
//!
//! Versions below `min_decrypt_version` that are still listed are retired; versions that
//! were purged are simply absent. Parsing is strict: unknown fields, an unknown `format` or
//! `version`, duplicate names or versions, a primary that is missing or not the newest
//! version, a minimum decryption version of 0 or above the primary, key material that is
//! not 32 bytes of base64url, and counts over the hard limit are all refused with an
//! error naming the key. Error messages never contain key material.
//!
//! # Sealed document
//!
//! [`Keyring::seal`], [`Keyring::open_sealed`], [`Keyring::save_sealed`],
//! [`Keyring::load_sealed`] and [`Keyring::update_sealed`] encrypt the plaintext document
//! (compact JSON) with AES-256-GCM under a [`SealKey`]:
//!
//! ```json
//! {
//!   "format": "finsec-keyring-sealed",
//!   "version": 1,
//!   "kdf": { "alg": "argon2id", "m": 19456, "t": 2, "p": 1 },
//!   "salt": "<base64url, 16 bytes>",
//!   "nonce": "<base64url, 12 bytes>",
//!   "ciphertext": "<base64url, AES-256-GCM ciphertext || 16-byte tag>"
//! }
//! ```
//!
//! | field | meaning |
//! |-------|---------|
//! | `format` | always `"finsec-keyring-sealed"` |
//! | `version` | sealed format version, `1` ([`SEALED_VERSION`]) |
//! | `kdf` | passphrase KDF and its parameters ([`PassphraseKdf`](crate::kdf::PassphraseKdf) serde form); `null` when sealed with a master key |
//! | `salt` | the KDF's random 16-byte salt, base64url; `null` when sealed with a master key |
//! | `nonce` | random 12-byte AES-GCM nonce, base64url |
//! | `ciphertext` | the encrypted plaintext document followed by the 16-byte tag, base64url |
//!
//! The sealing key is the passphrase run through argon2id with the crate's default
//! parameters ([`PassphraseKdf::default`](crate::kdf::PassphraseKdf::default)) and a fresh
//! random salt for every seal, or, for [`SealKey::MasterKey`], the HKDF sub-key
//! `derive_subkey(master, "finsec/keyring-seal/v1")` ([`crate::kdf::derive_subkey`]).
//! The header fields are bound to the ciphertext as associated data:
//!
//! ```text
//! b"finsec/keyring-seal/v1"
//!   || u8 len(format) || format
//!   || u16-BE version
//!   || 0x00                                        (master key: kdf and salt are null)
//!    | 0x01 || u32-BE len(k) || k || salt (16)    (passphrase: k = compact JSON of kdf)
//! ```
//!
//! so changing any header field, the nonce or the ciphertext makes opening fail. A wrong
//! passphrase or master key and an altered document both give [`Error::KeyringSeal`];
//! a malformed document gives [`Error::Keyring`] or [`Error::UnsupportedVersion`].
//!
//! # Files
//!
//! [`Keyring::save`] and [`Keyring::save_sealed`] write atomically: a temporary file in the
//! same directory, permissions `0600` on Unix, `fsync`, rename over the target, `fsync` of
//! the directory. A reader never sees a half-written keyring, and a crash leaves either the
//! old or the new file. [`Keyring::update_sealed`] additionally holds an exclusive lock on
//! `<path>.lock` while it loads, changes and saves, so that concurrent updaters (an
//! operator's rotation and a server saving its counters) never lose each other's changes.

mod file;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use zeroize::Zeroizing;

pub use file::{DOCUMENT_FORMAT, DOCUMENT_VERSION, SEALED_FORMAT, SEALED_VERSION, SealKey};

use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, KeyProvider, MAX_KEY_NAME_LEN, WrapNonce, WrappedDek};
use crate::secret::Key256;

/// Length of a data key wrapped by the local keyring: 12-byte nonce, 32-byte encrypted
/// key, 16-byte tag.
pub const WRAPPED_DEK_LEN: usize = NONCE_LEN + Key256::LEN + TAG_LEN;

/// Domain-separation prefix of the associated data that binds a wrapped data key to its
/// key name and version.
pub const WRAP_AAD_PREFIX: &[u8] = b"finsec/dek-wrap/v1";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// When a key version is due for rotation, and when it must stop encrypting.
///
/// Both limits count data keys wrapped by one key version. The defaults follow NIST
/// SP 800-38D: AES-GCM with random 96-bit nonces must not be used more than 2^32 times
/// with one key, so that is the hard limit (and the largest accepted), and rotation is
/// requested at a quarter of it, leaving ample room to roll out a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RotationPolicy {
    rotate_after: u64,
    hard_limit: u64,
}

impl RotationPolicy {
    /// Default number of wraps after which the primary is due for rotation (2^30).
    pub const DEFAULT_ROTATE_AFTER: u64 = 1 << 30;
    /// Default number of wraps after which a version refuses to wrap (2^32).
    pub const DEFAULT_HARD_LIMIT: u64 = 1 << 32;
    /// Largest hard limit accepted (2^32, the NIST SP 800-38D bound for random nonces).
    pub const MAX_HARD_LIMIT: u64 = 1 << 32;

    /// A policy that asks for rotation after `rotate_after` wraps and refuses to wrap after
    /// `hard_limit` wraps.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `rotate_after` is 0 or above `hard_limit`, or if
    /// `hard_limit` is above [`MAX_HARD_LIMIT`](Self::MAX_HARD_LIMIT).
    pub fn new(rotate_after: u64, hard_limit: u64) -> Result<Self> {
        if rotate_after == 0 {
            return Err(Error::InvalidParameter {
                name: "rotate_after",
                reason: "must be at least 1".into(),
            });
        }
        if hard_limit > Self::MAX_HARD_LIMIT {
            return Err(Error::InvalidParameter {
                name: "hard_limit",
                reason: format!(
                    "{hard_limit} is above the maximum {} (2^32, NIST SP 800-38D)",
                    Self::MAX_HARD_LIMIT
                ),
            });
        }
        if rotate_after > hard_limit {
            return Err(Error::InvalidParameter {
                name: "rotate_after",
                reason: format!("{rotate_after} is above the hard limit {hard_limit}"),
            });
        }
        Ok(Self {
            rotate_after,
            hard_limit,
        })
    }

    /// Wraps after which the primary version is due for rotation.
    pub const fn rotate_after(&self) -> u64 {
        self.rotate_after
    }

    /// Wraps after which a version refuses to wrap more data keys.
    pub const fn hard_limit(&self) -> u64 {
        self.hard_limit
    }
}

impl Default for RotationPolicy {
    /// Rotation due after 2^30 wraps, hard limit 2^32.
    fn default() -> Self {
        Self {
            rotate_after: Self::DEFAULT_ROTATE_AFTER,
            hard_limit: Self::DEFAULT_HARD_LIMIT,
        }
    }
}

/// The state of one version of one key, as reported by [`Keyring::status`]. Contains no
/// key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// The key name.
    pub name: KeyName,
    /// The version.
    pub version: u32,
    /// When the version was created (UTC).
    pub created_at: OffsetDateTime,
    /// Data keys wrapped under this version so far.
    pub encrypted_count: u64,
    /// Whether this is the key's primary version (the one that wraps new data keys).
    pub is_primary: bool,
    /// Whether the version is below the key's minimum decryption version (it no longer
    /// unwraps; its material is still held until [`Keyring::purge_retired`]).
    pub retired: bool,
    /// Whether this is the primary and its count reached the policy's `rotate_after`.
    pub rotation_due: bool,
}

/// One version of one key: its material, its cached cipher, its creation time and its
/// usage counter.
struct KeyVersion {
    key: Key256,
    cipher: Aes256Gcm,
    created_at: OffsetDateTime,
    count: AtomicU64,
}

impl KeyVersion {
    fn new(key: Key256, created_at: OffsetDateTime, count: u64) -> Self {
        let cipher = Aes256Gcm::new(key.expose_secret().into());
        Self {
            key,
            cipher,
            created_at,
            count: AtomicU64::new(count),
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion")
            .field("created_at", &self.created_at)
            .field("encrypted_count", &self.count())
            .finish_non_exhaustive()
    }
}

/// All versions of one key name.
#[derive(Debug)]
struct KeyEntry {
    primary: u32,
    min_decrypt_version: u32,
    versions: BTreeMap<u32, KeyVersion>,
}

#[derive(Debug, Default)]
struct State {
    keys: BTreeMap<KeyName, KeyEntry>,
}

/// Named, versioned key-encryption keys with rotation, retirement and usage counters.
///
/// See the [module docs](self) for the rotation workflow, the counters, the wrap format and
/// the document formats. `Debug` shows names, versions and counts, never key material.
pub struct Keyring {
    policy: RotationPolicy,
    state: RwLock<State>,
}

impl Default for Keyring {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("Keyring")
            .field("policy", &self.policy)
            .field("keys", &state.keys)
            .finish()
    }
}

fn unknown(name: &KeyName, version: u32) -> Error {
    Error::UnknownKey {
        name: name.to_string(),
        version,
    }
}

/// Normalizes a creation time to UTC and checks that it can be written as RFC 3339.
fn creation_time(now: OffsetDateTime) -> Result<OffsetDateTime> {
    let bad = || Error::InvalidParameter {
        name: "now",
        reason: "creation time must be representable as an RFC 3339 timestamp (years 0000 to 9999)"
            .into(),
    };
    let utc = now.checked_to_offset(UtcOffset::UTC).ok_or_else(bad)?;
    utc.format(&Rfc3339).map_err(|_| bad())?;
    Ok(utc)
}

/// The associated data binding a wrapped data key to its key name and version.
/// Longest wrapping AAD: prefix, name length, a name of the maximum length, version.
const MAX_WRAP_AAD_LEN: usize = WRAP_AAD_PREFIX.len() + 1 + MAX_KEY_NAME_LEN + 4;

/// A data key's wrapping AAD, built on the stack (it is built on every wrap and unwrap).
struct WrapAad {
    buf: [u8; MAX_WRAP_AAD_LEN],
    len: usize,
}

impl WrapAad {
    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

fn wrap_aad(name: &KeyName, version: u32) -> Result<WrapAad> {
    let name = name.as_str().as_bytes();
    let too_long = || Error::InvalidKeyName {
        name: String::from_utf8_lossy(name).into_owned(),
        reason: "key name is longer than 64 bytes",
    };
    let len = u8::try_from(name.len()).map_err(|_| too_long())?;
    if name.len() > MAX_KEY_NAME_LEN {
        return Err(too_long());
    }
    let version = version.to_be_bytes();
    let parts = WRAP_AAD_PREFIX
        .iter()
        .chain([&len])
        .chain(name)
        .chain(&version);
    let mut aad = WrapAad {
        buf: [0; MAX_WRAP_AAD_LEN],
        len: WRAP_AAD_PREFIX.len() + 1 + name.len() + version.len(),
    };
    for (dst, src) in aad.buf.iter_mut().zip(parts) {
        *dst = *src;
    }
    Ok(aad)
}

impl Keyring {
    /// An empty keyring with the default [`RotationPolicy`].
    pub fn new() -> Self {
        Self::with_policy(RotationPolicy::default())
    }

    /// An empty keyring with `policy`.
    pub fn with_policy(policy: RotationPolicy) -> Self {
        Self {
            policy,
            state: RwLock::new(State::default()),
        }
    }

    /// The keyring's rotation policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    // Every method keeps the state consistent at every point where it could be interrupted
    // (none of them panics while holding the lock), so a poisoned lock is recovered.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates key `name` with a random version 1 (the primary), timestamped now.
    ///
    /// # Errors
    /// As [`create_key_at`](Self::create_key_at).
    pub fn create_key(&self, name: &KeyName) -> Result<KekRef> {
        self.create_key_at(name, OffsetDateTime::now_utc())
    }

    /// Creates key `name` with a random version 1 (the primary), created at `now`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a key `name` already exists or `now` cannot be
    /// written as RFC 3339; [`Error::Random`].
    pub fn create_key_at(&self, name: &KeyName, now: OffsetDateTime) -> Result<KekRef> {
        let created_at = creation_time(now)?;
        let key = Key256::generate()?;
        let version = KeyVersion::new(key, created_at, 0);
        let mut state = self.write();
        if state.keys.contains_key(name) {
            return Err(Error::InvalidParameter {
                name: "key name",
                reason: format!("key {name} already exists"),
            });
        }
        state.keys.insert(
            name.clone(),
            KeyEntry {
                primary: 1,
                min_decrypt_version: 1,
                versions: BTreeMap::from([(1, version)]),
            },
        );
        Ok(KekRef {
            name: name.clone(),
            version: 1,
        })
    }

    /// Adds a new random version of `name`, timestamped now, and makes it the primary.
    ///
    /// # Errors
    /// As [`rotate_at`](Self::rotate_at).
    pub fn rotate(&self, name: &KeyName) -> Result<KekRef> {
        self.rotate_at(name, OffsetDateTime::now_utc())
    }

    /// Adds a new random version of `name`, created at `now`, and makes it the primary.
    /// Older versions keep unwrapping the data keys they wrapped.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if there is no key `name`; [`Error::InvalidParameter`] if the
    /// version number would overflow or `now` cannot be written as RFC 3339;
    /// [`Error::Random`].
    pub fn rotate_at(&self, name: &KeyName, now: OffsetDateTime) -> Result<KekRef> {
        let created_at = creation_time(now)?;
        let key = Key256::generate()?;
        let mut state = self.write();
        let entry = state.keys.get_mut(name).ok_or_else(|| unknown(name, 0))?;
        let next = entry
            .primary
            .checked_add(1)
            .ok_or_else(|| Error::InvalidParameter {
                name: "key version",
                reason: format!("key {name} has reached the largest version number"),
            })?;
        entry
            .versions
            .insert(next, KeyVersion::new(key, created_at, 0));
        entry.primary = next;
        Ok(KekRef {
            name: name.clone(),
            version: next,
        })
    }

    /// Sets the minimum decryption version of `name`: versions below `min_version` refuse
    /// to unwrap ([`Error::KeyRetired`]). Their material is kept until
    /// [`purge_retired`](Self::purge_retired). Re-wrap stored data keys under the primary
    /// first. Setting the current minimum again is a no-op.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if there is no key `name`; [`Error::InvalidParameter`] if
    /// `min_version` is above the primary version or below the current minimum (retiring
    /// cannot be undone).
    pub fn retire_below(&self, name: &KeyName, min_version: u32) -> Result<()> {
        let mut state = self.write();
        let entry = state.keys.get_mut(name).ok_or_else(|| unknown(name, 0))?;
        if min_version > entry.primary {
            return Err(Error::InvalidParameter {
                name: "min_version",
                reason: format!(
                    "key {name}: minimum decryption version {min_version} is above the primary version {}",
                    entry.primary
                ),
            });
        }
        if min_version < entry.min_decrypt_version {
            return Err(Error::InvalidParameter {
                name: "min_version",
                reason: format!(
                    "key {name}: minimum decryption version is already {}; it can only be raised",
                    entry.min_decrypt_version
                ),
            });
        }
        entry.min_decrypt_version = min_version;
        Ok(())
    }

    /// Drops the key material of every retired version of `name` (below its minimum
    /// decryption version), for good, and returns the purged version numbers. Data keys
    /// wrapped under a purged version can never be unwrapped again
    /// ([`Error::UnknownKey`]).
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if there is no key `name`.
    pub fn purge_retired(&self, name: &KeyName) -> Result<Vec<u32>> {
        let mut state = self.write();
        let entry = state.keys.get_mut(name).ok_or_else(|| unknown(name, 0))?;
        let kept = entry.versions.split_off(&entry.min_decrypt_version);
        let purged = std::mem::replace(&mut entry.versions, kept);
        Ok(purged.into_keys().collect())
    }

    /// The minimum decryption version of `name`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if there is no key `name`.
    pub fn min_decrypt_version(&self, name: &KeyName) -> Result<u32> {
        self.read()
            .keys
            .get(name)
            .map(|e| e.min_decrypt_version)
            .ok_or_else(|| unknown(name, 0))
    }

    /// The names of all keys, sorted.
    pub fn key_names(&self) -> Vec<KeyName> {
        self.read().keys.keys().cloned().collect()
    }

    /// Whether a key `name` exists.
    pub fn contains(&self, name: &KeyName) -> bool {
        self.read().keys.contains_key(name)
    }

    /// The state of every version of every key (purged versions are gone), sorted by name
    /// and version.
    pub fn status(&self) -> Vec<KeyStatus> {
        let state = self.read();
        let mut out = Vec::new();
        for (name, entry) in &state.keys {
            for (&version, kv) in &entry.versions {
                let count = kv.count();
                let is_primary = version == entry.primary;
                out.push(KeyStatus {
                    name: name.clone(),
                    version,
                    created_at: kv.created_at,
                    encrypted_count: count,
                    is_primary,
                    retired: version < entry.min_decrypt_version,
                    rotation_due: is_primary && count >= self.policy.rotate_after,
                });
            }
        }
        out
    }

    /// The primary versions whose count reached the policy's `rotate_after`: rotate these.
    pub fn rotation_due(&self) -> Vec<KekRef> {
        let state = self.read();
        state
            .keys
            .iter()
            .filter(|(_, entry)| {
                entry
                    .versions
                    .get(&entry.primary)
                    .is_some_and(|kv| kv.count() >= self.policy.rotate_after)
            })
            .map(|(name, entry)| KekRef {
                name: name.clone(),
                version: entry.primary,
            })
            .collect()
    }

    /// Raises the usage counters of `other` to this keyring's counters, for every
    /// (name, version) present in both: `other.count = max(other.count, self.count)`,
    /// capped at `other`'s hard limit. Nothing else in `other` changes: no version is
    /// added or dropped, and its primaries and minimum versions stay as they are.
    ///
    /// A server that wrapped data keys since it loaded its keyring uses this to save its
    /// counters without undoing a rotation made on disk in the meantime:
    ///
    /// ```no_run
    /// # use finsec_crypto::{Keyring, SealKey, Key256};
    /// # fn f(running: &Keyring, path: &std::path::Path, key: &SealKey) -> finsec_crypto::Result<()> {
    /// Keyring::update_sealed(path, key, |on_disk| {
    ///     running.merge_counts_into(on_disk);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn merge_counts_into(&self, other: &Keyring) {
        if std::ptr::eq(self, other) {
            return;
        }
        // Snapshot first so that the two locks are never held at once (no lock-order
        // deadlock when two keyrings merge into each other concurrently).
        let snapshot: Vec<(KeyName, u32, u64)> = {
            let state = self.read();
            state
                .keys
                .iter()
                .flat_map(|(name, entry)| {
                    entry
                        .versions
                        .iter()
                        .map(move |(&v, kv)| (name.clone(), v, kv.count()))
                })
                .collect()
        };
        let limit = other.policy.hard_limit;
        let state = other.read();
        for (name, version, count) in snapshot {
            if let Some(kv) = state.keys.get(&name).and_then(|e| e.versions.get(&version)) {
                kv.count.fetch_max(count.min(limit), Ordering::Relaxed);
            }
        }
    }
}

impl KeyProvider for Keyring {
    fn wrap_dek(&self, name: &KeyName, dek: &Key256) -> Result<(KekRef, WrappedDek)> {
        self.wrap_dek_with_nonce(name, dek, WrapNonce::random()?)
    }

    fn wrap_dek_with_nonce(
        &self,
        name: &KeyName,
        dek: &Key256,
        nonce: WrapNonce,
    ) -> Result<(KekRef, WrappedDek)> {
        let nonce = *nonce.as_bytes();
        let state = self.read();
        let entry = state.keys.get(name).ok_or_else(|| unknown(name, 0))?;
        let version = entry.primary;
        let kv = entry
            .versions
            .get(&version)
            .ok_or_else(|| unknown(name, version))?;
        let hard_limit = self.policy.hard_limit;
        kv.count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < hard_limit).then(|| c.saturating_add(1))
            })
            .map_err(|count| Error::KeyUsageExhausted {
                name: name.to_string(),
                version,
                count,
            })?;
        let aad = wrap_aad(name, version)?;
        let aad = aad.as_slice();
        let mut buf = Zeroizing::new(*dek.expose_secret());
        let tag = kv
            .cipher
            .encrypt_in_place_detached(&Nonce::from(nonce), aad, buf.as_mut_slice())
            .map_err(|_| Error::InvalidParameter {
                name: "data key",
                reason: "AES-256-GCM refused to wrap the data key".into(),
            })?;
        let mut out = Vec::with_capacity(WRAPPED_DEK_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(buf.as_slice());
        out.extend_from_slice(tag.as_slice());
        Ok((
            KekRef {
                name: name.clone(),
                version,
            },
            WrappedDek::new(out)?,
        ))
    }

    fn unwrap_dek(&self, kek: &KekRef, wrapped: &[u8]) -> Result<Key256> {
        let state = self.read();
        let entry = state
            .keys
            .get(&kek.name)
            .ok_or_else(|| unknown(&kek.name, kek.version))?;
        let kv = entry
            .versions
            .get(&kek.version)
            .ok_or_else(|| unknown(&kek.name, kek.version))?;
        if kek.version < entry.min_decrypt_version {
            return Err(Error::KeyRetired {
                name: kek.name.to_string(),
                version: kek.version,
                minimum: entry.min_decrypt_version,
            });
        }
        let (nonce, rest) = wrapped
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(Error::KeyUnwrap)?;
        let (ciphertext, tag) = rest
            .split_first_chunk::<{ Key256::LEN }>()
            .ok_or(Error::KeyUnwrap)?;
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::KeyUnwrap)?;
        let aad = wrap_aad(&kek.name, kek.version)?;
        let aad = aad.as_slice();
        let mut buf = Zeroizing::new(*ciphertext);
        kv.cipher
            .decrypt_in_place_detached(
                &Nonce::from(*nonce),
                aad,
                buf.as_mut_slice(),
                &Tag::from(*tag),
            )
            .map_err(|_| Error::KeyUnwrap)?;
        Ok(Key256::from_bytes(*buf))
    }

    fn primary_version(&self, name: &KeyName) -> Result<u32> {
        self.read()
            .keys
            .get(name)
            .map(|e| e.primary)
            .ok_or_else(|| unknown(name, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> KeyName {
        KeyName::new(s).unwrap()
    }

    #[test]
    fn wrap_layout_and_aad() {
        let ring = Keyring::new();
        let n = name("pii");
        ring.create_key(&n).unwrap();
        let dek = Key256::generate().unwrap();
        let (kek, wrapped) = ring.wrap_dek(&n, &dek).unwrap();
        assert_eq!(wrapped.as_bytes().len(), WRAPPED_DEK_LEN);
        assert_eq!(WRAPPED_DEK_LEN, 60);
        assert_eq!(kek.version, 1);

        // Decrypt by hand with the documented AAD.
        let state = ring.read();
        let kv = state.keys.get(&n).unwrap().versions.get(&1).unwrap();
        let mut expected_aad = b"finsec/dek-wrap/v1".to_vec();
        expected_aad.push(3);
        expected_aad.extend_from_slice(b"pii");
        expected_aad.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(wrap_aad(&n, 1).unwrap().as_slice(), expected_aad);
        let bytes = wrapped.as_bytes();
        let mut ct = bytes[12..44].to_vec();
        kv.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&bytes[..12]),
                &expected_aad,
                &mut ct,
                Tag::from_slice(&bytes[44..]),
            )
            .unwrap();
        assert_eq!(ct.as_slice(), dek.expose_secret());
    }

    #[test]
    fn unwrap_never_panics_on_any_length() {
        let ring = Keyring::new();
        let n = name("k");
        let kek = ring.create_key(&n).unwrap();
        for len in 0..200 {
            let bytes = vec![0xa5u8; len];
            assert!(matches!(
                ring.unwrap_dek(&kek, &bytes),
                Err(Error::KeyUnwrap)
            ));
        }
    }

    #[test]
    fn poisoned_lock_is_recovered() {
        let ring = std::sync::Arc::new(Keyring::new());
        let n = name("k");
        ring.create_key(&n).unwrap();
        let r = ring.clone();
        let joined = std::thread::spawn(move || {
            let _guard = r.state.write().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(joined.is_err());
        assert!(ring.state.is_poisoned());
        let dek = Key256::generate().unwrap();
        let (kek, w) = ring.wrap_dek(&n, &dek).unwrap();
        assert_eq!(ring.unwrap_dek(&kek, w.as_bytes()).unwrap(), dek);
        ring.rotate(&n).unwrap();
        assert_eq!(ring.primary_version(&n).unwrap(), 2);
    }

    #[test]
    fn creation_time_is_normalized_to_utc() {
        let ring = Keyring::new();
        let n = name("k");
        let t = time::macros::datetime!(2025-03-04 05:06:07.123456789 +02:00);
        ring.create_key_at(&n, t).unwrap();
        let st = ring.status();
        assert_eq!(st[0].created_at, t);
        assert_eq!(st[0].created_at.offset(), UtcOffset::UTC);
        let far = time::macros::datetime!(-0001-01-01 0:00 UTC);
        assert!(matches!(
            ring.rotate_at(&n, far),
            Err(Error::InvalidParameter { name: "now", .. })
        ));
        assert_eq!(ring.primary_version(&n).unwrap(), 1);
    }

    #[test]
    fn merge_into_self_is_a_no_op() {
        let ring = Keyring::new();
        let n = name("k");
        ring.create_key(&n).unwrap();
        ring.wrap_dek(&n, &Key256::generate().unwrap()).unwrap();
        ring.merge_counts_into(&ring);
        assert_eq!(ring.status()[0].encrypted_count, 1);
    }
}
