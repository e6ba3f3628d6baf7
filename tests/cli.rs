//! The command line: `check-config` (missing, short and unknown settings; a good config),
//! `registration` (the YAML a homeserver needs) and `gen-secrets`.

pub mod support;

use regex::Regex;
use support::cli::{check_config, offline};
use support::{Daemon, DaemonOptions};

/// Each missing secret variable is named on its own line; exit code 2; all at once are
/// all reported.
#[test]
fn check_config_names_each_missing_variable() {
    let d = offline("cli-missing", DaemonOptions::default());
    let vars = ["MOSAIC_AS_TOKEN", "MOSAIC_HS_TOKEN", "MOSAIC_BRIDGE_TOKENS"];
    for var in vars {
        let (code, text) = check_config(&d, |c| {
            c.env_remove(var);
        });
        assert_eq!(code, 2, "{var} missing: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(var)).collect();
        assert_eq!(lines.len(), 1, "{var} named once: {text}");
        for other in vars.iter().filter(|v| **v != var) {
            assert!(!text.contains(other), "{other} wrongly reported: {text}");
        }
    }
    let (code, text) = check_config(&d, |c| {
        for v in vars {
            c.env_remove(v);
        }
    });
    assert_eq!(code, 2);
    for var in vars {
        assert!(text.lines().any(|l| l.contains(var)), "{var}: {text}");
    }
    assert!(text.lines().count() >= 3, "one line per problem: {text}");
}

/// Tokens shorter than 32 characters are refused (and not printed); 32 is enough.
#[test]
fn check_config_refuses_short_tokens() {
    let d = offline("cli-short", DaemonOptions::default());
    let short = "s".repeat(31);
    for var in ["MOSAIC_AS_TOKEN", "MOSAIC_HS_TOKEN", "MOSAIC_BRIDGE_TOKENS"] {
        let (code, text) = check_config(&d, |c| {
            c.env(var, &short);
        });
        assert_eq!(code, 2, "{var}: {text}");
        assert!(
            text.lines().any(|l| l.contains(var) && l.contains("32")),
            "{var}: {text}"
        );
        assert!(
            !text.contains(&short),
            "the short token was printed: {text}"
        );
    }
    // A second, short bridge token in the list is refused too.
    let list = format!("{},{short}", d.bridge_token());
    let (code, text) = check_config(&d, |c| {
        c.env("MOSAIC_BRIDGE_TOKENS", &list);
    });
    assert_eq!(code, 2, "{text}");
    assert!(!text.contains(d.bridge_token()));
    let ok = "k".repeat(32);
    let (code, text) = check_config(&d, |c| {
        c.env("MOSAIC_BRIDGE_TOKENS", &ok);
    });
    assert_eq!(code, 0, "a 32-character token is enough: {text}");
}

/// Unknown TOML keys are refused and named, with every other problem in the same run.
#[test]
fn check_config_refuses_unknown_keys() {
    let d = offline(
        "cli-unknown",
        DaemonOptions {
            limits_toml: "bogus_limit = 3".into(),
            ..Default::default()
        },
    );
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("bogus_limit"), "{text}");
    let (code, text) = check_config(&d, |c| {
        c.env_remove("MOSAIC_HS_TOKEN");
    });
    assert_eq!(code, 2);
    assert!(
        text.contains("bogus_limit") && text.contains("MOSAIC_HS_TOKEN"),
        "{text}"
    );
    let d = offline(
        "cli-unknown-table",
        DaemonOptions {
            extra_toml: "[surprise]\nkey = 1\n".into(),
            ..Default::default()
        },
    );
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("surprise"), "{text}");
}

/// A good config exits 0 without printing a secret.
#[test]
fn check_config_accepts_a_good_config() {
    let d = offline("cli-good", DaemonOptions::default());
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 0, "{text}");
    for secret in [d.as_token(), d.hs_token(), d.bridge_token()] {
        assert!(!text.contains(secret));
    }
    // `MOSAIC_BRIDGE_TOKENS=""` (bridge disabled) is a valid configuration.
    let (code, text) = check_config(&d, |c| {
        c.env("MOSAIC_BRIDGE_TOKENS", "");
    });
    assert_eq!(code, 0, "{text}");
}

