//! A config file's text through `Config::parse` (what `Config::load` does once it has read
//! the file), with valid secrets, so every file gets the whole check. Any text must give a
//! config or a list of problems, never a panic; and a config that passed must not make
//! start-up panic later: the identifiers the daemon builds from it (`expect`ed on the
//! ground that the check ran) must be valid, and the registration must be writable.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mosaic_as::{
    config::{Config, ENV_AS_TOKEN, ENV_BRIDGE_TOKENS, ENV_HS_TOKEN, ENV_METRICS_TOKEN},
    ids::{AgentSlug, Namespaces, MAX_ALIAS_NAME_LEN, MAX_SLUG_LEN},
    matrix::registration::registration_yaml,
};
use regex::Regex;

/// Four distinct well-formed secrets: the file alone decides the outcome.
const ENV: [(&str, &str); 4] = [
    (ENV_AS_TOKEN, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    (ENV_HS_TOKEN, "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"),
    (ENV_BRIDGE_TOKENS, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
    (ENV_METRICS_TOKEN, "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm"),
];

fuzz_target!(|data: &[u8]| {
    // `load` reads the file as UTF-8: other bytes are a "cannot read" problem.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, Path::new("fuzz.toml"), &ENV) {
        Ok(config) => config,
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error without a problem");
            return;
        }
    };
    // What `main` and `AppState` build from a loaded config.
    let ns = Namespaces::new(
        config.homeserver.server_name.clone(),
        &config.appservice.agent_prefix,
        &config.appservice.alias_prefix,
        &config.appservice.sender_localpart,
    );
    let yaml = registration_yaml(&config, &ns);
    assert!(!yaml.is_empty());
    let agents = Regex::new(&ns.agent_regex()).expect("agent regex");
    let sender = Regex::new(&ns.sender_regex()).expect("sender regex");
    let aliases = Regex::new(&ns.alias_regex()).expect("alias regex");
    assert!(sender.is_match(ns.sender().as_str()));
    // The sender bot is not an agent, and it is outside the agents' namespace.
    assert!(ns.agent_slug(ns.sender()).is_none(), "{}", ns.sender());
    // The shortest and the longest slug make valid agent ids that map back to the slug.
    for slug in ["0".to_owned(), "z".repeat(MAX_SLUG_LEN)] {
        let slug = AgentSlug::parse(&slug).unwrap();
        let user = ns.agent_user_id(&slug);
        assert!(
            agents.is_match(user.as_str()),
            "{user} vs {}",
            ns.agent_regex()
        );
        assert_eq!(ns.agent_slug(&user).as_ref(), Some(&slug));
    }
    // The longest alias name a provisioning request may give fits too.
    let (_, alias) = ns.alias_for(&"n".repeat(MAX_ALIAS_NAME_LEN));
    assert!(aliases.is_match(alias.as_str()), "{alias}");
    assert!(ns.owns_alias(&alias));
});
