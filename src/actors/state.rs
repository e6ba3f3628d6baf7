//! The daemon's shared state, one value behind an `Arc` that HTTP handlers, actors and
//! background tasks hold alike: configuration, namespaces, the homeserver client, the store
//! and its group-commit writer, the live agents, the routing directory, the inboxes and
//! the supervisor's address. Also the ways to reach an agent from outside the actors.

use std::{
    num::NonZeroU32,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, OnceLock,
    },
};

use actix::{Addr, Handler, Message};
use secrecy::{ExposeSecret, SecretString};

use super::{
    agent::AgentActor,
    error::{AgentError, AgentResult},
    outbox::Outbox,
    supervisor::{self, registry::AgentRegistry, Supervisor},
    TransactionAck,
};
use crate::{
    access::{Access, Rates},
    activity::Activity,
    cluster::Cluster,
    config::Config,
    e2ee::{one_replica::OneReplica, E2ee, E2eeStartError},
    ids::{AgentSlug, Namespaces},
    inbound::{
        routing::{Routed, Router},
        Directory,
    },
    inbox::Inboxes,
    matrix::HomeserverClient,
    metrics::METRICS,
    store::{
        fingerprint::FingerprintKey, writer::CommitWriter, Store, StoreError, TransactionOutcome,
    },
    tokens::{KnownTokens, TokenDigest},
};

pub struct AppState {
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
    /// The digests of the homeserver's and the metrics token.
    pub tokens: KnownTokens,
    /// Every bridge token and what it may do.
    pub access: Access,
    /// Carries out what recorded transactions ask for.
    pub outbox: Arc<Outbox>,
    /// The secret key of transaction fingerprints (derived from the hs_token).
    pub fingerprint_key: FingerprintKey,
    /// This replica among those sharing the store (alone with SQLite).
    pub cluster: Arc<Cluster>,
    /// The errors of the moment, for the console's live view.
    pub activity: Arc<Activity>,
    /// End-to-end encryption, set at start-up when `[e2ee] enabled`
    /// ([`AppState::open_e2ee`]).
    pub e2ee: OnceLock<Arc<E2ee>>,
    /// Set once the supervisor runs ([`AppState::start_supervisor`]).
    supervisor: OnceLock<Addr<Supervisor>>,
    /// Agents in the store, counted at start-up and as new ones are let in (approximate
    /// from above: two first requests racing for one new agent count it twice until the
    /// next start).
    stored_agents: AtomicUsize,
}

/// Whether a request may bring an agent into being.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// Sends, typing on, profile changes, joins, user queries, accepted invites.
    Allowed,
    /// Requests that change nothing (typing off): an unknown agent stays unknown.
    Never,
}

/// The shared parts made before the state (the after-commit step needs them to start the
/// writer, which the state holds).
pub struct StateParts {
    pub store: Arc<dyn Store>,
    pub agents: Arc<AgentRegistry>,
    pub directory: Arc<Directory>,
    pub inboxes: Arc<Inboxes>,
}

impl AppState {
    pub fn new(config: Config, parts: StateParts, writer: CommitWriter) -> Arc<Self> {
        let StateParts {
            store,
            agents,
            directory,
            inboxes,
        } = parts;
        let ns = Namespaces::new(
            config.homeserver.server_name.clone(),
            &config.appservice.agent_prefix,
            &config.appservice.alias_prefix,
            &config.appservice.sender_localpart,
        );
        let activity = Activity::new(ns.clone());
        let hs = HomeserverClient::new(&config, activity.clone());
        let secrets = &config.secrets;
        let digest = |t: &SecretString| TokenDigest::of(t.expose_secret());
        let tokens = KnownTokens {
            hs: digest(&secrets.hs_token),
            metrics: secrets.metrics_token.as_ref().map(digest),
        };
        let rate = |r: u32| NonZeroU32::new(r).expect("the configuration check refuses 0");
        let rates = Rates {
            issued: rate(config.limits.token_rate_per_s),
            admin: rate(config.limits.admin_rate_per_s),
        };
        let access = Access::new(store.clone(), &secrets.bridge_tokens, rates);
        let fingerprint_key = FingerprintKey::derive(secrets.hs_token.expose_secret());
        let cluster = match store.shared() {
            Some(shared) => Cluster::shared(shared.pool().clone(), &config),
            None => Cluster::single(),
        };
        Arc::new(Self {
            cluster,
            activity,
            tokens,
            access,
            outbox: Arc::default(),
            fingerprint_key,
            ns,
            hs,
            store,
            writer,
            agents,
            directory,
            inboxes,
            config,
            e2ee: OnceLock::new(),
            supervisor: OnceLock::new(),
            stored_agents: AtomicUsize::new(0),
        })
    }