/// With end-to-end encryption on, `check-config` says what the homeserver needs (which it
/// cannot check from here), and names a missing key.
#[test]
fn check_config_says_what_encryption_needs_from_the_homeserver() {
    let key = "k".repeat(40);
    let d = offline(
        "cli-e2ee",
        DaemonOptions {
            receive_ephemeral: true,
            extra_toml: "[e2ee]\nenabled = true\n".into(),
            env: vec![("MOSAIC_E2EE_KEY".into(), key.clone())],
            ..Default::default()
        },
    );
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("msc3202_transaction_extensions: true"),
        "{text}"
    );
    assert!(
        text.contains("msc2409_to_device_messages_enabled: true"),
        "{text}"
    );
    assert!(!text.contains(&key), "the key was printed: {text}");
    let (code, text) = check_config(&d, |c| {
        c.env_remove("MOSAIC_E2EE_KEY");
    });
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("MOSAIC_E2EE_KEY is not set"), "{text}");
}

/// `registration` prints the YAML a homeserver needs: id, url, both tokens, sender,
/// `rate_limited: false`, `receive_ephemeral`, exclusive user namespaces for the agents and
/// the sender, and the alias namespace; the regexes claim exactly what they should.
#[test]
fn registration_yaml_has_the_fields_and_namespaces() {
    let d = offline(
        "cli-registration",
        DaemonOptions {
            receive_ephemeral: true,
            ..Default::default()
        },
    );
    let out = d.run(&["registration"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    let s = |k: &str| {
        y[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {text}"))
            .to_owned()
    };
    assert_eq!(s("id"), "mosaic-as");
    assert_eq!(s("url"), d.base_url());
    assert_eq!(s("as_token"), d.as_token());
    assert_eq!(s("hs_token"), d.hs_token());
    assert_eq!(s("sender_localpart"), "mosaic-as");
    assert_eq!(y["rate_limited"].as_bool(), Some(false));
    assert_eq!(y["receive_ephemeral"].as_bool(), Some(true));
    // Stated when off too.
    let off = offline("cli-registration-off", DaemonOptions::default()).run(&["registration"]);
    let off: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&off.stdout).expect("YAML");
    assert_eq!(off["receive_ephemeral"].as_bool(), Some(false));
    // Appservice encryption is asked for only with [e2ee] enabled.
    assert!(y.get("org.matrix.msc3202").is_none(), "{text}");
    assert!(off.get("io.element.msc4190").is_none());
    let e2ee = offline(
        "cli-registration-e2ee",
        DaemonOptions {
            receive_ephemeral: true,
            extra_toml: "[e2ee]\nenabled = true\n".into(),
            env: vec![("MOSAIC_E2EE_KEY".into(), "e".repeat(40))],
            ..Default::default()
        },
    )
    .run(&["registration"]);
    let e2ee: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&e2ee.stdout).expect("YAML");
    assert_eq!(e2ee["org.matrix.msc3202"].as_bool(), Some(true));
    assert_eq!(e2ee["io.element.msc4190"].as_bool(), Some(true));
    assert_eq!(e2ee["receive_ephemeral"].as_bool(), Some(true));

    let ns = |kind: &str| -> Vec<(bool, Regex)> {
        y["namespaces"][kind]
            .as_sequence()
            .unwrap_or_else(|| panic!("namespaces.{kind} in {text}"))
            .iter()
            .map(|n| {
                let re = n["regex"].as_str().expect("regex");
                // Synapse matches from the start of the id (Python `re.match`).
                let anchored = format!("^(?:{re})");
                (
                    n["exclusive"].as_bool().expect("exclusive"),
                    Regex::new(&anchored).expect("valid regex"),
                )
            })
            .collect()
    };
    let users = ns("users");
    assert!(users.iter().all(|(exclusive, _)| *exclusive), "{text}");
    let claims = |list: &[(bool, Regex)], id: &str| list.iter().any(|(_, re)| re.is_match(id));
    for id in [
        "@agent-alpha:hs.local",
        "@agent-0_b-c:hs.local",
        "@mosaic-as:hs.local",
    ] {
        assert!(claims(&users, id), "{id} not claimed: {text}");
    }
    for id in [
        "@alice:hs.local",
        "@agent-alpha:other.example",
        "@agent-alpha:hs.local.evil.example",
        "@agent-alpha:hs.localhost",
        "@mosaic-as:hs.localhost",
        "@mosaic-asx:hs.local",
        "@xagent-alpha:hs.local",
    ] {
        assert!(!claims(&users, id), "{id} wrongly claimed: {text}");
    }
    let aliases = ns("aliases");
    assert!(aliases.iter().all(|(exclusive, _)| *exclusive), "{text}");
    assert!(claims(&aliases, "#mosaic-ops:hs.local"), "{text}");
    for alias in [
        "#ops:hs.local",
        "#mosaic-ops:other.example",
        "#mosaic-ops:hs.local.evil.example",
    ] {
        assert!(!claims(&aliases, alias), "{alias} wrongly claimed: {text}");
    }
}

/// `gen-secrets` prints the three variables with distinct values of at least 32
/// characters, different on every run.
#[test]
fn gen_secrets_prints_three_distinct_strong_values() {
    let run = || -> Vec<(String, String)> {
        let out = std::process::Command::new(Daemon::binary())
            .arg("gen-secrets")
            .output()
            .expect("run gen-secrets");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not KEY=value: {l}"));
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect()
    };
    let first = run();
    let names: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["MOSAIC_AS_TOKEN", "MOSAIC_HS_TOKEN", "MOSAIC_BRIDGE_TOKENS"]
    );
    for (k, v) in &first {
        assert!(v.len() >= 32, "{k} too short");
        assert!(
            v.chars().all(|c| c.is_ascii_graphic() && c != ','),
            "{k} has awkward characters"
        );
    }
    assert_ne!(first[0].1, first[1].1);
    assert_ne!(first[1].1, first[2].1);
    // The encryption key, optional, comes commented out and ready to use.
    let out = std::process::Command::new(Daemon::binary())
        .arg("gen-secrets")
        .output()
        .expect("run gen-secrets");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("# MOSAIC_E2EE_KEY="))
        .unwrap_or_else(|| panic!("a commented MOSAIC_E2EE_KEY in {text}"));
    assert!(key.len() >= 32 && key.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(first[0].1, first[2].1);
    let second = run();
    assert!(first.iter().zip(&second).all(|(a, b)| a.1 != b.1));
}

/// `registration -o FILE` writes what `registration` prints, readable by its owner only; an
/// existing file is narrowed to 0600; a file that cannot be written is a clear error.
#[test]
fn registration_output_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = offline("cli-registration-file", DaemonOptions::default());
    let printed = d.run(&["registration"]).stdout;
    let dir = d.config_path().parent().expect("daemon dir").to_path_buf();
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("file").permissions().mode();

    let fresh = dir.join("fresh.yaml");
    let out = d.run(&["registration", "-o", fresh.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout when writing a file"
    );
    assert_eq!(std::fs::read(&fresh).unwrap(), printed);
    assert_eq!(mode(&fresh) & 0o777, 0o600);

    let open = dir.join("open.yaml");
    std::fs::write(&open, "old").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = d.run(&["registration", "--output", open.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&open).unwrap(), printed);
    assert_eq!(mode(&open) & 0o777, 0o600);

    let nowhere = dir.join("no-such-dir/registration.yaml");
    let out = d.run(&["registration", "-o", nowhere.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write") && err.contains("no-such-dir"),
        "{err}"
    );
}
