//! Tests of loading and checking the configuration.

use super::*;

const GOOD: &str = r#"
[homeserver]
url = "http://127.0.0.1:8008"
server_name = "hs.local"
[appservice]
url = "http://127.0.0.1:9000"
"#;
const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const H: &str = "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn good_config_loads_with_defaults() {
    let f = write(GOOD);
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let c = Config::load(f.path(), &env).unwrap();
    assert_eq!(c.appservice.agent_prefix, "agent-");
    assert_eq!(c.appservice.sender_localpart, "mosaic-as");
    assert_eq!(c.secrets.bridge_tokens.len(), 1);
    assert!(!format!("{c:?}").contains(A));
}

#[test]
fn every_problem_is_reported_and_no_secret_printed() {
    let f = write(GOOD);
    let env = [(ENV_AS_TOKEN, "short-secret-value")];
    let err = Config::load(f.path(), &env).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("MOSAIC_AS_TOKEN is shorter than 32"),
        "{text}"
    );
    assert!(text.contains("MOSAIC_HS_TOKEN is not set"), "{text}");
    assert!(text.contains("MOSAIC_BRIDGE_TOKENS is not set"), "{text}");
    assert!(!text.contains("short-secret-value"));
    assert_eq!(err.problems.len(), 3);
}

#[test]
fn empty_bridge_tokens_disable_the_bridge() {
    let f = write(GOOD);
    let env = [
        (ENV_AS_TOKEN, A),
        (ENV_HS_TOKEN, H),
        (ENV_BRIDGE_TOKENS, ""),
    ];
    let c = Config::load(f.path(), &env).unwrap();
    assert!(c.secrets.bridge_tokens.is_empty());
}

/// `check-config` refuses what `serve` would: a store URL without a built-in backend,
/// named by its scheme only (a URL may carry a password).
#[test]
fn a_store_url_without_backend_is_refused() {
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    for url in ["postgres://u:secret@db/mosaic", "mysql://db", "/no/scheme"] {
        let f = write(&format!("{GOOD}[store]\nurl = \"{url}\"\n"));
        let err = Config::load(f.path(), &env).unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
    let f = write(&format!("{GOOD}[store]\nurl = \"sqlite://x.db\"\n"));
    assert!(Config::load(f.path(), &env).is_ok());
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let f = write(&format!("{GOOD}\nbogus = 1\n"));
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let err = Config::load(f.path(), &env).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");

    let f = write(&GOOD.replace("http://127.0.0.1:8008", "ftp://x"));
    let err = Config::load(f.path(), &env).unwrap_err();
    assert!(err.to_string().contains("homeserver.url"), "{err}");

    for base in ["http://h/?a=b", "http://h/#top", "http://u:p@h/"] {
        let f = write(&GOOD.replace("http://127.0.0.1:8008", base));
        let err = Config::load(f.path(), &env).unwrap_err();
        assert!(
            err.to_string()
                .contains("without credentials, query or fragment"),
            "{err}"
        );
    }
    let f = write(&GOOD.replace("http://127.0.0.1:8008", "https://h.example/matrix/"));
    Config::load(f.path(), &env).unwrap();
}
