//! The secrets authentication needs: the password pepper (a file, never the database),
//! the JWT signing keys and the backup-code key (in the database, envelope-encrypted with
//! the keyring's `server-secrets` key, [`crate::keys::SECRETS_KEY`]: see [`SecretStore`],
//! implemented on SQLite and PostgreSQL in [`super::sql`]).

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use finsec_auth::passwords::Pepper;
use finsec_auth::tokens::{Kid, SigningKey, VerificationKey};
use finsec_crypto::envelope::aad_for;
use finsec_crypto::{Envelope, Keyring};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Result, ServerError};
use crate::keys::{create_file_atomically, mode_with, open_regular_file};
use crate::storage::sql::StoreResult;

/// The id recorded in password hashes for the pepper.
pub const PEPPER_ID: &str = "p1";

/// The `kid` of the first signing key (fixed, so instances starting together on an empty
/// database agree on one key).
pub const FIRST_KID: &str = "ed25519-1";

/// Reads the pepper file, creating it (32 random bytes, mode `0600`) if it does not exist.
/// A file others than its owner may read or write is refused.
///
/// # Errors
/// [`ServerError::Config`] naming the file and the problem (never its content);
/// [`ServerError::Io`].
pub fn load_pepper(path: &Path) -> Result<Pepper> {
    if !path.exists() {
        let bytes = Zeroizing::new(finsec_crypto::random_array::<32>()?);
        if create_file_atomically(path, bytes.as_slice())? {
            tracing::warn!(
                path = %path.display(),
                "created a random password pepper file; keep it out of database backups"
            );
        }
    }
    let (file, meta) = open_regular_file(path, "password pepper")?;
    if let Some(mode) = mode_with(&meta, 0o077) {
        return Err(ServerError::Config(format!(
            "password pepper file {} has permissions {mode:04o}; it must be accessible \
             by its owner only (run `chmod 600 {}`)",
            path.display(),
            path.display()
        )));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(Pepper::MAX_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ServerError::io("cannot read", path, e))?;
    Pepper::new(PEPPER_ID, bytes.to_vec()).map_err(|e| {
        ServerError::Config(format!(
            "password pepper file {}: {e} (it must hold {} to {} bytes)",
            path.display(),
            Pepper::MIN_LEN,
            Pepper::MAX_LEN
        ))
    })
}

/// A JWT signing key as stored (`Debug` hides the sealed seed).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// The key id.
    pub kid: String,
    /// The Ed25519 seed, envelope-encrypted (associated data
    /// `aad_for("server_jwt_keys", "seed", kid)`).
    pub sealed_seed: String,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A column of the authentication tables that holds envelope-encrypted values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    /// `server_jwt_keys.seed`, keyed by `kid`.
    JwtKeySeed,
    /// `server_secrets.value`, keyed by `name`.
    ServerSecret,
    /// `server_mfa_secrets.secret`, keyed by `user_id` (a UUID).
    TotpSecret,
}

impl SealedColumn {
    /// Every sealed column, in the order [`SecretStore::sealed_values`] lists them.
    pub const ALL: [Self; 3] = [Self::JwtKeySeed, Self::ServerSecret, Self::TotpSecret];

    /// The table holding the column.
    pub fn table(self) -> &'static str {
        match self {
            Self::JwtKeySeed => "server_jwt_keys",
            Self::ServerSecret => "server_secrets",
            Self::TotpSecret => "server_mfa_secrets",
        }
    }
}

/// One sealed value and the row holding it (`Debug` hides the value).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// Where it is stored.
    pub column: SealedColumn,
    /// The row's key as text (a UUID in its hyphenated lower-case form).
    pub key: String,
    /// The sealed value.
    pub sealed: String,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedValue")
            .field("column", &self.column)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The server's own secrets: JWT signing keys (`server_jwt_keys`), named server secrets
