//! Authentication of every request: bearer access tokens and API keys are resolved here,
//! once, for every route, and the outcome goes into the request's extensions as
//! [`Authenticated`].
//!
//! The layer never answers by itself: a request with a refused credential goes on, marked
//! [`Authenticated::Refused`], so that routes that need no principal (`/health`,
//! `/auth/login`) still work and layers after this one (rate limits per principal, an audit
//! record) see who made every request, or why nobody did. A route that needs a principal
//! extracts [`Principal`], which only reads the extension and answers the uniform 401 (see
//! [`crate::auth::extract`]) when there is none.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;

use super::client_addr::ClientAddr;
use crate::auth::extract::{AuthFailure, Principal, authenticate as check};
use crate::state::AppState;

/// The outcome of authentication, in the request extensions of every request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authenticated {
    /// A credential was presented and accepted.
    Principal(Principal),
    /// No credential was presented.
    Anonymous,
    /// A credential was presented and refused. The client gets the uniform 401 (on routes
    /// that need a principal); the reason is for logs and audit, never for the client.
    Refused {
        /// Why, without the credential (`token expired`, `api key revoked`, ...).
        reason: String,
    },
    /// The credential could not be checked (a backend failed; logged at error level).
    Unavailable,
}

impl Authenticated {
    /// The principal, if the request was authenticated.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Self::Principal(principal) => Some(principal),
            _ => None,
        }
    }

    /// The outcome of checking the request's `headers`, from `client`, at `now`.
    pub async fn of(
        state: &AppState,
        headers: &axum::http::HeaderMap,
        client: Option<std::net::IpAddr>,
        now: OffsetDateTime,
    ) -> Self {
        match check(state, headers, client, now).await {
            Ok(principal) => Self::Principal(principal),
            Err(AuthFailure::Missing) => Self::Anonymous,
            Err(AuthFailure::Refused(reason)) => {
                tracing::debug!(reason = %reason, "credential refused");
                Self::Refused { reason }
            }
            Err(AuthFailure::Unavailable) => Self::Unavailable,
        }
    }
}

/// Middleware for [`axum::middleware::from_fn_with_state`]: authenticates the request and
/// puts [`Authenticated`] into its extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Resolved by the client-address layer before this one: the TCP peer, or what a
    // trusted proxy forwarded.
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .copied()
        .map(ClientAddr::ip);
    let mut outcome =
        Authenticated::of(&state, request.headers(), client, OffsetDateTime::now_utc()).await;
    // A suspended user's every credential is refused, on every instance once it reloaded
    // the controls (within a second).
    if let Some(principal) = outcome.principal()
        && crate::controls::is_suspended(&state, principal.user_id)
    {
        outcome = Authenticated::Refused {
            reason: "user suspended".to_owned(),
        };
    }
    request.extensions_mut().insert(outcome);
    next.run(request).await
}
