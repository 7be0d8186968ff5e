//! The registry of migration version ranges, and how every finsec crate builds its migrator.
//!
//! All finsec crates (and the reference server) record their migrations in sqlx's one
//! `_sqlx_migrations` table, so versions must never collide: each crate owns a range,
//! listed in [`REGISTRY`] and in `MIGRATIONS.md` at the repository root. A crate's
//! migrator is built with [`prepare`], which tells sqlx to ignore versions it does not know
//! (the other crates'), so running crate A, then crate B, then A again works on one
//! database. The workspace test `finsec-sql/tests/registry.rs` checks every migration
//! file of the repository against the registry.

use sqlx::migrate::Migrator;

/// The migration versions one crate owns, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// The crate (or application) that owns the range.
    pub owner: &'static str,
    /// The first version of the range.
    pub first: i64,
    /// The last version of the range.
    pub last: i64,
}

impl VersionRange {
    /// Whether `version` is in the range.
    #[must_use]
    pub const fn contains(&self, version: i64) -> bool {
        self.first <= version && version <= self.last
    }

    /// Whether the two ranges share a version.
    #[must_use]
    pub const fn overlaps(&self, other: &Self) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// finsec-crypto: subject keys (`finsec_subject_keys`).
pub const FINSEC_CRYPTO: VersionRange = VersionRange {
    owner: "finsec-crypto",
    first: 10_001,
    last: 10_999,
};

/// finsec-auth: tokens 20001–20099, MFA 20101–20199, API keys 20201–20299.
pub const FINSEC_AUTH: VersionRange = VersionRange {
    owner: "finsec-auth",
    first: 20_001,
    last: 20_999,
};

/// finsec-rbac: maker-checker approvals.
pub const FINSEC_RBAC: VersionRange = VersionRange {
    owner: "finsec-rbac",
    first: 30_001,
    last: 30_999,
};

/// finsec-audit: the Merkle audit log.
pub const FINSEC_AUDIT: VersionRange = VersionRange {
    owner: "finsec-audit",
    first: 40_001,
    last: 40_999,
};

/// finsec-compliance: MiFIR transaction reports 50001–50099, the consent ledger
/// 50101–50199.
pub const FINSEC_COMPLIANCE: VersionRange = VersionRange {
    owner: "finsec-compliance",
    first: 50_001,
    last: 50_999,
};

/// finsec-ratelimit (reserved).
pub const FINSEC_RATELIMIT: VersionRange = VersionRange {
    owner: "finsec-ratelimit",
    first: 60_001,
    last: 60_999,
};

/// The reference server's own tables (`examples/reference-server`).
pub const REFERENCE_SERVER: VersionRange = VersionRange {
    owner: "finsec-reference-server",
    first: 90_001,
    last: 90_999,
};

/// Every range, in version order. Ranges never overlap.
pub const REGISTRY: [VersionRange; 7] = [
    FINSEC_CRYPTO,
    FINSEC_AUTH,
    FINSEC_RBAC,
    FINSEC_AUDIT,
    FINSEC_COMPLIANCE,
    FINSEC_RATELIMIT,
    REFERENCE_SERVER,
];

/// The range that `owner` (a crate name) owns, if it has one.
#[must_use]
pub fn range_of(owner: &str) -> Option<&'static VersionRange> {
    REGISTRY.iter().find(|r| r.owner == owner)
}

/// The range `version` falls in, if any.
#[must_use]
pub fn owner_of(version: i64) -> Option<&'static VersionRange> {
    REGISTRY.iter().find(|r| r.contains(version))
}

/// A migration version outside the range of the crate that ships it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "migration {version} ({description}) of {owner} is outside its range {first}-{last} \
     (see MIGRATIONS.md)"
)]
pub struct OutOfRange {
    /// The crate whose migrator holds the migration.
    pub owner: &'static str,
    /// The offending version.
    pub version: i64,
    /// The migration's description (its file name after the version).
    pub description: String,
    /// The first version of the crate's range.
    pub first: i64,
    /// The last version of the crate's range.
    pub last: i64,
}

/// `migrator`, set up to share one `_sqlx_migrations` table with the other finsec crates:
/// versions recorded there by other crates are not an error (`set_ignore_missing`).
///
/// sqlx still refuses an applied migration of *this* migrator whose file changed
/// (checksum), and holds its migration lock (an advisory lock on PostgreSQL) while it runs.
#[must_use]
pub fn prepare(mut migrator: Migrator) -> Migrator {
    migrator.set_ignore_missing(true);
    migrator
}

/// Runs `migrator` on PostgreSQL so that a failure never leaves sqlx's migration lock held.
///
/// sqlx takes a session-level advisory lock (one per database, not per schema) while it
/// migrates, and does not release it when a migration fails. Run on a pooled connection, the
/// connection would go back to the pool still holding the lock, and every later `migrate` of
/// every crate and instance on that database would wait forever. This runs on a connection
/// of its own and closes it on failure, which ends the session and releases the lock.
///
/// # Errors
/// The [`MigrateError`](sqlx::migrate::MigrateError) of acquiring the connection or of the
/// migration.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub async fn run_postgres(
    pool: &sqlx::PgPool,
    migrator: &Migrator,
) -> Result<(), sqlx::migrate::MigrateError> {
    use sqlx::Connection as _;
    let mut conn = pool.acquire().await?;
    let result = migrator.run(&mut *conn).await;
    if result.is_err() {
        let _closed = conn.detach().close().await;
    }
    result
}

/// Checks that every migration of `migrator` lies in `range`.
///
/// # Errors
/// [`OutOfRange`] naming the first migration outside it.
pub fn check(range: &VersionRange, migrator: &Migrator) -> Result<(), OutOfRange> {
    match migrator.iter().find(|m| !range.contains(m.version)) {
        None => Ok(()),
        Some(m) => Err(OutOfRange {
            owner: range.owner,
            version: m.version,
            description: m.description.to_string(),
            first: range.first,
            last: range.last,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ordered_disjoint_and_named_once() {
        for (i, a) in REGISTRY.iter().enumerate() {
            assert!(a.first <= a.last, "{a:?}");
            assert_eq!(range_of(a.owner), Some(a));
            for b in REGISTRY.iter().skip(i + 1) {
                assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
                assert!(a.last < b.first, "{a:?} listed before {b:?}");
                assert_ne!(a.owner, b.owner);
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(owner_of(20_201), Some(&FINSEC_AUTH));
        assert_eq!(owner_of(90_501), Some(&REFERENCE_SERVER));
        assert_eq!(owner_of(20_000), None);
        assert_eq!(owner_of(0), None);
        assert_eq!(range_of("finsec-nothing"), None);
        assert!(FINSEC_RBAC.contains(30_001) && FINSEC_RBAC.contains(30_999));
        assert!(!FINSEC_RBAC.contains(31_000));
    }

    #[test]
    fn prepare_ignores_other_crates_versions() {
        let m = prepare(Migrator::DEFAULT);
        assert!(m.ignore_missing);
        assert!(check(&FINSEC_AUTH, &m).is_ok());
    }
}
