//! Rate limits as layers: finsec-ratelimit's [`RateLimitLayer`], one per policy of
//! [`crate::ratelimit`]:
//!
//! - [`global`]: every request, per client address ([`ClientAddr`]);
//! - [`auth`]: requests under `/auth/`, per client address;
//! - [`api`]: requests outside `/auth/` made by a principal ([`Authenticated`]), per
//!   principal (and address, subject, as the policy's rules say).
//!
//! Each answers a denied request with a 429 problem (`retry_after` in the body, the same as
//! `Retry-After`), and a check it cannot make with a 500 problem. The response of a request
//! that several checks limited describes the tightest quota of them all (the library merges
//! the headers); the per-account login check made by the login handlers joins in through
//! [`handler_checks`].

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use axum::middleware::Next;
use axum::response::IntoResponse as _;
use finsec_ratelimit::Identity;
use finsec_ratelimit::headers::retry_after_secs;
use finsec_ratelimit::tower::{
    HeaderScope, KeyExtractor, RateLimitLayer, RateLimitStatus, Refusal, Respond,
};

use super::authenticate::Authenticated;
use super::client_addr::ClientAddr;
use crate::auth::extract::{Principal, Via};
use crate::problem::Problem;
use crate::ratelimit::RateLimits;

/// A rate-limit layer of the server.
pub type Layer = RateLimitLayer<Key, Body, ProblemAnswer>;

/// Which requests a layer limits, and by what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Every request, by client address.
    Global,
    /// Requests under `/auth/`, by client address.
    Auth,
    /// Requests outside `/auth/` with a principal, by principal.
    Api,
}

/// The `api` key of a principal: the API key's id, or the user for a session.
pub fn principal_key(principal: &Principal) -> String {
    match &principal.via {
        Via::ApiKey { key_id, .. } => format!("k:{key_id}"),
        Via::Bearer { .. } => format!("u:{}", principal.user_id),
    }
}

impl KeyExtractor<Body> for Key {
    fn identity(&self, request: &Request) -> Option<Identity> {
        // Without the client-address layer in front there is nothing to count by: logged,
        // and the request is limited as an unknown address would be.
        let ip = match request.extensions().get::<ClientAddr>() {
            Some(addr) => addr.ip(),
            None => {
                tracing::error!("rate limit without the client address layer in front");
                ClientAddr::resolve(
                    &finsec_ratelimit::TrustedProxies::none(),
                    None,
                    request.headers(),
                )
                .ip()
            }
        };
        let under_auth = request.uri().path().starts_with("/auth/");
        let by_ip = Identity::new().with_ip(ip);
        match self {
            Self::Global => Some(by_ip),
            Self::Auth => under_auth.then_some(by_ip),
            Self::Api if under_auth => None,
            Self::Api => {
                let principal = request
                    .extensions()
                    .get::<Authenticated>()
                    .and_then(Authenticated::principal)?;
                Some(
                    by_ip
                        .with_api_key(principal_key(principal))
                        .with_subject(principal.user_id.to_string()),
                )
            }
        }
    }
}

/// Answers refusals with problems: 429 (denied) or 500 (the check is impossible; logged by
/// the layer's error hook).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemAnswer;

impl Respond<Body> for ProblemAnswer {
    fn respond(&self, refusal: Refusal<'_>) -> Response<Body> {
        match refusal {
            Refusal::Denied { retry_after, .. } => {
                Problem::rate_limited(retry_after_secs(retry_after)).into_response()
            }
            Refusal::Failed(error) => Problem::internal(error).into_response(),
            _ => Problem::server_error().into_response(),
        }
    }
}

fn layer(limits: &RateLimits, policy: &Arc<finsec_ratelimit::RateLimitPolicy>, key: Key) -> Layer {
    let name = policy.name().to_owned();
    RateLimitLayer::new(limits.limiter().clone(), Arc::clone(policy), key)
        .with_header_scope(HeaderScope::Tightest)
        .on_error(move |error| {
            tracing::warn!(
                policy = %name,
                error = %error,
                "rate-limit backend failed; the failure policy decided"
            );
        })
        .with_response(ProblemAnswer)
}

