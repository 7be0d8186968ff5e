//! Integration tests of the reference server: each test starts the real binary on
//! `127.0.0.1:0` with its own data directory and talks to it over HTTP, so they run in
//! parallel. Backend tests need PostgreSQL and Redis (URLs from `FINSEC_TEST_POSTGRES_URL`
//! and `FINSEC_TEST_REDIS_URL`, local defaults) and fail, never skip, when those are down.
#![cfg(test)]
#![cfg(unix)]

mod audit;
mod auth;
mod backends;
mod compliance;
mod contract;
mod controls;
mod faults;
mod gdpr;
mod hostile;
mod http;
mod keys;
mod lifecycle;
mod lockout;
mod orders;
mod ratelimit;
mod scaleout;
mod support;
mod tls;
