//! Every migration file in the repository lies in the range its crate owns (MIGRATIONS.md),
//! no version is used by two crates, and each crate ships the same versions for SQLite and
//! PostgreSQL.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: an unreadable repository or a malformed file name must fail the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use finsec_sql::migrations::{REGISTRY, range_of};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `name` of the `[package]` in `dir/Cargo.toml`, if `dir` is a package.
fn package_name(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("name") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

/// Every package directory of the repository (the root's children and `examples/*`).
fn packages(root: &Path) -> Vec<(String, PathBuf)> {
    let mut dirs = Vec::new();
    for parent in [root.to_path_buf(), root.join("examples")] {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir()
                && path.file_name().unwrap() != "target"
                && let Some(name) = package_name(&path)
            {
                dirs.push((name, path));
            }
        }
    }
    dirs.sort();
    dirs
}

fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sql_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
}

/// Every folder named `migrations` below `dir` (a package's top-level folder, or a
/// capability's folder under `src/`), skipping build output.
fn migration_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() || path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "migrations") {
            out.push(path);
        } else {
            migration_dirs(&path, out);
        }
    }
}

/// The version of a sqlx migration file (`<version>_<description>.sql`).
fn version_of(file: &Path) -> i64 {
    let name = file.file_name().unwrap().to_str().unwrap();
    let digits = name.split('_').next().unwrap();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{} does not start with a version", file.display()))
}

#[test]
fn every_migration_is_in_its_crates_range_and_versions_never_collide() {
    let root = repo_root();
    let mut files_checked = 0;
    let mut owners: BTreeMap<i64, String> = BTreeMap::new();
    for (package, dir) in packages(&root) {
        let mut dirs = Vec::new();
        migration_dirs(&dir, &mut dirs);
        if dirs.is_empty() {
            continue;
        }
        let range = range_of(&package).unwrap_or_else(|| {
            panic!("{package} ships migrations but owns no range in finsec_sql::migrations::REGISTRY and MIGRATIONS.md")
        });
        let mut files = Vec::new();
        for migrations in &dirs {
            sql_files(migrations, &mut files);
        }
        // Versions per backend folder's parent, to compare the SQLite and PostgreSQL sets.
        let mut per_backend: BTreeMap<(PathBuf, String), BTreeSet<i64>> = BTreeMap::new();
        for file in &files {
            let version = version_of(file);
            assert!(
                range.contains(version),
                "{} has version {version}, outside {package}'s range {}-{}",
                file.display(),
                range.first,
                range.last
            );
            if let Some(other) = owners.insert(version, package.clone()) {
                assert_eq!(
                    other, package,
                    "version {version} is used by both {other} and {package}"
                );
            }
            let backend_dir = file.parent().unwrap();
            let backend = backend_dir
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                backend == "sqlite" || backend == "postgres",
                "{} is not in a sqlite/ or postgres/ folder",
                file.display()
            );
            let set = per_backend
                .entry((backend_dir.parent().unwrap().to_path_buf(), backend))
                .or_default();
            assert!(
                set.insert(version),
                "version {version} appears twice in {}",
                backend_dir.display()
            );
            files_checked += 1;
        }
        for ((group, backend), versions) in &per_backend {
            let other = if backend == "sqlite" {
                "postgres"
            } else {
                "sqlite"
            };
            assert_eq!(
                Some(versions),
                per_backend.get(&(group.clone(), other.to_owned())),
                "{}: {backend} and {other} migrations differ",
                group.display()
            );
        }
    }
    // finsec-crypto, finsec-auth, finsec-rbac and the reference server ship migrations.
    assert!(
        files_checked >= 16,
        "only {files_checked} migration files found"
    );
    for owner in [
        "finsec-crypto",
        "finsec-auth",
        "finsec-rbac",
        "finsec-reference-server",
    ] {
        assert!(
            owners.values().any(|o| o == owner),
            "no migrations found for {owner}"
        );
    }
}

#[test]
fn migrations_md_lists_every_range() {
    let text = fs::read_to_string(repo_root().join("MIGRATIONS.md")).unwrap();
    let mut rows = 0;
    for range in REGISTRY {
        let row = text
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{}`", range.owner)))
            .unwrap_or_else(|| panic!("MIGRATIONS.md has no row for {}", range.owner));
        assert!(
            row.contains(&format!("{}–{}", range.first, range.last)),
            "MIGRATIONS.md row of {} does not say {}–{}: {row}",
            range.owner,
            range.first,
            range.last
        );
        rows += 1;
    }
    assert_eq!(rows, REGISTRY.len());
}
