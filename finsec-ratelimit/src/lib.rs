#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algorithm;
pub mod client_ip;
pub mod clock;
pub mod decision;
pub mod error;
pub mod failure;
pub mod headers;
pub mod memory;
pub mod policy;
pub mod quota;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
pub mod trading;

pub use client_ip::TrustedProxies;
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, QuotaDecision};
pub use error::{Error, Result};
pub use failure::{FailurePolicy, Outcome, RateLimiter};
pub use headers::RateLimitHeaders;
pub use memory::MemoryStore;
pub use policy::{Identity, KeyKind, Policies, RateLimitPolicy};
pub use quota::{Algorithm, Quota};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use store::{Check, RateLimitStore};
