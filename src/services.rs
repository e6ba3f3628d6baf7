//! The shared handles every part of the daemon uses (config, namespaces, homeserver
//! client, store, group-commit writer, the agent registry, the routing directory and the
//! inboxes). Built once at start-up and shared behind an `Arc`.

use std::sync::Arc;

use crate::{
    actors::registry::AgentRegistry,
    config::Config,
    ids::Namespaces,
    inbound::Directory,
    inbox::Inboxes,
    matrix::HomeserverClient,
    store::{writer::CommitWriter, Store},
};

pub struct Services {
    pub config: Config,
    pub ns: Namespaces,
    pub hs: HomeserverClient,
    pub store: Arc<dyn Store>,
    pub writer: CommitWriter,
    /// Live agent actors, reachable without asking the supervisor.
    pub agents: Arc<AgentRegistry>,
    /// Which agents are joined where, and their display names (read by the router).
    pub directory: Arc<Directory>,
    /// Agents' inboxes as readers see them.
    pub inboxes: Arc<Inboxes>,
}

/// The shared parts that exist before the services (the after-commit step needs them to
/// start the writer, which the services hold).
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub agents: Arc<AgentRegistry>,
    pub directory: Arc<Directory>,
    pub inboxes: Arc<Inboxes>,
}

impl Services {
    pub fn new(config: Config, shared: Shared, writer: CommitWriter) -> Arc<Self> {
        let Shared {
            store,
            agents,
            directory,
            inboxes,
        } = shared;
        let ns = Namespaces::new(
            config.homeserver.server_name.clone(),
            &config.appservice.agent_prefix,
            &config.appservice.alias_prefix,
            &config.appservice.sender_localpart,
        );
        let hs = HomeserverClient::new(&config);
        Arc::new(Self {
            ns,
            hs,
            store,
            writer,
            agents,
            directory,
            inboxes,
            config,
        })
    }
}
