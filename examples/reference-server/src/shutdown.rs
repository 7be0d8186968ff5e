//! Shutdown signals.
//!
//! [`signal`] installs the handlers when it is *called*, not when its future is first
//! polled: a SIGTERM that arrives while the server starts (or right after it has logged
//! that it listens, before the HTTP server polls the future) is then remembered and
//! triggers a graceful shutdown, instead of killing the process with the default action.

use std::future::Future;

/// Returns a future that completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
///
/// Call it as early as possible, inside a Tokio runtime: the handlers are installed at
/// once (outside a runtime they are installed when the future is first polled). If a
/// handler cannot be installed, the failure is logged and that signal is not awaited (the
/// other still is).
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    let installed = tokio::runtime::Handle::try_current()
        .is_ok()
        .then(Handlers::install);
    async move {
        let handlers = match installed {
            Some(handlers) => handlers,
            None => Handlers::install(),
        };
        handlers.wait().await;
    }
}

#[cfg(unix)]
struct Handlers {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Handlers {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for {name}");
                None
            }
        };
        Self {
            terminate: install(SignalKind::terminate(), "SIGTERM"),
            interrupt: install(SignalKind::interrupt(), "SIGINT"),
        }
    }

    async fn wait(self) {
        let Self {
            terminate,
            interrupt,
        } = self;
        tokio::select! {
            () = recv(terminate) => tracing::info!("received SIGTERM, shutting down"),
            () = recv(interrupt) => tracing::info!("received SIGINT (Ctrl-C), shutting down"),
        }
    }
}

/// Waits for `signal`; forever if there is no handler.
#[cfg(unix)]
async fn recv(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            // `None` means the runtime is shutting down: stop as well.
            let _ = signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
struct Handlers;

#[cfg(not(unix))]
impl Handlers {
    fn install() -> Self {
        Self
    }

    async fn wait(self) {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("received Ctrl-C, shutting down"),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    }
}
