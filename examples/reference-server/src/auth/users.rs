//! The server's users: names, the users table, TOTP secrets and API key names
//! ([`UserStore`], implemented on SQLite and PostgreSQL in [`super::sql`]).

use std::fmt;

use async_trait::async_trait;
use finsec_auth::api_keys::ApiKeyId;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

use crate::storage::sql::StoreResult;

/// Shortest username, in characters.
pub const USERNAME_MIN_CHARS: usize = 3;
/// Longest username, in characters.
pub const USERNAME_MAX_CHARS: usize = 64;
/// The characters a username may hold, as a regular expression character class (the
/// OpenAPI document's `pattern` is built from the same rule; a test compares them).
pub const USERNAME_CHARSET: &str = "[A-Za-z0-9._-]";

/// Whether `c` may appear in a username: an ASCII letter or digit, `.`, `_` or `-`.
///
/// Names are ASCII only: other scripts' letters, and their look-alikes (Cyrillic `а` for
/// Latin `a`, full-width letters), would let one user pass for another.
pub const fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A checked username, and the case-folded key that makes it unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Checks a new name: 3 to 64 characters, each an ASCII letter or digit, `.`, `_` or
    /// `-` (see [`is_username_char`]). Nothing is normalised: the name is kept as sent.
    ///
    /// # Errors
    /// Why the name is refused.
    pub fn parse(input: &str) -> Result<Self, String> {
        if let Some(bad) = input.chars().find(|c| !is_username_char(*c)) {
            return Err(format!(
                "username may hold only ASCII letters, digits, '.', '_' and '-' (found {:?})",
                bad.escape_default().to_string()
            ));
        }
        // ASCII only from here: bytes are characters.
        if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&input.len()) {
            return Err(format!(
                "username must be {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters long"
            ));
        }
        Ok(Self {
            display: input.to_owned(),
            key: input.to_ascii_lowercase(),
        })
    }

    /// The key a login name is looked up by: the same case-folding as [`Username::key`],
    /// applied to any text, so that accounts registered when names could hold any letter
    /// (keyed by their NFKC, lower-cased form) can still log in. `None` for text far
    /// longer than any name, which cannot match.
    pub fn lookup_key(input: &str) -> Option<String> {
        // NFKC composes at most four code points into one (a letter and its marks), so
        // longer text cannot fold to a stored key of at most USERNAME_MAX_CHARS characters.
        if input.chars().count() > USERNAME_MAX_CHARS.saturating_mul(4) {
            return None;
        }
        let display: String = input.nfkc().collect();
        Some(display.to_lowercase().nfkc().collect())
    }

    /// A name and key as a store keeps them (sealed name, keyed index), unchecked: only
    /// for passing stored values through [`UserStore::insert_user`].
    pub(crate) fn stored(display: String, key: String) -> Self {
        Self { display, key }
    }

    /// The name as registered.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form, unique among users.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A user row (`Debug` hides the password hash).
#[derive(Clone)]
pub struct User {
    /// The user's id (UUIDv7).
    pub id: Uuid,
    /// The name as registered.
    pub username: String,
    /// The stored password hash (PHC string).
    pub password_hash: String,
    /// Whether a TOTP second factor is confirmed.
    pub mfa_enabled: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("mfa_enabled", &self.mfa_enabled)
            .finish_non_exhaustive()
    }
}

/// A user's TOTP secret as stored (`Debug` hides the sealed secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTotpSecret {
    /// The secret, envelope-encrypted (associated data
    /// `aad_for("server_mfa_secrets", "secret", user_id)`).
    pub sealed: String,
    /// Whether the enrollment is confirmed (the second factor is on).
    pub confirmed: bool,
}

impl fmt::Debug for StoredTotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTotpSecret")
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

/// The name a user gave one of their API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName {
    /// The key (finsec-auth's id).
    pub key_id: ApiKeyId,
    /// The name.
    pub name: String,
}

