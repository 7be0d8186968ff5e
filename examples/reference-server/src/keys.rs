//! The keyring: where it lives, what seals it, and the `keys` operator subcommands.
//!
//! The keyring is a sealed (encrypted) file, `<data-dir>/keyring.sealed` unless
//! `--keyring-file` names another one (several instances can share one file). What seals
//! it:
//!
//! - the passphrase in `FINSEC_MASTER_PASSPHRASE` if it is set (stretched with argon2id;
//!   recommended for production, where the passphrase comes from a secrets manager), or
//! - a random 32-byte master key in `<data-dir>/master.key`, created on first start with
//!   mode `0600`. The server refuses to start if that file is readable or writable by
//!   anyone but its owner. Anyone who can read both files can read the keyring, so this
//!   mode suits development and single-host setups only; the server logs a warning.
//!
//! On first start the keyring is created with two keys (version 1 each): [`PII_KEY`], which
//! wraps the per-data-subject keys (personal data), and [`SECRETS_KEY`], which wraps the
//! server's own secrets (JWT signing seeds, TOTP secrets, the backup-code key). An older
//! keyring that has only `pii` gets `server-secrets` added at start; secrets it wrapped under
//! `pii` still decrypt (the ciphertext names its key) and `keys rewrap` moves them to
//! `server-secrets`. Changes to the file go through
//! [`Keyring::update_sealed`], which holds a lock, so an operator's `keys rotate` and a
//! server saving its usage counters at shutdown never undo each other.
//!
//! A running server keeps the keyring it loaded at start: after `keys rotate`, restart the
//! instances so they wrap new subject keys under the new primary, then run
//! `keys rewrap --retire`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use finsec_crypto::subject::{RewrapReport, SubjectKeys};
use finsec_crypto::{Key256, KeyName, KeyStatus, Keyring, Passphrase, SealKey};
use secrecy::ExposeSecret;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::config::{Config, KeysCommand, MASTER_PASSPHRASE_VAR};
use crate::error::{Result, ServerError};
use crate::storage::Storage;

/// The key that wraps subject keys: personal data, and only personal data.
pub const PII_KEY: &str = "pii";

/// The key that wraps the server's own secrets: JWT signing seeds, TOTP secrets and the
/// backup-code key. Kept apart from [`PII_KEY`] so that the two are rotated, retired and
/// (with a KMS) access-controlled on their own, and so that crypto-shredding or handing
/// personal-data keys to a processor never touches the keys that sign sessions.
pub const SECRETS_KEY: &str = "server-secrets";

/// The keys every keyring of the server holds.
pub const REQUIRED_KEYS: [&str; 2] = [PII_KEY, SECRETS_KEY];

/// The [`PII_KEY`] name.
///
/// # Errors
/// Never in practice: the constant is a valid key name.
pub fn pii_key_name() -> Result<KeyName> {
    Ok(KeyName::new(PII_KEY)?)
}

/// The [`SECRETS_KEY`] name.
///
/// # Errors
/// Never in practice: the constant is a valid key name.
pub fn secrets_key_name() -> Result<KeyName> {
    Ok(KeyName::new(SECRETS_KEY)?)
}

fn required_key_names() -> Result<Vec<KeyName>> {
    REQUIRED_KEYS
        .iter()
        .map(|name| Ok(KeyName::new(*name)?))
        .collect()
}

/// What seals the keyring, and where it is.
#[derive(Debug)]
pub struct KeyringFile {
    path: PathBuf,
    seal: SealKey,
}

impl KeyringFile {
    /// The sealed keyring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key that seals it.
    pub fn seal_key(&self) -> &SealKey {
        &self.seal
    }

