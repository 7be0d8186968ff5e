#![cfg(test)]
//! Fan-out: the primary decides, mirrors (a Redis stream, another sink) get copies, and a
//! mirror that fails (a Redis server of the test's own, stopped) never fails an append.

use std::sync::Arc;
use std::time::Duration;

use finsec_audit::fanout::{FanOut, RedisStream, SinkMirror};
use finsec_audit::{AuditSink, EncodedEvent, MemorySink};

mod support;
use support::events;

/// An `XRANGE` entry: its id and its field/value pairs.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

async fn manager(url: &str) -> redis::aio::ConnectionManager {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    redis::Client::open(url)
        .unwrap()
        .get_connection_manager_with_config(config)
        .await
        .unwrap()
}

#[tokio::test]
async fn mirrors_get_every_event_with_its_position() {
    let prefix = finsec_testkit::redis().await;
    let key = prefix.key("audit-stream");
    let conn = manager(&finsec_testkit::redis_url()).await;
    let stream = Arc::new(RedisStream::new(conn.clone(), key.clone(), 5).exact_cap());
    let copy = Arc::new(SinkMirror::new("copy", MemorySink::new()));
    let fan = FanOut::new(MemorySink::new())
        .with_mirror(stream)
        .with_mirror(copy.clone());
    let first = events(3);
    let second = events(4);
    fan.append(&first).await.unwrap();
    let done = fan.append(&second).await.unwrap();
    assert_eq!(done.size, 7);
    assert_eq!(fan.mirror_errors(), Default::default());
    // The copy is the same log.
    assert_eq!(copy.sink().append(&[]).await.unwrap().root, done.root);
    // The stream holds the newest five, each with its position and bytes.
    let mut c = conn.clone();
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(entries.len(), 5);
    let all: Vec<EncodedEvent> = first.into_iter().chain(second).collect();
    for (k, (_, fields)) in entries.iter().enumerate() {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let pos: u64 = String::from_utf8(get("pos")).unwrap().parse().unwrap();
        assert_eq!(pos, 2 + k as u64);
        assert_eq!(get("event"), all[2 + k].bytes());
        assert_eq!(get("action"), b"order.place");
    }
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_mirror_never_fails_an_append() {
    let mut server = finsec_testkit::RedisServer::start(None);
    let conn = manager(&server.url()).await;
    let fan = FanOut::new(MemorySink::new())
        .with_mirror(Arc::new(RedisStream::new(conn, "audit", 1_000)))
        .with_mirror(Arc::new(SinkMirror::new("behind", MemorySink::new())));
    fan.append(&events(2)).await.unwrap();
    assert_eq!(fan.mirror_errors(), Default::default());
    server.stop();
    // Redis is gone: the primary still takes the events, the other mirror too.
    let done = fan.append(&events(3)).await.unwrap();
    assert_eq!(done.size, 5);
    assert_eq!(fan.primary().size().await.unwrap(), 5);
    let errors = fan.mirror_errors();
    assert_eq!(
        errors.failures.get("redis stream audit"),
        Some(&1),
        "{errors:?}"
    );
    assert_eq!(errors.failures.get("behind"), None, "{errors:?}");
    server.start_again();
}

#[tokio::test]
async fn an_out_of_step_sink_mirror_is_refused_not_corrupted() {
    let behind = Arc::new(SinkMirror::new("behind", MemorySink::new()));
    let primary = MemorySink::new();
    primary.append(&events(4)).await.unwrap();
    let fan = FanOut::new(primary).with_mirror(behind.clone());
    fan.append(&events(1)).await.unwrap();
    let errors = fan.mirror_errors();
    assert_eq!(errors.failures.get("behind"), Some(&1));
    assert!(errors.last["behind"].contains("starts at 4"), "{errors:?}");
    assert_eq!(behind.sink().size().await.unwrap(), 0);
}
