//! `.ci/lint-secrets` against its fixtures and against the repository itself.
//!
//! Every case under `tests/fixtures/lint/bad/` holds exactly one forbidden pattern: the linter
//! must fail on it and name the file. `tests/fixtures/lint/good/` holds the allowed patterns
//! and must pass, and so must the repository (which skips `tests/fixtures/lint/`).
//! Fixture directories are not the repository root, so the linter lists them with `find`
//! (the committed `.env` fixtures are seen even where a `.gitignore` hides them from git).

use std::path::Path;
use std::process::{Command, Output};

const FIXTURES: &str = "tests/fixtures/lint";

/// Runs `bash .ci/lint-secrets [dir]` from the crate root.
fn lint(dir: Option<&str>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg(".ci/lint-secrets");
    if let Some(dir) = dir {
        cmd.arg(dir);
    }
    cmd.output().expect("bash runs .ci/lint-secrets")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (case directory under bad/, file inside it, words the reason must contain)
const BAD_CASES: &[(&str, &str, &str)] = &[
    (
        "toml-secret",
        "config.toml",
        "hard-coded secret literal assigned to 'hs_token'",
    ),
    (
        "rust-secret",
        "src/lib.rs",
        "hard-coded secret literal assigned to 'as_token'",
    ),
    (
        "shell-bridge-tokens",
        "run.sh",
        "hard-coded secret literal assigned to 'MOSAIC_BRIDGE_TOKENS'",
    ),
    (
        "weak-placeholder",
        "registration.yaml",
        "weak placeholder secret assigned to 'as_token'",
    ),
    (
        "deploy-fallback",
        "deploy/x.yaml",
        "fallback default ${MOSAIC_HS_TOKEN:-...}",
    ),
    (
        "committed-env",
        "prod.env",
        "environment file must not be committed",
    ),
    (
        "committed-dotenv",
        ".env",
        "environment file must not be committed",
    ),
    (
        "env-in-tests",
        "tests/local.env",
        "environment file must not be committed",
    ),
];

/// Findings are `path:line: reason`; returns the lines naming `path`.
fn findings_for<'a>(stdout: &'a str, path: &str) -> Vec<&'a str> {
    let prefix = format!("{path}:");
    stdout
        .lines()
        .filter(|l| {
            l.strip_prefix(&prefix).is_some_and(|rest| {
                let (line_no, _) = rest.split_once(':').unwrap_or(("", ""));
                !line_no.is_empty() && line_no.chars().all(|c| c.is_ascii_digit())
            })
        })
        .collect()
}

#[test]
fn every_bad_fixture_is_flagged_on_its_own() {
    for (case, file, reason) in BAD_CASES {
        let dir = format!("{FIXTURES}/bad/{case}");
        let out = lint(Some(&dir));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{dir} must fail\n{}",
            describe(&out)
        );

        let path = format!("{dir}/{file}");
        let hits = findings_for(&stdout, &path);
        assert_eq!(
            hits.len(),
            1,
            "exactly one finding naming {path}\n{}",
            describe(&out)
        );
        assert!(
            hits[0].contains(reason),
            "reason for {path} should say {reason:?}: {}",
            hits[0]
        );
        assert_eq!(
            stdout.lines().count(),
            1,
            "{dir} holds a single forbidden pattern\n{}",
            describe(&out)
        );
    }
}

#[test]
fn scanning_all_bad_fixtures_names_each_file() {
    let dir = format!("{FIXTURES}/bad");
    let out = lint(Some(&dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    for (case, file, reason) in BAD_CASES {
        let path = format!("{dir}/{case}/{file}");
        let hits = findings_for(&stdout, &path);
        assert!(
            hits.iter().any(|l| l.contains(reason)),
            "{path} is not reported with {reason:?}\n{}",
            describe(&out)
        );
    }
    assert_eq!(
        stdout.lines().count(),
        BAD_CASES.len(),
        "{}",
        describe(&out)
    );
    // A finding points at the secret; it never repeats it.
    assert!(
        !stdout.contains("FAKE-fixture-value"),
        "a secret value was printed\n{}",
        describe(&out)
    );
    assert!(
        !stdout.contains("changeme"),
        "a secret value was printed\n{}",
        describe(&out)
    );
}

#[test]
fn good_fixture_passes() {
    let dir = format!("{FIXTURES}/good");
    // The fixture really contains what the linter must tolerate.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(&dir);
    assert!(root.join(".env.example").is_file());
    assert!(std::fs::read_to_string(root.join("deploy/app.yaml"))
        .unwrap()
        .contains("# safe-default:"));

    let out = lint(Some(&dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout.starts_with("lint-secrets: ok ("),
        "{}",
        describe(&out)
    );
}

#[test]
fn repository_passes() {
    let out = lint(None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the repository has findings\n{}",
        describe(&out)
    );
    assert!(
        stdout.trim_end().ends_with("files scanned)"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_missing_directory_is_a_usage_error() {
    let out = lint(Some("tests/fixtures/lint/does-not-exist"));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}
