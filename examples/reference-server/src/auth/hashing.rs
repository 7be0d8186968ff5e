//! Password hashing behind a bounded queue.
//!
//! An argon2id hash or verification costs 19 MiB of memory and tens of milliseconds of one
//! core. Run on tokio's blocking pool without a bound, a login flood would start up to 512
//! of them at once (almost 10 GiB) and starve everything else of CPU. Every hash the
//! server computes for a request (registration, login, the dummy verification for unknown
//! users) goes through one [`HashingQueue`] instead:
//!
//! - at most `--hash-concurrency` hashes run at once (two per core by default), each on
//!   one of that many dedicated threads started with the queue, so memory for hashing is
//!   bounded by that many times 19 MiB and the async workers keep a share of the CPU. The
//!   threads are fixed rather than borrowed from tokio's blocking pool, which starts new
//!   threads as it likes: every new thread can get its own allocator arena, and each arena
//!   keeps the 19 MiB it last freed, so memory would grow with the number of threads that
//!   ever hashed, not with the hashes running;
//! - at most `--hash-queue` more wait for a slot, in arrival order (tokio's semaphore is
//!   fair, so a burst cannot starve an earlier request), each for at most
//!   `--hash-queue-timeout-ms`;
//! - anything past that is refused at once with [`HashingError::Busy`], answered `503`
//!   with `Retry-After`: a flood costs a fixed amount of memory and threads, never more.
//!
//! A slot is held by the hashing thread itself, so a request abandoned while its hash runs
//! (the client went away, the request timed out) keeps the slot until the hash is done.

use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::config::LimitsConfig;
use crate::problem::Problem;

/// The `Retry-After` (seconds) of a refused hash: a hash takes tens of milliseconds, so a
/// slot is usually free again by then.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Why a hash did not run or did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashingError {
    /// Every slot is busy and the wait queue is full, or the wait was too long.
    #[error("too many password hashes in progress")]
    Busy,
    /// The hash panicked, or the hashing threads are gone.
    #[error("password hashing failed")]
    Failed,
}

impl From<HashingError> for Problem {
    fn from(error: HashingError) -> Self {
        match error {
            HashingError::Busy => Problem::unavailable(
                "too many passwords are being checked at once; retry shortly",
                RETRY_AFTER_SECS,
            ),
            HashingError::Failed => Problem::internal(&error),
        }
    }
}

impl IntoResponse for HashingError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// A bounded executor for password hashes: a fixed number run at once on as many dedicated
/// threads, a fixed number wait, the rest are refused (see the [module docs](self)). The
/// threads stop when the last clone of the queue is dropped.
#[derive(Debug, Clone)]
pub struct HashingQueue {
    /// Hands jobs to the hashing threads; a job is sent only while it holds a slot, so a
    /// thread is always free to take it.
    jobs: mpsc::Sender<Job>,
    /// One permit per hash running at once.
    slots: Arc<Semaphore>,
    /// One permit per hash running or waiting.
    admitted: Arc<Semaphore>,
    concurrency: usize,
    capacity: usize,
    wait: Duration,
}

impl HashingQueue {
    /// The most hashing threads a queue starts (and so the most hashes run at once).
    pub const MAX_CONCURRENCY: usize = 1_024;

    /// A queue running at most `concurrency` hashes at once (at most
    /// [`MAX_CONCURRENCY`](Self::MAX_CONCURRENCY)), each on its own thread, with at most
    /// `queue` more waiting, each for at most `wait`.
    ///
    /// # Errors
    /// The operating system's error if a hashing thread cannot be started.
    pub fn new(concurrency: NonZeroUsize, queue: usize, wait: Duration) -> std::io::Result<Self> {
        let concurrency = concurrency.get().min(Self::MAX_CONCURRENCY);
        let capacity = concurrency
            .saturating_add(queue)
            .min(Semaphore::MAX_PERMITS);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..concurrency {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("finsec-hash-{n}"))
                .spawn(move || hashing_thread(&receiver))?;
        }
        Ok(Self {
            jobs,
            slots: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(capacity)),
            concurrency,
            capacity,
            wait,
        })
    }

    /// The queue `--hash-concurrency`, `--hash-queue` and `--hash-queue-timeout-ms` ask for.
    ///
    /// # Errors
    /// The operating system's error if a hashing thread cannot be started.
    pub fn from_config(limits: &LimitsConfig) -> std::io::Result<Self> {
        Self::new(
            limits.hash_concurrency(),
            usize::try_from(limits.hash_queue).unwrap_or(usize::MAX),
            limits.hash_queue_timeout(),
        )
    }

    /// Takes a place in the queue for one hash, without waiting: a request that will hash
    /// takes it first, so a request the queue cannot take is refused before it does any
    /// other work (a database lookup, for example).
    ///
    /// # Errors
    /// [`HashingError::Busy`] if every slot and every place in the queue is taken.
    pub fn admit(&self) -> Result<Admission, HashingError> {
        let permit = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| HashingError::Busy)?;
        Ok(Admission {
            queue: self.clone(),
            permit,
        })
    }

    /// Takes a place in the queue ([`admit`](Self::admit)) and runs `hash` (see
    /// [`Admission::run`]).
    ///
    /// # Errors
    /// As [`admit`](Self::admit) and [`Admission::run`].
    pub async fn run<T, F>(&self, hash: F) -> Result<T, HashingError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.admit()?.run(hash).await
    }

    /// Hashes running now.
    pub fn running(&self) -> usize {
        self.concurrency
            .saturating_sub(self.slots.available_permits())
    }

    /// Hashes running or waiting for a slot now.
    pub fn admitted(&self) -> usize {
        self.capacity
            .saturating_sub(self.admitted.available_permits())
    }

    /// The most hashes that run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The most hashes that run or wait at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A place in a [`HashingQueue`] for one hash; dropping it unused gives the place back.
