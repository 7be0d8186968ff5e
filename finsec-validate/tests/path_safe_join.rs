//! Safe path joining: the authored safe-join cases one by one, every payload of the public
//! traversal corpora (PayloadsAllTheThings: plain list, dotdotpwn output, deep-traversal
//! templates filled with targets), invalid UTF-8, symbolic links in a real temporary tree, and
//! properties over random input.
#![cfg(test)]

use std::path::{Component, Path, PathBuf};

use finsec_validate::{PathError, SafePath, SafeRelativePath};
use proptest::prelude::*;
use serde::Deserialize;

macro_rules! vector_path {
    ($file:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/path-traversal/",
            $file
        )
    };
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An accepted path must be the base followed by normal components only.
fn assert_inside(base: &Path, joined: &SafePath) {
    let rest = joined.as_path().strip_prefix(base).unwrap();
    assert!(rest.components().count() > 0);
    assert!(
        rest.components().all(|c| matches!(c, Component::Normal(_))),
        "{rest:?}"
    );
}

#[derive(Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    input: String,
    expected: String,
    reason: String,
}

#[test]
fn authored_safe_join_cases() {
    let text = std::fs::read_to_string(vector_path!("safe_join_cases_authored.json")).unwrap();
    let file: CaseFile = serde_json::from_str(&text).unwrap();
    let base = Path::new("/srv/finsec/uploads");
    let (mut accepted, mut rejected) = (0, 0);
    for case in &file.cases {
        let result = SafePath::join(base, &case.input);
        match case.expected.as_str() {
            "accept" => {
                let joined = result
                    .unwrap_or_else(|e| panic!("{:?} ({}) rejected: {e}", case.input, case.reason));
                assert_inside(base, &joined);
                assert_eq!(joined.relative().as_str(), case.input);
                accepted += 1;
            }
            "reject" => {
                let e = result
                    .err()
                    .unwrap_or_else(|| panic!("{:?} ({}) accepted", case.input, case.reason));
                assert!(e.code().starts_with("path."));
                rejected += 1;
            }
            other => panic!("unknown expectation {other}"),
        }
    }
    assert_eq!((accepted, rejected), (28, 46));
}

#[test]
fn authored_cases_fail_for_the_documented_reason() {
    let code = |s: &str| SafeRelativePath::parse(s).unwrap_err().code();
    for (input, expected) in [
        ("../etc/passwd", "path.parent_segment"),
        ("a/..", "path.parent_segment"),
        ("/etc/passwd", "path.absolute"),
        ("//server/share/file", "path.absolute"),
        ("a\\b.txt", "path.backslash"),
        ("\\\\server\\share\\file", "path.backslash"),
        ("C:/Windows/win.ini", "path.drive_letter"),
        ("C:secret.txt", "path.drive_letter"),
        ("%2e%2e/etc/passwd", "path.encoded"),
        ("%252e%252e%252fetc", "path.encoded"),
        ("%c0%ae%c0%ae/etc/passwd", "path.encoded"),
        ("report.pdf\0.png", "path.nul"),
        ("....//....//etc/passwd", "path.dot_segment"),
        ("a/....//....//etc/passwd", "path.filter_evasion"),
        ("..././..././etc/passwd", "path.dot_segment"),
        ("a/..././..././etc/passwd", "path.filter_evasion"),
        (".../...//etc", "path.dot_segment"),
        ("a/\u{2025}/b", "path.unsafe_after_nfkc"),
        ("\u{FF0E}\u{FF0E}/etc/passwd", "path.unsafe_after_nfkc"),
        ("..\u{2215}etc\u{2215}passwd", "path.slash_look_alike"),
        ("file:///etc/passwd", "path.url"),
        ("~/.ssh/id_rsa", "path.home_directory"),
        ("$HOME/.ssh/id_rsa", "path.reserved_character"),
        (" ../etc/passwd", "path.surrounding_whitespace"),
        ("..\t/etc", "path.forbidden_character"),
        ("", "path.empty"),
        ("./", "path.empty"),
        (".", "path.empty"),
        ("a/\u{202E}b", "path.forbidden_character"),
        ("a\u{200B}/b", "path.forbidden_character"),
        ("a\u{2028}b", "path.forbidden_character"),
        ("..;/etc/passwd", "path.parent_segment"),
        ("0x2e0x2e/etc", "path.encoded"),
        ("..%bg%qfetc", "path.encoded"),
        ("%u2215", "path.encoded"),
        ("a/.htaccess", "path.server_access_file"),
        ("a/.HTPASSWD", "path.server_access_file"),
        ("a/\u{3002}\u{3002}/b", "path.dot_segment"),
        ("a?b", "path.reserved_character"),
        ("*.txt", "path.reserved_character"),
    ] {
        assert_eq!(code(input), expected, "{input:?}");
    }
}

