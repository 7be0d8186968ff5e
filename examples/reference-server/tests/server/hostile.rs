//! Hostile load against the real binary: slow clients (slowloris), oversized and trickling
//! bodies, and a login flood. Every client targets the server on 127.0.0.1; every loop is
//! bounded in count and in time. `/health` must answer within 1 s under attack
//! (`FINSEC_TEST_HEALTH_LIMIT_MS` raises that on a machine busy with other work).
#![cfg(test)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::support::{DataDir, Launch};

const PASSWORD: &str = "correct horse battery staple 42";

/// The two load tests (slowloris, login flood) take turns: each measures latency, which
/// the other's hundreds of connections would distort.
static LOAD_TEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// glibc's environment setting for the size above which allocations are their own mapping
/// (returned to the system when freed).
const MMAP_THRESHOLD_VAR: &str = "MALLOC_MMAP_THRESHOLD_";
/// glibc's default threshold, fixed (setting it turns the dynamic threshold off).
const MMAP_THRESHOLD: &str = "131072";

/// Reads everything the server sends until it closes the connection, at most `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0_u8; 4096];
        // At most 64 reads of 4 KiB: a response of this layer is far smaller.
        for _ in 0..64 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete answer within {limit:?}");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The problem body of a raw HTTP/1.1 response.
