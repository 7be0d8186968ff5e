//! Keyring persistence: the plaintext JSON document, environment variables, the sealed
//! (encrypted) document, atomic file writes and the locked read-modify-write update.
//!
//! The formats are described in the [parent module](super).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, UtcOffset};
use zeroize::Zeroizing;

use super::{KeyEntry, KeyVersion, Keyring, NONCE_LEN, RotationPolicy, State, TAG_LEN};
use crate::error::{Error, Result};
use crate::kdf::{KdfParams, PassphraseKdf, Salt, derive_subkey};
use crate::provider::KeyName;
use crate::secret::{Key256, Passphrase, SecretBytes, random_array};

/// The `format` field of a plaintext keyring document.
pub const DOCUMENT_FORMAT: &str = "finsec-keyring";
/// The `version` field of a plaintext keyring document this build writes and reads.
pub const DOCUMENT_VERSION: u16 = 1;
/// The `format` field of a sealed keyring document.
pub const SEALED_FORMAT: &str = "finsec-keyring-sealed";
/// The `version` field of a sealed keyring document this build writes and reads.
pub const SEALED_VERSION: u16 = 1;

/// HKDF context for the sealing key derived from a [`SealKey::MasterKey`], and the
/// domain-separation prefix of the sealed document's associated data.
const SEAL_CONTEXT: &str = "finsec/keyring-seal/v1";

/// The key that seals (encrypts) a keyring document.
///
/// `Debug` shows the variant only; the passphrase and the key are redacted.
#[derive(Debug)]
pub enum SealKey {
    /// A passphrase, stretched with argon2id
    /// ([`PassphraseKdf::default`](crate::kdf::PassphraseKdf::default)) and a fresh random
    /// salt for every seal; the parameters and salt are stored in the sealed document.
    Passphrase(Passphrase),
    /// A 256-bit master key (for example from a KMS or a secrets manager). The document is
    /// sealed under the HKDF sub-key `derive_subkey(master, "finsec/keyring-seal/v1")`.
    MasterKey(Key256),
}

// ---------------------------------------------------------------------------------------
// Document representations
// ---------------------------------------------------------------------------------------

