//! `finsec-audit`: verify an audit log, check it against a witness, and print or check
//! inclusion proofs.
//!
//! ```text
//! finsec-audit verify      --file DIR | --sqlite PATH | --postgres URL  --origin O --key VKEY [--witness FILE]...
//! finsec-audit witness     --file DIR | --sqlite PATH | --postgres URL  --origin O --key VKEY --witness FILE
//! finsec-audit prove       --file DIR | --sqlite PATH | --postgres URL  --id UUID [--size N]
//! finsec-audit check-proof --proof FILE --checkpoint FILE --origin O --key VKEY [--event FILE]
//! ```
//!
//! Exit status: 0 when everything checked out, 1 when the log, witness or proof is wrong
//! (the reason is printed), 2 when the command could not run (bad arguments, an
//! unreachable store).
#![forbid(unsafe_code)]
#![expect(clippy::print_stdout, reason = "a command-line tool answers on stdout")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use finsec_audit::merkle::{self, Hash};
use finsec_audit::{
    AuditEvent, AuditLog, AuditSink, FileSink, FileWitness, LogVerifier, NoteSigner, NoteVerifier,
    Witness,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "finsec-audit",
    version,
    about = "Verify finsec audit logs and their proofs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Store {
    /// A file log (the directory a `FileSink` writes). It must not be open in another
    /// process.
    #[arg(long, value_name = "DIR")]
    file: Option<PathBuf>,
    /// A SQLite database holding the log.
    #[arg(long, value_name = "PATH")]
    sqlite: Option<PathBuf>,
    /// A PostgreSQL database holding the log (`postgres://...`).
    #[arg(long, value_name = "URL", env = "FINSEC_AUDIT_POSTGRES_URL")]
    postgres: Option<String>,
}

#[derive(Args)]
struct Key {
    /// The log's origin line (for example `audit.example.com/trading`).
    #[arg(long)]
    origin: String,
    /// The note verifier key (`name+hash+base64`), or `@FILE` to read it from a file.
    #[arg(long, env = "FINSEC_AUDIT_VKEY")]
    key: String,
}

#[derive(Subcommand)]
enum Command {
    /// Walk the whole log: every event, tree node and checkpoint, and each witness's newest
    /// checkpoint.
    Verify {
        #[command(flatten)]
        store: Store,
        /// PostgreSQL schema holding the tables (sets `search_path`).
        #[arg(long)]
        schema: Option<String>,
        #[command(flatten)]
        key: Key,
        /// A witness file (JSON lines, as `FileWitness` writes); repeat for several.
        #[arg(long, value_name = "FILE")]
        witness: Vec<PathBuf>,
        /// Only check hashes, without parsing every event (faster).
        #[arg(long)]
        hashes_only: bool,
    },
    /// Check a witness's newest checkpoint against the log: signed by the key, not beyond
    /// the log, and the root of the log at its size.
    Witness {
        #[command(flatten)]
        store: Store,
        /// PostgreSQL schema holding the tables.
        #[arg(long)]
        schema: Option<String>,
        #[command(flatten)]
        key: Key,
        /// The witness file.
        #[arg(long, value_name = "FILE")]
        witness: PathBuf,
    },
    /// Print the inclusion proof of one event as JSON, with the stored checkpoint of that
    /// size if there is one.
    Prove {
        #[command(flatten)]
        store: Store,
        /// PostgreSQL schema holding the tables.
        #[arg(long)]
        schema: Option<String>,
        /// The event id.
        #[arg(long)]
        id: Uuid,
        /// The tree size to prove against (default: the newest stored checkpoint's size,
        /// or the log's size when there is none).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Check an inclusion proof (as `prove` prints it) against a signed checkpoint note.
    CheckProof {
        /// The proof (JSON).
        #[arg(long, value_name = "FILE")]
        proof: PathBuf,
        /// The signed checkpoint note.
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        #[command(flatten)]
        key: Key,
        /// The event's canonical bytes: also check that the proof is for this event.
        #[arg(long, value_name = "FILE")]
        event: Option<PathBuf>,
    },
}

/// An inclusion proof as `prove` prints it.
#[derive(Serialize, Deserialize)]
struct ProofFile {
    id: Option<Uuid>,
    index: u64,
    size: u64,
    leaf: String,
    path: Vec<String>,
    checkpoint: Option<String>,
}

/// A failure that is the answer (exit 1) or a failure to run (exit 2).
enum Failure {
    Wrong(String),
    Usage(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Usage(e.to_string())
    }
}

fn read_key(key: &Key) -> Result<NoteVerifier, Failure> {
    let text = match key.key.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)?,
        None => key.key.clone(),
    };
    Ok(NoteVerifier::from_vkey(text.trim())?)
}

