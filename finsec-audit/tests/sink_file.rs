#![cfg(test)]
//! `FileSink` on real files: the conformance suites, every tampering `verify` names,
//! reopening, rotation across segments, torn tails, a lost tree, and the directory lock.

use std::io::Write as _;
use std::sync::Arc;

use finsec_audit::testing::{audit_sink_conformance, audit_sink_two_instances, tamper_conformance};
use finsec_audit::{
    AuditSink, EncodedEvent, FileSink, FileSinkOptions, LogVerifier, MemorySink, NoteSigner, merkle,
};
use finsec_crypto::Key256;

mod support;
use support::events;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("finsec-audit-file-")
        .tempdir()
        .unwrap()
}

fn small_segments() -> FileSinkOptions {
    FileSinkOptions {
        segment_bytes: 1024,
        max_group: 1_000,
        tree_sync_every: 500,
    }
}

#[tokio::test]
async fn file_sink_conformance() {
    let dir = tempdir();
    let sink = FileSink::open(dir.path()).unwrap();
    audit_sink_conformance(&sink).await;
    audit_sink_conformance(&sink).await;
    audit_sink_two_instances(&sink, &sink).await;
    sink.close().await.unwrap();
}

#[tokio::test]
async fn file_sink_conformance_across_many_segments() {
    let dir = tempdir();
    let sink = FileSink::open_with(dir.path(), small_segments()).unwrap();
    audit_sink_conformance(&sink).await;
    audit_sink_two_instances(&sink, &sink).await;
    for e in events(200) {
        sink.append(std::slice::from_ref(&e)).await.unwrap();
    }
    let segments = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".events")
        })
        .count();
    assert!(segments > 40, "{segments} segments");
    sink.close().await.unwrap();
    // Reopened, the closed segments' indexes answer.
    let sink = FileSink::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(sink.recovery(), finsec_audit::Recovery::default());
    audit_sink_conformance(&sink).await;
}

#[tokio::test]
async fn file_tampering_is_found() {
    let mut dirs = Vec::new();
    let ran = tamper_conformance(|| {
        let dir = tempdir();
        let sink = FileSink::open(dir.path()).unwrap();
        dirs.push(dir);
        async move { sink }
    })
    .await;
    assert_eq!(ran, 10);
}

#[tokio::test]
async fn a_reopened_log_has_every_event_and_the_same_tree() {
    let dir = tempdir();
    let batch = events(3_000);
    let root;
    {
        let sink = FileSink::open_with(dir.path(), small_segments()).unwrap();
        for chunk in batch.chunks(7) {
            sink.append(chunk).await.unwrap();
        }
        root = sink.append(&[]).await.unwrap().root;
        // Dropped without close: the next open recomputes the unsynced tree.
    }
    let sink = FileSink::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(sink.size().await.unwrap(), 3_000);
    assert_eq!(sink.append(&[]).await.unwrap().root, root);
    let leaves: Vec<_> = batch.iter().map(EncodedEvent::leaf).collect();
    assert_eq!(merkle::root_of_leaves(&leaves), root);
    for (i, e) in batch.iter().enumerate().step_by(97) {
        assert_eq!(sink.position(e.id()).await.unwrap(), Some(i as u64));
    }
    assert!(matches!(
        sink.append(&batch[5..6]).await,
        Err(finsec_audit::Error::DuplicateEvent(_))
    ));
    let signer = NoteSigner::from_seed("audit.example.com/f", Key256::from_bytes([1; 32])).unwrap();
    let report = LogVerifier::new(signer.verifier(), "audit.example.com/f")
        .verify(&sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 3_000);
    assert_eq!(report.root, root);
}

