//! Personal data at rest, sealed under each user's subject key.
//!
//! A user's name is stored as `sealed:v1:` and the base64url of a finsec-crypto subject
//! ciphertext under the user's key (subject `user:<id>`, associated data naming the
//! column), and looked up by a keyed blind index of its case-folded form in `username_key`.
//! Session addresses and user agents are sealed the same way. Shredding the user's key
//! (erasure) makes all of it unreadable wherever it is.
//!
//! [`SealedUserStore`] wraps the SQL user store: callers see plain names, the database
//! holds sealed ones. Rows written before names were sealed are sealed at start
//! ([`UserSealing::seal_plain_rows`]); until then they are still read as they are. An
//! erased user's row is a tombstone (`erased:` and their pseudonym): it is never found.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use finsec_auth::api_keys::ApiKeyId;
use finsec_crypto::{BlindIndex, Envelope, Key256, Keyring, Normalizer, SubjectId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::users::{ApiKeyName, StoredName, StoredTotpSecret, User, UserStore, Username};
use crate::error::{Result, ServerError};
use crate::keys::secrets_key_name;
use crate::state::ServerSubjectKeys;
use crate::storage::Storage;
use crate::storage::sql::{StoreError, StoreResult};

/// The prefix of a sealed column value.
pub const SEALED: &str = "sealed:v1:";
/// The prefix of an erased user's name and key.
pub const ERASED: &str = "erased:";

/// The data subject of user `id`: `user:<id>`.
///
/// # Panics
/// Never: the text is always a valid subject id.
#[must_use]
pub fn user_subject(id: Uuid) -> SubjectId {
    match SubjectId::new(format!("user:{id}")) {
        Ok(s) => s,
        Err(e) => unreachable!("a UUID makes a valid subject id: {e}"),
    }
}

/// The user of a subject id made by [`user_subject`].
#[must_use]
pub fn subject_user(subject: &SubjectId) -> Option<Uuid> {
    subject.as_str().strip_prefix("user:")?.parse().ok()
}

/// Seals and opens users' personal data, and computes the name index.
#[derive(Clone)]
pub struct UserSealing {
    keys: Arc<ServerSubjectKeys>,
    names: Arc<BlindIndex>,
}

impl fmt::Debug for UserSealing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserSealing(..)")
    }
}

/// What [`UserSealing::open`] says of a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The plain value.
    Plain(String),
    /// The subject was erased: the value is gone for good.
    Erased,
}

impl UserSealing {
    /// The sealing of `storage`'s users under `keyring`: subject keys wrapped under the
    /// `pii` key, and the name index keyed by the server secret `user_name_index`.
    ///
    /// # Errors
    /// [`ServerError::Store`] or [`ServerError::Crypto`] if the secret cannot be read or
    /// made.
    pub async fn load(storage: &Storage, keyring: &Arc<Keyring>) -> Result<Self> {
        let envelope = Envelope::new(Arc::clone(keyring), secrets_key_name()?);
        let key = crate::auth::secrets::server_secret(
            &*storage.stores().secrets,
            &envelope,
            "user_name_index",
            OffsetDateTime::now_utc(),
        )
        .await?;
        let names = BlindIndex::new(
            &Key256::from_bytes(*key),
            "server_users.username_key",
            Normalizer::Exact,
            16,
        )
        .map_err(|e| ServerError::Config(format!("user name index: {e}")))?;
        Ok(Self {
            keys: Arc::new(crate::state::subject_keys(storage, keyring)?),
            names: Arc::new(names),
        })
    }

    /// The subject keys.
    pub fn keys(&self) -> &ServerSubjectKeys {
        &self.keys
    }

    /// The stored key of a case-folded name (see [`Username::key`]).
    pub fn name_key(&self, folded: &str) -> String {
        format!("k:{}", self.names.compute_bytes(folded.as_bytes()).to_hex())
    }

    /// `plain` sealed for user `id`'s `column`.
    ///
    /// # Errors
    /// [`StoreError::Sealing`] if the subject was erased or the key store fails.
    pub async fn seal(
        &self,
        id: Uuid,
        column: &str,
        plain: &str,
        now: OffsetDateTime,
    ) -> StoreResult<String> {
        let ct = self
            .keys
            .encrypt_at(&user_subject(id), plain.as_bytes(), column.as_bytes(), now)
            .await
            .map_err(|e| StoreError::Sealing(format!("{column}: {e}")))?;
        Ok(format!("{SEALED}{}", URL_SAFE_NO_PAD.encode(ct)))
    }

