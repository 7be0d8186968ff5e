//! Where retention runs put records before deleting them: one stream-encrypted file per
//! batch (finsec-crypto's STREAM format under the keyring's `pii` key), written to a
//! temporary name, flushed and renamed, so a batch is either wholly archived or not at all.
//!
//! Files are `DIR/<class>/<run>-<first key digest>.jsonl.fss`: a batch repeated after a
//! crash (the same run and first key, so the same records) replaces its earlier file. Each
//! line of the plaintext is one record: `{"key", "subject", "created", "content"}`.
//! Decrypt one with finsec-crypto's `decrypt_file` and the associated data [`AAD`].

use std::fs::{self, File};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use finsec_compliance::gdpr::retention::{Archive, ArchiveBatch};
use finsec_compliance::{Error, Result};
use finsec_crypto::{KeyName, Keyring, StreamEncryptor};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;

/// The associated data every archive file is bound to.
pub const AAD: &[u8] = b"finsec-reference-server/retention-archive/v1";

/// Batches as stream-encrypted files under a directory.
#[derive(Clone)]
pub struct FileArchive {
    dir: PathBuf,
    keyring: Arc<Keyring>,
    key: KeyName,
}

impl std::fmt::Debug for FileArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileArchive")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileArchive {
    /// An archive in `dir`, encrypting under the keyring's `key`.
    pub fn new(dir: PathBuf, keyring: Arc<Keyring>, key: KeyName) -> Self {
        Self { dir, keyring, key }
    }

    /// The file of a batch.
    pub fn path_of(&self, batch: &ArchiveBatch<'_>) -> PathBuf {
        let digest = Sha256::digest(batch.first_key.as_bytes());
        self.dir.join(batch.class.as_str()).join(format!(
            "{}-{}.jsonl.fss",
            batch.run,
            hex::encode(digest.get(..8).unwrap_or_default())
        ))
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Io(e)
}

#[async_trait]
impl Archive for FileArchive {
    async fn store(&self, batch: &ArchiveBatch<'_>) -> Result<()> {
        let path = self.path_of(batch);
        let mut plain = Vec::new();
        for r in batch.records {
            let content = serde_json::from_slice::<serde_json::Value>(&r.content)
                .unwrap_or_else(|_| json!({"bytes": hex::encode(&r.content)}));
            let line = json!({
                "key": r.key,
                "subject": r.subject.as_ref().map(|s| s.as_str()),
                "created": r.created.format(&Rfc3339).unwrap_or_default(),
                "content": content,
            });
            serde_json::to_writer(&mut plain, &line)
                .map_err(|e| Error::Archive(format!("encoding a record: {e}")))?;
            plain.push(b'\n');
        }
        let keyring = Arc::clone(&self.keyring);
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let dir = path
                .parent()
                .ok_or_else(|| Error::Archive("archive path without a directory".to_owned()))?;
            fs::create_dir_all(dir).map_err(io)?;
            let tmp = path.with_extension("fss.tmp");
            let file = File::create(&tmp).map_err(io)?;
            let mut enc = StreamEncryptor::new(keyring.as_ref(), &key, AAD, file)
                .map_err(|e| Error::Archive(e.to_string()))?;
            enc.update(&plain)
                .map_err(|e| Error::Archive(e.to_string()))?;
            let mut file = enc.finish().map_err(|e| Error::Archive(e.to_string()))?;
            file.flush().map_err(io)?;
            file.sync_all().map_err(io)?;
            drop(file);
            fs::rename(&tmp, &path).map_err(io)?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Archive(format!("archive task: {e}")))?
    }
}