    /// For the server: the passphrase if one is configured, else the master key file,
    /// created (with a warning) if neither it nor the keyring exists yet.
    ///
    /// # Errors
    /// The master key file is unreadable, has loose permissions or a wrong size; the
    /// keyring exists but its master key file does not.
    pub fn for_server(config: &Config) -> Result<Self> {
        let path = config.keyring_path();
        if let Some(seal) = passphrase_seal(config) {
            return Ok(Self { path, seal });
        }
        let master = config.master_key_path();
        if !master.exists() {
            if path.exists() {
                return Err(ServerError::Config(format!(
                    "keyring {} exists but its master key file {} does not and \
                     {MASTER_PASSPHRASE_VAR} is not set; restore the master key file or set \
                     the passphrase the keyring was sealed with",
                    path.display(),
                    master.display()
                )));
            }
            let key = Key256::generate()?;
            if create_file_atomically(&master, key.expose_secret())? {
                tracing::warn!(
                    path = %master.display(),
                    "WARNING: created a random master key file to seal the keyring; anyone who \
                     can read it can read the keyring. In production set \
                     {MASTER_PASSPHRASE_VAR} (from a secrets manager) instead"
                );
            }
        } else {
            tracing::warn!(
                path = %master.display(),
                "WARNING: the keyring is sealed with a master key file; in production set \
                 {MASTER_PASSPHRASE_VAR} instead"
            );
        }
        Ok(Self {
            path,
            seal: SealKey::MasterKey(read_master_key(&master)?),
        })
    }

    /// For the operator subcommands: the passphrase if one is configured, else the
    /// existing master key file. Never creates anything.
    ///
    /// # Errors
    /// No keyring exists yet; the master key file is missing or unusable.
    pub fn existing(config: &Config) -> Result<Self> {
        let path = config.keyring_path();
        if !path.exists() {
            return Err(ServerError::Config(format!(
                "no keyring at {}; start the server once to create it, or point \
                 --keyring-file / FINSEC_KEYRING_FILE at an existing one",
                path.display()
            )));
        }
        let seal = match passphrase_seal(config) {
            Some(seal) => seal,
            None => SealKey::MasterKey(read_master_key(&config.master_key_path())?),
        };
        Ok(Self { path, seal })
    }

    /// Loads the keyring, or creates it with the keys [`REQUIRED_KEYS`] if the file does not
    /// exist. A keyring that lacks one of them (an older keyring, or one shared with another
    /// application) gets it added, under the file's lock.
    ///
    /// # Errors
    /// [`ServerError::Keyring`] if the file cannot be read, opened (wrong passphrase or
    /// master key) or written.
    pub fn load_or_create(&self) -> Result<Keyring> {
        let required = required_key_names()?;
        if !self.path.exists() {
            let ring = Keyring::new();
            for name in &required {
                ring.create_key(name).map_err(|e| self.error(e))?;
            }
            let sealed = ring.seal(&self.seal).map_err(|e| self.error(e))?;
            if create_file_atomically(&self.path, &sealed)? {
                tracing::info!(path = %self.path.display(), keys = ?REQUIRED_KEYS, "created the keyring");
                return Ok(ring);
            }
            // Another instance created it at the same moment: use theirs.
        }
        let ring = self.load()?;
        if required.iter().all(|name| ring.contains(name)) {
            return Ok(ring);
        }
        let added = self.update(|on_disk| {
            let mut added = Vec::new();
            for name in &required {
                if !on_disk.contains(name) {
                    on_disk.create_key(name)?;
                    added.push(name.to_string());
                }
            }
            Ok(added)
        })?;
        if !added.is_empty() {
            tracing::info!(path = %self.path.display(), keys = ?added, "added keys to the keyring");
        }
        self.load()
    }

    /// Loads the keyring.
    ///
    /// # Errors
    /// [`ServerError::Keyring`] if the file cannot be read or opened.
    pub fn load(&self) -> Result<Keyring> {
        Keyring::load_sealed(&self.path, &self.seal).map_err(|e| self.error(e))
    }

    /// Read-modify-write of the file under its lock ([`Keyring::update_sealed`]).
    ///
    /// # Errors
    /// [`ServerError::Keyring`] with whatever failed, `f` included; nothing is written
    /// then.
    pub fn update<T>(&self, f: impl FnOnce(&Keyring) -> finsec_crypto::Result<T>) -> Result<T> {
        Keyring::update_sealed(&self.path, &self.seal, f).map_err(|e| self.error(e))
    }