    /// Opens a stored value of user `id`'s `column`; a value that is not sealed (written
    /// before sealing) is returned as it is.
    ///
    /// # Errors
    /// [`StoreError::Sealing`] if it does not open (altered, another user's, or the key
    /// store fails).
    pub async fn open(&self, id: Uuid, column: &str, stored: &str) -> StoreResult<Opened> {
        let Some(b64) = stored.strip_prefix(SEALED) else {
            if stored.starts_with(ERASED) {
                return Ok(Opened::Erased);
            }
            return Ok(Opened::Plain(stored.to_owned()));
        };
        let ct = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| StoreError::Sealing(format!("{column}: not base64url")))?;
        match self
            .keys
            .decrypt(&user_subject(id), &ct, column.as_bytes())
            .await
        {
            Ok(plain) => String::from_utf8(plain)
                .map(Opened::Plain)
                .map_err(|_| StoreError::Sealing(format!("{column}: not UTF-8"))),
            Err(finsec_crypto::Error::SubjectErased { .. }) => Ok(Opened::Erased),
            Err(e) => Err(StoreError::Sealing(format!("{column}: {e}"))),
        }
    }

    /// Seals every user row still holding a plain name (from before names were sealed),
    /// 500 rows at a time. Safe to run on every start and from several instances: each
    /// row is replaced by compare-and-set. Returns how many rows it sealed.
    ///
    /// # Errors
    /// [`ServerError::Store`] if the database fails.
    pub async fn seal_plain_rows(&self, users: &dyn UserStore) -> Result<u64> {
        let mut after = None;
        let mut sealed = 0;
        let now = OffsetDateTime::now_utc();
        loop {
            let page = users.stored_names(after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for row in &page {
                if row.name.starts_with(SEALED) || row.name.starts_with(ERASED) {
                    continue;
                }
                let name = self
                    .seal(row.id, "server_users.username", &row.name, now)
                    .await?;
                // The stored key is the name's case-folded form, as registration and login
                // fold it.
                let key = self.name_key(&row.key);
                if users.replace_name(row.id, &row.name, &name, &key).await? {
                    sealed += 1;
                }
            }
        }
        if sealed > 0 {
            tracing::info!(rows = sealed, "sealed plain user names");
        }
        Ok(sealed)
    }
}

/// The longest user agent kept with a session, in characters (sealed, it must fit the
/// column's 256 characters).
pub const SEALED_USER_AGENT_CHARS: usize = 120;

impl UserSealing {
    /// A session's client with its address and user agent sealed for `user` (the user
    /// agent cut to [`SEALED_USER_AGENT_CHARS`]); a value that cannot be sealed is left out.
    pub async fn seal_client(
        &self,
        user: Uuid,
        client: &crate::auth::sessions::SessionClient,
        now: OffsetDateTime,
    ) -> crate::auth::sessions::SessionClient {
        let ip = match &client.ip {
            Some(ip) => self
                .seal(user, "server_session_info.client_ip", ip, now)
                .await
                .ok(),
            None => None,
        };
        let user_agent = match &client.user_agent {
            Some(ua) => {
                let cut: String = ua.chars().take(SEALED_USER_AGENT_CHARS).collect();
                self.seal(user, "server_session_info.user_agent", &cut, now)
                    .await
                    .ok()
            }
            None => None,
        };
        crate::auth::sessions::SessionClient { ip, user_agent }
    }

    /// A stored session value of `user` opened (`None` when erased or unreadable; a
    /// failure is logged).
    pub async fn open_optional(
        &self,
        user: Uuid,
        column: &str,
        stored: Option<String>,
    ) -> Option<String> {
        let stored = stored?;
        match self.open(user, column, &stored).await {
            Ok(Opened::Plain(p)) => Some(p),
            Ok(Opened::Erased) => None,
            Err(e) => {
                tracing::error!(error = %e, column, "a sealed session value does not open");
                None
            }
        }
    }
}

/// A [`UserStore`] that seals names on the way in and opens them on the way out; an
/// erased user is never found.
pub struct SealedUserStore {
    inner: Arc<dyn UserStore>,
    sealing: UserSealing,
}

