//! `Keyring` against the public `KeyProvider` conformance suite, directly, through the
//! forwarding impls, after a rotation and under retired versions.

#![cfg(test)]

use std::sync::Arc;

use finsec_crypto::testing::key_provider_conformance;
use finsec_crypto::{KeyName, KeyProvider, Keyring};

fn keyring() -> (Keyring, KeyName, KeyName) {
    let keyring = Keyring::new();
    let a = KeyName::new("pii").unwrap();
    let b = KeyName::new("files").unwrap();
    keyring.create_key(&a).unwrap();
    keyring.create_key(&b).unwrap();
    (keyring, a, b)
}

#[test]
fn keyring_meets_the_provider_contract() {
    let (keyring, a, b) = keyring();
    key_provider_conformance(&keyring, &a, &b);
    key_provider_conformance(&keyring, &b, &a);
    keyring.rotate(&a).unwrap();
    key_provider_conformance(&keyring, &a, &b);

    let shared: Arc<dyn KeyProvider> = Arc::new(keyring);
    key_provider_conformance(&shared, &a, &b);
    let boxed: Box<dyn KeyProvider> = Box::new(shared);
    key_provider_conformance(&boxed, &a, &b);
}

/// A provider that forgets the binding of a wrapped key to its KEK reference fails the
/// suite: the suite can fail.
#[test]
fn a_provider_that_ignores_the_key_reference_fails_the_suite() {
    struct Careless(Keyring);
    impl KeyProvider for Careless {
        fn wrap_dek(
            &self,
            name: &KeyName,
            dek: &finsec_crypto::Key256,
        ) -> finsec_crypto::Result<(finsec_crypto::KekRef, finsec_crypto::WrappedDek)> {
            self.0.wrap_dek(name, dek)
        }
        fn unwrap_dek(
            &self,
            kek: &finsec_crypto::KekRef,
            wrapped: &[u8],
        ) -> finsec_crypto::Result<finsec_crypto::Key256> {
            // Tries the named version, then falls back to every key it holds: the bug.
            self.0.unwrap_dek(kek, wrapped).or_else(|_| {
                let fallback = finsec_crypto::KekRef {
                    name: KeyName::new("pii").unwrap(),
                    version: 1,
                };
                self.0.unwrap_dek(&fallback, wrapped)
            })
        }
        fn primary_version(&self, name: &KeyName) -> finsec_crypto::Result<u32> {
            self.0.primary_version(name)
        }
    }
    let (keyring, a, b) = keyring();
    let careless = Careless(keyring);
    let outcome = std::panic::catch_unwind(|| key_provider_conformance(&careless, &a, &b));
    assert!(
        outcome.is_err(),
        "the suite must catch a provider that ignores the key reference"
    );
}
