//! Per-subject keys for crypto-shredding (GDPR erasure without rewriting data).
//!
//! Every data subject (a customer, an employee, any natural person) gets their own random
//! 256-bit key, created on first use. Personal data about the subject is encrypted under that
//! key, wherever it ends up: database columns, audit logs, backups, exports. To erase the
//! subject, [`SubjectKeys::shred`] destroys the key; from then on every ciphertext of the
//! subject is unreadable noise, without finding or rewriting any of it. Append-only
//! records (a hash-chained audit log) stay intact and verifiable.
//!
//! # How keys are stored
//!
//! A subject key is never stored in the clear. It is wrapped (encrypted) by a
//! key-encryption key (KEK) from a [`KeyProvider`], for example the local
//! [`Keyring`](crate::Keyring), and the store keeps a [`StoredSubjectKey`]: the subject id,
//! the [`KekRef`] (KEK name and version) and the [`WrappedDek`] bytes. Stores are behind the
//! [`SubjectKeyStore`] trait:
//!
//! | store                                  | feature    | use                                       |
//! |----------------------------------------|------------|-------------------------------------------|
//! | [`MemorySubjectKeyStore`]              | always on  | tests, single-process tools               |
//! | `sqlite::SqliteSubjectKeyStore`        | `sqlite`   | embedded deployments                      |
//! | `postgres::PostgresSubjectKeyStore`    | `postgres` | several application instances, one database |
//!
//! Every implementation passes the same behavioural suite
//! (`finsec_crypto::testing::subject_key_store_conformance`, feature `testing`).
//!
//! # Shredding and the tombstone
//!
//! [`SubjectKeys::shred`] overwrites the wrapped key with `NULL` and records when it was
//! destroyed. The row itself stays as a **tombstone**: the subject id can never silently get
//! a new key, so an instance that still has a request in flight for the erased subject gets
//! [`Error::SubjectErased`] instead of quietly creating fresh (readable) data for them.
//! Shredding a subject that never had a key also writes a tombstone, so erasure is final
//! whichever of "erase" and "first write" comes first. Both `encrypt` and `decrypt` return
//! [`Error::SubjectErased`] for an erased subject.
//!
//! Shredding removes the wrapped key from the live database only. A backup taken before the
//! shred still holds it, and the KEK can still unwrap it. To make erasure reach backups,
//! rotate the KEK after shredding, run [`SubjectKeys::rewrap_all`], then retire and purge the
//! old KEK version (`Keyring::retire_below`, `Keyring::purge_retired`): a wrapped key in an
//! old backup is then useless, because the KEK version that wrapped it no longer exists.
//!
//! # Rotation: re-wrapping
//!
//! [`SubjectKeys::rewrap_all`] walks every active subject key (keyset pagination in subject
//! id order via [`SubjectKeyStore::list_active`]), unwraps it and wraps the same key again
//! under the current primary version of the manager's KEK, storing the result with a
//! compare-and-set ([`SubjectKeyStore::replace_wrapped`]), so it is safe to run while the
//! application is serving and while another instance runs it too. The subject keys
//! themselves do not change, so no ciphertext needs to be touched. The [`RewrapReport`]
//! counts what happened; when [`RewrapReport::is_complete`] holds, older KEK versions can be
//! retired.
//!
//! # Ciphertext format
//!
//! ```text
//! off  len  field
//! 0    3    magic "FSK" (0x46 0x53 0x4b)
//! 3    1    format version = 1
//! 4    12   nonce (random)
//! 16   ..   AES-256-GCM ciphertext || 16-byte tag
//! ```
//!
//! The associated data is `b"finsec/subject/v1" || u8 len(subject) || subject ||
//! u64-BE len(aad) || aad`, so a ciphertext only decrypts for the subject and the caller's
//! associated data (for example [`aad_for`](crate::envelope::aad_for) of table, column and
//! row) it was made for. The subject id is not stored in the ciphertext: the caller knows
//! whose data a row holds.
//!
//! # SQL storage
//!
//! Both SQL adapters use one table, `finsec_subject_keys`:
//!
//! | column         | SQLite               | PostgreSQL                | meaning                           |
//! |----------------|----------------------|---------------------------|-----------------------------------|
//! | `subject_id`   | `TEXT` primary key   | `TEXT COLLATE "C"` primary key | the [`SubjectId`]            |
//! | `kek_name`     | `TEXT`               | `TEXT`                    | KEK name (`NULL` for a tombstone written before any key existed) |
//! | `kek_version`  | `INTEGER`            | `BIGINT`                  | KEK version                       |
//! | `wrapped_key`  | `BLOB`               | `BYTEA`                   | wrapped subject key; `NULL` once destroyed |
//! | `created_at`   | `INTEGER`            | `BIGINT`                  | unix time in microseconds, UTC    |
//! | `destroyed_at` | `INTEGER`            | `BIGINT`                  | unix time in microseconds, UTC; `NULL` while the key exists |
//!
//! Timestamps are integers (microseconds since the Unix epoch, UTC) in both databases, so
//! the two adapters behave identically and no date/time driver feature is needed; every
//! store, the memory one included, keeps timestamps to the microsecond. In PostgreSQL,
//! `to_timestamp(destroyed_at / 1e6)` shows them as dates. Subject ids sort by their bytes
//! in every store (PostgreSQL: `COLLATE "C"`), which is the order of
//! [`SubjectKeyStore::list_active`].
//!
//! Both adapters are one generic store, `SqlSubjectKeyStore`, with one SQL text; the
//! `sqlite`/`postgres` names are aliases of it. [`crate::sqlite::migrate`] /
//! [`crate::postgres::migrate`] apply the crate's migrations with sqlx. All finsec crates
//! share sqlx's `_sqlx_migrations` table, so each owns a range of migration versions
//! (finsec-crypto: 10001–10999; the registry is `MIGRATIONS.md` at the repository root) and
//! every finsec migrator runs with `ignore_missing` (another crate's versions in the table
//! are not an error).
//!
//! An application that keeps its own sqlx migrations in the same database must also run
//! its migrator with `set_ignore_missing(true)` and keep its versions outside these ranges
//! (for example timestamps, the sqlx default, are far above them).
//!
//! # Durability
//!
//! A store method that returned `Ok` has committed its write. SQLite: open the pool with
//! `journal_mode=WAL` and `synchronous=FULL` so a commit survives power loss (with
//! `synchronous=NORMAL` in WAL mode the last commits can be lost). PostgreSQL: each write is
//! its own committed transaction; keep `synchronous_commit` on.
//!
//! No subject key is cached in memory: every `encrypt` and `decrypt` reads the store, so a
//! shred takes effect on every instance at once.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::backend::{AeadBackend, DataCipher};
use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, KeyProvider, WrappedDek};
use crate::secret::{Key256, fill_random};

mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

pub use memory::MemorySubjectKeyStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlSubjectKeyStore;

/// Longest subject id accepted, in bytes.
pub const MAX_SUBJECT_ID_LEN: usize = 128;

/// Magic bytes at the start of a subject ciphertext.
pub const MAGIC: [u8; 3] = *b"FSK";
/// The subject ciphertext format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Length of the nonce in a subject ciphertext.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag at the end of a subject ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of the header (magic, version, nonce) of a subject ciphertext.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;
/// Bytes a subject ciphertext adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Largest plaintext one subject ciphertext can hold (the AES-GCM limit, 2^36 - 32 bytes).
pub const MAX_PLAINTEXT_LEN: u64 = (1 << 36) - 32;

const AAD_LABEL: &[u8] = b"finsec/subject/v1";
const FORMAT_NAME: &str = "subject ciphertext";

/// The id of a data subject: 1 to 128 bytes of printable ASCII without spaces (`!` to `~`),
/// for example a user id, a UUID or `customer:4711`.
///
/// Ids are not secret, but they identify a person: treat them as personal data. `Debug` and
/// `Display` show them. They compare and sort by their bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectId(String);

impl SubjectId {
    /// Validates a subject id.
    ///
    /// # Errors
    /// [`Error::InvalidSubjectId`] if the id is empty, longer than [`MAX_SUBJECT_ID_LEN`]
    /// bytes, or contains a byte outside `!`..=`~` (spaces, control characters, non-ASCII).
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::InvalidSubjectId {
                reason: "subject id is empty",
            });
        }
        if id.len() > MAX_SUBJECT_ID_LEN {
            return Err(Error::InvalidSubjectId {
                reason: "subject id is longer than 128 bytes",
            });
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidSubjectId {
                reason: "subject id may only contain printable ASCII without spaces",
            });
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({:?})", self.0)
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SubjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SubjectId {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for SubjectId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<SubjectId> for String {
    fn from(id: SubjectId) -> Self {
        id.0
    }
}

impl AsRef<str> for SubjectId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A subject's key as a store holds it: wrapped by a KEK, never in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubjectKey {
    /// Whose key this is.
    pub subject: SubjectId,
    /// The KEK version that wrapped the key.
    pub kek: KekRef,
    /// The wrapped key.
    pub wrapped: WrappedDek,
    /// When the key was created (stores keep microseconds).
    pub created_at: OffsetDateTime,
}

/// What a store holds for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKeyState {
    /// The subject has a key.
    Active(StoredSubjectKey),
    /// The subject was erased: the key is gone and no new one will be created.
    Destroyed {
        /// When the key was destroyed (or the erasure recorded).
        destroyed_at: OffsetDateTime,
    },
    /// The subject has no key yet.
    Absent,
}