/// The `global` policy, per client address, on every request.
pub fn global(limits: &RateLimits) -> Layer {
    layer(limits, limits.policy_global(), Key::Global)
}

/// The `auth` policy, per client address, on `/auth/` routes.
pub fn auth(limits: &RateLimits) -> Layer {
    layer(limits, limits.policy_auth(), Key::Auth)
}

/// The `api` policy, per principal, on authenticated requests outside `/auth/`.
pub fn api(limits: &RateLimits) -> Layer {
    layer(limits, limits.policy_api(), Key::Api)
}

/// Checks made by handlers (the per-account login limit), to be put on the response.
#[derive(Debug, Clone, Default)]
pub struct HandlerChecks(Arc<Mutex<Vec<RateLimitStatus>>>);

impl HandlerChecks {
    /// Records a check's status for the response.
    pub fn push(&self, status: RateLimitStatus) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(status);
    }

    fn take(&self) -> Vec<RateLimitStatus> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Middleware for [`axum::middleware::from_fn`], innermost: gives the handler a
/// [`HandlerChecks`] and puts what it recorded on the response, merged like the layers'.
pub async fn handler_checks(mut request: Request, next: Next) -> axum::response::Response {
    let checks = HandlerChecks::default();
    request.extensions_mut().insert(checks.clone());
    let mut response = next.run(request).await;
    for status in checks.take() {
        status.apply(&mut response);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::StatusCode;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn request(path: &str, authenticated: Option<Authenticated>) -> Request {
        let mut request = Request::get(path).body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr("192.0.2.4".parse().unwrap()));
        if let Some(outcome) = authenticated {
            request.extensions_mut().insert(outcome);
        }
        request
    }

    fn alice() -> Principal {
        Principal {
            user_id: Uuid::nil(),
            username: "alice".to_owned(),
            mfa_enabled: false,
            via: Via::Bearer {
                jti: "j1".to_owned(),
                expires_at: OffsetDateTime::UNIX_EPOCH,
                auth_time: None,
                amr: Vec::new(),
                sid: None,
            },
        }
    }

    #[test]
    fn each_policy_limits_its_own_requests() {
        let ip: IpAddr = "192.0.2.4".parse().unwrap();
        let by_ip = Some(Identity::new().with_ip(ip));
        let signed_in = Some(Authenticated::Principal(alice()));
        assert_eq!(Key::Global.identity(&request("/health", None)), by_ip);
        assert_eq!(Key::Global.identity(&request("/auth/login", None)), by_ip);
        assert_eq!(Key::Auth.identity(&request("/auth/login", None)), by_ip);
        assert_eq!(Key::Auth.identity(&request("/me", signed_in.clone())), None);
        // api: only principals, only outside /auth/.
        assert_eq!(
            Key::Api.identity(&request("/me", signed_in.clone())),
            Some(
                Identity::new()
                    .with_ip(ip)
                    .with_api_key(format!("u:{}", Uuid::nil()))
                    .with_subject(Uuid::nil().to_string())
            )
        );
        assert_eq!(Key::Api.identity(&request("/auth/logout", signed_in)), None);
        for outcome in [
            Authenticated::Anonymous,
            Authenticated::Refused {
                reason: "expired".to_owned(),
            },
            Authenticated::Unavailable,
        ] {
            assert_eq!(Key::Api.identity(&request("/me", Some(outcome))), None);
        }
    }

    #[tokio::test]
    async fn refusals_are_problems() {
        let denied = ProblemAnswer.respond(Refusal::Denied {
            policy: "api",
            retry_after: std::time::Duration::from_millis(2500),
        });
        assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            denied.headers()["content-type"],
            crate::problem::PROBLEM_JSON
        );
        let body = axum::body::to_bytes(denied.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["retry_after"], 3, "{body}");
        assert_eq!(body["type"], "https://finsec.dev/problems/rate-limited");

        let error = finsec_ratelimit::Error::Timeout {
            backend: "test",
            timeout: std::time::Duration::from_millis(5),
        };
        let failed = ProblemAnswer.respond(Refusal::Failed(&error));
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(failed.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        // The cause is logged, not sent.
        assert!(!text.contains("test"), "{text}");
    }
}
