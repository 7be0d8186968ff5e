//! The audit log in SQL, written once for SQLite and PostgreSQL (features `sqlite`,
//! `postgres`).
//!
//! Tables `finsec_audit_head`, `finsec_audit_events`, `finsec_audit_nodes` and
//! `finsec_audit_checkpoints` (migration 40001). One log per database (SQLite) or schema
//! (PostgreSQL).
//!
//! # Several writers
//!
//! Any number of processes may append to one log. An append is one transaction whose
//! first statement raises the size in `finsec_audit_head` and returns it: on PostgreSQL
//! that row lock, on SQLite the database write lock, orders the writers, so each gets the
//! positions after the previous one's and reads the tree's right edge as that one
//! committed it. A writer that appended last keeps the edge in memory and reads nothing;
//! one that finds another got there first reads the edge's `O(log n)` nodes. Positions
//! are never reused or skipped: a transaction that fails rolls its size back with it.
//!
//! Events are written with multi-row `INSERT`s in chunks, so a batch of a thousand events
//! is a handful of statements and one commit (group commit is the caller's batching, see
//! the buffered writer). `append` returns after the commit.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use finsec_sql::Backend;
use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use sqlx::Pool;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::merkle::{Frontier, Hash, NodeId};
use crate::sink::{Appended, EncodedEvent, StoredEvent};

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Store(Box::new(e))
    }
}

/// Events per multi-row `INSERT`: 11 parameters each, well under SQLite's 32,766 and
/// PostgreSQL's 65,535.
const EVENT_CHUNK: usize = 1_000;
/// Nodes per multi-row `INSERT` or lookup.
const NODE_CHUNK: usize = 4_000;

/// An [`AuditSink`](crate::AuditSink) in SQL, on a pool the caller built:
/// [`SqliteSink`](crate::sqlite::SqliteSink) / [`PgSink`](crate::postgres::PgSink). Run the
/// crate's `migrate` once before use.
///
/// Cheap to clone; clones share the pool and the cached tree edge.
pub struct SqlSink<DB: Backend> {
    pool: Pool<DB>,
    /// The tree's right edge after this process's last append.
    edge: Arc<Mutex<Option<Frontier>>>,
}

impl<DB: Backend> SqlSink<DB> {
    /// A sink on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            edge: Arc::new(Mutex::new(None)),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    fn cached_edge(&self, size: u64) -> Option<Frontier> {
        self.edge
            .lock()
            .as_ref()
            .filter(|f| f.size() == size)
            .cloned()
    }

    fn keep_edge(&self, edge: Frontier) {
        let mut cached = self.edge.lock();
        if cached.as_ref().is_none_or(|f| f.size() < edge.size()) {
            *cached = Some(edge);
        }
    }
}

impl<DB: Backend> Clone for SqlSink<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            edge: self.edge.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlSink<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSink")
            .field("backend", &DB::LABEL)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// A position or size as stored.
pub(crate) fn to_db(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::BeyondLog {
        size: i64::MAX as u64,
        asked: n,
    })
}

/// A stored position or size back.
pub(crate) fn from_db(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("{what} is negative: {n}")))
}

/// A stored hash back.
pub(crate) fn hash_from_db(bytes: &[u8], what: &str) -> Result<Hash> {
    Hash::try_from_slice(bytes).map_err(|_| Error::Corrupt(format!("{what} is not 32 bytes")))
}

/// The checkpoint table's key for a note.
pub(crate) fn note_digest(note: &str) -> Vec<u8> {
    Sha256::digest(note.as_bytes()).to_vec()
}

/// Refuses a batch that names one id twice.
pub(crate) fn check_batch(events: &[EncodedEvent]) -> Result<()> {
    let mut seen = HashSet::with_capacity(events.len());
    for e in events {
        if !seen.insert(e.id()) {
            return Err(Error::DuplicateEvent(e.id()));
        }
    }
    Ok(())
}