/// Storage for wrapped subject keys.
///
/// # Contract
///
/// Every implementation behaves like [`MemorySubjectKeyStore`]; the conformance suite in
/// `finsec_crypto::testing` (feature `testing`) checks it.
///
/// - A subject's row goes `Absent` → `Active` → `Destroyed`, never backwards. A destroyed
///   subject stays destroyed forever (the tombstone).
/// - Timestamps are kept to the microsecond; anything finer is truncated (rounded towards
///   the past).
/// - A method that returned `Ok` has durably committed its write (see the module docs for
///   the settings each database needs).
/// - Methods are atomic with respect to each other, also across processes sharing one
///   database.
#[async_trait]
pub trait SubjectKeyStore: Send + Sync {
    /// Stores `key` unless the subject already has a row, atomically, and returns what is
    /// stored now: `Active(key)` (as stored, timestamp truncated to microseconds) if this
    /// call created it, the existing `Active` key if another caller was first (so all
    /// concurrent callers end up with the same key), or `Destroyed` if the subject was
    /// erased (a destroyed subject never gets a new key).
    ///
    /// # Errors
    /// [`Error::Store`] if the backend fails.
    async fn insert_if_absent(&self, key: StoredSubjectKey) -> Result<SubjectKeyState>;

    /// What is stored for `subject`.
    ///
    /// # Errors
    /// [`Error::Store`] if the backend fails or the stored row is malformed.
    async fn get(&self, subject: &SubjectId) -> Result<SubjectKeyState>;

    /// Destroys the subject's key: wipes the wrapped key and leaves a tombstone recording
    /// `at`. Returns `true` if an active key was destroyed by this call.
    ///
    /// For a subject without a row, writes a tombstone (so the subject can never get a key)
    /// and returns `false`. For a subject already destroyed, changes nothing (the first
    /// destruction time stays) and returns `false`.
    ///
    /// # Errors
    /// [`Error::Store`] if the backend fails.
    async fn destroy(&self, subject: &SubjectId, at: OffsetDateTime) -> Result<bool>;

    /// Compare-and-set for re-wrapping: if the subject's key is active and currently
    /// wrapped under `old`, replaces its KEK reference and wrapped bytes with `new_kek` and
    /// `new_wrapped` and returns `true`. Otherwise (absent, destroyed, or wrapped under
    /// another KEK version meanwhile) changes nothing and returns `false`.
    ///
    /// # Errors
    /// [`Error::Store`] if the backend fails.
    async fn replace_wrapped(
        &self,
        subject: &SubjectId,
        old: &KekRef,
        new_kek: KekRef,
        new_wrapped: WrappedDek,
    ) -> Result<bool>;

    /// Up to `limit` active keys whose subject id is greater than `after` (all, when
    /// `after` is `None`), in ascending byte order of the subject id. Destroyed subjects are
    /// not listed. Pass the last subject of a page as `after` to get the next page.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `limit` is 0; [`Error::Store`] if the backend fails.
    async fn list_active(
        &self,
        after: Option<&SubjectId>,
        limit: u32,
    ) -> Result<Vec<StoredSubjectKey>>;
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: SubjectKeyStore + ?Sized> SubjectKeyStore for $ty {
            async fn insert_if_absent(&self, key: StoredSubjectKey) -> Result<SubjectKeyState> {
                (**self).insert_if_absent(key).await
            }
            async fn get(&self, subject: &SubjectId) -> Result<SubjectKeyState> {
                (**self).get(subject).await
            }
            async fn destroy(&self, subject: &SubjectId, at: OffsetDateTime) -> Result<bool> {
                (**self).destroy(subject, at).await
            }
            async fn replace_wrapped(
                &self,
                subject: &SubjectId,
                old: &KekRef,
                new_kek: KekRef,
                new_wrapped: WrappedDek,
            ) -> Result<bool> {
                (**self).replace_wrapped(subject, old, new_kek, new_wrapped).await
            }
            async fn list_active(
                &self,
                after: Option<&SubjectId>,
                limit: u32,
            ) -> Result<Vec<StoredSubjectKey>> {
                (**self).list_active(after, limit).await
            }
        }
    )*};
}

forward_store!(Arc<S>, Box<S>, &S);

/// Refuses a page size of zero (shared by every store).
pub(crate) fn check_limit(limit: u32) -> Result<()> {
    if limit == 0 {
        return Err(Error::InvalidParameter {
            name: "limit",
            reason: "page size must be at least 1".to_owned(),
        });
    }
    Ok(())
}

/// `t` truncated to whole microseconds, rounding towards the past (what every store keeps).
pub(crate) fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let sub_micro = t.nanosecond() % 1_000;
    t - time::Duration::nanoseconds(i64::from(sub_micro))
}

/// The subject-key manager: encrypts and decrypts a subject's data under the subject's own
/// key, creating it on first use, and shreds it on erasure.
///
/// `S` is the [`SubjectKeyStore`], `P` the [`KeyProvider`] whose KEK `kek` wraps the
/// subject keys. Every instance of an application must use the same store and a provider
/// holding the same KEK.
///
/// ```
/// # async fn example() -> finsec_crypto::Result<()> {
/// use finsec_crypto::subject::{MemorySubjectKeyStore, SubjectId, SubjectKeys};
/// use finsec_crypto::{Error, KeyName, Keyring};
///
/// let kek = KeyName::new("subjects")?;
/// let keyring = Keyring::new();
/// keyring.create_key(&kek)?;
/// let keys = SubjectKeys::new(MemorySubjectKeyStore::new(), keyring, kek);
///
/// let alice = SubjectId::new("customer:4711")?;
/// let ct = keys.encrypt(&alice, b"alice@example.com", b"users.email").await?;
/// assert_eq!(keys.decrypt(&alice, &ct, b"users.email").await?, b"alice@example.com");
///
/// assert!(keys.shred(&alice).await?);
/// assert!(matches!(
///     keys.decrypt(&alice, &ct, b"users.email").await,
///     Err(Error::SubjectErased { .. })
/// ));
/// # Ok(())
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example()).unwrap();
/// ```
pub struct SubjectKeys<S, P> {
    store: S,
    provider: P,
    kek: KeyName,
    backend: AeadBackend,
}

