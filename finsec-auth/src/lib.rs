//! Authentication for finsec: JWT tokens, argon2id passwords, TOTP MFA and API keys.
//!
//! **Status: not built yet.** This crate is a placeholder in the workspace so that the
//! layout, features and CI are in place; it exports nothing. It will hold:
//!
//! - `tokens`: issue and verify JWTs (HS256/384/512, EdDSA, ES256) with keys that carry a `kid`, several keys active for rotation, a JWKS export, strict validation (algorithm from the key, required `exp`, `iss`, `aud`, bounded size), access/refresh pairs with rotation and reuse detection, and `jti` revocation (`RevocationStore`).
//! - `passwords`: argon2id PHC hashes with OWASP parameters, `needs_rehash`, an optional pepper, legacy bcrypt verification for migration, a dummy verification for unknown users and NIST SP 800-63B length rules.
//! - `mfa`: RFC 6238 TOTP with replay protection (`TotpReplayStore`), pending enrollment, `otpauth://` URIs, QR codes as PNG and SVG, and hashed single-use backup codes.
//! - `api_keys`: printable keys with a fixed prefix, key id, 256-bit secret and checksum; only a hash is stored; scopes, expiry, revocation and rotation with an overlap window.
//!
//! # Threat model
//!
//! None yet: the crate exports nothing, so it neither defends nor exposes anything. The
//! section arrives with the code.
#![forbid(unsafe_code)]
