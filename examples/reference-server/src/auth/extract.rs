//! The [`Principal`] extractor: who sent the request, authenticated by a bearer access
//! token or an API key.
//!
//! Credentials are checked once per request by the authentication layer
//! ([`crate::http::layers::authenticate`]), which puts the outcome in the request
//! extensions; the extractor only reads it. Every failure (no credential, a malformed,
//! expired, revoked or forged one, an unknown user) is the same 401 problem
//! (`type` `.../unauthorized`) with `WWW-Authenticate: Bearer realm="finsec"` (with
//! `, error="invalid_token"` when a credential was presented). The real reason is kept in
//! the request for logs and audit, never the credential, and never sent to the client.

use std::fmt;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use finsec_auth::api_keys::ApiKeyId;
use finsec_auth::outcome::{CredentialOutcome, CredentialRejection as _};
use finsec_auth::tokens::{StepUp, StepUpRejection};
use finsec_rbac::PermissionPattern;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::http::layers::authenticate::Authenticated;
use crate::problem::{Problem, ProblemType};
use crate::state::AppState;

/// The header an API key may come in (besides `Authorization: Bearer fsk_…`).
pub const API_KEY_HEADER: &str = "x-api-key";

/// The `WWW-Authenticate` value when no credential was presented.
pub const CHALLENGE: &str = "Bearer realm=\"finsec\"";

/// The `WWW-Authenticate` value when a credential was presented and refused.
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"finsec\", error=\"invalid_token\"";

/// The `WWW-Authenticate` value when the token is valid but the action needs a recent
/// login (RFC 9470 step-up): log in again (with the second factor when enrolled).
pub const CHALLENGE_STEP_UP: &str = "Bearer realm=\"finsec\", \
     error=\"insufficient_user_authentication\", \
     error_description=\"log in again to do this\", max_age=300";

/// How long after a login a token may do sensitive actions (RFC 9470 `max_age`).
pub const STEP_UP_MAX_AGE: time::Duration = finsec_auth::tokens::DEFAULT_STEP_UP_MAX_AGE;

/// The rule of sensitive actions: a login at most [`STEP_UP_MAX_AGE`] old, with the second
/// factor when enrolled, and the token verifier's clock-skew leeway.
pub const STEP_UP: StepUp = StepUp::new(STEP_UP_MAX_AGE);

/// The claims the server adds to access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Always [`AccessClaims::TYPE`].
    pub typ: String,
    /// When the user logged in (OpenID Connect `auth_time`, unix seconds); absent on a
    /// token from a refresh, which proves no presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How they logged in (RFC 8176 `amr`): `pwd`, then `otp` or `backup_code` and `mfa`
    /// when a second factor was checked; empty on a token from a refresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

impl AccessClaims {
    /// The `typ` of access tokens.
    pub const TYPE: &'static str = "access";

    /// The claims of an access token from a refresh: no login time, no methods.
    pub fn new() -> Self {
        Self {
            typ: Self::TYPE.to_owned(),
            auth_time: None,
            amr: Vec::new(),
        }
    }

    /// The claims of an access token from a login at `at` by `methods`.
    pub fn logged_in(at: OffsetDateTime, methods: &[&str]) -> Self {
        Self {
            auth_time: Some(at.unix_timestamp()),
            amr: methods.iter().map(|m| (*m).to_owned()).collect(),
            ..Self::new()
        }
    }
}

impl Default for AccessClaims {
    fn default() -> Self {
        Self::new()
    }
}

/// How the request was authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum Via {
    /// A bearer access token.
    Bearer {
        /// The token's `jti` (what logout revokes).
        jti: String,
        /// When the token expires.
        expires_at: OffsetDateTime,
        /// When the user logged in for this token; `None` for a token from a refresh.
        auth_time: Option<OffsetDateTime>,
        /// How they logged in (`pwd`, `otp`, `backup_code`, `mfa`).
        amr: Vec<String>,
        /// The session (refresh family) the token was issued in.
        sid: Option<String>,
    },
    /// An API key.
    ApiKey {
        /// The key's id.
        key_id: ApiKeyId,
        /// The permission patterns the key is limited to.
        scopes: Vec<PermissionPattern>,
    },
}

impl fmt::Debug for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer {
                jti,
                expires_at,
                auth_time,
                amr,
                sid,
            } => f
                .debug_struct("Bearer")
                .field("jti", jti)
                .field("expires_at", expires_at)
                .field("auth_time", auth_time)
                .field("amr", amr)
                .field("sid", sid)
                .finish(),
            Self::ApiKey { key_id, scopes } => f
                .debug_struct("ApiKey")
                .field("key_id", &key_id.to_string())
                .field(
                    "scopes",
                    &scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

/// An authenticated user (extract it in a handler to require authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's name.
    pub username: String,
    /// Whether the user had a confirmed TOTP second factor when the request was
    /// authenticated.
    pub mfa_enabled: bool,
    /// How the request was authenticated.
    pub via: Via,
}

