//! Every store error of the crates a user imports together has a variant that works with
//! no feature enabled, built the same way (`store(source)`), and keeps its source.

use std::io;

use finsec_auth::TokenError;
use finsec_auth::api_keys::ApiKeyError;
use finsec_auth::mfa::MfaError;
use finsec_auth::tokens::StoreFailure;

fn backend_down() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "backend went away")
}

fn source_is_io(e: &(dyn std::error::Error + 'static)) -> bool {
    e.source().is_some_and(|source| {
        source.downcast_ref::<io::Error>().is_some()
            || source
                .downcast_ref::<StoreFailure>()
                .is_some_and(|f| f.get_ref().downcast_ref::<io::Error>().is_some())
    })
}

#[test]
fn every_store_error_keeps_its_source() {
    let errors: [Box<dyn std::error::Error + 'static>; 5] = [
        Box::new(TokenError::store(backend_down())),
        Box::new(ApiKeyError::store(backend_down())),
        Box::new(MfaError::store(backend_down())),
        Box::new(finsec_crypto::Error::store(backend_down())),
        Box::new(finsec_rbac::Error::store(backend_down())),
    ];
    for e in &errors {
        assert!(source_is_io(e.as_ref()), "{e:?}");
        assert!(e.to_string().contains("backend went away"), "{e}");
    }
    assert_eq!(errors.len(), 5);
}

#[test]
fn a_message_is_a_store_error_too() {
    let e = TokenError::store("write refused");
    assert!(matches!(&e, TokenError::Store(_)));
    assert_eq!(e.to_string(), "token store: write refused");
    assert!(matches!(ApiKeyError::store("x"), ApiKeyError::Store(_)));
    assert!(matches!(MfaError::store("x"), MfaError::Store(_)));
}

#[test]
fn token_store_failures_compare_by_identity() {
    let e = TokenError::store(backend_down());
    assert_eq!(e.clone(), e, "a clone is the same failure");
    assert_ne!(
        TokenError::store(backend_down()),
        TokenError::store(backend_down()),
        "two failures are never equal, even with the same text"
    );
}
