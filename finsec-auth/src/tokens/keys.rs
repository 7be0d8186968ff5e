//! Keys: each is bound to one algorithm and carries a `kid`.
//!
//! The cryptography is aws-lc-rs (the library behind jsonwebtoken's `aws_lc_rs` backend).
//! Each key is parsed once, when it is created: the HMAC key schedule, the Ed25519 and P-256
//! key pairs and the parsed public keys are kept, so signing and verifying a token only hash
//! and sign.

use super::{MAX_KID_LEN, Result, TokenError, TokenRejection};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, KeyOperations, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use std::fmt;
use zeroize::Zeroizing;

/// The supported signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SigningAlgorithm {
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

impl SigningAlgorithm {
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

    fn hmac_algorithm(self) -> Option<hmac::Algorithm> {
        match self {
            Self::Hs256 => Some(hmac::HMAC_SHA256),
            Self::Hs384 => Some(hmac::HMAC_SHA384),
            Self::Hs512 => Some(hmac::HMAC_SHA512),
            Self::EdDsa | Self::Es256 => None,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
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
        if Self::is_valid(kid) {
            Ok(Self(kid.to_owned()))
        } else {
            Err(TokenError::InvalidKid)
        }
    }

    /// Whether `kid` is a valid key id (the check of [`Kid::new`], without allocating).
    pub(super) fn is_valid(kid: &str) -> bool {
        !kid.is_empty()
            && kid.len() <= MAX_KID_LEN
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && kid != "."
            && kid != ".."
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

const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

/// A private signing key (`Debug` shows only `kid` and algorithm). The secret lives only
/// inside aws-lc's key object, which wipes its memory when the key is dropped.
pub struct SigningKey {
    kid: Kid,
    algorithm: SigningAlgorithm,
    key: PrivateKey,
}

/// A private key, parsed once.
enum PrivateKey {
    /// Boxed: aws-lc's HMAC context is over a kilobyte.
    Hmac(Box<hmac::Key>),
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    /// The crypto library could not build the key (out of memory).
    Unusable,
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

fn random32() -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    finsec_crypto::fill_random(out.as_mut()).map_err(|_| TokenError::Random)?;
    Ok(out)
}

impl SigningKey {
    /// A fresh random HMAC key of the hash's length.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if `algorithm` is not HMAC; [`TokenError::Random`] if the
    /// operating system's random number generator fails.
    pub fn generate_hmac(kid: Kid, algorithm: SigningAlgorithm) -> Result<Self> {
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.hmac_len()]);
        finsec_crypto::fill_random(&mut bytes).map_err(|_| TokenError::Random)?;
        Self::hmac(kid, algorithm, &bytes)
    }

    /// An HMAC key from secret bytes, at least as long as the hash output (RFC 7518 §3.2).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if `algorithm` is not HMAC or the secret is too short.
    pub fn hmac(kid: Kid, algorithm: SigningAlgorithm, secret: &[u8]) -> Result<Self> {
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
        let Some(hmac_algorithm) = algorithm.hmac_algorithm() else {
            return Err(TokenError::InvalidKey(format!(
                "{algorithm} is not an hmac algorithm"
            )));
        };
        Ok(Self {
            kid,
            algorithm,
            key: PrivateKey::Hmac(Box::new(hmac::Key::new(hmac_algorithm, secret))),
        })
    }

    /// A fresh random Ed25519 key.
    ///
    /// # Errors
    /// [`TokenError::Random`] if the operating system's random number generator fails.
    pub fn generate_ed25519(kid: Kid) -> Result<Self> {
        let seed = random32()?;
        Ok(Self::ed25519_from_seed(kid, &seed))
    }

    /// An Ed25519 key from its 32-byte seed (RFC 8032 private key, JWK `d`).
    #[must_use]
    pub fn ed25519_from_seed(kid: Kid, seed: &[u8; 32]) -> Self {
        // Every 32-byte string is an Ed25519 seed: aws-lc fails here only if it cannot
        // allocate, and then the key reports itself unusable instead of panicking.
        let key = match Ed25519KeyPair::from_seed_unchecked(seed) {
            Ok(pair) => PrivateKey::Ed25519(pair),
            Err(_) => PrivateKey::Unusable,
        };
        Self {
            kid,
            algorithm: SigningAlgorithm::EdDsa,
            key,
        }
    }

    /// A fresh random ES256 (P-256) key.
    ///
    /// # Errors
    /// [`TokenError::Random`] if the operating system's random number generator fails;
    /// [`TokenError::InvalidKey`] only if it repeatedly yields invalid scalars.
    pub fn generate_es256(kid: Kid) -> Result<Self> {
        let mut last = TokenError::InvalidKey("no scalar".into());
        for _ in 0..8 {
            let scalar = random32()?;
            match Self::es256_from_scalar(kid.clone(), &scalar) {
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
        let mut der = Zeroizing::new([0u8; 67]);
        let (prefix, rest) = der.split_at_mut(P256_PKCS8_PREFIX.len());
        prefix.copy_from_slice(&P256_PKCS8_PREFIX);
        rest.copy_from_slice(d);
        // aws-lc refuses a zero scalar and one not below the group order.
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_slice())
            .map_err(|e| TokenError::InvalidKey(format!("p-256 private key: {e}")))?;
        Ok(Self {
            kid,
            algorithm: SigningAlgorithm::Es256,
            key: PrivateKey::Es256(pair),
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// Signs the JWS signing input held in `out`, then appends `.` and the base64url
    /// signature to it (so the signature is encoded where it is made, without a copy).
    pub(super) fn append_signature(&self, out: &mut String) -> Result<()> {
        match &self.key {
            PrivateKey::Hmac(key) => {
                let tag = hmac::sign(key, out.as_bytes());
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(tag, out);
            }
            PrivateKey::Ed25519(pair) => {
                let signature = pair.sign(out.as_bytes());
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(signature, out);
            }
            PrivateKey::Es256(pair) => {
                // aws-lc draws the ECDSA nonce itself; the generator argument is ignored.
                let signature = pair
                    .sign(&SystemRandom::new(), out.as_bytes())
                    .map_err(|_| TokenError::Signing("p-256 signing failed".into()))?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(signature, out);
            }
            PrivateKey::Unusable => return Err(TokenError::Signing("key is unusable".into())),
        }
        Ok(())
    }

    /// The matching verification key (for HMAC it holds the same secret).
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the private key is unusable.
    pub fn verification_key(&self) -> Result<VerificationKey> {
        let material = match &self.key {
            PrivateKey::Hmac(key) => {
                return Ok(VerificationKey {
                    kid: self.kid.clone(),
                    algorithm: self.algorithm,
                    key: PublicKey::Hmac(key.clone()),
                    public: None,
                });
            }
            PrivateKey::Unusable => return Err(TokenError::InvalidKey("key is unusable".into())),
            PrivateKey::Ed25519(pair) => PublicMaterial::Ed25519 {
                x: pair.public_key().as_ref().to_vec(),
            },
            PrivateKey::Es256(pair) => {
                let point = pair.public_key().as_ref();
                match (point.first(), point.get(1..33), point.get(33..65)) {
                    (Some(4), Some(x), Some(y)) if point.len() == 65 => PublicMaterial::P256 {
                        x: x.to_vec(),
                        y: y.to_vec(),
                    },
                    _ => {
                        return Err(TokenError::InvalidKey(
                            "p-256 public key is not an uncompressed point".into(),
                        ));
                    }
                }
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
    algorithm: SigningAlgorithm,
    key: PublicKey,
    public: Option<PublicMaterial>,
}

/// A verification key, parsed once.
#[derive(Clone)]
enum PublicKey {
    /// Boxed: aws-lc's HMAC context is over a kilobyte.
    Hmac(Box<hmac::Key>),
    Signature(ParsedPublicKey),
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
    pub fn hmac(kid: Kid, algorithm: SigningAlgorithm, secret: &[u8]) -> Result<Self> {
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
        // Points the backend cannot use are refused now rather than at verification.
        let (algorithm, key) = match &material {
            PublicMaterial::Ed25519 { x } => {
                if x.len() != 32 {
                    return Err(TokenError::InvalidKey(
                        "ed25519 key must be 32 bytes".into(),
                    ));
                }
                let key = ParsedPublicKey::new(&ED25519, x.as_slice())
                    .map_err(|e| TokenError::InvalidKey(format!("ed25519 public key: {e}")))?;
                (SigningAlgorithm::EdDsa, key)
            }
            PublicMaterial::P256 { x, y } => {
                if x.len() != 32 || y.len() != 32 {
                    return Err(TokenError::InvalidKey(
                        "p-256 coordinates must be 32 bytes".into(),
                    ));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .map_err(|e| TokenError::InvalidKey(format!("p-256 public key: {e}")))?;
                (SigningAlgorithm::Es256, key)
            }
        };
        let key = PublicKey::Signature(key);
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
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// Checks a raw JWS signature over `message` (the signing input `header.payload`, or any
    /// bytes) with this key's algorithm. Tokens go through [`super::Verifier`] instead.
    ///
    /// # Errors
    /// [`TokenRejection::InvalidSignature`].
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> Result<(), TokenRejection> {
        match &self.key {
            // Constant-time tag comparison.
            PublicKey::Hmac(key) => hmac::verify(key, message, signature),
            PublicKey::Signature(key) => key.verify_sig(message, signature),
        }
        .map_err(|_| TokenRejection::InvalidSignature)
    }
}
