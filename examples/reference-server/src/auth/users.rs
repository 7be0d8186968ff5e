//! The server's user, TOTP-secret and MFA-challenge tables (`server_users`,
//! `server_mfa_secrets`, `server_mfa_challenges`) on SQLite or PostgreSQL.

use std::fmt;

use sqlx::Row as _;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

use crate::storage::Storage;

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

const USER_COLUMNS: &str = "id, username, password_hash, mfa_enabled";

fn sqlite_user(row: &sqlx::sqlite::SqliteRow) -> Result<User, sqlx::Error> {
    let id: String = row.try_get(0)?;
    Ok(User {
        id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        mfa_enabled: row.try_get::<i64, _>(3)? != 0,
    })
}

fn pg_user(row: &sqlx::postgres::PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        mfa_enabled: row.try_get(3)?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Inserts a user; `Ok(false)` if the name (case-folded) is taken.
///
/// # Errors
/// A database failure.
pub async fn insert_user(
    storage: &Storage,
    id: Uuid,
    name: &Username,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO server_users \
               (id, username, username_key, password_hash, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $5)";
    let result = match storage {
        Storage::Sqlite(pool) => sqlx::query(sql)
            .bind(id.to_string())
            .bind(name.as_str())
            .bind(name.key())
            .bind(password_hash)
            .bind(now.unix_timestamp())
            .execute(pool)
            .await
            .map(|_| ()),
        Storage::Postgres(pool) => sqlx::query(sql)
            .bind(id)
            .bind(name.as_str())
            .bind(name.key())
            .bind(password_hash)
            .bind(now.unix_timestamp())
            .execute(pool)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The user whose case-folded name is `key`.
///
/// # Errors
/// A database failure.
pub async fn find_by_name(storage: &Storage, key: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM server_users WHERE username_key = $1");
    match storage {
        Storage::Sqlite(pool) => sqlx::query(&sql)
            .bind(key)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(sqlite_user)
            .transpose(),
        Storage::Postgres(pool) => sqlx::query(&sql)
            .bind(key)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(pg_user)
            .transpose(),
    }
}

/// The user with id `id`.
///
/// # Errors
/// A database failure.
pub async fn find_by_id(storage: &Storage, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM server_users WHERE id = $1");
    match storage {
        Storage::Sqlite(pool) => sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(sqlite_user)
            .transpose(),
        Storage::Postgres(pool) => sqlx::query(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(pg_user)
            .transpose(),
    }
}

/// Replaces a user's password hash (after a rehash on login).
///
/// # Errors
/// A database failure.
pub async fn update_password_hash(
    storage: &Storage,
    id: Uuid,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE server_users SET password_hash = $1, updated_at = $2 WHERE id = $3";
    match storage {
        Storage::Sqlite(pool) => {
            sqlx::query(sql)
                .bind(password_hash)
                .bind(now.unix_timestamp())
                .bind(id.to_string())
                .execute(pool)
                .await?;
        }
        Storage::Postgres(pool) => {
            sqlx::query(sql)
                .bind(password_hash)
                .bind(now.unix_timestamp())
                .bind(id)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Stores a pending (unconfirmed) TOTP secret, replacing an earlier pending one; returns
/// `false` and changes nothing if the user's second factor is already confirmed.
///
/// # Errors
/// A database failure.
pub async fn put_pending_secret(
    storage: &Storage,
    user: Uuid,
    sealed: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let done = match storage {
        Storage::Sqlite(pool) => sqlx::query(
            "INSERT INTO server_mfa_secrets (user_id, secret, confirmed, created_at) \
             VALUES ($1, $2, 0, $3) ON CONFLICT (user_id) DO UPDATE \
             SET secret = excluded.secret, created_at = excluded.created_at \
             WHERE server_mfa_secrets.confirmed = 0",
        )
        .bind(user.to_string())
        .bind(sealed)
        .bind(now.unix_timestamp())
        .execute(pool)
        .await?
        .rows_affected(),
        Storage::Postgres(pool) => sqlx::query(
            "INSERT INTO server_mfa_secrets (user_id, secret, confirmed, created_at) \
             VALUES ($1, $2, FALSE, $3) ON CONFLICT (user_id) DO UPDATE \
             SET secret = excluded.secret, created_at = excluded.created_at \
             WHERE NOT server_mfa_secrets.confirmed",
        )
        .bind(user)
        .bind(sealed)
        .bind(now.unix_timestamp())
        .execute(pool)
        .await?
        .rows_affected(),
    };
    Ok(done == 1)
}

/// A user's sealed TOTP secret and whether it is confirmed.
///
/// # Errors
/// A database failure.
pub async fn secret(storage: &Storage, user: Uuid) -> Result<Option<(String, bool)>, sqlx::Error> {
    let sql = "SELECT secret, confirmed FROM server_mfa_secrets WHERE user_id = $1";
    Ok(match storage {
        Storage::Sqlite(pool) => sqlx::query(sql)
            .bind(user.to_string())
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<_, sqlx::Error> {
                Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? != 0))
            })
            .transpose()?,
        Storage::Postgres(pool) => sqlx::query(sql)
            .bind(user)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<_, sqlx::Error> { Ok((r.try_get(0)?, r.try_get(1)?)) })
            .transpose()?,
    })
}

/// Marks the user's pending secret confirmed and turns MFA on, in one transaction.
/// Returns `false` if there was no pending secret.
///
/// # Errors
/// A database failure.
pub async fn confirm_mfa(
    storage: &Storage,
    user: Uuid,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    match storage {
        Storage::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE server_mfa_secrets SET confirmed = 1 WHERE user_id = $1 AND confirmed = 0",
            )
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query("UPDATE server_users SET mfa_enabled = 1, updated_at = $1 WHERE id = $2")
                .bind(now.unix_timestamp())
                .bind(user.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Storage::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE server_mfa_secrets SET confirmed = TRUE \
                 WHERE user_id = $1 AND NOT confirmed",
            )
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE server_users SET mfa_enabled = TRUE, updated_at = $1 WHERE id = $2",
            )
            .bind(now.unix_timestamp())
            .bind(user)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    Ok(true)
}

/// Records a new MFA challenge `id` for `user`, valid until `expires_at`. Expired
/// challenges are deleted on the way.
///
/// # Errors
/// A database failure.
pub async fn insert_challenge(
    storage: &Storage,
    id: &str,
    user: Uuid,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let purge = "DELETE FROM server_mfa_challenges WHERE expires_at < $1";
    let insert = "INSERT INTO server_mfa_challenges (id, user_id, expires_at) VALUES ($1, $2, $3)";
    match storage {
        Storage::Sqlite(pool) => {
            sqlx::query(purge)
                .bind(now.unix_timestamp())
                .execute(pool)
                .await?;
            sqlx::query(insert)
                .bind(id)
                .bind(user.to_string())
                .bind(expires_at.unix_timestamp())
                .execute(pool)
                .await?;
        }
        Storage::Postgres(pool) => {
            sqlx::query(purge)
                .bind(now.unix_timestamp())
                .execute(pool)
                .await?;
            sqlx::query(insert)
                .bind(id)
                .bind(user)
                .bind(expires_at.unix_timestamp())
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Reserves one attempt on challenge `id` of `user`: counts it (before the code is
/// checked, so concurrent guesses cannot exceed the limit) if the challenge is unused,
/// unexpired and has had fewer than `max_attempts` attempts. `false`: the challenge is
/// closed.
///
/// # Errors
/// A database failure.
pub async fn challenge_attempt(
    storage: &Storage,
    id: &str,
    user: Uuid,
    now: OffsetDateTime,
    max_attempts: i64,
) -> Result<bool, sqlx::Error> {
    let n = match storage {
        Storage::Sqlite(pool) => sqlx::query(
            "UPDATE server_mfa_challenges SET attempts = attempts + 1 \
             WHERE id = $1 AND user_id = $2 AND used = 0 AND attempts < $3 AND expires_at > $4",
        )
        .bind(id)
        .bind(user.to_string())
        .bind(max_attempts)
        .bind(now.unix_timestamp())
        .execute(pool)
        .await?
        .rows_affected(),
        Storage::Postgres(pool) => sqlx::query(
            "UPDATE server_mfa_challenges SET attempts = attempts + 1 \
             WHERE id = $1 AND user_id = $2 AND NOT used AND attempts < $3 AND expires_at > $4",
        )
        .bind(id)
        .bind(user)
        .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
        .bind(now.unix_timestamp())
        .execute(pool)
        .await?
        .rows_affected(),
    };
    Ok(n == 1)
}

/// Marks challenge `id` used after a successful attempt; `false` if a concurrent request
/// used it first.
///
/// # Errors
/// A database failure.
pub async fn challenge_use(storage: &Storage, id: &str) -> Result<bool, sqlx::Error> {
    let n = match storage {
        Storage::Sqlite(pool) => {
            sqlx::query("UPDATE server_mfa_challenges SET used = 1 WHERE id = $1 AND used = 0")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        }
        Storage::Postgres(pool) => {
            sqlx::query("UPDATE server_mfa_challenges SET used = TRUE WHERE id = $1 AND NOT used")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        }
    };
    Ok(n == 1)
}

/// Records the name of API key `key_id` (hex) of `user`.
///
/// # Errors
/// A database failure.
pub async fn insert_key_name(
    storage: &Storage,
    key_id: &str,
    user: Uuid,
    name: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO server_api_keys (key_id, user_id, name, created_at) \
               VALUES ($1, $2, $3, $4)";
    match storage {
        Storage::Sqlite(pool) => sqlx::query(sql)
            .bind(key_id)
            .bind(user.to_string())
            .bind(name)
            .bind(now.unix_timestamp())
            .execute(pool)
            .await?
            .rows_affected(),
        Storage::Postgres(pool) => sqlx::query(sql)
            .bind(key_id)
            .bind(user)
            .bind(name)
            .bind(now.unix_timestamp())
            .execute(pool)
            .await?
            .rows_affected(),
    };
    Ok(())
}

/// The (key id, name) pairs of `user`'s API keys.
///
/// # Errors
/// A database failure.
pub async fn key_names(
    storage: &Storage,
    user: Uuid,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let sql = "SELECT key_id, name FROM server_api_keys WHERE user_id = $1";
    match storage {
        Storage::Sqlite(pool) => {
            sqlx::query_as(sql)
                .bind(user.to_string())
                .fetch_all(pool)
                .await
        }
        Storage::Postgres(pool) => sqlx::query_as(sql).bind(user).fetch_all(pool).await,
    }
}

/// Records that access token `jti` belongs to refresh family `family` (until
/// `expires_at`), deleting expired rows on the way.
///
/// # Errors
/// A database failure.
pub async fn insert_session(
    storage: &Storage,
    jti: &str,
    family: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let purge = "DELETE FROM server_sessions WHERE expires_at < $1";
    let insert = "INSERT INTO server_sessions (access_jti, family, expires_at) VALUES ($1, $2, $3)";
    match storage {
        Storage::Sqlite(pool) => {
            sqlx::query(purge)
                .bind(now.unix_timestamp())
                .execute(pool)
                .await?;
            sqlx::query(insert)
                .bind(jti)
                .bind(family)
                .bind(expires_at.unix_timestamp())
                .execute(pool)
                .await?;
        }
        Storage::Postgres(pool) => {
            sqlx::query(purge)
                .bind(now.unix_timestamp())
                .execute(pool)
                .await?;
            sqlx::query(insert)
                .bind(jti)
                .bind(family)
                .bind(expires_at.unix_timestamp())
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// The refresh family of access token `jti`, if recorded.
///
/// # Errors
/// A database failure.
pub async fn session_family(storage: &Storage, jti: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT family FROM server_sessions WHERE access_jti = $1";
    match storage {
        Storage::Sqlite(pool) => sqlx::query_scalar(sql).bind(jti).fetch_optional(pool).await,
        Storage::Postgres(pool) => sqlx::query_scalar(sql).bind(jti).fetch_optional(pool).await,
    }
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
