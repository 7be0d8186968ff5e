//! Helpers shared by the SQL stores: times as unix microseconds, scopes as a JSON array.

use finsec_rbac::PermissionPattern;
use time::OffsetDateTime;

use super::{ApiKeyError, ApiKeyId, ApiKeyRecord, Result, SecretHash};

/// Unix time in microseconds.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| ApiKeyError::TimeOutOfRange(t))
}

/// A use count as stored (saturating at `i64::MAX`).
pub(crate) fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A key id as stored: 16 lowercase hex digits.
pub(crate) fn id_to_db(id: &ApiKeyId) -> String {
    id.to_string()
}

/// Scopes as stored: a JSON array of pattern strings.
pub(crate) fn scopes_to_db(scopes: &[PermissionPattern]) -> String {
    let texts: Vec<&str> = scopes.iter().map(PermissionPattern::as_str).collect();
    serde_json::Value::from(texts).to_string()
}

/// One row as read from the database.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub(crate) key_id: String,
    pub(crate) owner: String,
    pub(crate) scopes: String,
    pub(crate) secret_hash: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) replaced_by: Option<String>,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) use_count: i64,
}

impl RawRow {
    pub(crate) fn into_record(self) -> Result<ApiKeyRecord> {
        let key_id = self.key_id;
        let corrupt = |detail: &str| ApiKeyError::Corrupt {
            id: key_id.clone(),
            detail: detail.to_owned(),
        };
        let time = |micros: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                .map_err(|_| corrupt("timestamp out of range"))
        };
        let opt_time = |micros: Option<i64>| micros.map(time).transpose();
        let id: ApiKeyId = key_id.parse().map_err(|_| corrupt("bad key id"))?;
        let texts: Vec<String> =
            serde_json::from_str(&self.scopes).map_err(|_| corrupt("scopes not a json array"))?;
        let scopes = texts
            .iter()
            .map(|t| PermissionPattern::new(t))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| corrupt("invalid scope pattern"))?;
        let hash: [u8; 32] = self
            .secret_hash
            .try_into()
            .map_err(|_| corrupt("secret hash not 32 bytes"))?;
        let replaced_by = self
            .replaced_by
            .map(|s| s.parse::<ApiKeyId>())
            .transpose()
            .map_err(|_| corrupt("bad replaced_by id"))?;
        Ok(ApiKeyRecord {
            id,
            owner: self.owner,
            scopes,
            secret_hash: SecretHash::from_bytes(hash),
            created_at: time(self.created_at)?,
            expires_at: opt_time(self.expires_at)?,
            revoked_at: opt_time(self.revoked_at)?,
            replaced_by,
            last_used_at: opt_time(self.last_used_at)?,
            use_count: u64::try_from(self.use_count).map_err(|_| corrupt("negative use count"))?,
        })
    }
}

/// The columns every `SELECT` reads, in [`RawRow`] order.
pub(crate) const COLUMNS: &str = "key_id, owner, scopes, secret_hash, created_at, expires_at, \
     revoked_at, replaced_by, last_used_at, use_count";