#[test]
fn errors_carry_offsets_and_indexes() {
    let e = SafeRelativePath::parse("a/b\0c").unwrap_err();
    assert!(matches!(e, PathError::Nul { offset: 3 }));
    assert_eq!(e.to_string(), "nul character at offset 3");
    assert!(matches!(
        SafeRelativePath::parse("日本/%2e").unwrap_err(),
        PathError::Encoded { offset: 3 }
    ));
    assert!(matches!(
        SafeRelativePath::parse("a/b/../c").unwrap_err(),
        PathError::ParentSegment { index: 2 }
    ));
    assert!(matches!(
        SafeRelativePath::parse("a/x\\y").unwrap_err(),
        PathError::Backslash { offset: 3 }
    ));
    let e = SafeRelativePath::parse("a/\u{2025}/b").unwrap_err();
    let PathError::UnsafeAfterNormalisation { source } = &e else {
        panic!("{e:?}")
    };
    assert!(matches!(**source, PathError::ParentSegment { index: 1 }));
    assert_eq!(
        e.to_string(),
        "path is unsafe after nfkc normalisation: parent directory reference in segment 1"
    );
}

#[test]
fn length_limits() {
    let long_segment = "a".repeat(SafeRelativePath::MAX_SEGMENT_BYTES + 1);
    assert!(matches!(
        SafeRelativePath::parse(&format!("x/{long_segment}")).unwrap_err(),
        PathError::SegmentTooLong {
            index: 1,
            max: 255,
            actual: 256
        }
    ));
    let ok_segment = "a".repeat(SafeRelativePath::MAX_SEGMENT_BYTES);
    assert!(SafeRelativePath::parse(&ok_segment).is_ok());
    let long_path = vec!["abcdefg"; 600].join("/");
    let e = SafeRelativePath::parse(&long_path).unwrap_err();
    assert!(matches!(e, PathError::TooLong { max: 4096, .. }));
    assert_eq!(e.code(), "path.too_long");
    assert!(matches!(
        SafeRelativePath::from_bytes(long_path.as_bytes()).unwrap_err(),
        PathError::TooLong { .. }
    ));
}

#[test]
fn invalid_and_overlong_utf8_is_refused() {
    for (bytes, offset) in [
        (&b"\xc0\xae\xc0\xae/etc/passwd"[..], 0),
        (&b"..\xc0\xafetc"[..], 2),
        (&b"a/\xe0\x80\xaeb"[..], 2),
        (&b"a/\xf0\x80\x80\xaf"[..], 2),
        (&b"ok/\xff"[..], 3),
    ] {
        let e = SafeRelativePath::from_bytes(bytes).unwrap_err();
        assert!(
            matches!(e, PathError::InvalidUtf8 { byte_offset } if byte_offset == offset),
            "{bytes:?}: {e:?}"
        );
        assert_eq!(e.code(), "path.invalid_utf8");
    }
    let ok = SafeRelativePath::from_bytes("José/extrato.pdf".as_bytes()).unwrap();
    assert_eq!(ok.as_str(), "José/extrato.pdf");
    assert!(matches!(
        SafeRelativePath::from_bytes(b"../x").unwrap_err(),
        PathError::ParentSegment { .. }
    ));
}

