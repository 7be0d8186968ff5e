//! The `keys` operator subcommands on a data directory a server created, including while
//! that server runs.
#![cfg(test)]

use crate::support::{DataDir, Launch};

/// `(version, primary, retired)` of each `pii` row of `keys status`.
fn pii_rows(status: &str) -> Vec<(u32, bool, bool)> {
    key_rows(status, "pii")
}

/// `(version, primary, retired)` of each row of key `name` in `keys status`.
fn key_rows(status: &str, name: &str) -> Vec<(u32, bool, bool)> {
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
        .filter(|cells| cells[0] == name)
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

/// Opens the server's SQLite database in `data`.
async fn database(data: &DataDir) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap()
}

/// The KEK names of the sealed server secrets, sorted.
async fn secret_keks(pool: &sqlx::SqlitePool) -> Vec<String> {
    let mut sealed: Vec<String> = sqlx::query_scalar("SELECT seed FROM server_jwt_keys")
        .fetch_all(pool)
        .await
        .unwrap();
    sealed.extend(
        sqlx::query_scalar::<_, String>("SELECT value FROM server_secrets")
            .fetch_all(pool)
            .await
            .unwrap(),
    );
    assert!(!sealed.is_empty());
    let mut names: Vec<String> = sealed
        .iter()
        .map(|text| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .unwrap();
            let (header, _) = finsec_crypto::envelope::Header::parse(&bytes).unwrap();
            format!("{}@{}", header.kek().name, header.kek().version)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn server_secrets_have_a_key_of_their_own() {
    let data = DataDir::new();
    let launch = Launch::new();
    let (status, _) = launch.start(&data).terminate();
    assert!(status.success());
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        key_rows(&status, "server-secrets"),
        [(1, true, false)],
        "{status}"
    );
    let pool = database(&data).await;
    assert_eq!(secret_keks(&pool).await, ["server-secrets@1"]);

    // Rotating and retiring `pii` does not touch the server's secrets ...
    launch.keys(&data, &["rotate"]).success();
    let retired = launch.keys(&data, &["rewrap", "--retire"]).success();
    assert!(
        retired.contains("retired pii versions below 2"),
        "{retired}"
    );
    assert_eq!(secret_keks(&pool).await, ["server-secrets@1"]);

    // ... and rotating `server-secrets` moves them to its new version.
    launch
        .keys(&data, &["rotate", "--name", "server-secrets"])
        .success();
    let moved = launch.keys(&data, &["rewrap", "--retire"]).success();
    assert!(moved.contains("server-secrets version 2"), "{moved}");
    assert_eq!(secret_keks(&pool).await, ["server-secrets@2"]);
    let status = launch.keys(&data, &["status"]).success();
    assert_eq!(
        key_rows(&status, "server-secrets"),
        [(1, false, true), (2, true, false)],
        "{status}"
    );
    // The server still signs and verifies with the moved keys.
    let server = launch.start(&data);
    server.get_json("/health", 200).await;
}

#[tokio::test]
async fn secrets_sealed_under_pii_by_older_servers_move_to_their_own_key() {
    use finsec_crypto::envelope::aad_for;
    use finsec_crypto::{Envelope, KeyName};

    let data = DataDir::new();
    let launch = Launch::new();
    let (status, _) = launch.start(&data).terminate();
    assert!(status.success());

    // Reseal the backup-code key under `pii`, as servers did before `server-secrets` existed.
    use clap::Parser as _;
    let cli = finsec_reference_server::Cli::parse_from([
        "finsec-reference-server",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let ring = std::sync::Arc::new(
        finsec_reference_server::keys::KeyringFile::existing(&cli.config)
            .unwrap()
            .load()
            .unwrap(),
    );
    let pii = Envelope::new(std::sync::Arc::clone(&ring), KeyName::new("pii").unwrap());
    let pool = database(&data).await;
    let (name, sealed): (String, String) =
        sqlx::query_as("SELECT name, value FROM server_secrets LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let aad = aad_for("server_secrets", "value", &name);
    let plain = pii.decrypt_str(&sealed, &aad).unwrap();
    let legacy = pii.encrypt_to_string(&plain, &aad).unwrap();
    sqlx::query("UPDATE server_secrets SET value = $1 WHERE name = $2")
        .bind(&legacy)
        .bind(&name)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(secret_keks(&pool).await, ["pii@1", "server-secrets@1"]);

    // A server still reads it (the ciphertext names its key) ...
    let (status, logs) = launch.start(&data).terminate();
    assert!(status.success(), "{logs}");
    // ... and `keys rewrap` moves it to `server-secrets`, without changing the secret.
    let moved = launch.keys(&data, &["rewrap"]).success();
    assert!(moved.contains(": 1 of "), "{moved}");
    assert_eq!(secret_keks(&pool).await, ["server-secrets@1"]);
    let now: String = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
        .bind(&name)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pii.decrypt_str(&now, &aad).unwrap(), plain);
    // Nothing is left to move.
    let again = launch.keys(&data, &["rewrap"]).success();
    assert!(again.contains(": 0 of "), "{again}");
}