impl<S, P> fmt::Debug for SubjectKeys<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectKeys")
            .field("kek", &self.kek)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl<S: SubjectKeyStore, P: KeyProvider> SubjectKeys<S, P> {
    /// A manager wrapping new subject keys under the KEK named `kek`, encrypting with the
    /// default [`AeadBackend`].
    pub fn new(store: S, provider: P, kek: KeyName) -> Self {
        Self {
            store,
            provider,
            kek,
            backend: AeadBackend::default(),
        }
    }

    /// The same manager encrypting and decrypting with `backend`. The format does not
    /// depend on it: ciphertexts of one backend open with every other.
    #[must_use]
    pub fn with_backend(mut self, backend: AeadBackend) -> Self {
        self.backend = backend;
        self
    }

    /// The AES-GCM implementation in use.
    pub fn backend(&self) -> AeadBackend {
        self.backend
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The key provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The KEK name new subject keys are wrapped under.
    pub fn kek(&self) -> &KeyName {
        &self.kek
    }

    /// What the store holds for `subject`.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn key_state(&self, subject: &SubjectId) -> Result<SubjectKeyState> {
        self.store.get(subject).await
    }

    /// Encrypts `plaintext` for `subject`, bound to `aad`, creating the subject's key on
    /// first use (timestamped with the system clock). See [`encrypt_at`](Self::encrypt_at).
    ///
    /// # Errors
    /// As [`encrypt_at`](Self::encrypt_at).
    pub async fn encrypt(
        &self,
        subject: &SubjectId,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        self.encrypt_at(subject, plaintext, aad, OffsetDateTime::now_utc())
            .await
    }

    /// Encrypts `plaintext` for `subject`, bound to `aad`; if the subject has no key yet,
    /// creates one with creation time `now`. Concurrent first calls for the same subject,
    /// in this process or others sharing the store, all end up using one key.
    ///
    /// # Errors
    /// [`Error::SubjectErased`] if the subject was shredded; [`Error::TooLarge`] if the
    /// plaintext exceeds [`MAX_PLAINTEXT_LEN`]; provider errors
    /// ([`Error::UnknownKey`], [`Error::KeyUsageExhausted`], [`Error::KeyRetired`],
    /// [`Error::KeyUnwrap`]); [`Error::Store`]; [`Error::Random`].
    pub async fn encrypt_at(
        &self,
        subject: &SubjectId,
        plaintext: &[u8],
        aad: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        let len = u64::try_from(plaintext.len()).unwrap_or(u64::MAX);
        if len > MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge {
                size: len,
                limit: MAX_PLAINTEXT_LEN,
            });
        }
        let key = self.key_for_encryption(subject, now).await?;
        seal(self.backend, &key, subject, plaintext, aad)
    }

    /// Decrypts a ciphertext made by [`encrypt`](Self::encrypt) for `subject` with the same
    /// `aad`. Never creates a key.
    ///
    /// # Errors
    /// [`Error::SubjectErased`] if the subject was shredded; [`Error::Empty`],
    /// [`Error::Truncated`], [`Error::BadMagic`], [`Error::UnsupportedVersion`] for input
    /// that is not a subject ciphertext; [`Error::Decryption`] if it was altered, belongs to
    /// another subject or `aad`, or the subject has no key; provider errors
    /// ([`Error::KeyRetired`], [`Error::UnknownKey`], [`Error::KeyUnwrap`]);
    /// [`Error::Store`].
    pub async fn decrypt(
        &self,
        subject: &SubjectId,
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let parsed = Parsed::parse(ciphertext)?;
        let stored = match self.store.get(subject).await? {
            SubjectKeyState::Active(stored) => stored,
            SubjectKeyState::Destroyed { .. } => return Err(erased(subject)),
            SubjectKeyState::Absent => return Err(Error::Decryption),
        };
        let key = self
            .provider
            .unwrap_dek(&stored.kek, stored.wrapped.as_bytes())?;
        parsed.open(self.backend, &key, subject, aad)
    }

    /// Destroys the subject's key now (system clock). See [`shred_at`](Self::shred_at).
    ///
    /// # Errors
    /// As [`shred_at`](Self::shred_at).
    pub async fn shred(&self, subject: &SubjectId) -> Result<bool> {
        self.shred_at(subject, OffsetDateTime::now_utc()).await
    }

    /// Crypto-shreds `subject`: destroys their key, recording `now`, so every ciphertext
    /// of the subject becomes unreadable, and leaves a tombstone so the subject never gets
    /// a new key. Returns `true` if a key was destroyed, `false` if the subject had none or
    /// was already erased (the tombstone is written either way).
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn shred_at(&self, subject: &SubjectId, now: OffsetDateTime) -> Result<bool> {
        self.store.destroy(subject, now).await
    }

    /// Re-wraps every active subject key under the current primary version of this
    /// manager's KEK, `batch` keys per store page.
    ///
    /// Keys already wrapped under the primary are left alone. A key that cannot be unwrapped
    /// or re-wrapped is recorded in [`RewrapReport::failed`] and the run goes on; a key
    /// destroyed or re-wrapped by someone else between the read and the write is counted in
    /// [`RewrapReport::changed_concurrently`]. Safe to run while the application serves
    /// requests and from several instances at once.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `batch` is 0; [`Error::UnknownKey`] if the KEK does
    /// not exist; [`Error::Store`] if listing keys fails (the run stops there).
    pub async fn rewrap_all(&self, batch: u32) -> Result<RewrapReport> {
        check_limit(batch).map_err(|_| Error::InvalidParameter {
            name: "batch",
            reason: "batch size must be at least 1".to_owned(),
        })?;
        let mut report = RewrapReport::default();
        let mut after: Option<SubjectId> = None;
        loop {
            let primary = self.provider.primary_version(&self.kek)?;
            let page = self.store.list_active(after.as_ref(), batch).await?;
            // A store that repeats `after` (or goes backwards) would loop forever here.
            if let (Some(after), Some(first)) = (&after, page.first())
                && first.subject.as_str().as_bytes() <= after.as_str().as_bytes()
            {
                return Err(Error::Store(
                    format!(
                        "subject key store listed {} after {after}: pages must move forward",
                        first.subject
                    )
                    .into(),
                ));
            }
            let full_page = u32::try_from(page.len()).is_ok_and(|n| n >= batch);
            after = page.last().map(|k| k.subject.clone());
            for stored in page {
                report.scanned += 1;
                if stored.kek.name == self.kek && stored.kek.version == primary {
                    report.already_current += 1;
                    continue;
                }
                match self.rewrap_one(&stored).await {
                    Ok(true) => report.rewrapped += 1,
                    Ok(false) => report.changed_concurrently += 1,
                    Err(error) => report.failed.push(RewrapFailure {
                        subject: stored.subject,
                        kek: stored.kek,
                        error,
                    }),
                }
            }
            if !full_page {
                return Ok(report);
            }
        }
    }

    async fn rewrap_one(&self, stored: &StoredSubjectKey) -> Result<bool> {
        let key = self
            .provider
            .unwrap_dek(&stored.kek, stored.wrapped.as_bytes())?;
        let (new_kek, new_wrapped) = self.provider.wrap_dek(&self.kek, &key)?;
        self.store
            .replace_wrapped(&stored.subject, &stored.kek, new_kek, new_wrapped)
            .await
    }

    /// The subject's key, creating it if the subject has none.
    async fn key_for_encryption(&self, subject: &SubjectId, now: OffsetDateTime) -> Result<Key256> {
        match self.store.get(subject).await? {
            SubjectKeyState::Active(stored) => {
                return self
                    .provider
                    .unwrap_dek(&stored.kek, stored.wrapped.as_bytes());
            }
            SubjectKeyState::Destroyed { .. } => return Err(erased(subject)),
            SubjectKeyState::Absent => {}
        }
        let fresh = Key256::generate()?;
        let (kek, wrapped) = self.provider.wrap_dek(&self.kek, &fresh)?;
        let candidate = StoredSubjectKey {
            subject: subject.clone(),
            kek,
            wrapped,
            created_at: now,
        };
        match self.store.insert_if_absent(candidate.clone()).await? {
            // Our key won: use it without another unwrap.
            SubjectKeyState::Active(stored)
                if stored.kek == candidate.kek && stored.wrapped == candidate.wrapped =>
            {
                Ok(fresh)
            }
            // Another caller created the key first: use theirs.
            SubjectKeyState::Active(stored) => self
                .provider
                .unwrap_dek(&stored.kek, stored.wrapped.as_bytes()),
            SubjectKeyState::Destroyed { .. } => Err(erased(subject)),
            SubjectKeyState::Absent => Err(Error::Store(
                "subject key store reported no key right after inserting one".into(),
            )),
        }
    }
}