    /// Counts the agents already stored and loads the issued bridge tokens (at start-up,
    /// before any request).
    pub async fn load_stored(&self) -> Result<(), StoreError> {
        let tokens = self.access.load().await?;
        tracing::info!(tokens, "issued bridge tokens loaded");
        let n = self.store.agent_count().await?;
        self.stored_agents
            .store(usize::try_from(n).unwrap_or(usize::MAX), Ordering::Relaxed);
        Ok(())
    }

    /// Opens end-to-end encryption when `[e2ee] enabled` (the store cipher, made the first
    /// time): before any request, so no agent acts without it.
    pub async fn open_e2ee(&self) -> Result<(), E2eeStartError> {
        let (true, Some(secret)) = (self.config.e2ee.enabled, &self.config.secrets.e2ee_key) else {
            return Ok(());
        };
        let one_replica = match self.store.shared() {
            Some(pg) => {
                let options = (*pg.pool().connect_options()).clone();
                Some(OneReplica::claim(options).await?)
            }
            None => None,
        };
        let cipher = crate::e2ee::cipher::open(self.store.as_ref(), secret).await?;
        let e2ee = E2ee::new(
            self.hs.clone(),
            self.store.clone(),
            self.writer.clone(),
            cipher,
            self.ns.clone(),
            one_replica,
        );
        let _ = self.e2ee.set(Arc::new(e2ee));
        tracing::info!("end-to-end encryption on: agents in encrypted rooms get devices");
        Ok(())
    }

    /// Loads the routing directory from the store: memberships (replacing what it held),
    /// display names, encrypted and upgraded rooms.
    pub async fn load_directory(&self) -> Result<(), StoreError> {
        let memberships = self.store.memberships().await?;
        self.directory.replace_memberships(&memberships);
        for (slug, name) in self.store.display_names().await? {
            self.directory.set_display_name(&slug, Some(&name));
        }
        let encrypted = self.store.encrypted_rooms().await?;
        for room in &encrypted {
            self.directory.mark_encrypted(room);
        }
        let upgrades = self.store.room_upgrades().await?;
        for upgrade in &upgrades {
            self.directory.record_upgrade(upgrade);
        }
        tracing::info!(
            memberships = memberships.len(),
            encrypted_rooms = encrypted.len(),
            upgraded_rooms = upgrades.len(),
            "routing directory loaded"
        );
        Ok(())
    }

    /// Reloads what other replicas' commit notices keep current (they may have been
    /// missed): the directory and the issued tokens.
    pub async fn reload_shared(&self) -> Result<(), StoreError> {
        self.load_directory().await?;
        self.access.reload().await
    }

