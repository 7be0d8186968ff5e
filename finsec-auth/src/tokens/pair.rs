//! Access/refresh token pairs with rotation, reuse detection and `jti` revocation.

use super::store::{NextRefresh, RefreshRecord, RefreshTokenStore, RevocationStore, RotateOutcome};
use super::{Claims, Result, Signer, TokenError, TokenOutcome, TokenRejection, Verifier};
use crate::outcome::CredentialOutcome;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use std::fmt::{self, Write as _};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Default access-token lifetime.
pub(super) const DEFAULT_ACCESS_TTL: Duration = Duration::minutes(15);
/// Default refresh-token lifetime.
pub(super) const DEFAULT_REFRESH_TTL: Duration = Duration::days(14);

/// An access JWT and an opaque refresh token (kept secret; `Debug` redacts both).
pub struct TokenPair {
    /// The signed access token.
    pub access_token: SecretString,
    /// The opaque refresh token.
    pub refresh_token: SecretString,
    /// The refresh family (stable across rotations of one login).
    pub family: String,
    /// Access-token expiry.
    pub access_expires_at: OffsetDateTime,
    /// Refresh-token expiry.
    pub refresh_expires_at: OffsetDateTime,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("family", &self.family)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// Issues and refreshes token pairs and checks access tokens against revocations.
///
/// Generic over its two stores, like every finsec service; the defaults are the
/// type-erased `Arc<dyn …>` forms, so `TokenService` alone names a service over any stores.
#[derive(Debug)]
pub struct TokenService<R = Arc<dyn RevocationStore>, S = Arc<dyn RefreshTokenStore>> {
    signer: Signer,
    verifier: Verifier,
    revocations: R,
    refresh: S,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

fn random_token() -> Result<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    finsec_crypto::fill_random(bytes.as_mut()).map_err(|_| TokenError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// The revocation-store entry of a session (refresh family): `sid:` and the family id,
/// which never collides with a `jti` (base64url has no `:`).
fn session_key(family: &str) -> String {
    format!("sid:{family}")
}

fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl<R: RevocationStore, S: RefreshTokenStore> TokenService<R, S> {
    /// A service signing with `signer` (whose key must be in `verifier`), with default
    /// lifetimes: 15 minutes for access tokens, 14 days for refresh tokens. The issuer and
    /// audience of issued tokens are the verifier's.
    #[must_use]
    pub fn new(signer: Signer, verifier: Verifier, revocations: R, refresh: S) -> Self {
        Self {
            signer,
            verifier,
            revocations,
            refresh,
            access_ttl: DEFAULT_ACCESS_TTL,
            refresh_ttl: DEFAULT_REFRESH_TTL,
        }
    }

    /// Sets the lifetimes (non-positive values fall back to the defaults). `refresh` is a
    /// session's whole lifetime: a refresh token from a refresh expires when the one it
    /// replaced did, so a session ends `refresh` after its login however often it is
    /// refreshed.
    #[must_use]
    pub fn with_ttls(mut self, access: Duration, refresh: Duration) -> Self {
        self.access_ttl = if access.is_positive() {
            access
        } else {
            DEFAULT_ACCESS_TTL
        };
        self.refresh_ttl = if refresh.is_positive() {
            refresh
        } else {
            DEFAULT_REFRESH_TTL
        };
        self
    }

    fn access<T: Serialize>(
        &self,
        subject: &str,
        family: &str,
        extra: T,
        now: OffsetDateTime,
    ) -> Result<(SecretString, OffsetDateTime)> {
        let v = self.verifier.validation();
        let claims = Claims::new(
            v.issuer(),
            subject,
            v.audience(),
            now,
            self.access_ttl,
            extra,
        )
        .with_jti(random_token()?)
        .with_sid(family);
        let token = self.signer.sign(&claims)?;
        Ok((
            SecretString::from(token),
            now.saturating_add(self.access_ttl),
        ))
    }

    /// Issues a new pair (a new refresh family) for `subject` at `now`.
    ///
    /// # Errors
    /// Signing or store errors.
    pub async fn issue_pair_at<T: Serialize + Send>(
        &self,
        subject: &str,
        extra: T,
        now: OffsetDateTime,
    ) -> Result<TokenPair> {
        let refresh = random_token()?;
        let family = random_token()?;
        let (access_token, access_expires_at) = self.access(subject, &family, extra, now)?;
        let refresh_expires_at = now.saturating_add(self.refresh_ttl);
        self.refresh
            .insert(RefreshRecord {
                token_hash: hash_token(&refresh),
                family: family.clone(),
                subject: subject.to_owned(),
                expires_at: refresh_expires_at,
            })
            .await?;
        Ok(TokenPair {
            access_token,
            refresh_token: SecretString::from(refresh),
            family,
            access_expires_at,
            refresh_expires_at,
        })
    }

    /// Spends `refresh_token` and issues a new pair in its family. A second use of the same
    /// refresh token revokes the family.
    ///
    /// A refused refresh token is rejected with [`TokenRejection::UnknownRefreshToken`],
    /// [`TokenRejection::RefreshExpired`], [`TokenRejection::RefreshReused`] or
    /// [`TokenRejection::RefreshFamilyRevoked`].
    ///
    /// # Errors
    /// Signing, randomness or store errors.
    pub async fn refresh_at<T: Serialize + Send>(
        &self,
        refresh_token: &SecretString,
        extra: T,
        now: OffsetDateTime,
    ) -> Result<CredentialOutcome<TokenPair, TokenRejection>> {
        let next = random_token()?;
        let refresh_expires_at = now.saturating_add(self.refresh_ttl);
        let outcome = self
            .refresh
            .rotate(
                &hash_token(refresh_token.expose_secret()),
                NextRefresh {
                    token_hash: hash_token(&next),
                    expires_at: refresh_expires_at,
                },
                now,
            )
            .await?;
        let spent = match outcome {
            RotateOutcome::Rotated(spent) => spent,
            RotateOutcome::Reused { family } => {
                // The store revoked the family's refresh tokens; its access tokens go too.
                self.revoke_session_access(&family, now).await?;
                return Ok(CredentialOutcome::Rejected(TokenRejection::RefreshReused {
                    family,
                }));
            }
            RotateOutcome::FamilyRevoked => {
                return Ok(CredentialOutcome::Rejected(
                    TokenRejection::RefreshFamilyRevoked,
                ));
            }
            RotateOutcome::Expired => {
                return Ok(CredentialOutcome::Rejected(TokenRejection::RefreshExpired));
            }
            RotateOutcome::Unknown => {
                return Ok(CredentialOutcome::Rejected(
                    TokenRejection::UnknownRefreshToken,
                ));
            }
        };
        let (access_token, access_expires_at) =
            self.access(&spent.subject, &spent.family, extra, now)?;
        Ok(CredentialOutcome::Accepted(TokenPair {
            access_token,
            refresh_token: SecretString::from(next),
            family: spent.family,
            access_expires_at,
            // The store keeps the spent token's expiry when it is earlier.
            refresh_expires_at: refresh_expires_at.min(spent.expires_at),
        }))
    }

    /// Verifies an access token at `now` and checks its `jti` is not revoked. A refused
    /// token is rejected with the verifier's [`TokenRejection`], or
    /// [`TokenRejection::MissingClaim`] for a token without `jti`, or
    /// [`TokenRejection::Revoked`].
    ///
    /// # Errors
    /// A revocation store error.
    pub async fn verify_access_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<TokenOutcome<T>> {
        let outcome = self
            .verify_access_with_at::<T, _, _>(token, now, |_| std::future::ready(()))
            .await?;
        Ok(outcome.map(|(claims, ())| claims))
    }

    /// Verifies an access token like [`verify_access_at`](Self::verify_access_at), and runs
    /// `alongside` (for example a lookup of the token's subject) concurrently with the
    /// revocation check, so that the two backend calls cost one wait instead of two.
    ///
    /// `alongside` is given the claims once the signature and time checks have passed, but
    /// before the revocation check has answered: what it reads must not be acted on by
    /// itself. Its result is returned only together with claims that passed every check;
    /// for a revoked token it is dropped and the token rejected.
    ///
    /// # Errors
    /// As [`verify_access_at`](Self::verify_access_at).
    pub async fn verify_access_with_at<T, F, Fut>(
        &self,
        token: &str,
        now: OffsetDateTime,
        alongside: F,
    ) -> Result<CredentialOutcome<(Claims<T>, Fut::Output), TokenRejection>>
    where
        T: DeserializeOwned,
        F: FnOnce(&Claims<T>) -> Fut,
        Fut: Future,
    {
        let claims = match self.verifier.check_at::<T>(token, now) {
            Ok(claims) => claims,
            Err(rejection) => return Ok(CredentialOutcome::Rejected(rejection)),
        };
        let Some(jti) = claims.jti.as_deref() else {
            return Ok(CredentialOutcome::Rejected(TokenRejection::MissingClaim(
                "jti",
            )));
        };
        // The token's own revocation and its session's, in one lookup.
        let session = claims.sid.as_deref().map(session_key);
        let revoked = async {
            match &session {
                Some(key) => self.revocations.any_revoked(&[jti, key], now).await,
                None => self.revocations.is_revoked(jti, now).await,
            }
        };
        let (revoked, extra) = futures_util::future::join(revoked, alongside(&claims)).await;
        if revoked? {
            return Ok(CredentialOutcome::Rejected(TokenRejection::Revoked));
        }
        Ok(CredentialOutcome::Accepted((claims, extra)))
    }

    /// Revokes a verified access token until its expiry plus the verifier's leeway: the
    /// verifier still accepts it that long, so a revocation kept only until `exp` would let
    /// it work again for the leeway.
    ///
    /// # Errors
    /// [`TokenError::MissingClaim`] without `jti` or `exp`, store errors.
    pub async fn revoke<T: Sync>(&self, claims: &Claims<T>) -> Result<()> {
        let jti = claims
            .jti
            .as_deref()
            .ok_or(TokenError::MissingClaim("jti"))?;
        let exp = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
        let exp = OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|_| TokenError::InvalidClaims("exp out of range".into()))?;
        let until = exp.saturating_add(self.verifier.validation().leeway());
        self.revocations.revoke(jti, until).await
    }

    /// Revokes every refresh token of `family` (logout of one session), at `now`, and every
    /// access token issued in it (their `sid`): a token verified after this is
    /// [`TokenRejection::Revoked`], on every instance that shares the revocation store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke_family_at(&self, family: &str, now: OffsetDateTime) -> Result<()> {
        self.refresh.revoke_family(family, now).await?;
        self.revoke_session_access(family, now).await
    }

    /// Revokes every access token issued in `family` (their `sid`) from `now` until the
    /// newest of them has expired, leeway included.
    async fn revoke_session_access(&self, family: &str, now: OffsetDateTime) -> Result<()> {
        let until = now
            .saturating_add(self.access_ttl)
            .saturating_add(self.verifier.validation().leeway());
        self.revocations.revoke(&session_key(family), until).await
    }

    /// [`revoke_family_at`](Self::revoke_family_at) the system clock's current time.
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke_family(&self, family: &str) -> Result<()> {
        self.revoke_family_at(family, OffsetDateTime::now_utc())
            .await
    }
}