/// The outcome of [`SubjectKeys::rewrap_all`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Active subject keys looked at.
    pub scanned: u64,
    /// Keys re-wrapped under the primary KEK version by this run.
    pub rewrapped: u64,
    /// Keys that were already wrapped under the primary version.
    pub already_current: u64,
    /// Keys destroyed or re-wrapped by someone else between this run's read and write;
    /// a second run lists them as current (or not at all).
    pub changed_concurrently: u64,
    /// Keys that could not be re-wrapped, with the reason.
    pub failed: Vec<RewrapFailure>,
}

impl RewrapReport {
    /// Whether every key this run looked at is now wrapped under the primary version (or
    /// gone): nothing failed and nothing changed underneath the run. Only then may older
    /// KEK versions be retired.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.changed_concurrently == 0
    }
}

/// One key [`SubjectKeys::rewrap_all`] could not re-wrap.
#[derive(Debug)]
#[non_exhaustive]
pub struct RewrapFailure {
    /// Whose key.
    pub subject: SubjectId,
    /// The KEK version it is still wrapped under.
    pub kek: KekRef,
    /// Why it failed (for example [`Error::KeyRetired`], [`Error::KeyUnwrap`]).
    pub error: Error,
}

fn erased(subject: &SubjectId) -> Error {
    Error::SubjectErased {
        subject: subject.as_str().to_owned(),
    }
}