    /// What routes the homeserver's transactions.
    pub fn router(&self) -> Router<'_> {
        Router {
            key: &self.fingerprint_key,
            ns: &self.ns,
            directory: &self.directory,
            inbound: &self.config.inbound,
            receive_ephemeral: self.config.appservice.receive_ephemeral,
        }
    }

    /// Takes one place under `limits.max_agents` for a new agent.
    fn admit_new_agent(&self) -> AgentResult<()> {
        let max = self.config.limits.max_agents;
        if self.stored_agents.fetch_add(1, Ordering::Relaxed) >= max {
            self.stored_agents.fetch_sub(1, Ordering::Relaxed);
            return Err(AgentError::LimitReached { max });
        }
        Ok(())
    }

    /// Starts the supervisor on `arbiter` (once; later calls answer the same address).
    pub fn start_supervisor(self: &Arc<Self>, arbiter: &actix::ArbiterHandle) -> Addr<Supervisor> {
        self.supervisor
            .get_or_init(|| {
                let state = self.clone();
                <Supervisor as actix::Actor>::start_in_arbiter(arbiter, move |_| {
                    Supervisor::new(state)
                })
            })
            .clone()
    }

    /// The supervisor's address.
    ///
    /// # Panics
    /// Before [`start_supervisor`](Self::start_supervisor): the daemon starts it before it
    /// serves anything.
    pub fn supervisor(&self) -> &Addr<Supervisor> {
        self.supervisor.get().expect("the supervisor runs")
    }

    /// The agent's actor, started when it is not live (the only supervisor round trip). An
    /// agent the store does not know is created only when `creation` allows it and
    /// `limits.max_agents` has room: the one place agents come into being.
    pub async fn agent(
        &self,
        slug: &AgentSlug,
        creation: Creation,
    ) -> AgentResult<Addr<AgentActor>> {
        if let Some(addr) = self.agents.get(slug) {
            return Ok(addr);
        }
        if self.store.agent(slug).await?.is_none() {
            match creation {
                Creation::Never => return Err(AgentError::Unknown(slug.clone())),
                Creation::Allowed => self.admit_new_agent()?,
            }
        }
        Ok(self
            .supervisor()
            .send(supervisor::EnsureAgent { slug: slug.clone() })
            .await?)
    }

    /// Sends `msg` to the agent and waits for its answer, starting the agent when it is
    /// not live (creating it when it is new: see [`agent`](Self::agent)). A live agent is
    /// reached straight from the registry (no address clone).
    pub async fn ask<M>(&self, slug: &AgentSlug, msg: M) -> AgentResult<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        AgentActor: Handler<M>,
    {
        self.ask_with(slug, msg, Creation::Allowed).await
    }

    /// [`ask`](Self::ask), creating the agent only when `creation` allows it.
    pub async fn ask_with<M>(
        &self,
        slug: &AgentSlug,
        msg: M,
        creation: Creation,
    ) -> AgentResult<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        AgentActor: Handler<M>,
    {
        let request = match self.agents.send(slug, msg) {
            Ok(request) => request,
            Err(msg) => self.agent(slug, creation).await?.send(msg),
        };
        Ok(request.await?)
    }

    /// Records a routed homeserver transaction in the group commit; the after-commit step
    /// ([`AfterCommit`](crate::inbound::AfterCommit)) applies its consequences before the
    /// commit is answered. Only the commit is waited for; no actor round trip is on this path.
    pub async fn record_transaction(&self, routed: Routed) -> Result<TransactionAck, StoreError> {
        let skipped = routed.skipped;
        match self.writer.commit(routed.write).await? {
            TransactionOutcome::Duplicate => {
                METRICS.transactions.with_label_values(&["duplicate"]).inc();
                Ok(TransactionAck::Duplicate)
            }
            TransactionOutcome::Recorded { id_reused, .. } => {
                let outcome = if id_reused { "id_reused" } else { "new" };
                METRICS.transactions.with_label_values(&[outcome]).inc();
                skipped.count();
                Ok(TransactionAck::Recorded {
                    skipped: skipped.total(),
                    id_reused,
                })
            }
        }
    }

    /// The agent's actor if the agent is known (live or stored); never creates one.
    pub async fn known_agent(&self, slug: &AgentSlug) -> AgentResult<Option<Addr<AgentActor>>> {
        match self.agent(slug, Creation::Never).await {
            Ok(addr) => Ok(Some(addr)),
            Err(AgentError::Unknown(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
