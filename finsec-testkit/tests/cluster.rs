//! The servers of a test's own come up, answer, go down and come back. (With TLS they are
//! exercised by the reference server's TLS tests, which make the certificates.)

use std::str::FromStr as _;
use std::time::Duration;

use finsec_testkit::{PgCluster, RedisServer};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

async fn pg_answers(cluster: &PgCluster) -> Result<i32, sqlx::Error> {
    let options = PgConnectOptions::from_str(&cluster.url())?;
    let mut conn = tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let one = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(one)
}

#[tokio::test]
async fn postgres_cluster_stops_and_starts_again() {
    let mut cluster = PgCluster::start(None);
    assert!(cluster.is_running() && !cluster.tls());
    assert_ne!(cluster.port(), 5432);
    assert_eq!(pg_answers(&cluster).await.unwrap(), 1);

    // What a test writes survives a restart.
    let options = PgConnectOptions::from_str(&cluster.url()).unwrap();
    let mut conn = options.connect().await.unwrap();
    sqlx::query("CREATE TABLE kept (id INT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    cluster.stop();
    assert!(!cluster.is_running());
    let down = pg_answers(&cluster).await.unwrap_err();
    assert!(matches!(down, sqlx::Error::Io(_)), "{down}");

    cluster.start_again();
    assert_eq!(pg_answers(&cluster).await.unwrap(), 1);
    cluster.restart();
    let mut conn = options.connect().await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'kept'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tables, 1);
    conn.close().await.unwrap();
    assert!(
        cluster.log().contains("database system is ready"),
        "{}",
        cluster.log()
    );

    // Dropping it stops the server and removes its directory.
    let port = cluster.port();
    drop(cluster);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening on {port}"
    );
}

async fn redis_ping(server: &RedisServer) -> redis::RedisResult<String> {
    let client = redis::Client::open(server.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING").query_async(&mut conn).await
}

#[tokio::test]
async fn redis_server_stops_and_starts_again() {
    let mut server = RedisServer::start(None);
    assert!(server.is_running() && !server.tls());
    assert!(
        server.url().starts_with("redis://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert_eq!(redis_ping(&server).await.unwrap(), "PONG");

    server.stop();
    assert!(!server.is_running());
    redis_ping(&server).await.unwrap_err();

    server.restart();
    assert_eq!(redis_ping(&server).await.unwrap(), "PONG");
    assert!(server.log().contains("Ready to accept connections"));

    let port = server.port();
    drop(server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening on {port}"
    );
}