/// The associated data of a subject ciphertext.
fn full_aad(subject: &SubjectId, aad: &[u8]) -> Vec<u8> {
    let id = subject.as_str().as_bytes();
    // SubjectId guarantees at most 128 bytes, so the length fits in a byte.
    let id_len = u8::try_from(id.len()).unwrap_or(u8::MAX);
    let aad_len = u64::try_from(aad.len()).unwrap_or(u64::MAX);
    let mut out = Vec::with_capacity(AAD_LABEL.len() + 1 + id.len() + 8 + aad.len());
    out.extend_from_slice(AAD_LABEL);
    out.push(id_len);
    out.extend_from_slice(id);
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out
}

/// Encrypts into one buffer: header, then the plaintext encrypted in place, then the tag.
fn seal(
    backend: AeadBackend,
    key: &Key256,
    subject: &SubjectId,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    // Cannot panic: `out` starts with the HEADER_LEN header bytes just written.
    let (_, body) = out.split_at_mut(HEADER_LEN);
    let tag =
        DataCipher::new(backend, key)?.seal_in_place(&nonce, &full_aad(subject, aad), body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// A subject ciphertext split into its fields.
struct Parsed<'a> {
    nonce: [u8; NONCE_LEN],
    body: &'a [u8],
    tag: [u8; TAG_LEN],
}

impl<'a> Parsed<'a> {
    fn parse(input: &'a [u8]) -> Result<Self> {
        if input.is_empty() {
            return Err(Error::Empty);
        }
        let truncated = |field, offset: usize, needed| Error::Truncated {
            field,
            offset,
            needed,
            available: input.len().saturating_sub(offset),
        };
        let (magic, rest) = input
            .split_at_checked(MAGIC.len())
            .ok_or_else(|| truncated("magic", 0, MAGIC.len()))?;
        if magic != MAGIC {
            return Err(Error::BadMagic {
                expected: FORMAT_NAME,
            });
        }
        let (&version, rest) = rest
            .split_first()
            .ok_or_else(|| truncated("version", MAGIC.len(), 1))?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                format: FORMAT_NAME,
                version: u16::from(version),
            });
        }
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| truncated("nonce", MAGIC.len() + 1, NONCE_LEN))?;
        let (body, tag) = rest
            .split_last_chunk::<TAG_LEN>()
            .ok_or_else(|| truncated("tag", HEADER_LEN, TAG_LEN))?;
        Ok(Self {
            nonce: *nonce,
            body,
            tag: *tag,
        })
    }

    fn open(
        &self,
        backend: AeadBackend,
        key: &Key256,
        subject: &SubjectId,
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let mut out = self.body.to_vec();
        DataCipher::new(backend, key)?.open_in_place(
            &self.nonce,
            &full_aad(subject, aad),
            &mut out,
            &self.tag,
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use time::macros::datetime;

    use super::*;
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};

    fn cipher(key: &Key256) -> Aes256Gcm {
        Aes256Gcm::new(key.expose_secret().into())
    }

    /// A minimal provider for unit tests: one KEK name, versions as AES-GCM keys.
    #[derive(Default)]
    struct TestProvider {
        versions: Mutex<(u32, HashMap<u32, Key256>)>,
    }

    impl TestProvider {
        fn new() -> Self {
            let p = Self::default();
            p.rotate();
            p
        }
        fn rotate(&self) {
            let mut g = self.versions.lock().unwrap();
            g.0 += 1;
            let v = g.0;
            g.1.insert(v, Key256::generate().unwrap());
        }
        fn drop_version(&self, v: u32) {
            self.versions.lock().unwrap().1.remove(&v);
        }
    }

    impl KeyProvider for TestProvider {
        fn wrap_dek(&self, name: &KeyName, dek: &Key256) -> Result<(KekRef, WrappedDek)> {
            let g = self.versions.lock().unwrap();
            let kek = KekRef {
                name: name.clone(),
                version: g.0,
            };
            let key = g.1.get(&g.0).unwrap();
            let nonce = [7u8; 12];
            let mut buf = dek.expose_secret().to_vec();
            let tag = cipher(key)
                .encrypt_in_place_detached(
                    Nonce::from_slice(&nonce),
                    kek.to_string().as_bytes(),
                    &mut buf,
                )
                .unwrap();
            buf.extend_from_slice(&tag);
            Ok((kek, WrappedDek::new(buf).unwrap()))
        }
        fn unwrap_dek(&self, kek: &KekRef, wrapped: &[u8]) -> Result<Key256> {
            let g = self.versions.lock().unwrap();
            let key = g.1.get(&kek.version).ok_or(Error::UnknownKey {
                name: kek.name.to_string(),
                version: kek.version,
            })?;
            let (ct, tag) = wrapped.split_last_chunk::<16>().ok_or(Error::KeyUnwrap)?;
            let mut buf = ct.to_vec();
            cipher(key)
                .decrypt_in_place_detached(
                    Nonce::from_slice(&[7u8; 12]),
                    kek.to_string().as_bytes(),
                    &mut buf,
                    Tag::from_slice(tag),
                )
                .map_err(|_| Error::KeyUnwrap)?;
            Key256::try_from_slice(&buf)
        }
        fn primary_version(&self, _: &KeyName) -> Result<u32> {
            Ok(self.versions.lock().unwrap().0)
        }
    }

    fn sid(s: &str) -> SubjectId {
        SubjectId::new(s).unwrap()
    }

    fn manager() -> SubjectKeys<MemorySubjectKeyStore, TestProvider> {
        SubjectKeys::new(
            MemorySubjectKeyStore::new(),
            TestProvider::new(),
            KeyName::new("subjects").unwrap(),
        )
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn subject_id_rules() {
        for ok in [
            "a",
            "customer:4711",
            "0190b8e4-7c1d-7c3e-9f00-000000000000",
            "~!#$%&'()*+,-./",
        ] {
            assert_eq!(sid(ok).as_str(), ok);
        }
        assert!(SubjectId::new("x".repeat(128)).is_ok());
        for bad in ["", "a b", "a\tb", "a\nb", "ü", "a\0", "\u{7f}"] {
            assert!(
                matches!(SubjectId::new(bad), Err(Error::InvalidSubjectId { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            SubjectId::new("x".repeat(129)),
            Err(Error::InvalidSubjectId { .. })
        ));
        let json = serde_json::to_string(&sid("u-1")).unwrap();
        assert_eq!(json, "\"u-1\"");
        assert_eq!(
            serde_json::from_str::<SubjectId>(&json).unwrap(),
            sid("u-1")
        );
        assert!(serde_json::from_str::<SubjectId>("\"a b\"").is_err());
        assert_eq!(format!("{:?}", sid("u-1")), "SubjectId(\"u-1\")");
    }

    #[test]
    fn truncation_to_microseconds_rounds_towards_the_past() {
        let t = datetime!(2024-05-06 07:08:09.123456789 UTC);
        assert_eq!(
            truncate_to_micros(t),
            datetime!(2024-05-06 07:08:09.123456 UTC)
        );
        let before_epoch = datetime!(1969-12-31 23:59:59.999999999 UTC);
        assert_eq!(
            truncate_to_micros(before_epoch),
            datetime!(1969-12-31 23:59:59.999999 UTC)
        );
    }

    #[test]
    fn subject_ciphertext_layout_and_round_trip() {
        let keys = manager();
        let alice = sid("alice");
        block_on(async {
            let ct = keys.encrypt(&alice, b"hello", b"ctx").await.unwrap();
            assert_eq!(ct.len(), OVERHEAD + 5);
            assert_eq!(ct.get(..3), Some(&b"FSK"[..]));
            assert_eq!(ct.get(3), Some(&1));
            assert_eq!(keys.decrypt(&alice, &ct, b"ctx").await.unwrap(), b"hello");
            let empty = keys.encrypt(&alice, b"", b"").await.unwrap();
            assert_eq!(empty.len(), OVERHEAD);
            assert_eq!(keys.decrypt(&alice, &empty, b"").await.unwrap(), b"");
            // Two encryptions of the same plaintext differ (random nonce).
            let again = keys.encrypt(&alice, b"hello", b"ctx").await.unwrap();
            assert_ne!(ct, again);
        });
    }

    #[test]
    fn binding_to_subject_and_aad() {
        let keys = manager();
        let (alice, bob) = (sid("alice"), sid("bob"));
        block_on(async {
            let ct = keys
                .encrypt(&alice, b"secret", b"users.email")
                .await
                .unwrap();
            keys.encrypt(&bob, b"x", b"").await.unwrap();
            assert!(matches!(
                keys.decrypt(&alice, &ct, b"users.phone").await,
                Err(Error::Decryption)
            ));
            assert!(matches!(
                keys.decrypt(&bob, &ct, b"users.email").await,
                Err(Error::Decryption)
            ));
            // A subject without a key: decrypt fails and does not create one.
            let carol = sid("carol");
            assert!(matches!(
                keys.decrypt(&carol, &ct, b"users.email").await,
                Err(Error::Decryption)
            ));
            assert_eq!(
                keys.key_state(&carol).await.unwrap(),
                SubjectKeyState::Absent
            );
            // Every single-bit flip is detected.
            for i in 0..ct.len() {
                let mut bad = ct.clone();
                bad[i] ^= 0x01;
                assert!(
                    keys.decrypt(&alice, &bad, b"users.email").await.is_err(),
                    "byte {i}"
                );
            }
        });
    }

    #[test]
    fn malformed_ciphertexts_get_specific_errors() {
        let keys = manager();
        let alice = sid("alice");
        block_on(async {
            let ct = keys.encrypt(&alice, b"data", b"").await.unwrap();
            assert!(matches!(
                keys.decrypt(&alice, b"", b"").await,
                Err(Error::Empty)
            ));
            assert!(matches!(
                keys.decrypt(&alice, b"FS", b"").await,
                Err(Error::Truncated { field: "magic", .. })
            ));
            assert!(matches!(
                keys.decrypt(&alice, b"FSE\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b"")
                    .await,
                Err(Error::BadMagic { .. })
            ));
            assert!(matches!(
                keys.decrypt(&alice, b"FSK", b"").await,
                Err(Error::Truncated {
                    field: "version",
                    ..
                })
            ));
            assert!(matches!(
                keys.decrypt(&alice, b"FSK\x02", b"").await,
                Err(Error::UnsupportedVersion { version: 2, .. })
            ));
            assert!(matches!(
                keys.decrypt(&alice, ct.get(..10).unwrap(), b"").await,
                Err(Error::Truncated { field: "nonce", .. })
            ));
            assert!(matches!(
                keys.decrypt(&alice, ct.get(..HEADER_LEN + 15).unwrap(), b"")
                    .await,
                Err(Error::Truncated {
                    field: "tag",
                    offset: 16,
                    needed: 16,
                    available: 15
                })
            ));
            // Cutting the last byte leaves a well-formed but unauthentic ciphertext.
            assert!(matches!(
                keys.decrypt(&alice, ct.get(..ct.len() - 1).unwrap(), b"")
                    .await,
                Err(Error::Decryption)
            ));
        });
    }

    #[test]
    fn shred_is_final() {
        let keys = manager();
        let alice = sid("alice");
        let t = datetime!(2025-01-02 03:04:05.678901 UTC);
        block_on(async {
            let ct = keys.encrypt(&alice, b"pii", b"").await.unwrap();
            assert!(keys.shred_at(&alice, t).await.unwrap());
            assert!(!keys.shred(&alice).await.unwrap());
            assert_eq!(
                keys.key_state(&alice).await.unwrap(),
                SubjectKeyState::Destroyed { destroyed_at: t }
            );
            for r in [
                keys.decrypt(&alice, &ct, b"").await,
                keys.encrypt(&alice, b"more", b"").await,
            ] {
                match r {
                    Err(Error::SubjectErased { subject }) => assert_eq!(subject, "alice"),
                    other => panic!("expected SubjectErased, got {other:?}"),
                }
            }
            // Erasing a subject that never had a key still blocks future keys.
            let never = sid("never-seen");
            assert!(!keys.shred(&never).await.unwrap());
            assert!(matches!(
                keys.encrypt(&never, b"x", b"").await,
                Err(Error::SubjectErased { .. })
            ));
        });
    }

    #[test]
    fn rewrap_moves_keys_to_the_primary_and_reports_failures() {
        let keys = manager();
        block_on(async {
            let mut cts = Vec::new();
            for i in 0..5 {
                let s = sid(&format!("s{i}"));
                cts.push((s.clone(), keys.encrypt(&s, b"v", b"").await.unwrap()));
            }
            let r = keys.rewrap_all(2).await.unwrap();
            assert_eq!((r.scanned, r.already_current, r.rewrapped), (5, 5, 0));
            assert!(r.is_complete());

            keys.provider().rotate();
            let r = keys.rewrap_all(2).await.unwrap();
            assert_eq!((r.scanned, r.already_current, r.rewrapped), (5, 0, 5));
            assert!(r.is_complete());
            keys.provider().drop_version(1);
            for (s, ct) in &cts {
                assert_eq!(keys.decrypt(s, ct, b"").await.unwrap(), b"v");
            }

            // A key whose KEK version is gone cannot be re-wrapped: reported, not fatal.
            keys.provider().rotate();
            keys.provider().drop_version(2);
            let r = keys.rewrap_all(100).await.unwrap();
            assert_eq!(r.scanned, 5);
            assert_eq!(r.failed.len(), 5);
            assert!(!r.is_complete());
            assert!(matches!(
                r.failed[0].error,
                Error::UnknownKey { version: 2, .. }
            ));
            assert_eq!(r.failed[0].subject, sid("s0"));

            assert!(matches!(
                keys.rewrap_all(0).await,
                Err(Error::InvalidParameter { name: "batch", .. })
            ));
        });
    }

    #[test]
    fn format_constants() {
        assert_eq!(MAX_PLAINTEXT_LEN, 68_719_476_704);
        assert_eq!(HEADER_LEN, 16);
        assert_eq!(OVERHEAD, 32);
    }
}
