//! argon2id hashing and verification.

use std::fmt;

use argon2::password_hash::{
    Error as PhcError, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, KeyId, Params, ParamsBuilder, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use finsec_crypto::PassphraseKdf;
use finsec_crypto::kdf::{
    DEFAULT_ARGON2_ITERATIONS, DEFAULT_ARGON2_MEMORY_KIB, DEFAULT_ARGON2_PARALLELISM,
    MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM,
};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use super::policy::{MAX_MAX_CHARS, normalize};
use super::{
    NewPassword, Password, PasswordAccepted, PasswordError, PasswordOutcome, PasswordRejection,
};
use crate::outcome::CredentialOutcome;

/// Length of the random salt of new hashes, in bytes (RFC 9106: 128 bits).
const SALT_LEN: usize = 16;
/// Length of a 16-byte salt in unpadded base64.
const SALT_B64_LEN: usize = 22;
/// Length of the argon2 tag of new hashes, in bytes.
const TAG_LEN: usize = 32;
/// Passwords longer than this (in bytes) are a mismatch without hashing: no policy allows
/// them, and they would only make us normalise megabytes.
const MAX_VERIFY_BYTES: usize = MAX_MAX_CHARS * 4;
/// Fixed salt of the dummy hash (it is never a real user's hash).
const DUMMY_SALT: &[u8; SALT_LEN] = b"finsec-dummy-slt";

/// Validated argon2id cost parameters for new hashes.
///
/// [`new`](Self::new) applies the `MIN_*`/`MAX_*` bounds of [`finsec_crypto::kdf`]
/// (through [`PassphraseKdf::validate`]), so the two crates cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's minimum: m = 19,456 KiB, t = 2, p = 1.
    fn default() -> Self {
        Self {
            memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            iterations: DEFAULT_ARGON2_ITERATIONS,
            parallelism: DEFAULT_ARGON2_PARALLELISM,
        }
    }
}

impl Argon2Params {
    /// Parameters for new hashes: memory in KiB, passes, lanes.
    ///
    /// # Errors
    /// [`PasswordError::InvalidParameter`] naming the parameter below
    /// `finsec_crypto::kdf::MIN_*` or above `MAX_*`.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, PasswordError> {
        PassphraseKdf::Argon2id {
            memory_kib,
            iterations,
            parallelism,
        }
        .validate()
        .map_err(|e| match e {
            finsec_crypto::Error::InvalidParameter { name, reason } => {
                PasswordError::InvalidParameter { name, reason }
            }
            other => PasswordError::InvalidParameter {
                name: "argon2",
                reason: other.to_string(),
            },
        })?;
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory cost in KiB.
    pub const fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes.
    pub const fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Number of lanes.
    pub const fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

/// A secret pepper, given to argon2 as its secret input `K` and named in the PHC string by
/// its id (argon2's `keyid`). Keep it out of the database (a secret manager, an environment
/// variable the database cannot read). Zeroized on drop; `Debug` shows only the id.
pub struct Pepper {
    id: String,
    secret: SecretSlice<u8>,
}

impl Pepper {
    /// Shortest pepper accepted, in bytes.
    pub const MIN_LEN: usize = 16;
    /// Longest pepper accepted, in bytes.
    pub const MAX_LEN: usize = 64;
    /// Longest id accepted, in bytes (argon2's `keyid` limit).
    pub const MAX_ID_LEN: usize = Params::MAX_KEYID_LEN;

    /// A pepper with an id of 1 to 8 ASCII letters, digits, `-` or `_`, and 16 to 64
    /// secret bytes (32 random bytes is the recommendation).
    ///
    /// # Errors
    /// [`PasswordError::InvalidParameter`] if the id or the secret's length is out of range.
    pub fn new(id: &str, secret: Vec<u8>) -> Result<Self, PasswordError> {
        let secret = SecretSlice::from(secret);
        if id.is_empty()
            || id.len() > Self::MAX_ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(PasswordError::InvalidParameter {
                name: "pepper id",
                reason: format!(
                    "{id:?} is not 1 to {} ASCII letters, digits, '-' or '_'",
                    Self::MAX_ID_LEN
                ),
            });
        }
        let len = secret.expose_secret().len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(PasswordError::InvalidParameter {
                name: "pepper",
                reason: format!(
                    "{len} bytes is outside {}..={} bytes",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            });
        }
        Ok(Self {
            id: id.to_owned(),
            secret,
        })
    }

