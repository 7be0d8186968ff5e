//! Regulatory workflows for finsec: MiFID II transaction reporting, GDPR data-subject requests and retention.
//!
//! **Status: not built yet.** This crate is a placeholder in the workspace so that the
//! layout, features and CI are in place; it exports nothing. It will hold:
//!
//! - MiFID II (RTS 22) transaction reports validated with finsec-validate, exported as CSV and ISO 20022 XML, with period totals in `Decimal`, best-execution checks and a top-five venues summary.
//! - Retention policies per record class, legal holds and archive-before-delete with a dry-run report.
//! - GDPR access, portability, erasure (including crypto-shredding through finsec-crypto subject keys) and rectification over app-provided data sources, with deadlines tracked and a consent ledger.
//!
//! # Threat model
//!
//! None yet: the crate exports nothing, so it neither defends nor exposes anything. The
//! section arrives with the code.
#![forbid(unsafe_code)]
