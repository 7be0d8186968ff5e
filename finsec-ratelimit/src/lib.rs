//! Rate limiting for finsec, shared by every instance of an application.
//!
//! **Status: not built yet.** This crate is a placeholder in the workspace so that the
//! layout, features and CI are in place; it exports nothing. It will hold:
//!
//! - GCRA (default), sliding-window and fixed-window algorithms, several quotas per key and a cost per request.
//! - A `Decision` with remaining quota, `retry_after` and reset time for `Retry-After` and the IETF `RateLimit` headers.
//! - An in-memory sharded store and a Redis store that decides atomically in one round trip with a server-side script and the server's clock.
//! - Trusted-proxy client IP extraction, trading limits (messages per second, order-to-trade ratio) and a configurable behaviour when the backend fails.
//!
//! # Threat model
//!
//! None yet: the crate exports nothing, so it neither defends nor exposes anything. The
//! section arrives with the code.
#![forbid(unsafe_code)]
