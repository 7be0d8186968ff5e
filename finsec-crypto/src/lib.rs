#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod blind_index;
pub mod envelope;
pub mod error;
pub mod hazmat;
pub mod kdf;
pub mod keyring;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod provider;
pub mod secret;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod stream;
pub mod subject;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use backend::AeadBackend;
pub use blind_index::{BlindIndex, BlindIndexValue, Normalizer};
pub use envelope::{Envelope, Rewrap};
pub use error::{Error, Result};
pub use kdf::{DerivedKey, PassphraseKdf, Salt};
pub use keyring::{KeyStatus, Keyring, RotationPolicy, SealKey};
pub use provider::{KekRef, KeyName, KeyProvider, WrapNonce, WrappedDek};
pub use secret::{Key256, Passphrase, SecretBytes, fill_random, random_array};
pub use stream::{StreamDecryptor, StreamEncryptor, StreamOptions};
pub use subject::{MemorySubjectKeyStore, SubjectId, SubjectKeyStore, SubjectKeys};
