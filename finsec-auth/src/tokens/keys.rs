//! Keys: each is bound to one algorithm and carries a `kid`.

use super::{MAX_KID_LEN, Result, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, KeyOperations, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretSlice};
use std::fmt;
use zeroize::Zeroizing;

/// The supported signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA-256.
    Hs256,
    /// HMAC-SHA-384.
    Hs384,
    /// HMAC-SHA-512.
    Hs512,
    /// Ed25519.
    EdDsa,
    /// ECDSA P-256 with SHA-256 (r‖s signatures).
    Es256,
}

impl Algorithm {
    /// The JOSE name (`alg` header value).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Whether this is an HMAC (symmetric) algorithm.
    #[must_use]
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::Hs256 | Self::Hs384 | Self::Hs512)
    }

    fn hmac_len(self) -> usize {
        match self {
            Self::Hs384 => 48,
            Self::Hs512 => 64,
            Self::Hs256 | Self::EdDsa | Self::Es256 => 32,
        }
    }

    fn backend(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::Hs384 => jsonwebtoken::Algorithm::HS384,
            Self::Hs512 => jsonwebtoken::Algorithm::HS512,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key id: 1 to [`MAX_KID_LEN`] characters from `[A-Za-z0-9._-]`, so it is safe in paths,
/// SQL, logs and headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(String);

impl Kid {
    /// Parses a key id.
    ///
    /// # Errors
    /// [`TokenError::InvalidKid`] on an empty, too long or out-of-charset id.
    pub fn new(kid: &str) -> Result<Self> {
        let ok = !kid.is_empty()
            && kid.len() <= MAX_KID_LEN
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && kid != "."
            && kid != "..";
        if ok {
            Ok(Self(kid.to_owned()))
        } else {
            Err(TokenError::InvalidKid)
        }
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

/// A private signing key (zeroized on drop; `Debug` shows only `kid` and algorithm).
pub struct SigningKey {
    kid: Kid,
    algorithm: Algorithm,
    /// Raw secret for HMAC, PKCS#8 DER for EdDSA/ES256.
    secret: SecretSlice<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

fn random32() -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(out.as_mut());
    out
}

impl SigningKey {
    /// A fresh random HMAC key of the hash's length.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if `algorithm` is not HMAC.
    pub fn generate_hmac(kid: Kid, algorithm: Algorithm) -> Result<Self> {
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.hmac_len()]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::hmac(kid, algorithm, &bytes)
    }

    /// An HMAC key from secret bytes, at least as long as the hash output (RFC 7518 §3.2).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if `algorithm` is not HMAC or the secret is too short.
    pub fn hmac(kid: Kid, algorithm: Algorithm, secret: &[u8]) -> Result<Self> {
        if !algorithm.is_hmac() {
            return Err(TokenError::InvalidKey(format!(
                "{algorithm} is not an hmac algorithm"
            )));
        }
        if secret.len() < algorithm.hmac_len() {
            return Err(TokenError::InvalidKey(format!(
                "{algorithm} needs at least {} secret bytes",
                algorithm.hmac_len()
            )));
        }
        Ok(Self {
            kid,
            algorithm,
            secret: SecretSlice::from(secret.to_vec()),
        })
    }

    /// A fresh random Ed25519 key.
    #[must_use]
    pub fn generate_ed25519(kid: Kid) -> Self {
        Self::ed25519_from_seed(kid, &random32())
    }

    /// An Ed25519 key from its 32-byte seed (RFC 8032 private key, JWK `d`).
    #[must_use]
    pub fn ed25519_from_seed(kid: Kid, seed: &[u8; 32]) -> Self {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&ED25519_PKCS8_PREFIX);
        der.extend_from_slice(seed);
        Self {
            kid,
            algorithm: Algorithm::EdDsa,
            secret: SecretSlice::from(der),
        }
    }

    /// A fresh random ES256 (P-256) key.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] only if the OS RNG repeatedly yields invalid scalars.
    pub fn generate_es256(kid: Kid) -> Result<Self> {
        let mut last = TokenError::InvalidKey("no scalar".into());
        for _ in 0..8 {
            match Self::es256_from_scalar(kid.clone(), &random32()) {
                Ok(k) => return Ok(k),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// An ES256 key from its 32-byte big-endian private scalar (JWK `d`).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the scalar is zero or not below the group order.
    pub fn es256_from_scalar(kid: Kid, d: &[u8; 32]) -> Result<Self> {
        let mut der = Vec::with_capacity(67);
        der.extend_from_slice(&P256_PKCS8_PREFIX);
        der.extend_from_slice(d);
        let key = Self {
            kid,
            algorithm: Algorithm::Es256,
            secret: SecretSlice::from(der),
        };
        // Validates the scalar.
        key.verification_key()?;
        Ok(key)
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn encoding_key(&self) -> EncodingKey {
        let bytes = self.secret.expose_secret();
        match self.algorithm {
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                EncodingKey::from_secret(bytes)
            }
            Algorithm::EdDsa => EncodingKey::from_ed_der(bytes),
            Algorithm::Es256 => EncodingKey::from_ec_der(bytes),
        }
    }

    pub(super) fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>> {
        let key = self.encoding_key();
        let signer = (DEFAULT_PROVIDER.signer_factory)(&self.algorithm.backend(), &key)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        signer
            .try_sign(message)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// The matching verification key (for HMAC it holds the same secret).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the private key is unusable.
    pub fn verification_key(&self) -> Result<VerificationKey> {
        let bytes = self.secret.expose_secret();
        let utils = &DEFAULT_PROVIDER.key_utils;
        let material = match self.algorithm {
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                return Ok(VerificationKey {
                    kid: self.kid.clone(),
                    algorithm: self.algorithm,
                    key: DecodingKey::from_secret(bytes),
                    public: None,
                });
            }
            Algorithm::EdDsa => {
                let x = (utils.ed_pub_components_from_private_key)(bytes, &EllipticCurve::Ed25519)
                    .map_err(|e| TokenError::InvalidKey(e.to_string()))?;
                PublicMaterial::Ed25519 { x }
            }
            Algorithm::Es256 => {
                let (_, x, y) = (utils.ec_pub_components_from_private_key)(
                    bytes,
                    jsonwebtoken::Algorithm::ES256,
                )
                .map_err(|e| TokenError::InvalidKey(e.to_string()))?;
                PublicMaterial::P256 { x, y }
            }
        };
        VerificationKey::public(self.kid.clone(), material)
    }
}

#[derive(Clone, PartialEq, Eq)]
enum PublicMaterial {
    Ed25519 { x: Vec<u8> },
    P256 { x: Vec<u8>, y: Vec<u8> },
}

/// A verification key: a public key, or for HMAC the shared secret (then `Debug` redacts it and
/// it is never exported in a JWKS).
#[derive(Clone)]
pub struct VerificationKey {
    kid: Kid,
    algorithm: Algorithm,
    key: DecodingKey,
    public: Option<PublicMaterial>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("VerificationKey");
        d.field("kid", &self.kid)
            .field("algorithm", &self.algorithm);
        match &self.public {
            None => d.field("secret", &"[REDACTED]"),
            Some(PublicMaterial::Ed25519 { x }) => d.field("x", &URL_SAFE_NO_PAD.encode(x)),
            Some(PublicMaterial::P256 { x, y }) => d
                .field("x", &URL_SAFE_NO_PAD.encode(x))
                .field("y", &URL_SAFE_NO_PAD.encode(y)),
        };
        d.finish()
    }
}

impl VerificationKey {
    /// An HMAC verification key from the shared secret.
    ///
    /// # Errors
    /// As [`SigningKey::hmac`].
    pub fn hmac(kid: Kid, algorithm: Algorithm, secret: &[u8]) -> Result<Self> {
        SigningKey::hmac(kid, algorithm, secret)?.verification_key()
    }

    /// An Ed25519 public key (32 bytes).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if it is not a valid curve point.
    pub fn ed25519(kid: Kid, public: &[u8; 32]) -> Result<Self> {
        Self::public(kid, PublicMaterial::Ed25519 { x: public.to_vec() })
    }

    /// A P-256 public key from its affine coordinates (32 bytes each).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the point is not on the curve.
    pub fn es256(kid: Kid, x: &[u8; 32], y: &[u8; 32]) -> Result<Self> {
        Self::public(
            kid,
            PublicMaterial::P256 {
                x: x.to_vec(),
                y: y.to_vec(),
            },
        )
    }

    fn public(kid: Kid, material: PublicMaterial) -> Result<Self> {
        let (algorithm, key) = match &material {
            PublicMaterial::Ed25519 { x } => {
                if x.len() != 32 {
                    return Err(TokenError::InvalidKey(
                        "ed25519 key must be 32 bytes".into(),
                    ));
                }
                (
                    Algorithm::EdDsa,
                    DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(x))
                        .map_err(|e| TokenError::InvalidKey(e.to_string()))?,
                )
            }
            PublicMaterial::P256 { x, y } => {
                if x.len() != 32 || y.len() != 32 {
                    return Err(TokenError::InvalidKey(
                        "p-256 coordinates must be 32 bytes".into(),
                    ));
                }
                (
                    Algorithm::Es256,
                    DecodingKey::from_ec_components(
                        &URL_SAFE_NO_PAD.encode(x),
                        &URL_SAFE_NO_PAD.encode(y),
                    )
                    .map_err(|e| TokenError::InvalidKey(e.to_string()))?,
                )
            }
        };
        // Reject points the backend cannot use now rather than at verification.
        (DEFAULT_PROVIDER.verifier_factory)(&algorithm.backend(), &key)
            .map_err(|e| TokenError::InvalidKey(e.to_string()))?;
        Ok(Self {
            kid,
            algorithm,
            key,
            public: Some(material),
        })
    }

    /// Parses a public JWK (`OKP`/Ed25519 or `EC`/P-256) with a `kid`. `oct` keys are refused.
    ///
    /// # Errors
    /// [`TokenError::UnsupportedJwk`], [`TokenError::InvalidKid`], [`TokenError::InvalidKey`].
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        let kid = Kid::new(
            jwk.common
                .key_id
                .as_deref()
                .ok_or_else(|| TokenError::UnsupportedJwk("missing kid".into()))?,
        )?;
        let decode = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| TokenError::UnsupportedJwk("coordinate is not base64url".into()))
        };
        let (material, expected) = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => (
                PublicMaterial::Ed25519 { x: decode(&p.x)? },
                KeyAlgorithm::EdDSA,
            ),
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => (
                PublicMaterial::P256 {
                    x: decode(&p.x)?,
                    y: decode(&p.y)?,
                },
                KeyAlgorithm::ES256,
            ),
            AlgorithmParameters::OctetKey(_) => {
                return Err(TokenError::UnsupportedJwk("symmetric (oct) key".into()));
            }
            _ => return Err(TokenError::UnsupportedJwk("key type or curve".into())),
        };
        if let Some(alg) = jwk.common.key_algorithm
            && alg != expected
        {
            return Err(TokenError::UnsupportedJwk(format!(
                "alg {alg:?} does not fit the key type"
            )));
        }
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return Err(TokenError::UnsupportedJwk("use is not sig".into()));
        }
        if matches!(&jwk.common.key_operations, Some(ops) if !ops.contains(&KeyOperations::Verify))
        {
            return Err(TokenError::UnsupportedJwk("key_ops lacks verify".into()));
        }
        Self::public(kid, material)
    }

    /// The public JWK, or `None` for an HMAC key.
    ///
    /// # Errors
    /// Never in practice; kept fallible for future key types.
    pub fn to_jwk(&self) -> Result<Option<Jwk>> {
        let (algorithm, key_algorithm) = match &self.public {
            None => return Ok(None),
            Some(PublicMaterial::Ed25519 { x }) => (
                AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(x),
                }),
                KeyAlgorithm::EdDSA,
            ),
            Some(PublicMaterial::P256 { x, y }) => (
                AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: URL_SAFE_NO_PAD.encode(y),
                }),
                KeyAlgorithm::ES256,
            ),
        };
        Ok(Some(Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm),
                key_id: Some(self.kid.as_str().to_owned()),
                ..CommonParameters::default()
            },
            algorithm,
        }))
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Checks a raw JWS signature over `message` (the signing input `header.payload`, or any
    /// bytes) with this key's algorithm. Tokens go through [`super::Verifier`] instead.
    ///
    /// # Errors
    /// [`TokenError::InvalidSignature`].
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let verifier = (DEFAULT_PROVIDER.verifier_factory)(&self.algorithm.backend(), &self.key)
            .map_err(|_| TokenError::InvalidSignature)?;
        verifier
            .verify(message, &signature.to_vec())
            .map_err(|_| TokenError::InvalidSignature)
    }
}