impl fmt::Debug for SealedUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedUserStore(..)")
    }
}

impl SealedUserStore {
    /// `inner` behind `sealing`.
    pub fn new(inner: Arc<dyn UserStore>, sealing: UserSealing) -> Self {
        Self { inner, sealing }
    }

    async fn opened(&self, user: Option<User>) -> StoreResult<Option<User>> {
        let Some(mut user) = user else {
            return Ok(None);
        };
        match self
            .sealing
            .open(user.id, "server_users.username", &user.username)
            .await?
        {
            Opened::Plain(name) => {
                user.username = name;
                Ok(Some(user))
            }
            Opened::Erased => Ok(None),
        }
    }
}

#[async_trait]
impl UserStore for SealedUserStore {
    async fn insert_user(
        &self,
        id: Uuid,
        name: &Username,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let stored = Username::stored(
            self.sealing
                .seal(id, "server_users.username", name.as_str(), now)
                .await?,
            self.sealing.name_key(name.key()),
        );
        self.inner
            .insert_user(id, &stored, password_hash, now)
            .await
    }

    async fn find_by_name(&self, key: &str) -> StoreResult<Option<User>> {
        let mut found = self.inner.find_by_name(&self.sealing.name_key(key)).await?;
        if found.is_none() {
            // A row not sealed yet (sealing runs at start; another instance may lag).
            found = self
                .inner
                .find_by_name(key)
                .await?
                .filter(|u| !u.username.starts_with(SEALED));
        }
        self.opened(found).await
    }

    async fn find_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        let found = self.inner.find_by_id(id).await?;
        self.opened(found).await
    }

    async fn update_password_hash(
        &self,
        id: Uuid,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner
            .update_password_hash(id, password_hash, now)
            .await
    }

    async fn put_pending_secret(
        &self,
        user: Uuid,
        sealed: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.put_pending_secret(user, sealed, now).await
    }

    async fn mfa_secret(&self, user: Uuid) -> StoreResult<Option<StoredTotpSecret>> {
        self.inner.mfa_secret(user).await
    }

    async fn confirm_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        self.inner.confirm_mfa(user, now).await
    }

    async fn mfa_failed(&self, user: Uuid) -> StoreResult<u32> {
        self.inner.mfa_failed(user).await
    }

    async fn lock_mfa(&self, user: Uuid, until: OffsetDateTime) -> StoreResult<()> {
        self.inner.lock_mfa(user, until).await
    }

    async fn mfa_locked_until(&self, user: Uuid) -> StoreResult<Option<OffsetDateTime>> {
        self.inner.mfa_locked_until(user).await
    }

    async fn mfa_succeeded(&self, user: Uuid) -> StoreResult<()> {
        self.inner.mfa_succeeded(user).await
    }

    async fn disable_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        self.inner.disable_mfa(user, now).await
    }

    async fn insert_key_name(
        &self,
        key_id: &ApiKeyId,
        user: Uuid,
        name: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.insert_key_name(key_id, user, name, now).await
    }

    async fn key_names(&self, user: Uuid) -> StoreResult<Vec<ApiKeyName>> {
        self.inner.key_names(user).await
    }

    async fn stored_names(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<StoredName>> {
        self.inner.stored_names(after, limit).await
    }

    async fn replace_name(&self, id: Uuid, old: &str, name: &str, key: &str) -> StoreResult<bool> {
        self.inner.replace_name(id, old, name, key).await
    }

    async fn erase_user(
        &self,
        id: Uuid,
        tombstone: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.erase_user(id, tombstone, now).await
    }
}

/// `storage`'s users, sealed under `keyring`: what every part of the server uses.
///
/// # Errors
/// As [`UserSealing::load`].
pub async fn users(storage: &Storage, keyring: &Arc<Keyring>) -> Result<Arc<dyn UserStore>> {
    let sealing = UserSealing::load(storage, keyring).await?;
    Ok(Arc::new(SealedUserStore::new(
        storage.stores().users,
        sealing,
    )))
}