/// Just the `format` and `version` fields, read before the strict parse so that a
/// document of another format or version gets a precise error.
#[derive(Deserialize)]
struct Probe {
    format: Option<String>,
    version: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentRepr {
    format: String,
    version: u16,
    policy: PolicyRepr,
    keys: Vec<KeyRepr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRepr {
    rotate_after: u64,
    hard_limit: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRepr {
    name: String,
    primary: u32,
    min_decrypt_version: u32,
    versions: Vec<VersionRepr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionRepr {
    version: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    key: KeyText,
    encrypted_count: u64,
}

/// The base64url text of key material. Zeroized on drop; deliberately no `Debug`.
struct KeyText(Zeroizing<String>);

impl Serialize for KeyText {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct KeyTextVisitor;
        impl Visitor<'_> for KeyTextVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("base64url key material")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<KeyText, E> {
                Ok(KeyText(Zeroizing::new(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyTextVisitor)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedRepr {
    format: String,
    version: u16,
    // `deserialize_with` makes the field required: `null` is accepted, absence is not.
    #[serde(deserialize_with = "required_option")]
    kdf: Option<serde_json::Value>,
    #[serde(deserialize_with = "required_option")]
    salt: Option<Salt>,
    nonce: String,
    ciphertext: String,
}

fn required_option<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// An `io::Write` that only counts, to size the output buffer exactly before writing key
/// material into it (a growing buffer would leave copies behind in freed memory).
struct CountingWriter(usize);

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Replaces every double-quoted string in a serde message with `"..."`: serde echoes
/// offending string values (`invalid type: string "...", expected u64`), and in a keyring
/// document such a value may be key material. Field names (in backticks), positions and
/// numbers stay.
fn redact_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' {
            let mut escaped = false;
            for c in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    break;
                }
            }
            out.push_str("...\"");
        }
    }
    out
}

fn json_error(context: &str, e: &serde_json::Error) -> Error {
    Error::Keyring(format!("{context}: {}", redact_strings(&e.to_string())))
}

fn keyring_error(message: impl Into<String>) -> Error {
    Error::Keyring(message.into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Sealed,
}

/// Checks the `format` and `version` fields before the strict parse.
fn check_header(bytes: &[u8], kind: Kind) -> Result<()> {
    let (expected, expected_version, other, what) = match kind {
        Kind::Plain => (
            DOCUMENT_FORMAT,
            DOCUMENT_VERSION,
            SEALED_FORMAT,
            "keyring document",
        ),
        Kind::Sealed => (
            SEALED_FORMAT,
            SEALED_VERSION,
            DOCUMENT_FORMAT,
            "sealed keyring document",
        ),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(keyring_error(format!("{what} is empty")));
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| json_error(what, &e))?;
    match probe.format.as_deref() {
        None => {
            return Err(keyring_error(format!(
                "not a finsec {what}: the \"format\" field is missing"
            )));
        }
        Some(f) if f == expected => {}
        Some(f) if f == other => {
            return Err(keyring_error(match kind {
                Kind::Plain => {
                    "this is a sealed keyring document (format \"finsec-keyring-sealed\"); open it with its seal key"
                }
                Kind::Sealed => {
                    "this is a plaintext keyring document (format \"finsec-keyring\"), not a sealed one"
                }
            }));
        }
        Some(_) => {
            return Err(keyring_error(format!(
                "not a finsec {what}: \"format\" is not \"{expected}\""
            )));
        }
    }
    match probe.version {
        None => Err(keyring_error(format!("{what} has no \"version\" field"))),
        Some(v) if v == u64::from(expected_version) => Ok(()),
        Some(v) => match u16::try_from(v) {
            Ok(version) => Err(Error::UnsupportedVersion {
                format: match kind {
                    Kind::Plain => "keyring document",
                    Kind::Sealed => "sealed keyring document",
                },
                version,
            }),
            Err(_) => Err(keyring_error(format!("unsupported {what} version {v}"))),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Plaintext document
// ---------------------------------------------------------------------------------------

impl Keyring {
    fn document(&self) -> DocumentRepr {
        let state = self.read();
        DocumentRepr {
            format: DOCUMENT_FORMAT.to_owned(),
            version: DOCUMENT_VERSION,
            policy: PolicyRepr {
                rotate_after: self.policy.rotate_after,
                hard_limit: self.policy.hard_limit,
            },
            keys: state
                .keys
                .iter()
                .map(|(name, entry)| KeyRepr {
                    name: name.as_str().to_owned(),
                    primary: entry.primary,
                    min_decrypt_version: entry.min_decrypt_version,
                    versions: entry
                        .versions
                        .iter()
                        .map(|(&version, kv)| VersionRepr {
                            version,
                            created_at: kv.created_at,
                            key: KeyText(Zeroizing::new(
                                URL_SAFE_NO_PAD.encode(kv.key.expose_secret()),
                            )),
                            encrypted_count: kv.count(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The document as JSON, written into a buffer of exactly the right size.
    fn document_bytes(&self, pretty: bool) -> Result<SecretBytes> {
        let doc = self.document();
        let write = |w: &mut dyn Write| {
            if pretty {
                serde_json::to_writer_pretty(w, &doc)
            } else {
                serde_json::to_writer(w, &doc)
            }
        };
        let serialize_error =
            |e: serde_json::Error| keyring_error(format!("could not write keyring document: {e}"));
        let mut counter = CountingWriter(0);
        write(&mut counter).map_err(serialize_error)?;
        let mut out = Zeroizing::new(Vec::with_capacity(counter.0));
        write(&mut *out).map_err(serialize_error)?;
        // Capacity equals length here, so the conversion to a boxed slice does not
        // reallocate (and leave a copy behind).
        Ok(SecretBytes::new(std::mem::take(&mut *out)))
    }

    /// The plaintext keyring document (pretty-printed JSON, see the
    /// [module docs](super#plaintext-document)). It contains every key, hence
    /// [`SecretBytes`].
    ///
    /// # Errors
    /// [`Error::Keyring`] if the document cannot be written (not expected in practice).
    pub fn to_json(&self) -> Result<SecretBytes> {
        self.document_bytes(true)
    }

    /// Parses a plaintext keyring document (see the [module docs](super#plaintext-document)).
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`] for a document version other than 1;
    /// [`Error::Keyring`] for anything else that is wrong, naming the key and field.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        check_header(bytes, Kind::Plain)?;
        let doc: DocumentRepr =
            serde_json::from_slice(bytes).map_err(|e| json_error("keyring document", &e))?;
        Self::from_document(doc)
    }

    fn from_document(doc: DocumentRepr) -> Result<Self> {
        if doc.format != DOCUMENT_FORMAT {
            return Err(keyring_error(format!(
                "not a finsec keyring document: \"format\" is not \"{DOCUMENT_FORMAT}\""
            )));
        }
        if doc.version != DOCUMENT_VERSION {
            return Err(Error::UnsupportedVersion {
                format: "keyring document",
                version: doc.version,
            });
        }
        let policy = RotationPolicy::new(doc.policy.rotate_after, doc.policy.hard_limit)
            .map_err(|e| keyring_error(format!("policy: {e}")))?;
        let mut keys = BTreeMap::new();
        for (index, k) in doc.keys.into_iter().enumerate() {
            let name =
                KeyName::new(k.name).map_err(|e| keyring_error(format!("keys[{index}]: {e}")))?;
            if keys.contains_key(&name) {
                return Err(keyring_error(format!("duplicate key name {name}")));
            }
            let mut versions = BTreeMap::new();
            for v in k.versions {
                let version = v.version;
                if version == 0 {
                    return Err(keyring_error(format!(
                        "key {name}: version 0 is invalid, versions start at 1"
                    )));
                }
                if versions.contains_key(&version) {
                    return Err(keyring_error(format!(
                        "key {name}: duplicate version {version}"
                    )));
                }
                let material = Zeroizing::new(URL_SAFE_NO_PAD.decode(v.key.0.as_bytes()).map_err(
                    |_| {
                        keyring_error(format!(
                            "key {name} version {version}: key material is not base64url without padding"
                        ))
                    },
                )?);
                let key = Key256::try_from_slice(&material).map_err(|_| {
                    keyring_error(format!(
                        "key {name} version {version}: key material must be 32 bytes, got {}",
                        material.len()
                    ))
                })?;
                if v.encrypted_count > policy.hard_limit {
                    return Err(keyring_error(format!(
                        "key {name} version {version}: encrypted_count {} is above the policy's hard limit {}",
                        v.encrypted_count, policy.hard_limit
                    )));
                }
                let created_at =
                    v.created_at
                        .checked_to_offset(UtcOffset::UTC)
                        .ok_or_else(|| {
                            keyring_error(format!(
                                "key {name} version {version}: created_at is out of range in UTC"
                            ))
                        })?;
                versions.insert(version, KeyVersion::new(key, created_at, v.encrypted_count));
            }
            let newest = versions
                .last_key_value()
                .map(|(&v, _)| v)
                .ok_or_else(|| keyring_error(format!("key {name} has no versions")))?;
            if !versions.contains_key(&k.primary) {
                return Err(keyring_error(format!(
                    "key {name}: primary version {} is not among its versions",
                    k.primary
                )));
            }
            if k.primary != newest {
                return Err(keyring_error(format!(
                    "key {name}: primary version {} is not the newest version {newest}",
                    k.primary
                )));
            }
            if k.min_decrypt_version == 0 {
                return Err(keyring_error(format!(
                    "key {name}: min_decrypt_version must be at least 1"
                )));
            }
            if k.min_decrypt_version > k.primary {
                return Err(keyring_error(format!(
                    "key {name}: min_decrypt_version {} is above the primary version {}",
                    k.min_decrypt_version, k.primary
                )));
            }
            keys.insert(
                name,
                KeyEntry {
                    primary: k.primary,
                    min_decrypt_version: k.min_decrypt_version,
                    versions,
                },
            );
        }
        Ok(Self {
            policy,
            state: RwLock::new(State { keys }),
        })
    }

    /// Reads a keyring from the environment variable `var`, which holds the plaintext
    /// document (JSON) or the base64url encoding of it (padding optional; handy where
    /// multi-line values are awkward). The value is never echoed in errors.
    ///
    /// The variable stays in the process environment; clear it once the keyring is loaded
    /// if nothing else needs it.
    ///
    /// # Errors
    /// [`Error::Keyring`] if the variable is not set, not UTF-8, or holds neither form;
    /// otherwise as [`from_json`](Self::from_json).
    pub fn from_env(var: &str) -> Result<Self> {
        let value = match std::env::var(var) {
            Ok(v) => Zeroizing::new(v),
            Err(std::env::VarError::NotPresent) => {
                return Err(keyring_error(format!(
                    "environment variable {var} is not set"
                )));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(keyring_error(format!(
                    "environment variable {var} is not valid UTF-8"
                )));
            }
        };
        Self::from_env_value(var, &value)
    }

    fn from_env_value(var: &str, value: &str) -> Result<Self> {
        let in_var = |e: Error| match e {
            Error::Keyring(message) => {
                Error::Keyring(format!("environment variable {var}: {message}"))
            }
            other => other,
        };
        let text = value.trim();
        if text.is_empty() {
            return Err(keyring_error(format!(
                "environment variable {var} is empty"
            )));
        }
        if text.starts_with('{') {
            return Self::from_json(text.as_bytes()).map_err(in_var);
        }
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| {
                    keyring_error(format!(
                        "environment variable {var} holds neither a keyring JSON document nor base64url of one"
                    ))
                })?,
        );
        Self::from_json(&decoded).map_err(in_var)
    }

    /// Reads a plaintext keyring document from `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; otherwise as
    /// [`from_json`](Self::from_json).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = Zeroizing::new(fs::read(path).map_err(|e| Error::io(path, e))?);
        Self::from_json(&bytes)
    }

    /// Writes the plaintext keyring document to `path` atomically (temporary file in the
    /// same directory, mode `0600` on Unix, `fsync`, rename, `fsync` of the directory).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file or directory that failed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.to_json()?;
        write_atomic(path, json.expose_secret())
    }

    // -----------------------------------------------------------------------------------
    // Sealed document
    // -----------------------------------------------------------------------------------

    /// Seals the keyring: the sealed document (JSON bytes, see the
    /// [module docs](super#sealed-document)), safe to store where the plaintext document
    /// is not. A passphrase seal runs argon2id once (tens of milliseconds by design).
    ///
    /// # Errors
    /// [`Error::Random`]; [`Error::Kdf`] if the KDF fails; [`Error::Keyring`] if the
    /// document cannot be written.
    pub fn seal(&self, key: &SealKey) -> Result<Vec<u8>> {
        let plaintext = self.document_bytes(false)?;
        let (seal_key, kdf) = match key {
            SealKey::Passphrase(passphrase) => {
                let derived = PassphraseKdf::default().derive_new(passphrase)?;
                let params = derived.params();
                (derived.key, Some(params))
            }
            SealKey::MasterKey(master) => (derive_subkey(master, SEAL_CONTEXT)?, None),
        };
        let kdf_json = kdf
            .as_ref()
            .map(|p| serde_json::to_vec(&p.kdf))
            .transpose()
            .map_err(|e| keyring_error(format!("could not write kdf parameters: {e}")))?;
        let aad = seal_aad(
            SEALED_VERSION,
            kdf_json.as_deref().zip(kdf.as_ref().map(|p| &p.salt)),
        )?;
        let nonce: [u8; NONCE_LEN] = random_array()?;
        let cipher = Aes256Gcm::new(seal_key.expose_secret().into());
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.expose_secret(),
                    aad: &aad,
                },
            )
            .map_err(|_| keyring_error("keyring document is too large to seal"))?;
        let doc = SealedRepr {
            format: SEALED_FORMAT.to_owned(),
            version: SEALED_VERSION,
            kdf: kdf
                .as_ref()
                .map(|p| serde_json::to_value(p.kdf))
                .transpose()
                .map_err(|e| keyring_error(format!("could not write kdf parameters: {e}")))?,
            salt: kdf.map(|p| p.salt),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
        };
        serde_json::to_vec_pretty(&doc)
            .map_err(|e| keyring_error(format!("could not write sealed keyring document: {e}")))
    }

    /// Opens a sealed keyring document.
    ///
    /// # Errors
    /// [`Error::KeyringSeal`] if the passphrase or master key is wrong or the document was
    /// altered; [`Error::UnsupportedVersion`] for a sealed format version other than 1;
    /// [`Error::Keyring`] if the document is malformed or was sealed with the other kind
    /// of [`SealKey`]; [`Error::InvalidParameter`] / [`Error::Kdf`] if the stored KDF
    /// parameters are out of range.
    pub fn open_sealed(bytes: &[u8], key: &SealKey) -> Result<Self> {
        check_header(bytes, Kind::Sealed)?;
        let doc: SealedRepr =
            serde_json::from_slice(bytes).map_err(|e| json_error("sealed keyring document", &e))?;
        if doc.format != SEALED_FORMAT {
            return Err(keyring_error(format!(
                "not a finsec sealed keyring document: \"format\" is not \"{SEALED_FORMAT}\""
            )));
        }
        let (seal_key, aad) = match (&doc.kdf, &doc.salt, key) {
            (Some(kdf_value), Some(salt), SealKey::Passphrase(passphrase)) => {
                let kdf = strict_kdf(kdf_value)?;
                let kdf_json = serde_json::to_vec(&kdf)
                    .map_err(|e| keyring_error(format!("could not write kdf parameters: {e}")))?;
                let aad = seal_aad(doc.version, Some((&kdf_json, salt)))?;
                let params = KdfParams { kdf, salt: *salt };
                (params.derive(passphrase)?, aad)
            }
            (None, None, SealKey::MasterKey(master)) => (
                derive_subkey(master, SEAL_CONTEXT)?,
                seal_aad(doc.version, None)?,
            ),
            (Some(_), Some(_), SealKey::MasterKey(_)) => {
                return Err(keyring_error(
                    "the keyring was sealed with a passphrase, but a master key was given",
                ));
            }
            (None, None, SealKey::Passphrase(_)) => {
                return Err(keyring_error(
                    "the keyring was sealed with a master key, but a passphrase was given",
                ));
            }
            _ => {
                return Err(keyring_error(
                    "sealed keyring document: \"kdf\" and \"salt\" must both be set (passphrase) or both be null (master key)",
                ));
            }
        };
        let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
            .decode(&doc.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| {
                keyring_error("sealed keyring nonce must be 12 bytes of base64url without padding")
            })?;
        let ciphertext = URL_SAFE_NO_PAD.decode(&doc.ciphertext).map_err(|_| {
            keyring_error("sealed keyring ciphertext is not base64url without padding")
        })?;
        if ciphertext.len() < TAG_LEN {
            return Err(keyring_error(
                "sealed keyring ciphertext is shorter than its 16-byte tag",
            ));
        }
        let cipher = Aes256Gcm::new(seal_key.expose_secret().into());
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| Error::KeyringSeal)?,
        );
        Self::from_json(&plaintext)
    }

    /// Reads and opens a sealed keyring document from `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; otherwise as
    /// [`open_sealed`](Self::open_sealed).
    pub fn load_sealed(path: &Path, key: &SealKey) -> Result<Self> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::open_sealed(&bytes, key)
    }

    /// Seals the keyring and writes it to `path` atomically (temporary file in the same
    /// directory, mode `0600` on Unix, `fsync`, rename, `fsync` of the directory).
    ///
    /// # Errors
    /// As [`seal`](Self::seal); [`Error::Io`] naming the file or directory that failed.
    pub fn save_sealed(&self, path: &Path, key: &SealKey) -> Result<()> {
        let sealed = self.seal(key)?;
        write_atomic(path, &sealed)
    }

    /// Read-modify-write of a sealed keyring file under an exclusive lock.
    ///
    /// Locks `<path>.lock` (created with mode `0600` if missing, and left in place),
    /// loads the sealed keyring at `path` (which must exist), calls `f`, and if `f`
    /// returns `Ok`, seals and saves the keyring atomically before releasing the lock.
    /// If `f` fails, nothing is written. Every process that changes the file should go
    /// through this function, so that concurrent changes (an operator's rotation, a
    /// server saving its usage counters with [`merge_counts_into`](Self::merge_counts_into))
    /// are applied one after the other and none is lost. Readers need no lock: the file is
    /// replaced atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if the lock file cannot be opened or locked or `path` cannot be read
    /// or written; as [`load_sealed`](Self::load_sealed) and
    /// [`save_sealed`](Self::save_sealed); whatever `f` returns.
    pub fn update_sealed<T>(
        path: &Path,
        key: &SealKey,
        f: impl FnOnce(&Keyring) -> Result<T>,
    ) -> Result<T> {
        let lock_path = lock_path(path);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let lock = options
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let ring = Self::load_sealed(path, key)?;
        let out = f(&ring)?;
        ring.save_sealed(path, key)?;
        // Closing the file releases the lock (also on the early returns above).
        drop(lock);
        Ok(out)
    }
}

/// Parses the stored KDF parameters and refuses fields that do not belong to the
/// algorithm, so that the document cannot carry data the associated data does not cover.
fn strict_kdf(value: &serde_json::Value) -> Result<PassphraseKdf> {
    let kdf: PassphraseKdf =
        serde_json::from_value(value.clone()).map_err(|e| json_error("sealed keyring kdf", &e))?;
    let canonical = serde_json::to_value(kdf)
        .map_err(|e| keyring_error(format!("could not write kdf parameters: {e}")))?;
    if &canonical != value {
        return Err(keyring_error(
            "sealed keyring kdf has fields that do not belong to its algorithm",
        ));
    }
    Ok(kdf)
}

/// The associated data of a sealed document (see the module docs).
fn seal_aad(version: u16, passphrase: Option<(&[u8], &Salt)>) -> Result<Vec<u8>> {
    let format = SEALED_FORMAT.as_bytes();
    let format_len = u8::try_from(format.len())
        .map_err(|_| keyring_error("sealed keyring format name is too long"))?;
    let mut aad = Vec::with_capacity(SEAL_CONTEXT.len() + 1 + format.len() + 2 + 1 + 4 + 64 + 16);
    aad.extend_from_slice(SEAL_CONTEXT.as_bytes());
    aad.push(format_len);
    aad.extend_from_slice(format);
    aad.extend_from_slice(&version.to_be_bytes());
    match passphrase {
        None => aad.push(0),
        Some((kdf_json, salt)) => {
            let len = u32::try_from(kdf_json.len())
                .map_err(|_| keyring_error("sealed keyring kdf parameters are too long"))?;
            aad.push(1);
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(kdf_json);
            aad.extend_from_slice(salt.as_bytes());
        }
    }
    Ok(aad)
}

/// `<path>.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory (mode 0600
/// on Unix), fsync, rename over `path`, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".finsec-keyring-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::KeyProvider;

    #[test]
    fn redaction_removes_quoted_values_only() {
        assert_eq!(
            redact_strings(r#"invalid type: string "c2VjcmV0", expected u64 at line 1 column 9"#),
            r#"invalid type: string "...", expected u64 at line 1 column 9"#
        );
        assert_eq!(redact_strings(r#"a "b\"c" d "e"#), r#"a "..." d "...""#);
        assert_eq!(
            redact_strings("unknown field `extra`, expected `name`"),
            "unknown field `extra`, expected `name`"
        );
    }

    #[test]
    fn serde_errors_do_not_echo_key_material() {
        let secret = "U0VDUkVULUtFWS1NQVRFUklBTC1YWFhYWFhYWFhYWFg";
        let doc = format!(
            r#"{{"format":"finsec-keyring","version":1,"policy":{{"rotate_after":1,"hard_limit":1}},"keys":[{{"name":"k","primary":1,"min_decrypt_version":1,"versions":[{{"version":1,"created_at":"2025-01-01T00:00:00Z","key":"AAAA","encrypted_count":"{secret}"}}]}}]}}"#
        );
        let err = Keyring::from_json(doc.as_bytes()).unwrap_err().to_string();
        assert!(matches!(
            Keyring::from_json(doc.as_bytes()),
            Err(Error::Keyring(_))
        ));
        assert!(!err.contains(secret), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn env_value_json_and_base64url() {
        let ring = Keyring::new();
        let n = KeyName::new("pii").unwrap();
        ring.create_key(&n).unwrap();
        let json = ring.to_json().unwrap();
        let text = std::str::from_utf8(json.expose_secret()).unwrap();
        let b64 = URL_SAFE_NO_PAD.encode(json.expose_secret());
        let padded = base64::engine::general_purpose::URL_SAFE.encode(json.expose_secret());
        for value in [
            text.to_owned(),
            format!("  {text}\n"),
            b64.clone(),
            padded,
            format!("{b64}\n"),
        ] {
            let back = Keyring::from_env_value("FINSEC_KEYRING", &value).unwrap();
            assert_eq!(back.to_json().unwrap(), json);
        }
        for junk in ["", "   ", "not a keyring!", "{not json", "e30"] {
            let err = Keyring::from_env_value("FINSEC_KEYRING", junk).unwrap_err();
            assert!(matches!(err, Error::Keyring(_)), "{junk:?}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("FINSEC_KEYRING"), "{msg}");
            if junk.trim().len() > 3 {
                assert!(!msg.contains(junk.trim()), "{msg}");
            }
        }
    }

    #[test]
    fn env_errors_do_not_echo_the_value() {
        // A document whose only fault is deep inside: the value must not appear.
        let ring = Keyring::new();
        ring.create_key(&KeyName::new("k").unwrap()).unwrap();
        let json = ring.to_json().unwrap();
        let text = std::str::from_utf8(json.expose_secret())
            .unwrap()
            .replace("\"encrypted_count\": 0", "\"encrypted_count\": \"x\"");
        let err = Keyring::from_env_value("V", &text).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid keyring: environment variable V:"),
            "{err}"
        );
        let key_b64 = text
            .split("\"key\": \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(key_b64.len(), 43);
        assert!(!err.contains(key_b64));
    }

    #[test]
    fn seal_aad_layout() {
        let salt = Salt::from_bytes([9; 16]);
        let aad = seal_aad(1, Some((b"{}", &salt))).unwrap();
        let mut expected = b"finsec/keyring-seal/v1".to_vec();
        expected.push(21);
        expected.extend_from_slice(b"finsec-keyring-sealed");
        expected.extend_from_slice(&[0, 1, 1, 0, 0, 0, 2]);
        expected.extend_from_slice(b"{}");
        expected.extend_from_slice(&[9; 16]);
        assert_eq!(aad, expected);
        let master = seal_aad(1, None).unwrap();
        assert_eq!(master.last(), Some(&0));
        assert_eq!(master.len(), 22 + 1 + 21 + 2 + 1);
    }

    #[test]
    fn lock_path_appends_suffix() {
        assert_eq!(
            lock_path(Path::new("/a/keyring.sealed")),
            PathBuf::from("/a/keyring.sealed.lock")
        );
    }

    #[test]
    fn document_bytes_are_exactly_sized() {
        let ring = Keyring::new();
        let n = KeyName::new("k").unwrap();
        ring.create_key(&n).unwrap();
        ring.rotate(&n).unwrap();
        ring.wrap_dek(&n, &Key256::generate().unwrap()).unwrap();
        for pretty in [true, false] {
            let bytes = ring.document_bytes(pretty).unwrap();
            let back = Keyring::from_json(bytes.expose_secret()).unwrap();
            assert_eq!(back.status(), ring.status());
        }
    }
}