#[tokio::test]
async fn a_lost_tree_is_rebuilt_from_the_events() {
    let dir = tempdir();
    let batch = events(1_000);
    let root = {
        let sink = FileSink::open(dir.path()).unwrap();
        let done = sink.append(&batch).await.unwrap();
        sink.close().await.unwrap();
        done.root
    };
    std::fs::remove_dir_all(dir.path().join("tree")).unwrap();
    std::fs::remove_file(dir.path().join("tree.synced")).unwrap();
    let sink = FileSink::open(dir.path()).unwrap();
    assert_eq!(sink.recovery().tree_rebuilt_from, Some(0));
    assert_eq!(sink.append(&[]).await.unwrap().root, root);
    let more = events(10);
    let done = sink.append(&more).await.unwrap();
    assert_eq!(done.first, 1_000);
    let mem = MemorySink::new();
    mem.append(&batch).await.unwrap();
    assert_eq!(mem.append(&more).await.unwrap().root, done.root);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_kept_aside() {
    let dir = tempdir();
    let batch = events(50);
    let root = {
        let sink = FileSink::open(dir.path()).unwrap();
        let done = sink.append(&batch).await.unwrap();
        sink.close().await.unwrap();
        done.root
    };
    // A write the crash interrupted: a whole header and half a body, then zeros.
    let path = dir
        .path()
        .join("segments")
        .join(format!("{:020}.events", 0));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let extra = events(1);
    let mut torn = Vec::new();
    torn.extend_from_slice(&u32::try_from(extra[0].bytes().len()).unwrap().to_le_bytes());
    torn.extend_from_slice(&50u64.to_le_bytes());
    torn.extend_from_slice(extra[0].leaf().as_bytes());
    torn.extend_from_slice(&extra[0].bytes()[..10]);
    torn.extend_from_slice(&[0; 300]);
    f.write_all(&torn).unwrap();
    drop(f);
    let sink = FileSink::open(dir.path()).unwrap();
    let recovery = sink.recovery();
    let (cut, kept) = recovery.torn.clone().unwrap();
    assert_eq!(cut, torn.len() as u64);
    assert_eq!(std::fs::read(kept).unwrap(), torn);
    assert_eq!(sink.size().await.unwrap(), 50);
    assert_eq!(sink.append(&[]).await.unwrap().root, root);
    // The log goes on where it was.
    assert_eq!(sink.append(&extra).await.unwrap().first, 50);
}

#[tokio::test]
async fn a_log_is_open_in_one_process_at_a_time() {
    let dir = tempdir();
    let sink = FileSink::open(dir.path()).unwrap();
    let err = FileSink::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("open in another process"), "{err}");
    sink.close().await.unwrap();
    drop(sink);
    FileSink::open(dir.path()).unwrap();
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempdir();
    let sink = Arc::new(FileSink::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            for e in events(200) {
                sink.append(std::slice::from_ref(&e)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sink.size().await.unwrap(), 1_600);
    let signer = NoteSigner::from_seed("audit.example.com/f", Key256::from_bytes([1; 32])).unwrap();
    let report = LogVerifier::new(signer.verifier(), "audit.example.com/f")
        .verify(&*sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn reopening_a_tampered_log_keeps_the_evidence() {
    use finsec_audit::testing::Tamper as _;
    let dir = tempdir();
    let sink = FileSink::open(dir.path()).unwrap();
    sink.append(&events(20)).await.unwrap();
    let mut bytes = sink.read(5, 1).await.unwrap().remove(0).bytes;
    let last = bytes.iter().rposition(u8::is_ascii_digit).unwrap();
    bytes[last] = if bytes[last] == b'9' {
        b'0'
    } else {
        bytes[last] + 1
    };
    sink.set_event(5, &bytes, None).await.unwrap();
    sink.close().await.unwrap();
    drop(sink);
    // An edited event before good ones is not a torn write: nothing is cut.
    let sink = FileSink::open(dir.path()).unwrap();
    assert_eq!(sink.recovery().torn, None);
    assert_eq!(sink.size().await.unwrap(), 20);
    let signer = NoteSigner::from_seed("audit.example.com/f", Key256::from_bytes([1; 32])).unwrap();
    let report = LogVerifier::new(signer.verifier(), "audit.example.com/f")
        .verify(&sink)
        .await
        .unwrap();
    assert_eq!(
        report.problem,
        Some(finsec_audit::Problem::Edited { index: 5 })
    );
}
