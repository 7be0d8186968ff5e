//! Start and stop: the data directory and master key file are created private, the
//! passphrase seals the keyring instead when set, and SIGTERM stops the server cleanly
//! after saving the keyring.
#![cfg(test)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::{DataDir, Launch};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_saves_the_keyring() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    server.get_json("/health", 200).await;
    let before = fs::read(data.keyring()).unwrap();

    // An idle keep-alive connection must not hold the shutdown up.
    let (status, logs) = server.terminate();
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
    assert!(logs.contains("received SIGTERM"), "{logs}");
    assert!(logs.contains("saved keyring usage counters"), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
    // The counters were written back: the file was re-sealed (a fresh nonce) ...
    let after = fs::read(data.keyring()).unwrap();
    assert_ne!(before, after, "the keyring file was not rewritten");
    // ... and it still opens.
    let status = Launch::new().keys(&data, &["status"]).success();
    assert!(status.contains("pii"), "{status}");
}

#[tokio::test]
async fn sigterm_right_after_start_is_graceful() {
    // The handler is installed before the server announces itself: a SIGTERM sent the
    // moment the address is logged must not kill the process with the default action.
    for _ in 0..5 {
        let data = DataDir::new();
        let server = Launch::new().start(&data);
        let (status, logs) = server.terminate();
        assert!(status.success(), "exit status {status}; logs:\n{logs}");
        assert!(logs.contains("saved keyring usage counters"), "{logs}");
    }
}

#[tokio::test]
async fn first_start_creates_a_private_master_key_and_warns() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    server.get_json("/health", 200).await;
    let logs = server.output();

    assert_eq!(mode(data.path()), 0o700);
    let master = data.master_key();
    assert_eq!(mode(&master), 0o600);
    assert_eq!(fs::metadata(&master).unwrap().len(), 32);
    assert_eq!(mode(&data.keyring()), 0o600);
    let warning = logs
        .lines()
        .find(|line| line.contains("WARN") && line.contains("master key file"))
        .unwrap_or_else(|| panic!("no warning about the master key file in:\n{logs}"));
    assert!(warning.contains("FINSEC_MASTER_PASSPHRASE"), "{warning}");

    // Restarting reuses the same master key (and still warns).
    let (status, _) = server.terminate();
    assert!(status.success());
    let key = fs::read(&master).unwrap();
    let server = Launch::new().start(&data);
    server.get_json("/health", 200).await;
    assert_eq!(fs::read(&master).unwrap(), key);
    assert!(server.output().contains("WARN"), "{}", server.output());
}

#[tokio::test]
async fn loose_master_key_permissions_refuse_to_start() {
    let data = DataDir::new();
    let (status, _) = Launch::new().start(&data).terminate();
    assert!(status.success());
    fs::set_permissions(data.master_key(), fs::Permissions::from_mode(0o644)).unwrap();
    let failure = Launch::new().try_start(&data).unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(failure.output.contains("chmod 600"), "{failure}");
}

#[tokio::test]
async fn passphrase_seals_the_keyring_without_a_master_key_file() {
    const PASSPHRASE: &str = "correct horse battery staple 7f3a";
    let data = DataDir::new();
    let launch = Launch::new().passphrase(PASSPHRASE);

    let server = launch.start(&data);
    server.get_json("/health", 200).await;
    assert!(data.keyring().exists());
    assert!(!data.master_key().exists());
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains("master key file"), "{logs}");
    assert!(!logs.contains(PASSPHRASE), "{logs}");

    // The same passphrase opens it again.
    let server = launch.start(&data);
    let health = server.get_json("/health", 200).await;
    assert_eq!(health["keyring"][0]["name"], "pii", "{health}");
    let (status, _) = server.terminate();
    assert!(status.success());
    assert!(!data.master_key().exists());

    // A wrong one fails clearly, and creates nothing.
    let failure = Launch::new()
        .passphrase("wrong passphrase")
        .try_start(&data)
        .unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(failure.output.contains("wrong passphrase"), "{failure}");
    assert!(!failure.output.contains(PASSPHRASE), "{failure}");
    assert!(!data.master_key().exists());

    // No passphrase at all: the keyring's master key file is missing; refuse rather than
    // make a new one.
    let failure = Launch::new().try_start(&data).unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(
        failure.output.contains("FINSEC_MASTER_PASSPHRASE"),
        "{failure}"
    );
    assert!(!data.master_key().exists());
}

#[tokio::test]
async fn an_empty_passphrase_is_refused() {
    let data = DataDir::new();
    let failure = Launch::new().passphrase("").try_start(&data).unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(
        failure
            .output
            .contains("FINSEC_MASTER_PASSPHRASE is set but empty"),
        "{failure}"
    );
    // Nothing was created: no silent fallback to a master key file.
    assert!(!data.path().exists());
}
