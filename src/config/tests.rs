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
    for url in [
        "mysql://u:secret@db/mosaic",
        "/no/scheme",
        "u:secret@db/mosaic",
        // A password goes in MOSAIC_STORE_PASSWORD, never in the file.
        "postgres://u:secret@db/mosaic",
    ] {
        let f = write(&format!("{GOOD}[store]\nurl = \"{url}\"\n"));
        let err = Config::load(f.path(), &env).unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
    for url in [
        "sqlite://x.db",
        "postgres://u@db/mosaic",
        "postgresql://db/mosaic",
    ] {
        let f = write(&format!("{GOOD}[store]\nurl = \"{url}\"\n"));
        assert!(Config::load(f.path(), &env).is_ok(), "{url}");
    }
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

    let f = write(&format!("{GOOD}\n[store]\nsync = \"fast\"\n"));
    let err = Config::load(f.path(), &env).unwrap_err();
    assert!(err.to_string().contains("sync"), "{err}");
}

#[test]
fn commits_are_synced_unless_the_file_says_normal() {
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let c = Config::load(write(GOOD).path(), &env).unwrap();
    assert_eq!(c.store.sync, SyncMode::Full);
    let f = write(&format!("{GOOD}\n[store]\nsync = \"normal\"\n"));
    assert_eq!(
        Config::load(f.path(), &env).unwrap().store.sync,
        SyncMode::Normal
    );
}

/// A token with a control character or a space is refused (it would break the HTTP header
/// it travels in), and no value may serve two roles; the values are never printed.
#[test]
fn tokens_are_visible_ascii_and_serve_one_role_each() {
    let f = write(GOOD);
    let ctl = format!("{A}\u{1}");
    let spaced = format!("{H} x");
    let env = [
        (ENV_AS_TOKEN, ctl.as_str()),
        (ENV_HS_TOKEN, spaced.as_str()),
        (ENV_BRIDGE_TOKENS, B),
    ];
    let err = Config::load(f.path(), &env).unwrap_err().to_string();
    assert!(
        err.contains("MOSAIC_AS_TOKEN may hold only visible ASCII"),
        "{err}"
    );
    assert!(
        err.contains("MOSAIC_HS_TOKEN may hold only visible ASCII"),
        "{err}"
    );

    let bridge = format!("{B},{H}");
    let env = [
        (ENV_AS_TOKEN, A),
        (ENV_HS_TOKEN, H),
        (ENV_BRIDGE_TOKENS, bridge.as_str()),
        (ENV_METRICS_TOKEN, A),
    ];
    let err = Config::load(f.path(), &env).unwrap_err().to_string();
    assert!(
        err.contains("MOSAIC_HS_TOKEN and MOSAIC_BRIDGE_TOKENS token #2 must differ"),
        "{err}"
    );
    assert!(
        err.contains("MOSAIC_AS_TOKEN and MOSAIC_METRICS_TOKEN must differ"),
        "{err}"
    );
    for secret in [A, H, B] {
        assert!(!err.contains(secret), "a secret in {err}");
    }
}

/// `MOSAIC_METRICS_TOKEN` is optional but checked like the others; `metrics.require_token`
/// makes it mandatory.
#[test]
fn the_metrics_token_is_optional_unless_required() {
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let c = Config::load(write(GOOD).path(), &env).unwrap();
    assert!(c.secrets.metrics_token.is_none());
    let required = write(&format!("{GOOD}[metrics]\nrequire_token = true\n"));
    let err = Config::load(required.path(), &env).unwrap_err().to_string();
    assert!(err.contains("metrics.require_token"), "{err}");
    let m = "m".repeat(40);
    let env = [
        (ENV_AS_TOKEN, A),
        (ENV_HS_TOKEN, H),
        (ENV_BRIDGE_TOKENS, B),
        (ENV_METRICS_TOKEN, m.as_str()),
    ];
    let c = Config::load(required.path(), &env).unwrap();
    assert!(c.secrets.metrics_token.is_some());
    let short = [
        (ENV_AS_TOKEN, A),
        (ENV_HS_TOKEN, H),
        (ENV_BRIDGE_TOKENS, B),
        (ENV_METRICS_TOKEN, "short"),
    ];
    let err = Config::load(write(GOOD).path(), &short)
        .unwrap_err()
        .to_string();
    assert!(err.contains("MOSAIC_METRICS_TOKEN is shorter"), "{err}");
}

