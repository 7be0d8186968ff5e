//! Blocking file work (reads, `fsync`) moved off the async executor's threads.

use crate::error::{Error, Result};

/// Runs `work` on the runtime's blocking pool when called inside a Tokio runtime, and
/// inline otherwise (another executor, or none), so a slow disk never stalls the tasks
/// that share a worker thread.
pub(crate) async fn run<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(work).await.unwrap_or_else(|e| {
            Err(Error::store(format!(
                "a blocking file task did not finish: {e}"
            )))
        }),
        Err(_) => work(),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[test]
    fn outside_a_runtime_the_work_runs_inline() {
        let mut fut = std::pin::pin!(run(|| Ok(std::thread::current().id())));
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(id)) => assert_eq!(id, std::thread::current().id()),
            other => panic!("expected the work done inline, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn inside_a_runtime_the_work_leaves_the_task_and_errors_come_back() {
        let here = std::thread::current().id();
        let there = run(|| Ok(std::thread::current().id())).await.unwrap();
        assert_ne!(here, there);
        let failed = run(|| -> Result<()> { Err(Error::store("disk gone")) }).await;
        assert!(failed.unwrap_err().to_string().contains("disk gone"));
    }
}
