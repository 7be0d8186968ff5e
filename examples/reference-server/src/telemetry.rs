//! Structured logs with `tracing`, to standard error, as text or JSON.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::error::{Result, ServerError};

/// The filter used when `RUST_LOG` is unset: `info`, except PostgreSQL's notices (such as
/// "relation already exists, skipping" on every migration run), which are only shown from
/// `warn` up.
pub const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber. The filter comes from `RUST_LOG` (default
/// [`DEFAULT_FILTER`]).
///
/// # Errors
/// [`ServerError::Telemetry`] if `RUST_LOG` is invalid or a subscriber is already set.
pub fn init(format: LogFormat) -> Result<()> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| ServerError::Telemetry(format!("invalid RUST_LOG: {e}")))?,
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    installed.map_err(|e| ServerError::Telemetry(e.to_string()))
}
