//! A tamper-evident audit trail for finsec, with a security monitor.
//!
//! **Status: not built yet.** This crate is a placeholder in the workspace so that the
//! layout, features and CI are in place; it exports nothing. It will hold:
//!
//! - `AuditEvent` with a UUIDv7 id, microsecond UTC timestamp, clock source and precision class (MiFID II RTS 25), actor, action, resource and outcome.
//! - A SHA-256 hash chain with Ed25519-signed checkpoints published to an independent witness; `verify` reports the first broken record.
//! - Sinks (`AuditSink`): memory, fsync'd JSONL file, SQLite, Postgres and capped Redis streams, behind a buffered writer whose `append` returns only once a record is durable.
//! - Parameterised queries with keyset pagination, and a monitor with sliding-window detection rules and incident handlers.
//!
//! # Threat model
//!
//! None yet: the crate exports nothing, so it neither defends nor exposes anything. The
//! section arrives with the code.
#![forbid(unsafe_code)]
