//! The homeserver registration file (`mosaic-as registration`): ruma's `Registration`
//! filled from the config, serialised as YAML.

use ruma::api::appservice::{
    Namespace, Namespaces as RumaNamespaces, Registration, RegistrationInit,
};
use secrecy::ExposeSecret;

use crate::{config::Config, ids::Namespaces};

/// The registration for this config.
pub fn registration(config: &Config, ns: &Namespaces) -> Registration {
    let mut namespaces = RumaNamespaces::new();
    namespaces.users = vec![
        Namespace::new(true, ns.agent_regex()),
        Namespace::new(true, ns.sender_regex()),
    ];
    namespaces.aliases = vec![Namespace::new(true, ns.alias_regex())];
    let mut reg: Registration = RegistrationInit {
        id: config.appservice.id.clone(),
        url: Some(
            config
                .appservice
                .url
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
        ),
        as_token: config.secrets.as_token.expose_secret().to_owned(),
        hs_token: config.secrets.hs_token.expose_secret().to_owned(),
        sender_localpart: config.appservice.sender_localpart.clone(),
        namespaces,
        rate_limited: Some(false),
        protocols: None,
    }
    .into();
    reg.receive_ephemeral = config.appservice.receive_ephemeral;
    reg
}

/// The registration as YAML text. `receive_ephemeral` is always written, also when it is
/// off (ruma leaves a false one out), so that whoever reads the file knows. With `[e2ee]
/// enabled` it also asks for appservice encryption: masquerading as a device, to-device
/// messages and key counts in transactions (`org.matrix.msc3202`), and creating devices for
/// its users (`io.element.msc4190`).
pub fn registration_yaml(config: &Config, ns: &Namespaces) -> String {
    let reg = registration(config, ns);
    let mut yaml = serde_yaml_ng::to_value(&reg).expect("registration serialises");
    if let serde_yaml_ng::Value::Mapping(map) = &mut yaml {
        map.insert("receive_ephemeral".into(), reg.receive_ephemeral.into());
        if config.e2ee.enabled {
            map.insert("org.matrix.msc3202".into(), true.into());
            map.insert("io.element.msc4190".into(), true.into());
        }
    }
    serde_yaml_ng::to_string(&yaml).expect("registration serialises")
}