fn problem_of(response: &str) -> Value {
    let (_, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body in {response:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response:?}"))
}

/// `(VmRSS, VmHWM)` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Opens a connection and sends a request's headers one byte a second; returns how long
/// after connecting the server closed it, or `None` if it was still open after `limit`.
async fn slow_client(server: std::net::SocketAddr, limit: Duration) -> Option<Duration> {
    const HEADERS: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n";
    let stream = TcpStream::connect(server).await.unwrap();
    let connected = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = async move {
        for byte in HEADERS {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // All headers sent without being cut off: wait for the outer limit.
        std::future::pending::<()>().await;
    };
    let closed = async move {
        let mut buf = [0_u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return connected.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, async {
        tokio::select! {
            closed = closed => closed,
            () = trickle => unreachable!("the trickle never ends"),
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_while_other_clients_are_served() {
    const SLOW: usize = 500;
    const HEADER_TIMEOUT: u64 = 2;
    let _turn = LOAD_TEST.lock().await;
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--header-read-timeout-secs", &HEADER_TIMEOUT.to_string()])
        .start(&data);
    let addr = server.addr();

    let mut slow = JoinSet::new();
    for _ in 0..SLOW {
        slow.spawn(slow_client(addr, Duration::from_secs(15)));
    }

    // Meanwhile a normal client, on a fresh connection each time, is answered at once (on
    // its own thread, so the slow clients' tasks in this process do not delay it).
    let normal = std::thread::spawn(move || {
        let started = Instant::now();
        let mut answered = 0;
        while started.elapsed() < Duration::from_secs(HEADER_TIMEOUT + 3) && answered < 100 {
            let (status, took) = blocking_health(addr);
            assert_eq!(status, "200", "/health answered {status}");
            assert!(took < health_limit(), "/health took {took:?}");
            answered += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        answered
    });
    let answered = normal.join().unwrap();
    assert!(answered >= 10, "only {answered} health checks");

    let mut closed = Vec::new();
    while let Some(result) = slow.join_next().await {
        closed.push(result.unwrap());
    }
    assert_eq!(closed.len(), SLOW);
    let still_open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        still_open, 0,
        "{still_open} slow connections were never closed"
    );
    for after in closed.into_iter().flatten() {
        // Closed by the header-read timeout, not long after it, and not at once (this
        // side notices the connection a little after the server has accepted it).
        assert!(
            after >= Duration::from_millis(HEADER_TIMEOUT * 1000 / 2)
                && after <= Duration::from_secs(HEADER_TIMEOUT + 4),
            "a slow connection was closed after {after:?}"
        );
    }
    // The server is still healthy afterwards.
    server.get_json("/health", 200).await;
}

/// How many of `clients` new connections to `addr`, all attempted at once, are established
/// within `limit`.
async fn connect_burst(addr: std::net::SocketAddr, clients: usize, limit: Duration) -> usize {
    let mut attempts = JoinSet::new();
    for _ in 0..clients {
        attempts.spawn(tokio::time::timeout(limit, TcpStream::connect(addr)));
    }
    // Every connection stays open until all are counted.
    let mut open = Vec::new();
    while let Some(attempt) = attempts.join_next().await {
        if let Ok(Ok(stream)) = attempt.unwrap() {
            open.push(stream);
        }
    }
    open.len()
}

#[tokio::test]
async fn a_burst_of_clients_waits_in_the_listen_backlog() {
    // Linux caps the backlog at net.core.somaxconn (4096 by default since 5.4).
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(4096);
    let burst = 600.min(somaxconn);
    // A connection attempt the kernel drops is retried after 1 s: anything established
    // within 700 ms was held in the backlog.
    let limit = Duration::from_millis(700);
    for (backlog, expect_all) in [(8, false), (1024, true)] {
        let data = DataDir::new();
        let server = Launch::new()
            .args([
                "--max-connections",
                "1",
                "--listen-backlog",
                &backlog.to_string(),
            ])
            .start(&data);
        // One idle connection takes the only place, so the server accepts no other.
        let mut held = TcpStream::connect(server.addr()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;

        let connected = connect_burst(server.addr(), burst, limit).await;
        if expect_all {
            assert_eq!(
                connected, burst,
                "with --listen-backlog {backlog}, only {connected} of {burst} clients connected"
            );
        } else {
            // The kernel holds the backlog and one more; the rest were dropped.
            assert!(
                connected <= backlog + 2,
                "with --listen-backlog {backlog}, {connected} of {burst} clients connected"
            );
        }
        // Once the place is free, the server is serving again.
        held.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut held, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        server.get_json("/health", 200).await;
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--header-read-timeout-secs", "1"])
        .start(&data);
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // The answer, then the connection stays open (keep-alive) until the idle timeout.
    let sent = Instant::now();
    let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let open = sent.elapsed();
    assert!(
        open >= Duration::from_millis(800) && open < Duration::from_secs(4),
        "closed after {open:?}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_sent() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    for (path, length, limit) in [
        ("/orders", 1_000_000_000_u64, 64 * 1024),
        ("/auth/login", 8 * 1024 + 1, 8 * 1024),
    ] {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        let headers = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        );
        let sent = Instant::now();
        stream.write_all(headers.as_bytes()).await.unwrap();
        // Not one byte of the body is sent: the answer must not wait for it.
        let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        let took = sent.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{path}: answered after {took:?}"
        );
        assert!(response.starts_with("HTTP/1.1 413"), "{path}: {response}");
        let lower = response.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/problem+json"),
            "{response}"
        );
        assert!(lower.contains("connection: close"), "{response}");
        let problem = problem_of(&response);
        assert_eq!(
            problem["type"],
            "https://finsec.dev/problems/payload-too-large"
        );
        assert_eq!(problem["limit"], limit, "{path}");
    }

    // Just under the authentication limit, the body is read (and refused for what it is).
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"username":"x","password":"{}"}}"#,
            "p".repeat(8 * 1024 - 40)
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_chunked_body_past_the_limit_gets_413() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    // 16 chunks of 1 KiB: twice the limit, without a length announced.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..16 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(
        problem_of(&response)["type"],
        "https://finsec.dev/problems/payload-too-large"
    );
}

#[tokio::test]
async fn a_trickling_body_gets_408() {
    let data = DataDir::new();
    let server = Launch::new()
        .args([
            "--body-read-timeout-secs",
            "1",
            "--request-timeout-secs",
            "20",
        ])
        .start(&data);
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    let sent = Instant::now();
    // One byte every 200 ms: 100 bytes would take 20 s.
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0_u8; 4096];
        for _ in 0..64 {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let took = sent.elapsed();
    trickle.abort();
    assert!(read.is_ok(), "no answer within 5 s");
    let response = String::from_utf8_lossy(&bytes);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    assert_eq!(
        problem_of(&response)["type"],
        "https://finsec.dev/problems/request-timeout"
    );
}

/// How fast `/health` must answer under attack: 1 s, or `FINSEC_TEST_HEALTH_LIMIT_MS` on a
/// machine too loaded by other work for that to measure the server.
fn health_limit() -> Duration {
    std::env::var("FINSEC_TEST_HEALTH_LIMIT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
}

/// `GET /health` on a new connection with blocking I/O: the status code and how long the
/// whole answer took, connecting included.
fn blocking_health(addr: std::net::SocketAddr) -> (String, Duration) {
    use std::io::{Read as _, Write as _};
    let sent = Instant::now();
    // Not `connect`'s default of minutes: a connection attempt the kernel dropped (a full
    // listen backlog) shows as a slow answer, not as a hung test.
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let took = sent.elapsed();
    let status = response.split(' ').nth(1).unwrap_or_default().to_owned();
    (status, took)
}

/// What one login of the flood got.
struct Attempt {
    status: StatusCode,
    took: Duration,
    retry_after: bool,
    problem_type: Option<String>,
    code: Option<String>,
}

async fn login(client: &reqwest::Client, url: &str, username: &str) -> Attempt {
    let sent = Instant::now();
    let response = client
        .post(url)
        .json(&json!({"username": username, "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    let took = sent.elapsed();
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Attempt {
        status,
        took,
        retry_after,
        problem_type: body["type"].as_str().map(str::to_owned),
        code: body["code"].as_str().map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_keeps_memory_bounded_and_health_answering() {
    const CLIENTS: usize = 200;
    const FLOOD: Duration = Duration::from_secs(4);
    const RAMP: Duration = Duration::from_millis(500);
    let _turn = LOAD_TEST.lock().await;
    const CONCURRENCY: u64 = 1;
    const ARGON2_MIB: u64 = 19;
    let data = DataDir::new();
    let server = Launch::new()
        .args([
            "--hash-concurrency",
            &CONCURRENCY.to_string(),
            "--hash-queue",
            "16",
            // Every attempt names one account from one address: without the lockout's
            // waits, so the flood reaches the hashing queue.
            "--login-backoff-secs",
            "0",
        ])
        // As the crate docs advise for production: glibc's dynamic mmap threshold would
        // otherwise keep every freed 19 MiB argon2 buffer in the heap.
        .env(MMAP_THRESHOLD_VAR, MMAP_THRESHOLD)
        // One log line per refused login would measure how fast this process drains the
        // server's log pipe, not the server.
        .env("RUST_LOG", "info,tower_http::trace=off")
        .start(&data);
    let pid = server.pid();

    // Warm up: one registration and one login, so the baseline includes a finished hash.
    let registered = server
        .client()
        .post(server.url("/auth/register"))
        .json(&json!({"username": "flood-target", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login_url = server.url("/auth/login");
    let warm = login(server.client(), &login_url, "flood-target").await;
    assert_eq!(warm.status, StatusCode::UNAUTHORIZED);
    let (baseline_kib, _) = memory_kib(pid);

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut flood = JoinSet::new();
    for i in 0..CLIENTS {
        let client = client.clone();
        let url = login_url.clone();
        flood.spawn(async move {
            // The clients arrive over the first half second, as a flood builds up.
            tokio::time::sleep(RAMP * u32::try_from(i).unwrap() / u32::try_from(CLIENTS).unwrap())
                .await;
            let mut attempts = Vec::new();
            // Known and unknown accounts alike cost a hash.
            let username = if i % 2 == 0 {
                "flood-target".to_owned()
            } else {
                format!("nobody-{i}")
            };
            while started.elapsed() < FLOOD && attempts.len() < 500 {
                attempts.push(login(&client, &url, &username).await);
            }
            attempts
        });
    }

    // While it lasts: /health answers within a second, and memory is sampled. The checks
    // run on their own thread, so the flood's tasks in this process do not delay them.
    let addr = server.addr();
    let checker = std::thread::spawn(move || {
        let mut slowest = Duration::ZERO;
        let mut checks = 0_u32;
        let mut peak_rss_kib = 0;
        while started.elapsed() < FLOOD && checks < 200 {
            let (status, took) = blocking_health(addr);
            assert_eq!(status, "200", "/health answered {status}");
            assert!(took < health_limit(), "/health took {took:?}");
            slowest = slowest.max(took);
            checks += 1;
            peak_rss_kib = peak_rss_kib.max(memory_kib(pid).0);
            std::thread::sleep(Duration::from_millis(100));
        }
        (checks, slowest, peak_rss_kib)
    });
    let mut attempts = Vec::new();
    while let Some(result) = flood.join_next().await {
        attempts.extend(result.unwrap());
    }
    let (health_checks, slowest_health, peak_rss_kib) = checker.join().unwrap();
    let (_, hwm_kib) = memory_kib(pid);

    let refused: Vec<_> = attempts
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    let checked = attempts
        .iter()
        .filter(|a| a.status == StatusCode::UNAUTHORIZED)
        .count();
    // The known account takes at most 100 failures in a row (the lockout's recovery lock),
    // then refuses at once.
    let locked = |a: &&Attempt| {
        a.status == StatusCode::FORBIDDEN && a.code.as_deref() == Some("recovery_required")
    };
    let recovery = attempts.iter().filter(locked).count();
    let other: Vec<_> = attempts
        .iter()
        .filter(|a| {
            ![StatusCode::SERVICE_UNAVAILABLE, StatusCode::UNAUTHORIZED].contains(&a.status)
        })
        .filter(|a| !locked(a))
        .map(|a| a.status)
        .collect();
    // Refused without waiting in the queue (whose timeout is 2 s).
    let fast_refusals = refused
        .iter()
        .filter(|a| a.took < Duration::from_secs(1))
        .count();
    println!(
        "login flood: {} attempts, {checked} checked (401), {} refused (503), {fast_refusals} \
         of them in under 1 s, {recovery} refused by the lockout (403); {health_checks} health checks, slowest {slowest_health:?}; \
         RSS baseline {} MiB, peak sampled {} MiB, high-water mark {} MiB",
        attempts.len(),
        refused.len(),
        baseline_kib / 1024,
        peak_rss_kib / 1024,
        hwm_kib / 1024
    );
    assert!(other.is_empty(), "unexpected statuses: {other:?}");
    assert!(checked > 0, "no login was checked");
    assert!(!refused.is_empty(), "no login was refused");
    assert!(fast_refusals > 0, "no refusal was fast");
    for attempt in &refused {
        assert!(attempt.retry_after, "a 503 without Retry-After");
        assert_eq!(
            attempt.problem_type.as_deref(),
            Some("https://finsec.dev/problems/unavailable")
        );
    }
    assert!(health_checks >= 10, "only {health_checks} health checks");
    // Hashing may hold CONCURRENCY × 19 MiB; allow as much again, and 64 MiB for the
    // allocator and the connections. Unbounded, 200 logins would need about 3.7 GiB.
    let bound_kib = baseline_kib + 2 * CONCURRENCY * ARGON2_MIB * 1024 + 64 * 1024;
    assert!(
        hwm_kib <= bound_kib,
        "peak memory {} MiB over the bound {} MiB (baseline {} MiB)",
        hwm_kib / 1024,
        bound_kib / 1024,
        baseline_kib / 1024
    );
}
