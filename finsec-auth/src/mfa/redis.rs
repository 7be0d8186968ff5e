//! Redis [`TotpReplayStore`] and [`BackupCodeStore`] (feature `redis`).
//!
//! One key per user, `<prefix>totp-replay:<user id>`, holding the last accepted step.
//! `try_advance` is a Lua script (compare, then set), which Redis runs atomically, so two
//! requests on any number of servers can never both accept one step. Keys have no expiry:
//! the step must outlive the code window, and a key is a few bytes per user. Use a Redis
//! with persistence (AOF) if a restart must not reopen replay of the last ~90 seconds.
//!
//! Backup codes of a user are a set, `<prefix>backup-codes:<user id>`, of 32-byte hashes:
//! `consume` is `SREM` (atomic, succeeds for one caller only), `replace` is
//! `DEL` + `SADD` in one `MULTI`/`EXEC` transaction.

use std::fmt;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::backup::BackupCodeHash;
use super::error::{MfaError, Result};
use super::store::{BackupCodeStore, MfaUserId, TotpReplayStore, step_to_i64};

// Steps are compared as canonical non-negative decimal strings (longer is larger, equal
// lengths compare bytewise), not with `tonumber`, whose doubles lose precision above 2^53.
const ADVANCE: &str = r"
local current = redis.call('GET', KEYS[1])
local step = ARGV[1]
if current and (#current > #step or (#current == #step and current >= step)) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

/// A [`TotpReplayStore`] in Redis, on a connection the caller built.
#[derive(Clone)]
pub struct RedisTotpReplayStore {
    conn: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl fmt::Debug for RedisTotpReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTotpReplayStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisTotpReplayStore {
    /// A store whose keys all start with `prefix` (for example `myapp:`).
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            script: redis::Script::new(ADVANCE),
        }
    }

    fn key(&self, user: &MfaUserId) -> String {
        format!("{}totp-replay:{}", self.prefix, user.as_str())
    }
}

#[async_trait]
impl TotpReplayStore for RedisTotpReplayStore {
    async fn try_advance(&self, user: &MfaUserId, step: u64) -> Result<bool> {
        let step = step_to_i64(step)?;
        let mut conn = self.conn.clone();
        let set: i64 = self
            .script
            .key(self.key(user))
            .arg(step)
            .invoke_async(&mut conn)
            .await?;
        Ok(set == 1)
    }

    async fn last_step(&self, user: &MfaUserId) -> Result<Option<u64>> {
        let mut conn = self.conn.clone();
        let value: Option<i64> = redis::cmd("GET")
            .arg(self.key(user))
            .query_async(&mut conn)
            .await?;
        value
            .map(|v| u64::try_from(v).map_err(|_| MfaError::Corrupt(format!("negative step {v}"))))
            .transpose()
    }

    async fn forget(&self, user: &MfaUserId) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(user))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// A [`BackupCodeStore`] in Redis, on a connection the caller built.
#[derive(Clone)]
pub struct RedisBackupCodeStore {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisBackupCodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackupCodeStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBackupCodeStore {
    /// A store whose keys all start with `prefix` (for example `myapp:`).
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
        }
    }

    fn key(&self, user: &MfaUserId) -> String {
        format!("{}backup-codes:{}", self.prefix, user.as_str())
    }
}

#[async_trait]
impl BackupCodeStore for RedisBackupCodeStore {
    async fn replace(&self, user: &MfaUserId, hashes: Vec<BackupCodeHash>) -> Result<()> {
        let key = self.key(user);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        if !hashes.is_empty() {
            let members: Vec<&[u8]> = hashes.iter().map(|h| h.as_bytes().as_slice()).collect();
            pipe.cmd("SADD").arg(&key).arg(members).ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    async fn consume(&self, user: &MfaUserId, hash: &BackupCodeHash) -> Result<bool> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::cmd("SREM")
            .arg(self.key(user))
            .arg(hash.as_bytes().as_slice())
            .query_async(&mut conn)
            .await?;
        Ok(removed == 1)
    }

    async fn remaining(&self, user: &MfaUserId) -> Result<usize> {
        let mut conn = self.conn.clone();
        let count: usize = redis::cmd("SCARD")
            .arg(self.key(user))
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }
}
