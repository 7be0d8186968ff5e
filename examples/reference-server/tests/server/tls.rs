//! TLS to PostgreSQL and Redis, against real TLS servers of the test's own.
//!
//! Each test makes its certificates (a CA, a server certificate for `localhost` and
//! `127.0.0.1`, a client certificate, and an unrelated second CA) and starts a PostgreSQL
//! cluster and/or a `redis-server` with them from `finsec-testkit` (TLS-only listeners on
//! free loopback ports, stopped and deleted when the test ends). The shared test servers
//! are not used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use finsec_reference_server::redis_backend::Redis;
use finsec_reference_server::storage::Storage;
use finsec_reference_server::{Config, Server, ServerError};
use finsec_testkit::{PgCluster, RedisServer, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use secrecy::SecretString;
use tempfile::TempDir;

/// A certificate authority made for one test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A leaf certificate and its key (PEM) for `names`, as a server's or a client's.
    fn issue(&self, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
}

/// Every certificate a test needs, with the files the server is pointed at.
struct Pki {
    dir: TempDir,
    ca: TestCa,
    server: Leaf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("finsec-tls-test-")
            .tempdir()
            .unwrap();
        let ca = TestCa::new("finsec test CA");
        let other_ca = TestCa::new("finsec unrelated CA");
        let server = ca.issue(
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        // The database user the cluster trusts, as PostgreSQL's `clientcert=verify-full`
        // wants it in the common name.
        let client = ca.issue(
            finsec_testkit::cluster::PG_SUPERUSER,
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let stray = other_ca.issue(
            finsec_testkit::cluster::PG_SUPERUSER,
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let pki = Self { dir, ca, server };
        pki.write("ca.pem", &pki.ca.pem);
        pki.write("other-ca.pem", &other_ca.pem);
        pki.write("client.crt", &client.cert_pem);
        pki.write("client.key", &client.key_pem);
        pki.write("stray-client.key", &stray.key_pem);
        pki.write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        pki.write("empty.pem", "no certificates here\n");
        pki
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// TLS settings for a server with the test CA's server certificate.
    fn server_tls(&self) -> ServerTls {
        ServerTls::new(&self.server.cert_pem, &self.server.key_pem)
    }
}

/// A configuration on a fresh data directory with `postgres_url` and `ca` set.
fn pg_config(data: &Path, url: &str, ca: Option<PathBuf>) -> Config {
    let mut config = Config::with_data_dir(data);
    config.postgres_url = Some(SecretString::from(url.to_owned()));
    config.postgres_ca_file = ca;
    config
}

/// Opens the storage `config` names, expecting success, and checks the connection is TLS.
async fn open_tls(config: &Config) {
    let storage = match Storage::open(config).await {
        Ok(storage) => storage,
        Err(e) => panic!("{e}"),
    };
    storage.ping().await.unwrap();
    let Storage::Postgres(pool) = &storage else {
        panic!("not PostgreSQL: {storage:?}")
    };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(ssl, "the connection is not TLS");
    storage.close().await;
}

/// Opens the storage `config` names, expecting failure; returns the message.
async fn open_err(config: &Config) -> String {
    match Storage::open(config).await {
        Ok(storage) => {
            storage.close().await;
            panic!("connected to {:?}", config.postgres_url)
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn postgres_over_tls() {
    let pki = Pki::new();
    let cluster = PgCluster::start(Some(pki.server_tls()));
    let data = TempDir::new().unwrap();
    let host_url = cluster.localhost_url();
    let ip_url = cluster.url();
    let ca = Some(pki.path("ca.pem"));
    let other_ca = Some(pki.path("other-ca.pem"));

    // The right CA: verify-full by host name and by address, verify-ca, and require
    // (which the CA file upgrades to verify-ca).
    for url in [
        format!("{host_url}?sslmode=verify-full"),
        format!("{ip_url}?sslmode=verify-full"),
        format!("{host_url}?sslmode=verify-ca"),
        format!("{host_url}?sslmode=require"),
    ] {
        open_tls(&pg_config(data.path(), &url, ca.clone())).await;
    }
    // `require` without a CA file encrypts without checking, as libpq does.
    open_tls(&pg_config(
        data.path(),
        &format!("{host_url}?sslmode=require"),
        None,
    ))
    .await;

    // The wrong CA, or none (only the public roots), is refused in every verifying mode,
    // `require` with a CA file included.
    for (mode, ca) in [
        ("verify-full", other_ca.clone()),
        ("verify-ca", other_ca.clone()),
        ("require", other_ca.clone()),
        ("verify-full", None),
    ] {
        let url = format!("{host_url}?sslmode={mode}");
        let message = open_err(&pg_config(data.path(), &url, ca.clone())).await;
        assert!(
            message.contains("postgres storage at") && message.contains("UnknownIssuer"),
            "sslmode={mode}, ca {ca:?}: {message}"
        );
    }

    // A client that does not ask for TLS is refused by the TLS-only listener.
    let message = open_err(&pg_config(
        data.path(),
        &format!("{host_url}?sslmode=disable"),
        None,
    ))
    .await;
    assert!(
        message.contains("pg_hba.conf") && message.contains("no encryption"),
        "{message}"
    );
    assert!(cluster.log().contains("no encryption"), "{}", cluster.log());
}

#[tokio::test]
async fn host_names_are_checked() {
    // Servers whose certificate, from the right CA, names another host.
    let pki = Pki::new();
    let elsewhere = pki.ca.issue(
        "elsewhere.invalid",
        &["elsewhere.invalid"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let tls = ServerTls::new(&elsewhere.cert_pem, &elsewhere.key_pem);
    let cluster = PgCluster::start(Some(tls.clone()));
    let redis = RedisServer::start(Some(tls));
    let data = TempDir::new().unwrap();
    let ca = Some(pki.path("ca.pem"));

    // verify-full checks the name. So does verify-ca for now, although libpq's checks
    // the chain only: sqlx 0.8.6 lets a name mismatch through only as rustls reported
    // it before 0.23.24 (sqlx issue 3793, fixed after 0.8.6). Stricter than asked, never
    // looser; when sqlx is upgraded this assertion flips and the docs need updating.
    for mode in ["verify-full", "verify-ca"] {
        let url = format!("{}?sslmode={mode}", cluster.localhost_url());
        let message = open_err(&pg_config(data.path(), &url, ca.clone())).await;
        assert!(
            message.contains("not valid for name \"localhost\""),
            "{mode}: {message}"
        );
    }

    // rediss:// always checks the name.
    let message = redis_err(&redis.url(), &redis_tls(ca, None))
        .await
        .to_string();
    assert!(
        message.contains("not valid for name \"localhost\""),
        "{message}"
    );
}

#[tokio::test]
async fn postgres_tls_settings_are_checked_at_start() {
    let pki = Pki::new();
    let data = TempDir::new().unwrap();
    // Nothing listens on port 1: every failure below happens before connecting.
    let url = "postgres://finsec:pg-s3cret@127.0.0.1:1/finsec";

    let config = pg_config(
        data.path(),
        &format!("{url}?sslmode=verify-full"),
        Some(pki.path("missing.pem")),
    );
    let message = open_err(&config).await;
    assert!(
        message.contains("--postgres-ca-file") && message.contains("missing.pem"),
        "{message}"
    );
    for (file, why) in [
        ("garbage.pem", "not a PEM file of certificates"),
        ("empty.pem", "holds no PEM certificate"),
        ("client.key", "holds no PEM certificate"),
    ] {
        let config = pg_config(
            data.path(),
            &format!("{url}?sslmode=verify-full"),
            Some(pki.path(file)),
        );
        let message = open_err(&config).await;
        assert!(
            message.contains("--postgres-ca-file")
                && message.contains(file)
                && message.contains(why),
            "{file}: {message}"
        );
    }

    // A CA file where the connection might not use TLS (no sslmode means `prefer`).
    for query in ["", "?sslmode=prefer", "?sslmode=disable"] {
        let config = pg_config(
            data.path(),
            &format!("{url}{query}"),
            Some(pki.path("ca.pem")),
        );
        let message = open_err(&config).await;
        assert!(
            message.contains("sslmode=verify-full"),
            "{query}: {message}"
        );
        assert!(!message.contains("pg-s3cret"), "{message}");
    }

    // A client key that is not the certificate's.
    let mut config = pg_config(
        data.path(),
        &format!("{url}?sslmode=verify-full"),
        Some(pki.path("ca.pem")),
    );
    config.postgres_client_cert = Some(pki.path("client.crt"));
    config.postgres_client_key = Some(pki.path("stray-client.key"));
    let message = open_err(&config).await;
    assert!(
        message.contains("--postgres-client-key") && message.contains("does not belong to"),
        "{message}"
    );
    // A certificate given as the key: no key material in the message either way.
    config.postgres_client_key = Some(pki.path("client.crt"));
    let message = open_err(&config).await;
    assert!(message.contains("not a PEM private key"), "{message}");
    assert!(!message.contains("BEGIN"), "{message}");
}

#[tokio::test]
async fn postgres_client_certificates() {
    let pki = Pki::new();
    let cluster = PgCluster::start(Some(
        pki.server_tls().require_client_certificates(&pki.ca.pem),
    ));
    let data = TempDir::new().unwrap();
    let url = format!("{}?sslmode=verify-full", cluster.localhost_url());

    let mut config = pg_config(data.path(), &url, Some(pki.path("ca.pem")));
    let message = open_err(&config).await;
    assert!(message.contains("postgres storage at"), "{message}");

    config.postgres_client_cert = Some(pki.path("client.crt"));
    config.postgres_client_key = Some(pki.path("client.key"));
    open_tls(&config).await;
}

fn redis_url(url: &str) -> SecretString {
    SecretString::from(url.to_owned())
}

/// The Redis TLS files of a configuration with these settings.
fn redis_tls(ca: Option<PathBuf>, client: Option<(PathBuf, PathBuf)>) -> Config {
    let mut config = Config::with_data_dir("/nonexistent");
    config.redis_ca_file = ca;
    if let Some((cert, key)) = client {
        config.redis_client_cert = Some(cert);
        config.redis_client_key = Some(key);
    }
    config
}

async fn redis_err(url: &str, config: &Config) -> ServerError {
    match Redis::connect(&redis_url(url), &config.redis_tls()).await {
        Ok(redis) => panic!("connected to {}", redis.redacted_url()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn redis_over_tls() {
    let pki = Pki::new();
    let server = RedisServer::start(Some(pki.server_tls()));
    let url = server.url();
    assert!(url.starts_with("rediss://localhost:"), "{url}");
    let ca = Some(pki.path("ca.pem"));

    // The right CA, by host name and by address.
    let ip_url = format!("rediss://127.0.0.1:{}", server.port());
    for url in [&url, &ip_url] {
        let redis = Redis::connect(&redis_url(url), &redis_tls(ca.clone(), None).redis_tls())
            .await
            .unwrap();
        redis.ping().await.unwrap();
    }

    // The wrong CA, or the system's roots, are refused.
    for ca in [Some(pki.path("other-ca.pem")), None] {
        let e = redis_err(&url, &redis_tls(ca.clone(), None)).await;
        let message = e.to_string();
        assert!(matches!(e, ServerError::Redis { .. }), "{message}");
        assert!(
            message.contains("redis at rediss://localhost:") && message.contains("UnknownIssuer"),
            "ca {ca:?}: {message}"
        );
    }

    // A client that does not speak TLS gets no answer from the TLS port: it fails, within
    // the connect bound, naming the URL.
    let plain = format!("redis://:redis-s3cret@127.0.0.1:{}", server.port());
    let started = std::time::Instant::now();
    let message = redis_err(&plain, &redis_tls(None, None)).await.to_string();
    assert!(started.elapsed() < Duration::from_secs(30), "{message}");
    assert!(
        message.contains(&format!(
            "redis at redis://:***@127.0.0.1:{}",
            server.port()
        )),
        "{message}"
    );
    assert!(!message.contains("redis-s3cret"), "{message}");
}

#[tokio::test]
async fn redis_tls_settings_are_checked_at_start() {
    let pki = Pki::new();
    // Nothing listens on port 1: every failure below happens before connecting.
    let url = "rediss://:redis-s3cret@localhost:1";
    for (file, why) in [
        ("missing.pem", "cannot read it"),
        ("garbage.pem", "not a PEM file of certificates"),
        ("empty.pem", "holds no PEM certificate"),
    ] {
        let e = redis_err(url, &redis_tls(Some(pki.path(file)), None)).await;
        let message = e.to_string();
        assert!(matches!(e, ServerError::Config(_)), "{message}");
        assert!(
            message.contains("--redis-ca-file") && message.contains(file) && message.contains(why),
            "{file}: {message}"
        );
    }
    // TLS files with a plain redis:// URL are a mistake, not something to ignore.
    let message = redis_err(
        "redis://:redis-s3cret@127.0.0.1:1",
        &redis_tls(Some(pki.path("ca.pem")), None),
    )
    .await
    .to_string();
    assert!(message.contains("rediss://"), "{message}");
    assert!(!message.contains("redis-s3cret"), "{message}");
    // A client key that is not the certificate's.
    let e = redis_err(
        url,
        &redis_tls(
            Some(pki.path("ca.pem")),
            Some((pki.path("client.crt"), pki.path("stray-client.key"))),
        ),
    )
    .await;
    assert!(e.to_string().contains("does not belong to"), "{e}");
}

#[tokio::test]
async fn redis_client_certificates() {
    let pki = Pki::new();
    let server = RedisServer::start(Some(
        pki.server_tls().require_client_certificates(&pki.ca.pem),
    ));
    let ca = Some(pki.path("ca.pem"));

    let e = redis_err(&server.url(), &redis_tls(ca.clone(), None)).await;
    assert!(matches!(e, ServerError::Redis { .. }), "{e}");

    let client = Some((pki.path("client.crt"), pki.path("client.key")));
    let redis = Redis::connect(
        &redis_url(&server.url()),
        &redis_tls(ca, client).redis_tls(),
    )
    .await
    .unwrap();
    redis.ping().await.unwrap();
}

#[tokio::test]
async fn whole_server_on_tls_postgres_and_redis() {
    let pki = Pki::new();
    let cluster = PgCluster::start(Some(pki.server_tls()));
    let redis = RedisServer::start(Some(pki.server_tls()));
    let data = TempDir::new().unwrap();

    let mut config = pg_config(
        &data.path().join("data"),
        &format!("{}?sslmode=verify-full", cluster.localhost_url()),
        Some(pki.path("ca.pem")),
    );
    config.redis_url = Some(redis_url(&redis.url()));
    config.redis_ca_file = Some(pki.path("ca.pem"));

    let server = match Server::bind(&config).await {
        Ok(server) => server,
        Err(e) => panic!("the server did not start: {e}"),
    };
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let health: serde_json::Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["storage"]["backend"], "postgres", "{health}");
    assert_eq!(health["storage"]["ok"], true, "{health}");
    assert_eq!(health["redis"], "ok", "{health}");

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
