//! Input validation for financial data: parsed identifiers, numbers, text, HTML, paths and injection detection.
//!
//! **Status: not built yet.** This crate is a placeholder in the workspace so that the
//! layout, features and CI are in place; it exports nothing. It will hold:
//!
//! - Parsed types that validate on construction and on deserialisation: `Symbol`, `Isin` (ISO 6166), `Lei` (ISO 17442), `Mic` (ISO 10383), `Currency` (ISO 4217), `Cfi`, `Quantity`, `Price`, order side and type.
//! - Composite validation that collects every field error with its path, code and message.
//! - Text rules (length, control characters, NFKC, bidi overrides), HTML sanitising with `ammonia` under named policies, and a safe path join under a base directory.
//! - Tokenizer-based SQL injection detection as defence in depth, with measured detection and false-positive rates.
//!
//! # Threat model
//!
//! None yet: the crate exports nothing, so it neither defends nor exposes anything. The
//! section arrives with the code.
#![forbid(unsafe_code)]