    /// Saves the usage counters of `running` without undoing changes made on disk since it
    /// was loaded (a rotation by `keys rotate`, for instance).
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub fn save_counters(&self, running: &Keyring) -> Result<()> {
        self.update(|on_disk| {
            running.merge_counts_into(on_disk);
            Ok(())
        })
    }

    fn error(&self, source: finsec_crypto::Error) -> ServerError {
        ServerError::Keyring {
            path: self.path.clone(),
            source,
        }
    }
}

fn passphrase_seal(config: &Config) -> Option<SealKey> {
    config
        .master_passphrase
        .as_ref()
        .map(|p| SealKey::Passphrase(Passphrase::new(p.expose_secret())))
}

/// Reads a 32-byte master key file, refusing one that others than its owner may access.
///
/// # Errors
/// [`ServerError::MasterKeyPermissions`], [`ServerError::MasterKeyLength`],
/// [`ServerError::Io`].
pub fn read_master_key(path: &Path) -> Result<Key256> {
    let (mut file, meta) = open_regular_file(path, "master key")?;
    if let Some(mode) = mode_with(&meta, 0o077) {
        return Err(ServerError::MasterKeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.len() != 32 {
        return Err(ServerError::MasterKeyLength {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    file.read_exact(bytes.as_mut_slice())
        .map_err(|e| ServerError::io("cannot read", path, e))?;
    Ok(Key256::from_bytes(*bytes))
}

/// Opens `path` for reading and checks that it is a regular file (`what` names it in the
/// error).
///
/// # Errors
/// [`ServerError::Io`] if it cannot be opened or inspected; [`ServerError::Config`] if it is
/// not a regular file.
pub fn open_regular_file(path: &Path, what: &str) -> Result<(File, fs::Metadata)> {
    let file = File::open(path).map_err(|e| ServerError::io("cannot open", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| ServerError::io("cannot inspect", path, e))?;
    if !meta.is_file() {
        return Err(ServerError::Config(format!(
            "{what} path {} is not a regular file",
            path.display()
        )));
    }
    Ok((file, meta))
}

/// The file's permission bits if any of `forbidden` (for example `0o077`: any access by
/// group or others) is set; `None` otherwise, and always on platforms without Unix modes.
pub fn mode_with(meta: &fs::Metadata, forbidden: u32) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & forbidden != 0 {
            return Some(mode);
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, forbidden);
    None
}

/// Writes a new file atomically and without replacing an existing one: the bytes go to a
/// temporary file created with `create_new` and mode `0600`, are synced, and the file is
/// linked to `path` only if nothing exists there. Returns `false` (and writes nothing) if
/// `path` already exists.
///
/// # Errors
/// [`ServerError::Io`] if the directory is not writable or the file system fails.
pub fn create_file_atomically(path: &Path, bytes: &[u8]) -> Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let suffix: String = finsec_crypto::random_array::<8>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tmp = dir.join(format!(".{name}.{suffix}.tmp"));

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(ServerError::io("cannot write", &tmp, e));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            #[cfg(unix)]
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ServerError::io("cannot sync directory", dir, e))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(ServerError::io("cannot create", path, e)),
    }
}

/// Runs a `keys` subcommand, printing its result to `out`.
///
/// # Errors
/// Whatever failed: the keyring, the database, or writing to `out`.
pub async fn run_command(
    config: &Config,
    command: &KeysCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let file = KeyringFile::existing(config)?;
    match command {
        KeysCommand::Status => {
            let ring = file.load()?;
            print_status(out, &ring.status()).map_err(stdout_error)
        }
        KeysCommand::Rotate { name } => {
            let new = file.update(|ring| ring.rotate(name))?;
            // Recorded in the audit log of the database the server uses.
            let storage = Storage::open(config).await?;
            let version = new.version.to_string();
            let recorded = match crate::capabilities::migrate(&storage).await {
                Ok(()) => {
                    crate::audit::record_command(
                        &storage,
                        "key.rotate",
                        ("key", new.name.as_str()),
                        &[("version", version.as_str())],
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            storage.close().await;
            recorded?;
            writeln!(
                out,
                "rotated {}: version {} is now primary; restart running servers so they use it, \
                 then run `keys rewrap --retire`",
                new.name, new.version
            )
            .map_err(stdout_error)
        }
        KeysCommand::Rewrap { retire, batch } => rewrap(config, &file, *retire, *batch, out).await,
    }
}

async fn rewrap(
    config: &Config,
    file: &KeyringFile,
    retire: bool,
    batch: u32,
    out: &mut dyn Write,
) -> Result<()> {
    let pii = pii_key_name()?;
    let secrets = secrets_key_name()?;
    // An older keyring may lack the secrets key: add it first, so secrets can move to it.
    file.update(|on_disk| {
        if !on_disk.contains(&secrets) {
            on_disk.create_key(&secrets)?;
        }
        Ok(())
    })?;
    let ring = Arc::new(file.load()?);
    let primary = finsec_crypto::KeyProvider::primary_version(ring.as_ref(), &pii)?;
    let secrets_primary = finsec_crypto::KeyProvider::primary_version(ring.as_ref(), &secrets)?;
    let storage = Storage::open(config).await?;
    let (report, sealed) = match crate::capabilities::migrate(&storage).await {
        Ok(()) => {
            let keys = SubjectKeys::new(
                storage.stores().crates.subject_keys,
                Arc::clone(&ring),
                pii.clone(),
            );
            let report = keys.rewrap_all(batch).await;
            let envelope = finsec_crypto::Envelope::new(Arc::clone(&ring), secrets.clone());
            let sealed =
                crate::auth::secrets::rewrap_sealed(&*storage.stores().secrets, &envelope).await;
            let primary_text = primary.to_string();
            let recorded = crate::audit::record_command(
                &storage,
                "key.rewrap",
                ("key", pii.as_str()),
                &[
                    ("primary_version", primary_text.as_str()),
                    ("retire", if retire { "yes" } else { "no" }),
                ],
            )
            .await;
            if let Err(e) = recorded {
                storage.close().await;
                return Err(e);
            }
            (report.map_err(ServerError::from), sealed)
        }
        Err(e) => {
            storage.close().await;
            return Err(e);
        }
    };
    storage.close().await;
    let report = report?;
    let sealed = sealed?;
    print_report(out, &pii, primary, &report).map_err(stdout_error)?;
    writeln!(
        out,
        "re-wrapped server secrets (signing keys, TOTP secrets) under {secrets} version \
         {secrets_primary}: {} of {}, {} failed",
        sealed.rewrapped, sealed.scanned, sealed.failed
    )
    .map_err(stdout_error)?;

    let retire_now = retire && report.is_complete() && sealed.is_complete();
    file.update(|on_disk| {
        // Wrapping counts as use of the primary: keep the counters honest.
        ring.merge_counts_into(on_disk);
        if retire_now {
            on_disk.retire_below(&pii, primary)?;
            on_disk.retire_below(&secrets, secrets_primary)?;
        }
        Ok(())
    })?;
    if retire_now {
        writeln!(
            out,
            "retired {pii} versions below {primary} and {secrets} versions below \
             {secrets_primary}: they no longer decrypt"
        )
        .map_err(stdout_error)?;
    } else if retire {
        writeln!(
            out,
            "not retiring: {} failed, {} changed concurrently; fix the failures and run again",
            report.failed.len() + usize::try_from(sealed.failed).unwrap_or(usize::MAX),
            report.changed_concurrently
        )
        .map_err(stdout_error)?;
        return Err(ServerError::Config(
            "rewrap was incomplete; older key versions were not retired".to_owned(),
        ));
    }
    if !report.failed.is_empty() {
        return Err(ServerError::Config(format!(
            "{} subject keys could not be re-wrapped",
            report.failed.len()
        )));
    }
    Ok(())
}

fn print_report(
    out: &mut dyn Write,
    kek: &KeyName,
    primary: u32,
    r: &RewrapReport,
) -> io::Result<()> {
    writeln!(out, "re-wrapped subject keys under {kek} version {primary}")?;
    writeln!(out, "  scanned:              {}", r.scanned)?;
    writeln!(out, "  re-wrapped:           {}", r.rewrapped)?;
    writeln!(out, "  already current:      {}", r.already_current)?;
    writeln!(out, "  changed concurrently: {}", r.changed_concurrently)?;
    writeln!(out, "  failed:               {}", r.failed.len())?;
    for failure in &r.failed {
        writeln!(
            out,
            "    subject {} (wrapped under {}): {}",
            failure.subject, failure.kek, failure.error
        )?;
    }
    Ok(())
}

/// Prints the status table: one row per key version, no key material.
///
/// # Errors
/// If writing fails.
pub fn print_status(out: &mut dyn Write, status: &[KeyStatus]) -> io::Result<()> {
    let header = [
        "NAME",
        "VERSION",
        "PRIMARY",
        "RETIRED",
        "ENCRYPTED",
        "ROTATION DUE",
        "CREATED",
    ];
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let rows: Vec<[String; 7]> = status
        .iter()
        .map(|s| {
            [
                s.name.to_string(),
                s.version.to_string(),
                yes_no(s.is_primary),
                yes_no(s.retired),
                s.encrypted_count.to_string(),
                yes_no(s.rotation_due),
                s.created_at
                    .format(&Rfc3339)
                    .unwrap_or_else(|_| s.created_at.to_string()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let text: Vec<String> = cells
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    line(&mut header.iter().copied())?;
    for row in &rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn stdout_error(e: io::Error) -> ServerError {
    ServerError::io("cannot write to", "standard output", e)
}

/// Creates the data directory (mode `0700` on Unix) if it is missing; warns if an
/// existing one is accessible to others.
///
/// # Errors
/// [`ServerError::Io`] if it cannot be created or is not a directory.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if let Some(mode) = mode_with(&meta, 0o077) {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format_args!("{mode:04o}"),
                    "the data directory is accessible to other users; chmod 700 it"
                );
            }
            Ok(())
        }
        Ok(_) => Err(ServerError::io(
            "data directory is not a directory:",
            dir,
            io::Error::from(io::ErrorKind::NotADirectory),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder
                .create(dir)
                .map_err(|e| ServerError::io("cannot create data directory", dir, e))
        }
        Err(e) => Err(ServerError::io("cannot inspect data directory", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_file_atomically_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(create_file_atomically(&path, b"one").unwrap());
        assert!(!create_file_atomically(&path, b"two").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"one");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn master_key_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        assert!(matches!(
            read_master_key(&path),
            Err(ServerError::Io { .. })
        ));
        assert!(create_file_atomically(&path, &[7u8; 31]).unwrap());
        assert!(matches!(
            read_master_key(&path),
            Err(ServerError::MasterKeyLength { len: 31, .. })
        ));
        fs::remove_file(&path).unwrap();
        assert!(create_file_atomically(&path, &[7u8; 32]).unwrap());
        assert_eq!(
            read_master_key(&path).unwrap(),
            Key256::from_bytes([7u8; 32])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            let err = read_master_key(&path).unwrap_err();
            assert!(matches!(
                err,
                ServerError::MasterKeyPermissions { mode: 0o640, .. }
            ));
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn status_table_has_no_key_material() {
        let ring = Keyring::new();
        let pii = pii_key_name().unwrap();
        ring.create_key(&pii).unwrap();
        ring.rotate(&pii).unwrap();
        let mut out = Vec::new();
        print_status(&mut out, &ring.status()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME"));
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(&cells[..6], ["pii", "2", "yes", "no", "0", "no"]);
        let json = String::from_utf8(ring.to_json().unwrap().expose_secret().to_vec()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        for version in doc["keys"][0]["versions"].as_array().unwrap() {
            let key = version["key"].as_str().unwrap();
            assert!(!text.contains(key));
        }
    }

    #[cfg(unix)]
    #[test]
    fn data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("data");
        ensure_data_dir(&data).unwrap();
        let mode = fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_data_dir(&data).unwrap();
    }
}