/// (`server_secrets`), and the re-wrapping of every sealed column of the authentication
/// tables (those two and `server_mfa_secrets`).
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Inserts signing key `kid` with its sealed seed, created at `now`. Returns `false`,
    /// and changes nothing, if a key `kid` exists (retired or not): of concurrent inserts
    /// of one `kid`, exactly one returns `true`.
    ///
    /// # Errors
    /// If the database fails.
    async fn insert_signing_key(
        &self,
        kid: &str,
        sealed_seed: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// The signing keys that are not retired, oldest first (by creation time, then
    /// `kid`); empty if none.
    ///
    /// # Errors
    /// If the database fails.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;

    /// Inserts server secret `name` with its sealed value, created at `now`. Returns
    /// `false`, and changes nothing, if a secret `name` exists.
    ///
    /// # Errors
    /// If the database fails.
    async fn insert_secret(
        &self,
        name: &str,
        sealed: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// The sealed value of server secret `name`; `None` if there is none.
    ///
    /// # Errors
    /// If the database fails.
    async fn secret(&self, name: &str) -> StoreResult<Option<String>>;

    /// Every sealed value of every [`SealedColumn`], column by column in
    /// [`SealedColumn::ALL`] order.
    ///
    /// # Errors
    /// If the database fails or a row key does not decode.
    async fn sealed_values(&self) -> StoreResult<Vec<SealedValue>>;

    /// Replaces the sealed value of row `key` in `column` by `new`, only if it still
    /// holds `old`. Returns `false`, and changes nothing, if it does not (changed since it
    /// was read, or no such row; a key that is not a UUID names no `server_mfa_secrets`
    /// row).
    ///
    /// # Errors
    /// If the database fails.
    async fn replace_sealed(
        &self,
        column: SealedColumn,
        key: &str,
        old: &str,
        new: &str,
    ) -> StoreResult<bool>;
}

fn seed_from(bytes: &[u8], what: &str) -> Result<Zeroizing<[u8; 32]>> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| {
        ServerError::Config(format!("{what} in the database does not hold 32 bytes"))
    })?;
    Ok(Zeroizing::new(array))
}

/// The signing keys in use (`Debug` shows no key material).
pub struct SigningKeys {
    current_kid: Kid,
    current_seed: Zeroizing<[u8; 32]>,
    verification: Vec<VerificationKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current_kid", &self.current_kid)
            .field("keys", &self.verification.len())
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// The newest non-retired key: new tokens are signed with it.
    pub fn current(&self) -> SigningKey {
        SigningKey::ed25519_from_seed(self.current_kid.clone(), &self.current_seed)
    }

    /// The public keys of every non-retired key: tokens signed by any of them verify.
    pub fn verification_keys(&self) -> &[VerificationKey] {
        &self.verification
    }
}

/// Loads the non-retired Ed25519 signing keys, creating the first one if there is none.
///
/// # Errors
/// [`ServerError::Store`] if the database fails, or [`ServerError::Crypto`] if a key
/// does not decrypt with the keyring.
pub async fn signing_keys(
    store: &dyn SecretStore,
    envelope: &Envelope<Arc<Keyring>>,
    now: OffsetDateTime,
) -> Result<SigningKeys> {
    let seed = Zeroizing::new(finsec_crypto::random_array::<32>()?);
    let sealed = envelope.encrypt_to_string(
        seed.as_slice(),
        &aad_for("server_jwt_keys", "seed", FIRST_KID),
    )?;
    store.insert_signing_key(FIRST_KID, &sealed, now).await?;
    let rows = store.signing_keys().await?;
    let mut verification = Vec::with_capacity(rows.len());
    let mut current = None;
    for StoredSigningKey { kid, sealed_seed } in rows {
        let plain = Zeroizing::new(
            envelope.decrypt_str(&sealed_seed, &aad_for("server_jwt_keys", "seed", &kid))?,
        );
        let seed = seed_from(&plain, "a jwt signing key")?;
        let kid =
            Kid::new(&kid).map_err(|e| ServerError::Config(format!("jwt signing key id: {e}")))?;
        let key = SigningKey::ed25519_from_seed(kid.clone(), &seed);
        verification.push(
            key.verification_key()
                .map_err(|e| ServerError::Config(format!("jwt signing key: {e}")))?,
        );
        current = Some((kid, seed));
    }
    let (current_kid, current_seed) = current
        .ok_or_else(|| ServerError::Config("no jwt signing key in the database".to_owned()))?;
    Ok(SigningKeys {
        current_kid,
        current_seed,
        verification,
    })
}