#[test]
fn ordinary_nested_names_are_accepted() {
    let base = Path::new("/data");
    for input in [
        "statements/2024/03/statement-0001.pdf",
        "client_42/kyc/passport scan.jpg",
        "exports/trades_2024-03-31.csv",
        "a/b/c/d/e/f/g/h/i/j/k.txt",
        "Müller & Söhne/Bericht Q1.docx",
        "ordres/ordre n°12 (copie).txt",
        "report.v2.final.pdf",
        "...",
        "a/.../b",
        "notes..txt",
        "50%-off.txt",
        "100%.txt",
        "x/0xff.bin",
        "reports/",
        "./a/./b//c",
    ] {
        let joined = SafePath::join(base, input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_inside(base, &joined);
    }
    let joined = SafePath::join(base, "./a/./b//c").unwrap();
    assert_eq!(joined.as_path(), Path::new("/data/a/b/c"));
    assert_eq!(joined.base(), base);
    assert_eq!(
        joined.relative().segments().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(joined.relative().to_path_buf(), PathBuf::from("a/b/c"));
    assert_eq!(joined.relative().to_string(), "./a/./b//c");
}

#[test]
fn plain_traversal_payloads_are_all_rejected() {
    let payloads = lines(vector_path!("traversal_payloads_patt.txt"));
    for p in &payloads {
        assert!(SafeRelativePath::parse(p).is_err(), "accepted {p:?}");
    }
    assert_eq!(payloads.len(), 140);
}

#[test]
fn dotdotpwn_payloads_are_all_rejected() {
    let payloads = lines(vector_path!("dotdotpwn_patt.txt"));
    let accepted: Vec<&String> = payloads
        .iter()
        .filter(|p| SafeRelativePath::parse(p).is_ok())
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    assert_eq!(payloads.len(), 21_144);
}

#[test]
fn deep_traversal_templates_are_all_rejected() {
    let templates = lines(vector_path!("deep_traversal_template_patt.txt"));
    let targets = [
        "etc/passwd",
        "windows/win.ini",
        "boot.ini",
        "etc/shadow",
        "WINDOWS/system32/drivers/etc/hosts",
    ];
    let mut runs = 0;
    for t in &templates {
        assert!(t.contains("{FILE}"), "{t:?}");
        for target in targets {
            let payload = t.replace("{FILE}", target);
            assert!(
                SafeRelativePath::parse(&payload).is_err(),
                "accepted {payload:?}"
            );
            runs += 1;
        }
    }
    assert_eq!(templates.len(), 652);
    assert_eq!(runs, 652 * 5);
}

#[cfg(unix)]
mod symlinks {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Tree {
        _root: tempfile::TempDir,
        base: PathBuf,
        outside: PathBuf,
    }

    /// root/base/{docs/a.txt, link_in -> docs, link_out -> ../outside, abs_out -> /…/outside,
    /// dangling -> nowhere, docs/deep_out -> ../../outside}; root/outside/secret.txt.
    fn tree() -> Tree {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("base");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(base.join("docs")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(base.join("docs/a.txt"), "a").unwrap();
        std::fs::write(outside.join("secret.txt"), "s").unwrap();
        symlink("docs", base.join("link_in")).unwrap();
        symlink("../outside", base.join("link_out")).unwrap();
        symlink(&outside, base.join("abs_out")).unwrap();
        symlink("nowhere", base.join("dangling")).unwrap();
        symlink("../../outside", base.join("docs/deep_out")).unwrap();
        symlink("../../outside/secret.txt", base.join("docs/file_out")).unwrap();
        Tree {
            _root: root,
            base,
            outside,
        }
    }

    #[test]
    fn links_inside_the_base_resolve() {
        let t = tree();
        let canonical_base = std::fs::canonicalize(&t.base).unwrap();
        let r = SafePath::join(&t.base, "link_in/a.txt")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(r.as_path(), canonical_base.join("docs/a.txt"));
        assert!(r.exists());
        let r = SafePath::join(&t.base, "docs/a.txt")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(r.clone().into_path_buf(), canonical_base.join("docs/a.txt"));
        assert_eq!(r.as_ref(), canonical_base.join("docs/a.txt").as_path());
    }

    #[test]
    fn paths_that_do_not_exist_yet_resolve_under_the_base() {
        let t = tree();
        let canonical_base = std::fs::canonicalize(&t.base).unwrap();
        let r = SafePath::join(&t.base, "link_in/new/file.txt")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(r.as_path(), canonical_base.join("docs/new/file.txt"));
        assert!(!r.exists());
    }

    #[test]
    fn links_leaving_the_base_are_refused() {
        let t = tree();
        for (input, index) in [
            ("link_out/secret.txt", 0),
            ("link_out", 0),
            ("abs_out/secret.txt", 0),
            ("docs/deep_out/secret.txt", 1),
            ("docs/file_out", 1),
            ("link_in/deep_out/x", 1),
        ] {
            // Lexically fine...
            let joined = SafePath::join(&t.base, input).unwrap();
            // ...but the filesystem says otherwise.
            let e = joined.resolve().unwrap_err();
            assert!(
                matches!(e, PathError::SymlinkEscape { index: i } if i == index),
                "{input}: {e:?}"
            );
            assert_eq!(e.code(), "path.symlink_escape");
        }
        assert!(t.outside.join("secret.txt").exists());
    }

    #[test]
    fn dangling_links_are_refused() {
        let t = tree();
        let e = SafePath::join(&t.base, "dangling")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(
            matches!(e, PathError::DanglingSymlink { index: 0 }),
            "{e:?}"
        );
        assert_eq!(e.code(), "path.dangling_symlink");
    }

    #[test]
    fn a_symlinked_base_is_canonicalised_first() {
        let t = tree();
        let alias = t.base.parent().unwrap().join("alias");
        symlink(&t.base, &alias).unwrap();
        let r = SafePath::join(&alias, "docs/a.txt")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(
            r.as_path(),
            std::fs::canonicalize(&t.base).unwrap().join("docs/a.txt")
        );
    }

    #[test]
    fn base_problems_are_reported() {
        let t = tree();
        let e = SafePath::join(t.base.join("missing"), "a")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(matches!(e, PathError::Io { .. }), "{e:?}");
        assert_eq!(e.code(), "path.io");
        let e = SafePath::join(t.base.join("docs/a.txt"), "a")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(matches!(e, PathError::BaseNotDirectory { .. }), "{e:?}");
        assert_eq!(e.code(), "path.base_not_directory");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Paths made of ordinary name segments are accepted and joined segment by segment.
    #[test]
    fn ordinary_paths_are_accepted(segments in prop::collection::vec("[A-Za-z0-9_][A-Za-z0-9_ .-]{0,20}[A-Za-z0-9_]", 1..8)) {
        let input = segments.join("/");
        prop_assume!(!segments.iter().any(|s| s.eq_ignore_ascii_case(".htaccess") || s.contains("0x") || s.contains("0X")));
        let joined = SafePath::join("/base", &input).unwrap();
        prop_assert_eq!(joined.as_path(), Path::new("/base").join(&input));
    }

    /// Whatever the input, parsing never panics, and an accepted path never climbs.
    #[test]
    fn accepted_paths_never_climb(input in "([./\\\\%a-z0-9~:]|\\.\\.|%2e|\\PC){0,30}") {
        if let Ok(p) = SafePath::join("/base", &input) {
            let rest = p.as_path().strip_prefix("/base").unwrap();
            prop_assert!(rest.components().all(|c| matches!(c, Component::Normal(_))));
            prop_assert!(!p.relative().segments().any(|s| s == ".."));
        }
    }
}
