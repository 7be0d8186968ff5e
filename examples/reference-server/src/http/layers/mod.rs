//! The request pipeline: every layer a request passes before its handler, one file each.
//!
//! Outermost first (a request goes down this list, its response comes back up):
//!
//! 1. [`security_headers`]: the security headers on every response, so 404s, 405s, 429s and
//!    the answers of every layer below carry them too.
//! 2. [`request_id`]: settles the request id, before anything logs.
//! 3. tracing: one span per request, with the request id, so every log line below is tied to
//!    it.
//! 4. [`client_addr`]: resolves the client's address once (through `--trusted-proxy`), for
//!    everyone after it.
//! 5. [`rate_limit::global`]: the `global` policy per address, before any work is spent on
//!    the request (a flood never reaches the database).
//! 6. [`rate_limit::auth`]: the `auth` policy per address on `/auth/` routes, also before
//!    credentials are checked.
//! 7. [`authenticate`]: resolves a bearer token or API key for every route and records the
//!    outcome ([`authenticate::Authenticated`]) in the request. It never answers itself: a
//!    route that needs a principal answers the uniform 401, so the layers after it (and an
//!    audit layer) see refused requests too.
//! 8. [`rate_limit::api`]: the `api` policy per principal, which needs authentication done.
//! 9. [`rate_limit::handler_checks`]: innermost; puts checks a handler made itself (the
//!    per-account login limit, which needs the body) on the response, merged with the
//!    layers' headers.
//!
//! Every answer a layer gives (401, 429, 500) is a [`Problem`](crate::problem::Problem), like
//! every handler error.

pub mod authenticate;
pub mod client_addr;
pub mod limits;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