/// The users table (`server_users`), the users' TOTP secrets (`server_mfa_secrets`) and
/// the names of their API keys (`server_api_keys`).
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts user `id` named `name`, with `password_hash`, created at `now`.
    ///
    /// Returns `false`, and inserts nothing, if the name's case-folded key is taken (or,
    /// against all odds, the id): of concurrent registrations of one name, exactly one
    /// returns `true`.
    ///
    /// # Errors
    /// [`StoreError`](crate::storage::sql::StoreError) if the database fails.
    async fn insert_user(
        &self,
        id: Uuid,
        name: &Username,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// The user whose case-folded name is `key` (see [`Username::key`] and
    /// [`Username::lookup_key`]); `None` if there is none.
    ///
    /// # Errors
    /// If the database fails or the row does not decode.
    async fn find_by_name(&self, key: &str) -> StoreResult<Option<User>>;

    /// The user with id `id`; `None` if there is none.
    ///
    /// # Errors
    /// If the database fails or the row does not decode.
    async fn find_by_id(&self, id: Uuid) -> StoreResult<Option<User>>;

    /// Replaces user `id`'s password hash (after a rehash on login). Returns `false` if
    /// there is no such user.
    ///
    /// # Errors
    /// If the database fails.
    async fn update_password_hash(
        &self,
        id: Uuid,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Stores a pending (unconfirmed) TOTP secret for `user`, replacing an earlier pending
    /// one. Returns `false`, and changes nothing, if the user's second factor is already
    /// confirmed.
    ///
    /// # Errors
    /// If the database fails (a user that does not exist is such a failure).
    async fn put_pending_secret(
        &self,
        user: Uuid,
        sealed: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// `user`'s TOTP secret and whether it is confirmed; `None` if the user has none.
    ///
    /// # Errors
    /// If the database fails.
    async fn mfa_secret(&self, user: Uuid) -> StoreResult<Option<StoredTotpSecret>>;

    /// Marks `user`'s pending secret confirmed and turns MFA on for the user, in one
    /// transaction. Returns `false`, and changes nothing, if there is no pending secret
    /// (none, or already confirmed: of two concurrent calls, one returns `true`).
    ///
    /// # Errors
    /// If the database fails.
    async fn confirm_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool>;

    /// Counts one more consecutive wrong second-factor code for `user` and answers the
    /// count (atomic: of `n` concurrent calls on a count of `c`, the answers are `c + 1`
    /// to `c + n`).
    ///
    /// # Errors
    /// If the database fails (an unknown user is such a failure).
    async fn mfa_failed(&self, user: Uuid) -> StoreResult<u32>;

    /// Locks `user`'s second factor until `until` (after [`mfa_failed`](Self::mfa_failed)).
    ///
    /// # Errors
    /// If the database fails.
    async fn lock_mfa(&self, user: Uuid, until: OffsetDateTime) -> StoreResult<()>;

    /// Until when `user`'s second factor is locked; `None` if it never was since the last
    /// correct code (a time in the past means the lock is over).
    ///
    /// # Errors
    /// If the database fails.
    async fn mfa_locked_until(&self, user: Uuid) -> StoreResult<Option<OffsetDateTime>>;

    /// Clears `user`'s count of wrong codes and any lock (a correct code).
    ///
    /// # Errors
    /// If the database fails.
    async fn mfa_succeeded(&self, user: Uuid) -> StoreResult<()>;

    /// Removes `user`'s TOTP secret (pending or confirmed) and turns MFA off, in one
    /// transaction. Returns `false`, and changes nothing, if there was no secret.
    ///
    /// # Errors
    /// If the database fails.
    async fn disable_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool>;

    /// Records `name` for API key `key_id` of `user`. Returns `false`, and changes nothing,
    /// if that key already has a name.
    ///
    /// # Errors
    /// If the database fails (a user that does not exist is such a failure).
    async fn insert_key_name(
        &self,
        key_id: &ApiKeyId,
        user: Uuid,
        name: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// The names of `user`'s API keys, oldest first (empty if none).
    ///
    /// # Errors
    /// If the database fails or a stored key id does not decode.
    async fn key_names(&self, user: Uuid) -> StoreResult<Vec<ApiKeyName>>;

    /// Up to `limit` users with an id above `after`, in id order, with their name and key
    /// as stored (for re-sealing rows written before names were sealed).
    ///
    /// # Errors
    /// If the database fails or a row does not decode.
    async fn stored_names(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<StoredName>>;

    /// Replaces user `id`'s stored name and key, if the stored name is still `old`
    /// (compare-and-set). Returns whether it did.
    ///
    /// # Errors
    /// If the database fails (a key already taken is such a failure).
    async fn replace_name(&self, id: Uuid, old: &str, name: &str, key: &str) -> StoreResult<bool>;

    /// Erases user `id`'s profile, in one transaction: name and key become `tombstone`,
    /// the password hash an unusable `!`, the second factor off, and the user's TOTP
    /// secret, MFA challenges and failures, remembered devices, reset requests and API key
    /// names are deleted. The row itself stays (kept records point at its id). Returns
    /// `false` if there is no such user.
    ///
    /// # Errors
    /// If the database fails.
    async fn erase_user(&self, id: Uuid, tombstone: &str, now: OffsetDateTime)
    -> StoreResult<bool>;
}

/// A user's name and key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredName {
    /// The user.
    pub id: Uuid,
    /// The `username` column.
    pub name: String,
    /// The `username_key` column.
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_folded() {
        let name = Username::parse("Alice.W").unwrap();
        assert_eq!(name.as_str(), "Alice.W");
        assert_eq!(name.key(), "alice.w");
        assert_eq!(Username::parse("ALICE.w").unwrap().key(), name.key());
        assert_eq!(Username::parse("zoe_9-x").unwrap().key(), "zoe_9-x");
        // Login keys fold like registration keys, and like the keys of names registered
        // when any letter was allowed.
        assert_eq!(Username::lookup_key("ALICE.w").as_deref(), Some("alice.w"));
        assert_eq!(Username::lookup_key("Zoë").as_deref(), Some("zoë"));
        assert_eq!(
            Username::lookup_key("\u{FF21}lice").as_deref(),
            Some("alice")
        );
        assert_eq!(Username::lookup_key(&"n".repeat(100_000)), None);
    }

    #[test]
    fn usernames_outside_the_rules_are_refused() {
        for bad in [
            "ab",
            "a b",
            "a/b",
            "x@y",
            "tab\there",
            &"n".repeat(65),
            "",
            // Letters of other scripts, and look-alikes of ASCII letters.
            "zoë_9-x",
            "\u{FF21}lice",
            "\u{430}dmin",
            "abc\n",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert!(err.starts_with("username"), "{bad:?}: {err}");
        }
        assert!(Username::parse(&"n".repeat(64)).is_ok());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse("A.b_c-9").is_ok());
    }

    #[test]
    fn user_debug_hides_the_hash() {
        let user = User {
            id: Uuid::now_v7(),
            username: "alice".to_owned(),
            password_hash: "$argon2id$v=19$secret-hash".to_owned(),
            mfa_enabled: false,
        };
        let text = format!("{user:?}");
        assert!(
            text.contains("alice") && !text.contains("secret-hash"),
            "{text}"
        );
    }
}
