//! Criterion benchmarks for finsec live in `benches/`; this library holds no code. It also
//! compiles the examples of the workspace README as doc tests, so they cannot go stale.
#![forbid(unsafe_code)]

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