/// A 32-byte server secret named `name`, created on first use (the first instance to
/// write it wins; the others read its value).
///
/// # Errors
/// [`ServerError::Store`] if the database fails, or [`ServerError::Crypto`] if it does
/// not decrypt.
pub async fn server_secret(
    store: &dyn SecretStore,
    envelope: &Envelope<Arc<Keyring>>,
    name: &str,
    now: OffsetDateTime,
) -> Result<Zeroizing<[u8; 32]>> {
    let aad = aad_for("server_secrets", "value", name);
    let fresh = Zeroizing::new(finsec_crypto::random_array::<32>()?);
    let sealed = envelope.encrypt_to_string(fresh.as_slice(), &aad)?;
    store.insert_secret(name, &sealed, now).await?;
    let stored = store.secret(name).await?.ok_or_else(|| {
        ServerError::Config(format!("server secret {name} vanished from the database"))
    })?;
    let plain = Zeroizing::new(envelope.decrypt_str(&stored, &aad)?);
    seed_from(&plain, "a server secret")
}

/// What [`rewrap_sealed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealedRewrap {
    /// Sealed values looked at.
    pub scanned: u64,
    /// Values re-wrapped under the primary version of the envelope's key (moved there from
    /// another key, such as `pii` in keyrings older than the `server-secrets` key, or from an
    /// older version).
    pub rewrapped: u64,
    /// Values that could not be re-wrapped (their errors are logged), or that changed
    /// underneath the run.
    pub failed: u64,
}

impl SealedRewrap {
    /// Whether every value is now wrapped under the primary version.
    pub fn is_complete(&self) -> bool {
        self.failed == 0
    }
}

/// Re-wraps every sealed value of the authentication tables (JWT signing keys, server
/// secrets, TOTP secrets) under the primary version of the envelope's key, whichever key
/// wrapped it before, so older versions (and, for older keyrings, the `pii` key) can be
/// retired. Each row is replaced only if it still holds the value read.
///
/// # Errors
/// [`ServerError::Store`] if the database fails; a row that cannot be re-wrapped is
/// counted in [`SealedRewrap::failed`].
pub async fn rewrap_sealed(
    store: &dyn SecretStore,
    envelope: &Envelope<Arc<Keyring>>,
) -> Result<SealedRewrap> {
    let mut report = SealedRewrap::default();
    for value in store.sealed_values().await? {
        report.scanned += 1;
        let table = value.column.table();
        let new = match envelope.move_to_own_key_str(&value.sealed) {
            Ok(finsec_crypto::Rewrap::Unchanged) => continue,
            Ok(finsec_crypto::Rewrap::Rewrapped(new)) => new,
            Err(e) => {
                tracing::error!(table, row = %value.key, error = %e, "cannot re-wrap");
                report.failed += 1;
                continue;
            }
        };
        if store
            .replace_sealed(value.column, &value.key, &value.sealed, &new)
            .await?
        {
            report.rewrapped += 1;
        } else {
            report.failed += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn pepper_file_is_generated_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper.key");
        load_pepper(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let first = std::fs::read(&path).unwrap();
        // Loading again reads the same file, never replaces it.
        load_pepper(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first);

        for mode in [0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_pepper(&path).unwrap_err().to_string();
            assert!(
                err.contains("chmod 600") && err.contains(&format!("{mode:04o}")),
                "{err}"
            );
        }
    }

    #[test]
    fn pepper_of_a_wrong_size_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        for content in [&b"short-pepper"[..], &[b'x'; 65][..]] {
            let path = dir.path().join(format!("pepper-{}", content.len()));
            create_file_atomically(&path, content).unwrap();
            let err = load_pepper(&path).unwrap_err().to_string();
            assert!(err.contains("16 to 64 bytes"), "{err}");
            assert!(
                !err.contains("short-pepper") && !err.contains("xxxx"),
                "{err}"
            );
        }
    }
}