/// The sealed users for an operator subcommand: loads (or, on a new data directory,
/// creates) the keyring as the server does, and seals rows left plain.
///
/// # Errors
/// The keyring or the database.
pub async fn command_users(
    config: &crate::config::Config,
    storage: &Storage,
) -> Result<Arc<dyn UserStore>> {
    let keyring = Arc::new(crate::keys::KeyringFile::for_server(config)?.load_or_create()?);
    let sealing = UserSealing::load(storage, &keyring).await?;
    sealing.seal_plain_rows(&*storage.stores().users).await?;
    Ok(Arc::new(SealedUserStore::new(
        storage.stores().users,
        sealing,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::users::Username;

    async fn setup() -> (finsec_testkit::SqliteTestDb, Storage, UserSealing) {
        let db = finsec_testkit::sqlite().await;
        let storage = Storage::Sqlite(db.pool().clone());
        crate::capabilities::migrate(&storage).await.unwrap();
        let keyring = Keyring::new();
        for name in crate::keys::REQUIRED_KEYS {
            keyring
                .create_key(&finsec_crypto::KeyName::new(name).unwrap())
                .unwrap();
        }
        let sealing = UserSealing::load(&storage, &Arc::new(keyring))
            .await
            .unwrap();
        (db, storage, sealing)
    }

    #[tokio::test]
    async fn names_are_sealed_at_rest_and_found_by_their_index() {
        let (_db, storage, sealing) = setup().await;
        let raw = storage.stores().users;
        let users = SealedUserStore::new(Arc::clone(&raw), sealing.clone());
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        let name = Username::parse("Alice.W").unwrap();
        assert!(users.insert_user(id, &name, "$h", now).await.unwrap());
        assert!(
            !users
                .insert_user(
                    Uuid::now_v7(),
                    &Username::parse("ALICE.w").unwrap(),
                    "$h",
                    now
                )
                .await
                .unwrap(),
            "the index keeps names unique across case"
        );

        // At rest: no trace of the name.
        let stored = raw.stored_names(None, 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].name.starts_with(SEALED), "{}", stored[0].name);
        assert!(stored[0].key.starts_with("k:"));
        assert!(!stored[0].name.contains("Alice") && !stored[0].key.contains("alice"));

        // Through the store: the plain name, by folded name and by id.
        let found = users.find_by_name("alice.w").await.unwrap().unwrap();
        assert_eq!((found.id, found.username.as_str()), (id, "Alice.W"));
        assert_eq!(
            users.find_by_id(id).await.unwrap().unwrap().username,
            "Alice.W"
        );
        assert!(users.find_by_name("Alice.W").await.unwrap().is_none());

        // A row from before sealing is still found, then sealed at the next start.
        let legacy = Uuid::now_v7();
        assert!(
            raw.insert_user(legacy, &Username::parse("Bob").unwrap(), "$h", now)
                .await
                .unwrap()
        );
        assert_eq!(users.find_by_name("bob").await.unwrap().unwrap().id, legacy);
        assert_eq!(sealing.seal_plain_rows(&*raw).await.unwrap(), 1);
        assert_eq!(sealing.seal_plain_rows(&*raw).await.unwrap(), 0);
        let row = raw.find_by_id(legacy).await.unwrap().unwrap();
        assert!(row.username.starts_with(SEALED));
        assert_eq!(
            users.find_by_name("bob").await.unwrap().unwrap().username,
            "Bob"
        );

        // Shredded key or tombstone: never found again.
        sealing.keys().shred(&user_subject(legacy)).await.unwrap();
        assert!(users.find_by_id(legacy).await.unwrap().is_none());
        assert!(users.find_by_name("bob").await.unwrap().is_none());
        assert!(users.erase_user(id, "erased:psn-x", now).await.unwrap());
        assert!(users.find_by_id(id).await.unwrap().is_none());
        assert!(users.find_by_name("alice.w").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_sealed_value_opens_only_for_its_user_and_column() {
        let (_db, _storage, sealing) = setup().await;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let now = OffsetDateTime::now_utc();
        let sealed = sealing.seal(a, "col", "secret text", now).await.unwrap();
        assert_eq!(
            sealing.open(a, "col", &sealed).await.unwrap(),
            Opened::Plain("secret text".into())
        );
        assert!(sealing.open(a, "other", &sealed).await.is_err());
        assert!(sealing.open(b, "col", &sealed).await.is_err());
        assert!(
            sealing
                .open(a, "col", &format!("{SEALED}!!"))
                .await
                .is_err()
        );
        let err = sealing
            .open(b, "col", &sealed)
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret text"), "{err}");
    }
}