async fn open(store: &Store, schema: Option<&str>) -> Result<Arc<dyn AuditSink>, Failure> {
    if let Some(dir) = &store.file {
        if !dir.join("segments").is_dir() {
            return Err(Failure::Usage(format!(
                "{} is not a file audit log (no segments/ directory)",
                dir.display()
            )));
        }
        let sink = FileSink::open(dir)?;
        let recovery = sink.recovery();
        if let Some((bytes, kept)) = &recovery.torn {
            eprintln!(
                "note: cut a torn tail of {bytes} bytes from the last segment (kept in {})",
                kept.display()
            );
        }
        return Ok(Arc::new(sink));
    }
    if let Some(path) = &store.sqlite {
        if !path.is_file() {
            return Err(Failure::Usage(format!("{} does not exist", path.display())));
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await?;
        return Ok(Arc::new(finsec_audit::sqlite::SqliteSink::new(pool)));
    }
    if let Some(url) = &store.postgres {
        let mut options: sqlx::postgres::PgConnectOptions = url.parse()?;
        if let Some(schema) = schema {
            options = options.options([("search_path", schema)]);
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        return Ok(Arc::new(finsec_audit::postgres::PgSink::new(pool)));
    }
    Err(Failure::Usage(
        "name a store: --file, --sqlite or --postgres".to_owned(),
    ))
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

async fn verify(
    store: &Store,
    schema: Option<&str>,
    key: &Key,
    witnesses: &[PathBuf],
    hashes_only: bool,
) -> Result<(), Failure> {
    let verifier = read_key(key)?;
    let sink = open(store, schema).await?;
    let bar = progress_bar();
    let progress = bar.clone();
    let mut v = LogVerifier::new(verifier, key.origin.clone())
        .parse_events(!hashes_only)
        .on_progress(move |done, total| {
            progress.set_length(total);
            progress.set_position(done);
        });
    for w in witnesses {
        v = v.with_witness(Arc::new(FileWitness::new(w.clone())));
    }
    let report = v.verify(&*sink).await?;
    bar.finish_and_clear();
    match report.problem {
        None => {
            println!(
                "ok: {} events, {} checkpoints checked, root {}",
                report.events,
                report.checkpoints,
                report.root.to_base64()
            );
            Ok(())
        }
        Some(p) => Err(Failure::Wrong(format!(
            "{p} (after {} good events)",
            report.events
        ))),
    }
}

async fn witness(
    store: &Store,
    schema: Option<&str>,
    key: &Key,
    path: &Path,
) -> Result<(), Failure> {
    let verifier = read_key(key)?;
    let sink = open(store, schema).await?;
    let w = FileWitness::new(path);
    let Some((size, note)) = w.latest().await? else {
        return Err(Failure::Wrong(format!(
            "{} holds no checkpoint",
            path.display()
        )));
    };
    let signed = verifier
        .verify_for(&note, &key.origin)
        .map_err(|e| Failure::Wrong(format!("the witness's checkpoint at {size}: {e}")))?;
    let log_size = sink.size().await?;
    if size > log_size {
        return Err(Failure::Wrong(format!(
            "the witness holds a checkpoint of {size} events; the log has {log_size}: it was truncated"
        )));
    }
    let log = AuditLog::new(sink, key.origin.clone(), NoteSigner::generate(&key.origin)?)?;
    let root = log.root_at(size).await?;
    if &root != signed.checkpoint().root() {
        return Err(Failure::Wrong(format!(
            "the log's root at {size} is {}, the witness signed {}: history was rewritten",
            root.to_base64(),
            signed.checkpoint().root().to_base64()
        )));
    }
    println!("ok: the witness's checkpoint at {size} matches the log ({log_size} events)");
    Ok(())
}

async fn prove(
    store: &Store,
    schema: Option<&str>,
    id: Uuid,
    size: Option<u64>,
) -> Result<(), Failure> {
    let sink = open(store, schema).await?;
    let newest = sink
        .checkpoints(0, u64::MAX)
        .await?
        .into_iter()
        .max_by_key(|(s, _)| *s);
    let size = match (size, &newest) {
        (Some(s), _) => s,
        (None, Some((s, _))) => *s,
        (None, None) => sink.size().await?,
    };
    let checkpoint = sink
        .checkpoints(size, size)
        .await?
        .into_iter()
        .next()
        .map(|(_, n)| n);
    let log = AuditLog::new(
        sink,
        "finsec-audit/prove",
        NoteSigner::generate("finsec-audit/prove")?,
    )?;
    let proof = match log.inclusion_proof(id, size).await {
        Ok(p) => p,
        Err(finsec_audit::Error::UnknownEvent(_)) => {
            return Err(Failure::Wrong(format!("no event {id} in the log")));
        }
        Err(e) => return Err(e.into()),
    };
    let out = ProofFile {
        id: Some(id),
        index: proof.index,
        size: proof.size,
        leaf: proof.leaf.to_base64(),
        path: proof.path.iter().map(Hash::to_base64).collect(),
        checkpoint,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn check_proof(
    proof: &Path,
    checkpoint: &Path,
    key: &Key,
    event: Option<&PathBuf>,
) -> Result<(), Failure> {
    let verifier = read_key(key)?;
    let p: ProofFile = serde_json::from_str(&std::fs::read_to_string(proof)?)?;
    let note = std::fs::read_to_string(checkpoint)?;
    let signed = verifier
        .verify_for(&note, &key.origin)
        .map_err(|e| Failure::Wrong(format!("the checkpoint: {e}")))?;
    if signed.checkpoint().size() != p.size {
        return Err(Failure::Wrong(format!(
            "the proof is for size {}, the checkpoint for {}",
            p.size,
            signed.checkpoint().size()
        )));
    }
    let leaf = Hash::from_base64(&p.leaf)?;
    if let Some(event) = event {
        let bytes = std::fs::read(event)?;
        if Hash::leaf(&bytes) != leaf {
            return Err(Failure::Wrong(
                "the event's bytes do not hash to the proof's leaf".to_owned(),
            ));
        }
        let parsed = AuditEvent::from_canonical(&bytes)
            .map_err(|e| Failure::Wrong(format!("the event is not canonical: {e}")))?;
        if p.id.is_some_and(|id| id != parsed.id()) {
            return Err(Failure::Wrong(
                "the event is not the proof's event".to_owned(),
            ));
        }
    }
    let path = p
        .path
        .iter()
        .map(|h| Hash::from_base64(h))
        .collect::<Result<Vec<_>, _>>()?;
    merkle::verify_inclusion(&leaf, p.index, p.size, &path, signed.checkpoint().root())
        .map_err(|e| Failure::Wrong(format!("the proof does not verify: {e}")))?;
    println!(
        "ok: event {} is at position {} of the log signed at size {}",
        p.id.map_or_else(|| "?".to_owned(), |id| id.to_string()),
        p.index,
        p.size
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Verify {
                store,
                schema,
                key,
                witness: w,
                hashes_only,
            } => verify(store, schema.as_deref(), key, w, *hashes_only).await,
            Command::Witness {
                store,
                schema,
                key,
                witness: w,
            } => witness(store, schema.as_deref(), key, w).await,
            Command::Prove {
                store,
                schema,
                id,
                size,
            } => prove(store, schema.as_deref(), *id, *size).await,
            Command::CheckProof {
                proof,
                checkpoint,
                key,
                event,
            } => check_proof(proof, checkpoint, key, event.as_ref()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Wrong(why)) => {
            eprintln!("FAILED: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(2)
        }
    }
}
