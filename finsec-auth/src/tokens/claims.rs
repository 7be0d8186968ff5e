//! Typed claims: registered claims plus an application-defined part.

use super::{TokenRejection, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The `aud` claim: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `expected`.
    #[must_use]
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Self::One(a) => a == expected,
            Self::Many(all) => all.iter().any(|a| a == expected),
        }
    }
}

/// JWT claims: the registered ones (times as unix seconds) and `extra`, an application type
/// flattened into the same JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims<T> {
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry (required by the verifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Session id (OpenID Connect's `sid`): the refresh family an access token was issued
    /// in, so that revoking the session revokes its access tokens too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Application-defined claims.
    #[serde(flatten)]
    pub extra: T,
}

impl<T> Claims<T> {
    /// Claims for `sub` issued by `iss` for `aud`, valid from `now` for `ttl`
    /// (`iat` = `nbf` = `now`).
    #[must_use]
    pub fn new(
        iss: impl Into<String>,
        sub: impl Into<String>,
        aud: impl Into<String>,
        now: OffsetDateTime,
        ttl: time::Duration,
        extra: T,
    ) -> Self {
        let iat = now.unix_timestamp();
        Self {
            iss: Some(iss.into()),
            sub: Some(sub.into()),
            aud: Some(Audience::One(aud.into())),
            exp: Some(iat.saturating_add(ttl.whole_seconds())),
            nbf: Some(iat),
            iat: Some(iat),
            jti: None,
            sid: None,
            extra,
        }
    }

    /// Sets `jti`.
    #[must_use]
    pub fn with_jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// Sets `sid`.
    #[must_use]
    pub fn with_sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }

    pub(super) fn check(&self, v: &Validation, now: OffsetDateTime) -> Result<(), TokenRejection> {
        let now = now.unix_timestamp();
        let leeway = v.leeway().whole_seconds();
        let exp = self.exp.ok_or(TokenRejection::MissingClaim("exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(TokenRejection::Expired { exp });
        }
        if let Some(nbf) = self.nbf
            && now < nbf.saturating_sub(leeway)
        {
            return Err(TokenRejection::NotYetValid { nbf });
        }
        match &self.iss {
            None => return Err(TokenRejection::MissingClaim("iss")),
            Some(iss) if iss != v.issuer() => return Err(TokenRejection::WrongIssuer(iss.clone())),
            Some(_) => {}
        }
        match &self.aud {
            None => Err(TokenRejection::MissingClaim("aud")),
            Some(aud) if !aud.contains(v.audience()) => Err(TokenRejection::WrongAudience),
            Some(_) => Ok(()),
        }
    }
}
