//! Redis storage for revocations and refresh tokens (feature `redis`).
//!
//! Keys, all under a caller-chosen prefix:
//! - `{prefix}tokens:revoked`: a sorted set, member `jti` (or `sid:` and a session's
//!   refresh family), score = expiry (unix µs). [`RevocationStore::purge_expired`] trims
//!   it; call it periodically. A token and its session are looked up with one `ZMSCORE`,
//!   so the store needs Redis 6.2 or later.
//! - `{prefix}tokens:refresh:{sha256 hex}`: a hash (`family`, `subject`, `expires`, `used`)
//!   that Redis deletes at the token's expiry (`PEXPIREAT`); after that the token is unknown.
//! - `{prefix}tokens:families-revoked`: a set of revoked families.
//!
//! Every read-modify-write is one Lua script, so it is atomic on the server.

use super::store::{NextRefresh, RefreshRecord, RefreshTokenStore, RevocationStore, RotateOutcome};
use super::{Result, TokenError};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::fmt;
use time::OffsetDateTime;

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

const REVOKE: &str = r"
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
return 1
";

const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'family', ARGV[1], 'subject', ARGV[2], 'expires', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
";

const ROTATE: &str = r"
local t = redis.call('HMGET', KEYS[1], 'family', 'subject', 'expires', 'used')
if not t[1] then return {'unknown'} end
if redis.call('SISMEMBER', KEYS[3], t[1]) == 1 then return {'revoked'} end
if t[4] then
  redis.call('SADD', KEYS[3], t[1])
  return {'reused', t[1]}
end
if tonumber(t[3]) <= tonumber(ARGV[1]) then return {'expired'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], 'used', ARGV[1])
-- The successor never outlives the spent token (integers below 2^53: exact in Lua).
local expires, at_ms = ARGV[2], ARGV[3]
if tonumber(t[3]) < tonumber(ARGV[2]) then
  expires = t[3]
  at_ms = string.format('%.0f', math.floor(tonumber(t[3]) / 1000))
end
redis.call('HSET', KEYS[2], 'family', t[1], 'subject', t[2], 'expires', expires)
redis.call('PEXPIREAT', KEYS[2], at_ms)
return {'rotated', t[1], t[2], t[3]}
";

/// A [`RevocationStore`] in Redis, on a connection the caller built.
#[derive(Clone)]
pub struct RedisRevocationStore {
    conn: ConnectionManager,
    key: String,
    script: redis::Script,
}

impl fmt::Debug for RedisRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocationStore")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationStore {
    /// A store whose keys start with `prefix` (for example `myapp:`).
    #[must_use]
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            key: format!("{prefix}tokens:revoked"),
            script: redis::Script::new(REVOKE),
        }
    }
}

#[async_trait]
impl RevocationStore for RedisRevocationStore {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .script
            .key(&self.key)
            .arg(jti)
            .arg(micros(expires_at))
            .invoke_async(&mut conn)
            .await
            .map_err(TokenError::store)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool> {
        self.any_revoked(&[jti], now).await
    }

    /// One `ZMSCORE` for every id (Redis 6.2 or later).
    async fn any_revoked(&self, jtis: &[&str], now: OffsetDateTime) -> Result<bool> {
        if jtis.is_empty() {
            return Ok(false);
        }
        let mut conn = self.conn.clone();
        let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
            .arg(&self.key)
            .arg(jtis)
            .query_async(&mut conn)
            .await
            .map_err(TokenError::store)?;
        #[expect(
            clippy::cast_precision_loss,
            reason = "unix microseconds stay below 2^53, exact in f64"
        )]
        let now = micros(now) as f64;
        Ok(scores.into_iter().flatten().any(|s| s > now))
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut conn = self.conn.clone();
        let removed: u64 = redis::cmd("ZREMRANGEBYSCORE")
            .arg(&self.key)
            .arg("-inf")
            .arg(micros(now))
            .query_async(&mut conn)
            .await
            .map_err(TokenError::store)?;
        Ok(removed)
    }
}

/// A [`RefreshTokenStore`] in Redis, on a connection the caller built.
#[derive(Clone)]
pub struct RedisRefreshTokenStore {
    conn: ConnectionManager,
    prefix: String,
    insert: redis::Script,
    rotate: redis::Script,
}

impl fmt::Debug for RedisRefreshTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshTokenStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshTokenStore {
    /// A store whose keys start with `prefix` (for example `myapp:`).
    #[must_use]
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            insert: redis::Script::new(INSERT),
            rotate: redis::Script::new(ROTATE),
        }
    }

    fn token_key(&self, hash: &str) -> String {
        format!("{}tokens:refresh:{hash}", self.prefix)
    }

    fn families_key(&self) -> String {
        format!("{}tokens:families-revoked", self.prefix)
    }
}

fn parse_i64(s: Option<&String>) -> Result<i64> {
    s.and_then(|v| v.parse().ok())
        .ok_or_else(|| TokenError::store("corrupt refresh token entry"))
}

#[async_trait]
impl RefreshTokenStore for RedisRefreshTokenStore {
    async fn insert(&self, record: RefreshRecord) -> Result<()> {
        let mut conn = self.conn.clone();
        let inserted: i64 = self
            .insert
            .key(self.token_key(&record.token_hash))
            .arg(&record.family)
            .arg(&record.subject)
            .arg(micros(record.expires_at))
            .arg(millis(record.expires_at))
            .invoke_async(&mut conn)
            .await
            .map_err(TokenError::store)?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(TokenError::store("refresh token hash already exists"))
        }
    }

    async fn rotate(
        &self,
        token_hash: &str,
        next: NextRefresh,
        now: OffsetDateTime,
    ) -> Result<RotateOutcome> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .rotate
            .key(self.token_key(token_hash))
            .key(self.token_key(&next.token_hash))
            .key(self.families_key())
            .arg(micros(now))
            .arg(micros(next.expires_at))
            .arg(millis(next.expires_at))
            .invoke_async(&mut conn)
            .await
            .map_err(TokenError::store)?;
        match reply.first().map(String::as_str) {
            Some("unknown") => Ok(RotateOutcome::Unknown),
            Some("revoked") => Ok(RotateOutcome::FamilyRevoked),
            Some("expired") => Ok(RotateOutcome::Expired),
            Some("reused") => Ok(RotateOutcome::Reused {
                family: reply.get(1).cloned().unwrap_or_default(),
            }),
            Some("rotated") => {
                let expires = parse_i64(reply.get(3))?;
                Ok(RotateOutcome::Rotated(RefreshRecord {
                    token_hash: token_hash.to_owned(),
                    family: reply.get(1).cloned().unwrap_or_default(),
                    subject: reply.get(2).cloned().unwrap_or_default(),
                    expires_at: OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(expires) * 1000,
                    )
                    .map_err(TokenError::store)?,
                }))
            }
            Some("exists") => Err(TokenError::store("refresh token hash already exists")),
            _ => Err(TokenError::store("unexpected reply from rotate script")),
        }
    }

    async fn revoke_family(&self, family: &str, _at: OffsetDateTime) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("SADD")
            .arg(self.families_key())
            .arg(family)
            .query_async(&mut conn)
            .await
            .map_err(TokenError::store)?;
        Ok(())
    }
}
