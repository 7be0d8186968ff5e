//! GDPR: the consent ledger ([`consent`]). Data-subject requests, retention and legal holds
//! come next.

pub mod consent;
