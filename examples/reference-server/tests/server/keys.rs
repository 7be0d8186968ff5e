//! The `keys` operator subcommands on a data directory a server created, including while
//! that server runs.
#![cfg(test)]

use crate::support::{DataDir, Launch};

/// `(version, primary, retired)` of each `pii` row of `keys status`.
fn pii_rows(status: &str) -> Vec<(u32, bool, bool)> {
    let mut lines = status.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[..4],
        ["NAME", "VERSION", "PRIMARY", "RETIRED"],
        "{status}"
    );
    let yes = |cell: &str| match cell {
        "yes" => true,
        "no" => false,
        other => panic!("{other:?} in\n{status}"),
    };
    lines
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells[0] == "pii")
        .map(|cells| (cells[1].parse().unwrap(), yes(cells[2]), yes(cells[3])))
        .collect()
}

#[tokio::test]
async fn status_rotate_rewrap() {
    let data = DataDir::new();
    let launch = Launch::new();
    let (status, _) = launch.start(&data).terminate();
    assert!(status.success());

    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(pii_rows(&status), [(1, true, false)], "{status}");

    let rotated = launch.keys(&data, &["rotate"]).success();
    assert!(rotated.contains("version 2 is now primary"), "{rotated}");
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        pii_rows(&status),
        [(1, false, false), (2, true, false)],
        "{status}"
    );

    let rewrapped = launch.keys(&data, &["rewrap"]).success();
    assert!(rewrapped.contains("pii version 2"), "{rewrapped}");
    assert!(rewrapped.contains("failed:               0"), "{rewrapped}");
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        pii_rows(&status),
        [(1, false, false), (2, true, false)],
        "{status}"
    );

    let retired = launch
        .keys(&data, &["rewrap", "--retire", "--batch", "10"])
        .success();
    assert!(
        retired.contains("retired pii versions below 2"),
        "{retired}"
    );
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        pii_rows(&status),
        [(1, false, true), (2, true, false)],
        "{status}"
    );

    // A restarted server uses the new primary.
    let server = launch.start(&data);
    let health = server.get_json("/health", 200).await;
    assert_eq!(health["keyring"][0]["primary_version"], 2, "{health}");
}

#[tokio::test]
async fn rotation_while_serving_survives_the_shutdown() {
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    let rotated = launch.keys(&data, &["rotate"]).success();
    assert!(rotated.contains("version 2"), "{rotated}");
    // The running server keeps what it loaded ...
    let health = server.get_json("/health", 200).await;
    assert_eq!(health["keyring"][0]["primary_version"], 1, "{health}");
    // ... and saving its counters at shutdown does not undo the rotation.
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        pii_rows(&status),
        [(1, false, false), (2, true, false)],
        "{status}"
    );
}

#[tokio::test]
async fn subcommands_use_the_passphrase() {
    let data = DataDir::new();
    let launch = Launch::new().passphrase("subcommand passphrase 91c2");
    let (status, _) = launch.start(&data).terminate();
    assert!(status.success());
    launch.keys(&data, &["rotate"]).success();
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        pii_rows(&status),
        [(1, false, false), (2, true, false)],
        "{status}"
    );

    let wrong = Launch::new()
        .passphrase("another passphrase")
        .keys(&data, &["status"]);
    assert!(!wrong.status.success(), "{wrong:#?}");
    assert!(wrong.stderr.contains("wrong passphrase"), "{wrong:#?}");
    assert!(wrong.stdout.is_empty(), "{wrong:#?}");
}

#[test]
fn subcommands_refuse_a_missing_keyring_and_create_nothing() {
    let data = DataDir::new();
    let launch = Launch::new();
    for args in [&["status"][..], &["rotate"], &["rewrap"]] {
        let failed = launch.keys(&data, args);
        assert!(!failed.status.success(), "{args:?}: {failed:#?}");
        assert!(
            failed.stderr.contains("no keyring at"),
            "{args:?}: {failed:#?}"
        );
    }
    assert!(!data.path().exists());

    let unknown = {
        let (status, _) = launch.start(&data).terminate();
        assert!(status.success());
        launch.keys(&data, &["rotate", "--name", "no.such.key"])
    };
    assert!(!unknown.status.success(), "{unknown:#?}");
    assert!(unknown.stderr.contains("no.such.key"), "{unknown:#?}");
}