    /// The pepper's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn key_id(&self) -> Result<KeyId, PasswordError> {
        KeyId::new(self.id.as_bytes()).map_err(|e| PasswordError::InvalidParameter {
            name: "pepper id",
            reason: e.to_string(),
        })
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pepper")
            .field("id", &self.id)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Hashes new passwords with argon2id and verifies stored hashes (argon2id PHC strings,
/// and legacy bcrypt with the `legacy-bcrypt` feature). See the [module docs](super).
pub struct PasswordHasher {
    params: Argon2Params,
    pepper: Option<Pepper>,
    retired: Vec<Pepper>,
    dummy_phc: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("pepper", &self.pepper)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    /// OWASP parameters, no pepper.
    fn default() -> Self {
        let params = Argon2Params::default();
        Self {
            dummy_phc: dummy_phc(&params, None),
            params,
            pepper: None,
            retired: Vec::new(),
        }
    }
}

impl PasswordHasher {
    /// A hasher with `params` for new hashes and an optional current pepper.
    ///
    /// # Errors
    /// [`PasswordError::InvalidParameter`] if argon2 refuses the parameters or pepper id.
    pub fn new(params: Argon2Params, pepper: Option<Pepper>) -> Result<Self, PasswordError> {
        if let Some(p) = &pepper {
            p.key_id()?;
        }
        params_for(&params, pepper.as_ref())?;
        Ok(Self {
            dummy_phc: dummy_phc(&params, pepper.as_ref()),
            params,
            pepper,
            retired: Vec::new(),
        })
    }

    /// Adds a retired pepper: hashes made with it still verify (with `needs_rehash`), new
    /// hashes use the current one.
    ///
    /// # Errors
    /// [`PasswordError::InvalidParameter`] if its id is already configured.
    pub fn with_retired_pepper(mut self, pepper: Pepper) -> Result<Self, PasswordError> {
        if self.find_pepper(pepper.id.as_bytes()).is_some() {
            return Err(PasswordError::InvalidParameter {
                name: "pepper id",
                reason: format!("{:?} is configured twice", pepper.id),
            });
        }
        self.retired.push(pepper);
        Ok(self)
    }

    /// The parameters of new hashes.
    pub const fn params(&self) -> Argon2Params {
        self.params
    }

    /// Hashes a new password (checked by a [`PasswordPolicy`](super::PasswordPolicy)) into
    /// an argon2id PHC string with a fresh 16-byte salt and the current pepper.
    ///
    /// # Errors
    /// [`PasswordError::Random`] if no salt could be drawn; [`PasswordError::Hashing`].
    pub fn hash(&self, password: &NewPassword) -> Result<String, PasswordError> {
        self.hash_normalized(password.expose_secret())
    }

    /// [`verify`](Self::verify), and when the password matches but the stored hash needs a
    /// rehash, also a fresh argon2id hash of the same password to store in its place (the
    /// migration step for legacy bcrypt hashes, old parameters and retired peppers).
    ///
    /// The new hash does not go through a [`PasswordPolicy`](super::PasswordPolicy): the
    /// user already has this password, and a rehash must not lock them out because the
    /// rules changed (ask them to change it separately if it breaks the current policy).
    ///
    /// # Errors
    /// As [`verify`](Self::verify) and [`hash`](Self::hash).
    pub fn verify_and_rehash(
        &self,
        password: &Password,
        stored: &str,
    ) -> Result<(PasswordOutcome, Option<String>), PasswordError> {
        let outcome = self.verify(password, stored)?;
        let rehash = match outcome {
            CredentialOutcome::Accepted(PasswordAccepted { needs_rehash: true }) => {
                let normalized = Zeroizing::new(normalize(password.expose_secret()));
                Some(self.hash_normalized(&normalized)?)
            }
            CredentialOutcome::Accepted(PasswordAccepted {
                needs_rehash: false,
            })
            | CredentialOutcome::Rejected(_) => None,
        };
        Ok((outcome, rehash))
    }

    fn hash_normalized(&self, password: &str) -> Result<String, PasswordError> {
        let salt_bytes: Zeroizing<[u8; SALT_LEN]> =
            Zeroizing::new(finsec_crypto::random_array().map_err(PasswordError::Random)?);
        let salt = SaltString::encode_b64(salt_bytes.as_slice())
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let argon = self.argon2(self.pepper.as_ref())?;
        let phc = argon
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(phc.to_string())
    }

    /// Verifies `password` (NFKC-normalised first) against a stored hash.
    ///
    /// Any wrong password is a [`PasswordRejection::Mismatch`] outcome; on success, `needs_rehash` says
    /// whether to store a fresh [`hash`](Self::hash) of it. Stored argon2id hashes are
    /// accepted whatever their cost up to the `finsec_crypto::kdf::MAX_*` bounds; with the
    /// `legacy-bcrypt` feature, bcrypt hashes too. A password over 4,096 bytes (more than
    /// any policy allows) is a mismatch without hashing; that only tells the sender about
    /// their own input, not about the account.
    ///
    /// # Errors
    /// Only for a stored hash that cannot be used: [`PasswordError::InvalidStoredHash`]
    /// (malformed, not argon2id, over the bounds, or bcrypt without the feature) and
    /// [`PasswordError::UnknownPepper`]. These are deployment faults, not answers to the
    /// user: do not show them to the client.
    pub fn verify(
        &self,
        password: &Password,
        stored: &str,
    ) -> Result<PasswordOutcome, PasswordError> {
        if is_bcrypt(stored) {
            #[cfg(feature = "legacy-bcrypt")]
            return super::legacy::verify_bcrypt(password, stored);
            #[cfg(not(feature = "legacy-bcrypt"))]
            return Err(PasswordError::InvalidStoredHash {
                reason: "bcrypt hashes need the legacy-bcrypt feature".into(),
            });
        }
        let raw = password.expose_secret();
        if raw.len() > MAX_VERIFY_BYTES {
            // Still parse the stored hash so a broken one is reported, then refuse.
            PasswordHash::new(stored).map_err(|e| PasswordError::InvalidStoredHash {
                reason: format!("not a PHC string: {e}"),
            })?;
            return Ok(CredentialOutcome::Rejected(PasswordRejection::Mismatch));
        }
        let normalized = Zeroizing::new(normalize(raw));
        self.verify_phc(normalized.as_bytes(), stored)
    }

    /// Spends the time of a real verification with the current parameters and pepper,
    /// and always returns a [`PasswordRejection::Mismatch`] outcome. Call it when the user does not exist,
    /// so response time does not tell which accounts exist.
    pub fn dummy_verify(&self, password: &Password) -> PasswordOutcome {
        let raw = password.expose_secret();
        let cut = raw
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| i > MAX_VERIFY_BYTES)
            .unwrap_or(raw.len());
        let normalized = Zeroizing::new(normalize(raw.get(..cut).unwrap_or_default()));
        // The outcome is ignored: whatever happens, the answer is a mismatch.
        let _ = self.verify_phc(normalized.as_bytes(), &self.dummy_phc);
        CredentialOutcome::Rejected(PasswordRejection::Mismatch)
    }

    /// The PHC string [`dummy_verify`](Self::dummy_verify) verifies against: the current
    /// parameters and pepper id, a fixed salt and an all-zero tag (no password is known to
    /// produce it, and the result is ignored anyway).
    pub fn dummy_hash(&self) -> &str {
        &self.dummy_phc
    }

    fn find_pepper(&self, id: &[u8]) -> Option<&Pepper> {
        self.pepper
            .iter()
            .chain(self.retired.iter())
            .find(|p| p.id.as_bytes() == id)
    }

    fn argon2<'a>(&self, pepper: Option<&'a Pepper>) -> Result<Argon2<'a>, PasswordError> {
        let params = params_for(&self.params, pepper)?;
        match pepper {
            Some(p) => Argon2::new_with_secret(
                p.secret.expose_secret(),
                Algorithm::Argon2id,
                Version::V0x13,
                params,
            )
            .map_err(|e| PasswordError::Hashing(e.to_string())),
            None => Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
        }
    }

    fn verify_phc(&self, password: &[u8], stored: &str) -> Result<PasswordOutcome, PasswordError> {
        let invalid = |reason: String| PasswordError::InvalidStoredHash { reason };
        let hash =
            PasswordHash::new(stored).map_err(|e| invalid(format!("not a PHC string: {e}")))?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return Err(invalid(format!(
                "algorithm {} is not argon2id",
                hash.algorithm
            )));
        }
        let params =
            Params::try_from(&hash).map_err(|e| invalid(format!("argon2 parameters: {e}")))?;
        let over = |name: &str, value: u32, max: u32| {
            (value > max).then(|| invalid(format!("{name} {value} is above the maximum {max}")))
        };
        if let Some(e) = over("memory", params.m_cost(), MAX_ARGON2_MEMORY_KIB)
            .or_else(|| over("passes", params.t_cost(), MAX_ARGON2_ITERATIONS))
            .or_else(|| over("lanes", params.p_cost(), MAX_ARGON2_PARALLELISM))
        {
            return Err(e);
        }
        let pepper = if params.keyid().is_empty() {
            None
        } else {
            Some(
                self.find_pepper(params.keyid())
                    .ok_or_else(|| PasswordError::UnknownPepper {
                        id: String::from_utf8_lossy(params.keyid()).into_owned(),
                    })?,
            )
        };
        let argon = self.argon2(pepper)?;
        match argon.verify_password(password, &hash) {
            Ok(()) => Ok(CredentialOutcome::Accepted(PasswordAccepted {
                needs_rehash: self.needs_rehash(&hash, &params, pepper),
            })),
            Err(PhcError::Password) => Ok(CredentialOutcome::Rejected(PasswordRejection::Mismatch)),
            Err(e) => Err(invalid(format!("argon2: {e}"))),
        }
    }

    fn needs_rehash(
        &self,
        hash: &PasswordHash<'_>,
        params: &Params,
        pepper: Option<&Pepper>,
    ) -> bool {
        let current = &self.params;
        let salt_short = hash.salt.is_none_or(|s| s.len() < SALT_B64_LEN);
        let tag_short = hash.hash.is_none_or(|h| h.len() < TAG_LEN);
        let pepper_changed = pepper.map(Pepper::id) != self.pepper.as_ref().map(Pepper::id);
        hash.version != Some(Version::V0x13.into())
            || params.m_cost() < current.memory_kib
            || params.t_cost() < current.iterations
            || params.p_cost() != current.parallelism
            || salt_short
            || tag_short
            || pepper_changed
    }
}

fn params_for(params: &Argon2Params, pepper: Option<&Pepper>) -> Result<Params, PasswordError> {
    let mut builder = ParamsBuilder::new();
    builder
        .m_cost(params.memory_kib)
        .t_cost(params.iterations)
        .p_cost(params.parallelism)
        .output_len(TAG_LEN);
    if let Some(p) = pepper {
        builder.keyid(p.key_id()?);
    }
    builder
        .build()
        .map_err(|e| PasswordError::InvalidParameter {
            name: "argon2",
            reason: e.to_string(),
        })
}

fn dummy_phc(params: &Argon2Params, pepper: Option<&Pepper>) -> String {
    let keyid = pepper
        .map(|p| format!(",keyid={}", STANDARD_NO_PAD.encode(p.id.as_bytes())))
        .unwrap_or_default();
    format!(
        "$argon2id$v=19$m={},t={},p={}{keyid}${}${}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        STANDARD_NO_PAD.encode(DUMMY_SALT),
        STANDARD_NO_PAD.encode([0u8; TAG_LEN]),
    )
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$", "$2$"]
        .iter()
        .any(|p| stored.starts_with(p))
}