impl Principal {
    /// The API key's scopes, if the request came with an API key (`None`: a session,
    /// limited by the policy only).
    pub fn scopes(&self) -> Option<&[PermissionPattern]> {
        match &self.via {
            Via::Bearer { .. } => None,
            Via::ApiKey { scopes, .. } => Some(scopes),
        }
    }

    /// The session (refresh family) of the request's bearer token; `None` for an API key
    /// or a token without one.
    pub fn session(&self) -> Option<&str> {
        match &self.via {
            Via::Bearer { sid, .. } => sid.as_deref(),
            Via::ApiKey { .. } => None,
        }
    }

    /// Whether the request came with a bearer access token.
    pub fn is_bearer(&self) -> bool {
        matches!(self.via, Via::Bearer { .. })
    }

    /// Whether the request's token comes from a login at most [`STEP_UP_MAX_AGE`] before
    /// `now`, with the second factor when the user has one ([`STEP_UP`]): what a sensitive
    /// action (API keys, MFA and password changes) needs, so that a stolen or refreshed
    /// token alone is not enough. An API key proves no login.
    pub fn step_up(&self, now: OffsetDateTime) -> Result<(), StepUpRejection> {
        let Via::Bearer { auth_time, amr, .. } = &self.via else {
            return Err(StepUpRejection::NoLogin);
        };
        STEP_UP
            .check(*auth_time, amr, self.mfa_enabled, now)
            .into_result()
            .map(drop)
    }
}

/// Why a [`Principal`] could not be extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRejection {
    /// Not authenticated (the uniform 401).
    Unauthorized {
        /// Whether a credential was presented.
        presented: bool,
    },
    /// A backend failed while checking the credential (500, logged).
    Unavailable,
}

/// The `detail` of every 401 from a protected endpoint.
pub const UNAUTHORIZED_DETAIL: &str = "a valid bearer access token or API key is required";

/// The uniform 401 response (a problem with the `WWW-Authenticate` challenge).
pub fn unauthorized(presented: bool) -> Response {
    let challenge = if presented {
        CHALLENGE_INVALID
    } else {
        CHALLENGE
    };
    Problem::new(ProblemType::Unauthorized)
        .detail(UNAUTHORIZED_DETAIL)
        .header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )
        .into_response()
}

/// The 500 response for a failure already logged.
pub fn unavailable() -> Response {
    Problem::server_error().into_response()
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized { presented } => unauthorized(presented),
            Self::Unavailable => unavailable(),
        }
    }
}

/// A credential found in the request (`Debug` redacts it).
enum Credential {
    Bearer(String),
    ApiKey(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bearer(_) => "Bearer([REDACTED])",
            Self::ApiKey(_) => "ApiKey([REDACTED])",
        })
    }
}

/// Finds the credential: `Authorization: Bearer …` (an `fsk_` value is an API key) or
/// `X-API-Key`. `Err(())` when one is presented but unusable (two credentials, another
/// scheme, not text); `Ok(None)` when there is none.
fn credential(headers: &HeaderMap) -> Result<Option<Credential>, &'static str> {
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    let mut api_key = headers.get_all(API_KEY_HEADER).iter();
    let (auth, key) = (authorization.next(), api_key.next());
    if authorization.next().is_some() || api_key.next().is_some() {
        return Err("repeated credential header");
    }
    match (auth, key) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err("both Authorization and X-API-Key"),
        (None, Some(value)) => {
            let value = value.to_str().map_err(|_| "X-API-Key is not text")?.trim();
            Ok(Some(Credential::ApiKey(value.to_owned())))
        }
        (Some(value), None) => {
            let value = value.to_str().map_err(|_| "Authorization is not text")?;
            let (scheme, token) = value.split_once(' ').ok_or("Authorization has no scheme")?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err("Authorization scheme is not Bearer");
            }
            let token = token.trim();
            if token.starts_with(finsec_auth::api_keys::format::PREFIX) {
                Ok(Some(Credential::ApiKey(token.to_owned())))
            } else {
                Ok(Some(Credential::Bearer(token.to_owned())))
            }
        }
    }
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(Authenticated::Principal(principal)) => Ok(principal.clone()),
            Some(Authenticated::Anonymous) => Err(AuthRejection::Unauthorized { presented: false }),
            Some(Authenticated::Refused { .. }) => {
                Err(AuthRejection::Unauthorized { presented: true })
            }
            Some(Authenticated::Unavailable) => Err(AuthRejection::Unavailable),
            None => {
                tracing::error!("Principal extracted without the authentication layer");
                Err(AuthRejection::Unavailable)
            }
        }
    }
}

/// Why [`authenticate`] found no principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential was presented.
    Missing,
    /// A credential was presented and refused, for this reason (never the credential).
    Refused(String),
    /// A backend failed while checking it (logged at error level).
    Unavailable,
}