#[derive(Debug)]
pub struct Admission {
    queue: HashingQueue,
    permit: OwnedSemaphorePermit,
}

impl Admission {
    /// Runs `hash` on a hashing thread once a slot is free, and returns its result.
    ///
    /// # Errors
    /// [`HashingError::Busy`] once the wait for a slot exceeds the queue timeout;
    /// [`HashingError::Failed`] if `hash` panicked.
    pub async fn run<T, F>(self, hash: F) -> Result<T, HashingError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let Self { queue, permit } = self;
        let wait = queue.wait;
        let slot = match tokio::time::timeout(wait, Arc::clone(&queue.slots).acquire_owned()).await
        {
            Ok(Ok(slot)) => slot,
            // A timeout, or a closed semaphore (never closed: treated as full).
            Ok(Err(_)) | Err(_) => return Err(HashingError::Busy),
        };
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panicking hash fails its request, not the thread.
            let result = std::panic::catch_unwind(AssertUnwindSafe(hash));
            drop((permit, slot));
            let _ = done.send(result);
        });
        queue.jobs.send(job).map_err(|_| HashingError::Failed)?;
        match outcome.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(HashingError::Failed),
        }
    }
}

/// Runs jobs until every sender is gone.
fn hashing_thread(receiver: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only to take a job, never while running it; a job cannot
        // panic while holding it, so poisoning is impossible (and harmless if it were).
        let job = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match job {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use tokio::sync::mpsc as mpsc_tokio;
    use tokio::task::JoinHandle;

    use super::*;

    fn queue(concurrency: usize, waiting: usize, wait: Duration) -> HashingQueue {
        HashingQueue::new(NonZeroUsize::new(concurrency).unwrap(), waiting, wait).unwrap()
    }

    /// A job that reports `id` on `started` when its hash begins, then blocks until
    /// released.
    fn gated(
        queue: &HashingQueue,
        id: usize,
        started: &mpsc_tokio::UnboundedSender<usize>,
    ) -> (oneshot::Sender<()>, JoinHandle<Result<usize, HashingError>>) {
        let (release, released) = oneshot::channel::<()>();
        let started = started.clone();
        let queue = queue.clone();
        let job = tokio::spawn(async move {
            queue
                .run(move || {
                    started.send(id).unwrap();
                    let _ = released.blocking_recv();
                    id
                })
                .await
        });
        (release, job)
    }

    /// Yields until `queue` has admitted `n` jobs (bounded: the spawned tasks need only be
    /// polled once each).
    async fn until_admitted(queue: &HashingQueue, n: usize) {
        for _ in 0..10_000 {
            if queue.admitted() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} jobs admitted, expected {n}", queue.admitted());
    }

    #[tokio::test]
    async fn the_bound_holds_and_the_overflow_is_refused_at_once() {
        let queue = queue(2, 3, Duration::from_secs(3600));
        let (started_tx, mut started) = mpsc_tokio::unbounded_channel();
        let jobs: Vec<_> = (0..5).map(|id| gated(&queue, id, &started_tx)).collect();
        let mut running = vec![started.recv().await.unwrap(), started.recv().await.unwrap()];
        until_admitted(&queue, 5).await;
        assert_eq!(queue.running(), 2);
        assert!(started.try_recv().is_err(), "a third hash started");

        // Two running, three waiting: the sixth and seventh are refused without waiting.
        for _ in 0..2 {
            let refused = queue.run(|| ()).await;
            assert!(matches!(refused, Err(HashingError::Busy)), "{refused:?}");
        }
        assert_eq!(queue.admitted(), 5);

        // Release the jobs as they start: each waiting one gets a slot, in order, and
        // never more than two run at once.
        let (mut releases, handles): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|(r, j)| (Some(r), j)).unzip();
        let mut finished = 0;
        while finished < 5 {
            let id = running.remove(0);
            releases[id].take().unwrap().send(()).unwrap();
            finished += 1;
            if finished <= 3 {
                running.push(started.recv().await.unwrap());
            }
            assert!(queue.running() <= 2);
        }
        let mut ids = Vec::new();
        for handle in handles {
            ids.push(handle.await.unwrap().unwrap());
        }
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
        assert_eq!(queue.admitted(), 0);
        assert_eq!(queue.running(), 0);
    }

    #[tokio::test]
    async fn waiting_hashes_start_in_arrival_order() {
        let queue = queue(1, 4, Duration::from_secs(3600));
        let (started_tx, mut started) = mpsc_tokio::unbounded_channel();
        let mut releases = Vec::new();
        let mut handles = Vec::new();
        for id in 0..5 {
            let (release, job) = gated(&queue, id, &started_tx);
            releases.push(release);
            handles.push(job);
            // Each job enters the queue before the next one is submitted.
            until_admitted(&queue, id + 1).await;
        }
        let mut order = Vec::new();
        for release in releases {
            order.push(started.recv().await.unwrap());
            release.send(()).unwrap();
        }
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        for handle in handles {
            handle.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn capacity_comes_back_after_a_burst() {
        let queue = queue(2, 2, Duration::from_secs(3600));
        let (started_tx, mut started) = mpsc_tokio::unbounded_channel();
        // A burst of 50 while two hashes hold both slots: two wait, the rest are refused.
        let holders: Vec<_> = (0..2).map(|id| gated(&queue, id, &started_tx)).collect();
        started.recv().await.unwrap();
        started.recv().await.unwrap();
        let burst: Vec<_> = (0..50)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.run(move || i).await })
            })
            .collect();
        until_admitted(&queue, 4).await;
        for (release, _) in &holders {
            assert!(!release.is_closed());
        }
        for (release, job) in holders {
            release.send(()).unwrap();
            job.await.unwrap().unwrap();
        }
        let mut done = 0;
        let mut refused = 0;
        for job in burst {
            match job.await.unwrap() {
                Ok(_) => done += 1,
                Err(HashingError::Busy) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(done + refused, 50);
        assert!(done >= 2, "the two queued hashes ran ({done})");
        assert!(refused >= 1, "the burst overflowed the queue");
        // Every slot is free again: a full round of new hashes runs without refusal.
        assert_eq!(queue.admitted(), 0);
        let round: Vec<_> = (0..4)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.run(move || i).await })
            })
            .collect();
        for job in round {
            job.await.unwrap().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hash_waiting_too_long_is_refused() {
        let queue = queue(1, 1, Duration::from_secs(2));
        let (started_tx, mut started) = mpsc_tokio::unbounded_channel();
        let (release, holder) = gated(&queue, 0, &started_tx);
        started.recv().await.unwrap();
        // The clock is paused: it moves to the queue timeout only because nothing else can
        // happen before it.
        let waited = tokio::time::Instant::now();
        let refused = queue.run(|| 1).await;
        assert!(matches!(refused, Err(HashingError::Busy)), "{refused:?}");
        assert_eq!(waited.elapsed(), Duration::from_secs(2));
        assert_eq!(queue.admitted(), 1);
        release.send(()).unwrap();
        assert_eq!(holder.await.unwrap().unwrap(), 0);
        assert_eq!(queue.admitted(), 0);
    }

    #[tokio::test]
    async fn an_admission_holds_its_place_until_used_or_dropped() {
        let queue = queue(1, 1, Duration::from_secs(1));
        let first = queue.admit().unwrap();
        let second = queue.admit().unwrap();
        assert!(matches!(queue.admit(), Err(HashingError::Busy)));
        drop(second);
        assert_eq!(queue.admitted(), 1);
        assert_eq!(first.run(|| 5).await.unwrap(), 5);
        assert_eq!(queue.admitted(), 0);
        assert_eq!(queue.admit().unwrap().run(|| 6).await.unwrap(), 6);
    }

    #[tokio::test]
    async fn a_panicking_hash_fails_and_frees_its_slot() {
        let queue = queue(1, 0, Duration::from_secs(1));
        let failed = queue.run(|| panic!("boom")).await;
        assert!(matches!(failed, Err(HashingError::Failed)), "{failed:?}");
        assert_eq!(queue.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn busy_is_a_503_problem_with_retry_after() {
        let response = HashingError::Busy.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            crate::problem::PROBLEM_JSON
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            problem.type_uri,
            crate::problem::ProblemType::Unavailable.uri()
        );
        assert_eq!(problem.status, 503);
    }

    #[test]
    fn sizes_come_from_the_config() {
        let limits = LimitsConfig {
            hash_concurrency: Some(3),
            hash_queue: 5,
            ..LimitsConfig::default()
        };
        let queue = HashingQueue::from_config(&limits).unwrap();
        assert_eq!(queue.concurrency(), 3);
        assert_eq!(queue.capacity(), 8);
        let huge = HashingQueue::new(
            NonZeroUsize::new(5_000).unwrap(),
            usize::MAX,
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(huge.concurrency(), HashingQueue::MAX_CONCURRENCY);
        assert_eq!(huge.capacity(), Semaphore::MAX_PERMITS);
    }
}