/// Unset, `inbound.invite_allow` is the local server; `*`, servers and users are accepted,
/// anything else named.
#[test]
fn invites_default_to_the_local_server() {
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let c = Config::load(write(GOOD).path(), &env).unwrap();
    assert_eq!(c.inbound.invite_allow, [":hs.local"]);
    let open = write(&format!(
        "{GOOD}[inbound]\ninvite_allow = [\"*\", \":example.org\", \"@a:example.org\"]\n"
    ));
    let c = Config::load(open.path(), &env).unwrap();
    assert_eq!(c.inbound.invite_allow.len(), 3);
    let closed = write(&format!("{GOOD}[inbound]\ninvite_allow = []\n"));
    assert!(Config::load(closed.path(), &env)
        .unwrap()
        .inbound
        .invite_allow
        .is_empty());
    let bad = write(&format!("{GOOD}[inbound]\ninvite_allow = [\"nobody\"]\n"));
    let err = Config::load(bad.path(), &env).unwrap_err().to_string();
    assert!(err.contains("\"nobody\" is neither"), "{err}");
}

/// Identifiers the daemon would make longer than Matrix allows (255 bytes) are config
/// problems, named with the keys to change: the longest alias with the default prefix fits
/// a server name of 46 characters, not 47; a long agent prefix or sender localpart likewise.
#[test]
fn identifiers_too_long_for_matrix_are_refused() {
    let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let with = |server: &str, appservice: &str| {
        write(&format!(
            "[homeserver]\nurl = \"http://127.0.0.1:8008\"\nserver_name = \"{server}\"\n\
             [appservice]\nurl = \"http://127.0.0.1:9000\"\n{appservice}\n"
        ))
    };
    let server = |len: usize| format!("{}.org", "s".repeat(len - 4));
    let f = with(&server(46), "");
    assert!(Config::load(f.path(), &env).is_ok());

    let f = with(&server(47), "");
    let err = Config::load(f.path(), &env).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let text = &err.problems[0];
    assert!(
        text.starts_with("appservice.alias_prefix, homeserver.server_name:"),
        "{text}"
    );
    assert!(text.contains("256 bytes, over Matrix's 255"), "{text}");

    let long_prefix = format!("agent_prefix = \"{}\"", "p".repeat(190));
    let f = with("hs.local", &long_prefix);
    let err = Config::load(f.path(), &env).unwrap_err().to_string();
    assert!(
        err.starts_with("appservice.agent_prefix, homeserver.server_name:"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one problem: {err}");

    let long_sender = format!("sender_localpart = \"{}\"", "b".repeat(250));
    let f = with("hs.local", &long_sender);
    let err = Config::load(f.path(), &env).unwrap_err().to_string();
    assert!(
        err.contains("appservice.sender_localpart: the sender's user id"),
        "{err}"
    );
    assert!(err.contains("over Matrix's 255"), "{err}");
}

/// `[e2ee] enabled` needs its secret and ephemeral pushes; the secret serves one role.
#[test]
fn encryption_needs_its_key_and_ephemeral_pushes() {
    const K: &str = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
    let base = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
    let on = write(&format!(
        "{GOOD}receive_ephemeral = true\n[e2ee]\nenabled = true\n"
    ));
    let text = Config::load(on.path(), &base).unwrap_err().to_string();
    assert!(
        text.contains("e2ee.enabled: MOSAIC_E2EE_KEY is not set"),
        "{text}"
    );

    let with_key = [base[0], base[1], base[2], (ENV_E2EE_KEY, K)];
    let c = Config::load(on.path(), &with_key).unwrap();
    assert!(c.e2ee.enabled);
    assert!(!format!("{c:?}").contains(K));

    let no_ephemeral = write(&format!("{GOOD}[e2ee]\nenabled = true\n"));
    let text = Config::load(no_ephemeral.path(), &with_key)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("e2ee.enabled: needs appservice.receive_ephemeral = true"),
        "{text}"
    );

    let reused = [base[0], base[1], base[2], (ENV_E2EE_KEY, H)];
    let text = Config::load(on.path(), &reused).unwrap_err().to_string();
    assert!(
        text.contains("MOSAIC_HS_TOKEN and MOSAIC_E2EE_KEY must differ"),
        "{text}"
    );
    let short = [base[0], base[1], base[2], (ENV_E2EE_KEY, "short")];
    let text = Config::load(on.path(), &short).unwrap_err().to_string();
    assert!(
        text.contains("MOSAIC_E2EE_KEY is shorter than 32"),
        "{text}"
    );

    // PostgreSQL too (one replica: told at start, by the database's lock).
    let on_pg = write(&format!(
        "{GOOD}receive_ephemeral = true\n[store]\nurl = \"postgres://db/m\"\n[e2ee]\nenabled = true\n"
    ));
    assert!(Config::load(on_pg.path(), &with_key).unwrap().e2ee.enabled);

    // Off by default, and then the key is not needed.
    let off = Config::load(write(GOOD).path(), &base).unwrap();
    assert!(!off.e2ee.enabled);
}