/// Authenticates the request headers at `now`, for a client at `client` (the address an
/// API key limited to networks is checked against).
///
/// # Errors
/// [`AuthFailure`]: none presented, refused (with the reason), or not checkable.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
    now: OffsetDateTime,
) -> Result<Principal, AuthFailure> {
    let refuse = |reason: &dyn fmt::Display| AuthFailure::Refused(reason.to_string());
    let credential = match credential(headers) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(AuthFailure::Missing),
        Err(reason) => return Err(refuse(&reason)),
    };
    let auth = state.auth();
    let (user_id, via, user) = match credential {
        Credential::Bearer(token) => {
            // The user's row is read while the token's revocation is checked (both are
            // backend calls); it is used only if the token passes.
            let verified = auth
                .tokens()
                .verify_access_with_at::<AccessClaims, _, _>(&token, now, |claims| {
                    let user_id = claims.sub.as_deref().and_then(|s| Uuid::parse_str(s).ok());
                    async move {
                        match user_id {
                            Some(id) => Some(auth.users.find_by_id(id).await),
                            None => None,
                        }
                    }
                })
                .await;
            let (claims, user) = match verified {
                Ok(CredentialOutcome::Accepted(verified)) => verified,
                Ok(CredentialOutcome::Rejected(why)) => return Err(refuse(&why.code())),
                Err(e) => {
                    tracing::error!(error = %e, "token store failed");
                    return Err(AuthFailure::Unavailable);
                }
            };
            if claims.extra.typ != AccessClaims::TYPE {
                return Err(refuse(&"not an access token"));
            }
            let (Some(sub), Some(jti), Some(exp)) = (&claims.sub, &claims.jti, claims.exp) else {
                return Err(refuse(&"access token without sub, jti or exp"));
            };
            let user_id = Uuid::parse_str(sub).map_err(|_| refuse(&"sub is not a user id"))?;
            let expires_at = OffsetDateTime::from_unix_timestamp(exp)
                .map_err(|_| refuse(&"exp out of range"))?;
            let user = user.ok_or_else(|| refuse(&"sub is not a user id"))?;
            let auth_time = match claims.extra.auth_time {
                Some(at) => Some(
                    OffsetDateTime::from_unix_timestamp(at)
                        .map_err(|_| refuse(&"auth_time out of range"))?,
                ),
                None => None,
            };
            (
                user_id,
                Via::Bearer {
                    jti: jti.clone(),
                    expires_at,
                    auth_time,
                    amr: claims.extra.amr.clone(),
                    sid: claims.sid.clone(),
                },
                user,
            )
        }
        Credential::ApiKey(key) => {
            // A key limited to client networks needs the client's address (resolved
            // through trusted proxies); without one it is refused.
            let outcome = match client {
                Some(ip) => auth.api_keys().verify_from_at(&key, ip, now).await,
                None => auth.api_keys().verify_at(&key, now).await,
            };
            let verified = match outcome {
                Ok(CredentialOutcome::Accepted(v)) => v,
                Ok(CredentialOutcome::Rejected(why)) => return Err(refuse(&why.code())),
                Err(e) => {
                    tracing::error!(error = %e, "api key store failed");
                    return Err(AuthFailure::Unavailable);
                }
            };
            let user_id = Uuid::parse_str(verified.owner())
                .map_err(|_| refuse(&"api key owner is not a user id"))?;
            let user = auth.users.find_by_id(user_id).await;
            (
                user_id,
                Via::ApiKey {
                    key_id: verified.id(),
                    scopes: verified.scopes().to_vec(),
                },
                user,
            )
        }
    };
    let user = match user {
        Ok(Some(user)) => user,
        Ok(None) => return Err(refuse(&"user does not exist")),
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return Err(AuthFailure::Unavailable);
        }
    };
    Ok(Principal {
        user_id,
        username: user.username,
        mfa_enabled: user.mfa_enabled,
        via,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_up_challenge_is_the_rules_own() {
        // The header is a static string; the rule writes the same one, `max_age` included.
        assert_eq!(
            STEP_UP.challenge("finsec").as_deref(),
            Some(CHALLENGE_STEP_UP)
        );
    }

    #[test]
    fn an_api_key_or_a_refreshed_token_proves_no_login() {
        let now = OffsetDateTime::now_utc();
        let principal = |via| Principal {
            user_id: Uuid::nil(),
            username: "alice".to_owned(),
            mfa_enabled: false,
            via,
        };
        let refreshed = principal(Via::Bearer {
            jti: "j".to_owned(),
            expires_at: now,
            auth_time: None,
            amr: Vec::new(),
            sid: None,
        });
        assert_eq!(refreshed.step_up(now), Err(StepUpRejection::NoLogin));
        let logged_in = principal(Via::Bearer {
            jti: "j".to_owned(),
            expires_at: now,
            auth_time: Some(now - time::Duration::minutes(1)),
            amr: vec!["pwd".to_owned()],
            sid: None,
        });
        assert_eq!(logged_in.step_up(now), Ok(()));
    }
}