/// Extends `edge` by the events; returns the nodes above the leaves they complete.
pub(crate) fn grow(edge: &mut Frontier, events: &[EncodedEvent]) -> Vec<(NodeId, Hash)> {
    let mut nodes = Vec::with_capacity(events.len());
    for e in events {
        nodes.extend(edge.push(e.leaf()).into_iter().skip(1));
    }
    nodes
}

/// The trait implementation, expanded once per backend: the same code on a concrete pool
/// type, so none of sqlx's generic bounds need stating.
macro_rules! impl_sql_sink {
    ($db:ty) => {
        impl SqlSink<$db> {
            /// Reads the given nodes (level 0 from the events, the rest from the node
            /// table) through `conn`.
            async fn read_nodes(
                conn: &mut <$db as sqlx::Database>::Connection,
                ids: &[NodeId],
            ) -> Result<HashMap<NodeId, Hash>> {
                use sqlx::Row as _;
                let mut out = HashMap::with_capacity(ids.len());
                let (leaves, inner): (Vec<NodeId>, Vec<NodeId>) =
                    ids.iter().partition(|id| id.level == 0);
                for chunk in leaves.chunks(NODE_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT idx, leaf FROM finsec_audit_events WHERE idx IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(to_db(id.index)?);
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&mut *conn).await? {
                        let idx = from_db(row.try_get("idx")?, "finsec_audit_events.idx")?;
                        let leaf: Vec<u8> = row.try_get("leaf")?;
                        out.insert(
                            NodeId::new(0, idx),
                            hash_from_db(&leaf, "finsec_audit_events.leaf")?,
                        );
                    }
                }
                for chunk in inner.chunks(NODE_CHUNK / 2) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT CAST(level AS BIGINT) AS level, idx, hash FROM finsec_audit_nodes \
                         WHERE (level, idx) IN (VALUES ",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push("(");
                        list.push_bind_unseparated(i64::from(id.level));
                        list.push_unseparated(", ");
                        list.push_bind_unseparated(to_db(id.index)?);
                        list.push_unseparated(")");
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&mut *conn).await? {
                        let level: i64 = row.try_get("level")?;
                        let level = u8::try_from(level).map_err(|_| {
                            Error::Corrupt(format!("finsec_audit_nodes.level {level}"))
                        })?;
                        let idx = from_db(row.try_get("idx")?, "finsec_audit_nodes.idx")?;
                        let hash: Vec<u8> = row.try_get("hash")?;
                        out.insert(
                            NodeId::new(level, idx),
                            hash_from_db(&hash, "finsec_audit_nodes.hash")?,
                        );
                    }
                }
                Ok(out)
            }

            /// The tree's edge at `size`, read through `conn`.
            async fn read_edge(
                conn: &mut <$db as sqlx::Database>::Connection,
                size: u64,
            ) -> Result<Frontier> {
                let ids = Frontier::nodes_for(size);
                let found = Self::read_nodes(conn, &ids).await?;
                let hashes = ids
                    .iter()
                    .map(|id| {
                        found.get(id).copied().ok_or_else(|| {
                            Error::Corrupt(format!(
                                "tree node {}/{} is missing",
                                id.level, id.index
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Frontier::from_nodes(size, &hashes)?)
            }

            async fn write(
                conn: &mut <$db as sqlx::Database>::Connection,
                first: u64,
                events: &[EncodedEvent],
                nodes: &[(NodeId, Hash)],
            ) -> Result<(), sqlx::Error> {
                let mut index = first;
                for chunk in events.chunks(EVENT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO finsec_audit_events (idx, id, leaf, body, at_us, action, \
                         outcome, actor_user, actor_api_key, resource_type, resource_id) ",
                    );
                    let mut rows = Vec::with_capacity(chunk.len());
                    for e in chunk {
                        rows.push((index, e));
                        index += 1;
                    }
                    q.push_values(rows, |mut b, (index, e)| {
                        let s = e.summary();
                        b.push_bind(i64::try_from(index).unwrap_or(i64::MAX))
                            .push_bind(e.id().hyphenated().to_string())
                            .push_bind(e.leaf().as_bytes().to_vec())
                            .push_bind(e.bytes().to_vec())
                            .push_bind(s.at_us)
                            .push_bind(s.action.clone())
                            .push_bind(s.outcome.as_str())
                            .push_bind(s.user.clone())
                            .push_bind(s.api_key.clone())
                            .push_bind(s.resource_type.clone())
                            .push_bind(s.resource_id.clone());
                    });
                    q.build().execute(&mut *conn).await?;
                }
                for chunk in nodes.chunks(NODE_CHUNK / 3) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO finsec_audit_nodes (level, idx, hash) ",
                    );
                    q.push_values(chunk, |mut b, (id, hash)| {
                        b.push_bind(i16::from(id.level))
                            .push_bind(i64::try_from(id.index).unwrap_or(i64::MAX))
                            .push_bind(hash.as_bytes().to_vec());
                    });
                    q.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// After a failed insert: the first id of the batch already in the log.
            async fn find_duplicate(&self, events: &[EncodedEvent]) -> Result<Option<Uuid>> {
                use sqlx::Row as _;
                for chunk in events.chunks(NODE_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id FROM finsec_audit_events WHERE id IN (",
                    );
                    let mut list = q.separated(", ");
                    for e in chunk {
                        list.push_bind(e.id().hyphenated().to_string());
                    }
                    q.push(")");
                    let found: HashSet<String> = q
                        .build()
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<String, _>("id"))
                        .collect::<Result<_, _>>()?;
                    if let Some(e) = chunk
                        .iter()
                        .find(|e| found.contains(&e.id().hyphenated().to_string()))
                    {
                        return Ok(Some(e.id()));
                    }
                }
                Ok(None)
            }

            async fn head(&self) -> Result<u64> {
                let size: Option<i64> =
                    sqlx::query_scalar("SELECT size FROM finsec_audit_head WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?;
                let size = size.ok_or_else(|| {
                    Error::Corrupt("finsec_audit_head has no row: run migrate".to_owned())
                })?;
                from_db(size, "finsec_audit_head.size")
            }
        }

        #[async_trait::async_trait]
        impl crate::sink::AuditSink for SqlSink<$db> {
            async fn append(&self, events: &[EncodedEvent]) -> Result<Appended> {
                check_batch(events)?;
                if events.is_empty() {
                    let size = self.head().await?;
                    let mut conn = self.pool.acquire().await?;
                    let edge = Self::read_edge(&mut conn, size).await?;
                    return Ok(Appended {
                        first: size,
                        size,
                        root: edge.root(),
                    });
                }
                let n = to_db(events.len() as u64)?;
                let mut tx = self.pool.begin().await?;
                // The first statement is the write that orders the writers.
                let size: Option<i64> = sqlx::query_scalar(
                    "UPDATE finsec_audit_head SET size = size + $1 WHERE id = 1 RETURNING size",
                )
                .bind(n)
                .fetch_optional(&mut *tx)
                .await?;
                let size = size.ok_or_else(|| {
                    Error::Corrupt("finsec_audit_head has no row: run migrate".to_owned())
                })?;
                let size = from_db(size, "finsec_audit_head.size")?;
                let first = size - events.len() as u64;
                let mut edge = match self.cached_edge(first) {
                    Some(edge) => edge,
                    None => Self::read_edge(&mut tx, first).await?,
                };
                let nodes = grow(&mut edge, events);
                if let Err(e) = Self::write(&mut tx, first, events, &nodes).await {
                    let unique = matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation());
                    drop(tx);
                    if unique {
                        if let Some(id) = self.find_duplicate(events).await? {
                            return Err(Error::DuplicateEvent(id));
                        }
                        return Err(Error::Corrupt(format!(
                            "positions from {first} are already taken, but the head said the \
                             log had {first} events: run verify"
                        )));
                    }
                    return Err(e.into());
                }
                tx.commit().await?;
                let root = edge.root();
                self.keep_edge(edge);
                Ok(Appended { first, size, root })
            }

            async fn size(&self) -> Result<u64> {
                self.head().await
            }

            async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
                use sqlx::Row as _;
                let Ok(from) = i64::try_from(from) else {
                    return Ok(Vec::new());
                };
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = sqlx::query(
                    "SELECT idx, body, leaf FROM finsec_audit_events \
                     WHERE idx >= $1 ORDER BY idx LIMIT $2",
                )
                .bind(from)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let leaf: Vec<u8> = row.try_get("leaf")?;
                        Ok(StoredEvent {
                            index: from_db(row.try_get("idx")?, "finsec_audit_events.idx")?,
                            bytes: row.try_get("body")?,
                            leaf: hash_from_db(&leaf, "finsec_audit_events.leaf")?,
                        })
                    })
                    .collect()
            }

            async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
                let ids: Vec<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|id| i64::try_from(id.index).is_ok())
                    .collect();
                if ids.is_empty() {
                    return Ok(HashMap::new());
                }
                let mut conn = self.pool.acquire().await?;
                Self::read_nodes(&mut conn, &ids).await
            }

            async fn position(&self, id: Uuid) -> Result<Option<u64>> {
                let idx: Option<i64> =
                    sqlx::query_scalar("SELECT idx FROM finsec_audit_events WHERE id = $1")
                        .bind(id.hyphenated().to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                idx.map(|i| from_db(i, "finsec_audit_events.idx"))
                    .transpose()
            }

            async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO finsec_audit_checkpoints (size, digest, note) \
                     VALUES ($1, $2, $3) ON CONFLICT (size, digest) DO NOTHING",
                )
                .bind(to_db(size)?)
                .bind(note_digest(note))
                .bind(note)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
                use sqlx::Row as _;
                let to = i64::try_from(to).unwrap_or(i64::MAX);
                let Ok(from) = i64::try_from(from) else {
                    return Ok(Vec::new());
                };
                if from > to {
                    return Ok(Vec::new());
                }
                let rows = sqlx::query(
                    "SELECT size, note FROM finsec_audit_checkpoints \
                     WHERE size BETWEEN $1 AND $2 ORDER BY size, digest",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            from_db(row.try_get("size")?, "finsec_audit_checkpoints.size")?,
                            row.try_get("note")?,
                        ))
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl crate::query::AuditQuery for SqlSink<$db> {
            async fn query(&self, query: &crate::query::Query) -> Result<crate::query::Page> {
                use crate::query::Order;
                use sqlx::Row as _;
                query.validate()?;
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT idx, body FROM finsec_audit_events WHERE 1 = 1",
                );
                let text = [
                    (" AND actor_user = ", &query.user),
                    (" AND actor_api_key = ", &query.api_key),
                    (" AND action = ", &query.action),
                    (" AND resource_type = ", &query.resource_type),
                    (" AND resource_id = ", &query.resource_id),
                ];
                for (clause, value) in text {
                    if let Some(v) = value {
                        q.push(clause).push_bind(v.clone());
                    }
                }
                if let Some(o) = query.outcome {
                    q.push(" AND outcome = ").push_bind(o.as_str());
                }
                if let Some(t) = query.since_us {
                    q.push(" AND at_us >= ").push_bind(t);
                }
                if let Some(t) = query.until_us {
                    q.push(" AND at_us < ").push_bind(t);
                }
                let (cmp, dir) = match query.order {
                    Order::NewestFirst => (" AND idx < ", " ORDER BY idx DESC"),
                    Order::OldestFirst => (" AND idx > ", " ORDER BY idx ASC"),
                };
                if let Some(after) = query.after {
                    q.push(cmp).push_bind(i64::try_from(after).unwrap_or(i64::MAX));
                }
                q.push(dir).push(" LIMIT ").push_bind(
                    i64::try_from(query.limit + 1).unwrap_or(i64::MAX),
                );
                let rows = q.build().fetch_all(&self.pool).await?;
                let events = rows
                    .iter()
                    .map(|row| {
                        let idx = from_db(row.try_get("idx")?, "finsec_audit_events.idx")?;
                        let body: Vec<u8> = row.try_get("body")?;
                        Ok((idx, crate::event::AuditEvent::from_canonical(&body)?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(crate::query::page(events, query.limit))
            }
        }

        #[cfg(feature = "testing")]
        #[async_trait::async_trait]
        impl crate::testing::Tamper for SqlSink<$db> {
            async fn set_event(&self, index: u64, bytes: &[u8], leaf: Option<Hash>) -> Result<()> {
                let q = match leaf {
                    Some(leaf) => sqlx::query(
                        "UPDATE finsec_audit_events SET body = $1, leaf = $2 WHERE idx = $3",
                    )
                    .bind(bytes.to_vec())
                    .bind(leaf.as_bytes().to_vec()),
                    None => sqlx::query(
                        "UPDATE finsec_audit_events SET body = $1 WHERE idx = $2",
                    )
                    .bind(bytes.to_vec()),
                };
                q.bind(to_db(index)?).execute(&self.pool).await?;
                Ok(())
            }

            async fn delete_event(&self, index: u64) -> Result<()> {
                sqlx::query("DELETE FROM finsec_audit_events WHERE idx = $1")
                    .bind(to_db(index)?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn insert_event(&self, index: u64, bytes: &[u8], leaf: Hash) -> Result<()> {
                // Two steps through a range no position reaches, so the primary key holds
                // at every row.
                const AWAY: i64 = 1 << 50;
                let index = to_db(index)?;
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE finsec_audit_events SET idx = idx + $1 WHERE idx >= $2")
                    .bind(AWAY)
                    .bind(index)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE finsec_audit_events SET idx = idx - $1 + 1 WHERE idx >= $1")
                    .bind(AWAY)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO finsec_audit_events (idx, id, leaf, body, at_us, action, outcome) \
                     VALUES ($1, $2, $3, $4, 0, 'forged', 'success')",
                )
                .bind(index)
                .bind(Uuid::nil().hyphenated().to_string())
                .bind(leaf.as_bytes().to_vec())
                .bind(bytes.to_vec())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE finsec_audit_head SET size = size + 1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.edge.lock().take();
                Ok(())
            }

            async fn duplicate_position(&self, _index: u64) -> Result<bool> {
                // The position is the table's primary key.
                Ok(false)
            }

            async fn set_node(&self, id: NodeId, hash: Hash) -> Result<()> {
                sqlx::query("UPDATE finsec_audit_nodes SET hash = $1 WHERE level = $2 AND idx = $3")
                    .bind(hash.as_bytes().to_vec())
                    .bind(i16::from(id.level))
                    .bind(to_db(id.index)?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn truncate(&self, size: u64) -> Result<()> {
                let size = to_db(size)?;
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM finsec_audit_events WHERE idx >= $1")
                    .bind(size)
                    .execute(&mut *tx)
                    .await?;
                // Node l/i covers leaves i*2^l .. (i+1)*2^l.
                sqlx::query("DELETE FROM finsec_audit_nodes WHERE (idx + 1) * (1 << level) > $1")
                    .bind(size)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM finsec_audit_checkpoints WHERE size > $1")
                    .bind(size)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE finsec_audit_head SET size = $1")
                    .bind(size)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.edge.lock().take();
                Ok(())
            }

            async fn set_checkpoints(&self, size: u64, notes: Vec<String>) -> Result<()> {
                let size = to_db(size)?;
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM finsec_audit_checkpoints WHERE size = $1")
                    .bind(size)
                    .execute(&mut *tx)
                    .await?;
                for note in &notes {
                    sqlx::query(
                        "INSERT INTO finsec_audit_checkpoints (size, digest, note) VALUES ($1, $2, $3)",
                    )
                    .bind(size)
                    .bind(note_digest(note))
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_sql_sink!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_sql_sink!(sqlx::Postgres);
