//! The shared handles every part of the daemon uses (config, namespaces, homeserver
//! client, store, group-commit writer, the agent registry and the routing directory).
//! Built once at start-up and shared behind an `Arc`.

use std::sync::Arc;

use crate::{
    actors::{directory::Directory, registry::AgentRegistry},
    config::Config,
    ids::Namespaces,
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
    pub directory: Directory,
}

impl Services {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        writer: CommitWriter,
        agents: Arc<AgentRegistry>,
    ) -> Arc<Self> {
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
            directory: Directory::default(),
            config,
        })
    }
}
