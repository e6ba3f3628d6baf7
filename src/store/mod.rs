//! Durable state behind a small trait: handled transactions, agents and their memberships,
//! inboxes, the idempotent-send map, provisioned rooms, issued bridge tokens. Two backends,
//! chosen by `store.url`: [`sqlite`] (`sqlite:`), the embedded default, and [`postgres`]
//! (`postgres://` or `postgresql://`), a server several daemons could share. Both decide
//! what a batch of writes does through one plan (`plan`), so they give the same outcomes;
//! [`writer`] batches inbound transactions into group commits.

mod backend;
mod crypto;
pub mod fingerprint;
mod idempotency;
pub mod notice;
mod plan;
pub mod postgres;
pub mod sqlite;
mod stored;
#[cfg(test)]
pub(crate) mod tests;
mod transaction;
pub mod writer;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use ruma::{OwnedEventId, OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId};
use serde_json::value::RawValue;

pub use self::backend::{check_reachable, check_url, is_embedded, open};
pub use self::crypto::{CryptoRow, CryptoWrite};
pub use self::idempotency::{ProvisionKey, RequestDigest, SentKey, SentRecord};
pub(crate) use self::stored::{StoredEntry, StoredToken};
pub use self::transaction::{Effect, MembershipChange, RoomTyping, RoomUpgrade, TransactionWrite};
use crate::{
    ids::AgentSlug,
    tokens::{
        issued::{TokenId, TokenRecord},
        pattern::SlugRange,
    },
};

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The store URL names a backend this build does not support.
    #[error("unsupported store URL: {0}")]
    Unsupported(String),
    /// The group commit this write was part of failed.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The group-commit writer is gone (shutting down).
    #[error("store writer stopped")]
    WriterGone,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the store knows of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub slug: AgentSlug,
    pub registered: bool,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

/// An event as agents' inboxes hold it: one copy shared by all its recipients, whether it
/// is served from the in-memory tail or read back from the store.
#[derive(Debug)]
pub struct InboxEvent {
    pub room_id: OwnedRoomId,
    pub event_id: OwnedEventId,
    pub sender: OwnedUserId,
    pub event_type: String,
    pub content: Box<RawValue>,
    pub origin_server_ts: i64,
    /// Received encrypted and decrypted by the daemon: `event_type` and `content` are the
    /// clear event's.
    pub decrypted: bool,
    /// Given before as it came (`m.room.encrypted`, its room key had not arrived) and
    /// decrypted since: this inbox row is the second delivery of the event, in the clear.
    /// Stored per inbox row (the event's first row keeps `false`).
    pub redelivered: bool,
    /// The event's members as the bridge API writes them, serialised once by the first
    /// reader and copied by every other recipient's reader.
    pub json_members: OnceLock<Box<str>>,
}

/// Most events [`Store::awaiting_keys`] answers for one room at a time (a key arriving for
/// more is not lost: those beyond stay as they came).
pub const AWAITING_KEYS_LIMIT: u32 = 1000;

/// Inbox item type of a read receipt.
pub const RECEIPT_ITEM: &str = "m.receipt";
/// Inbox item type of a typing change.
pub const TYPING_ITEM: &str = "m.typing";

impl InboxEvent {
    /// Whether the item is a receipt or typing change: an ephemeral event, stored under an
    /// id of the daemon's own that the bridge API does not show. (Room events of these
    /// types are never delivered.)
    pub fn is_ephemeral(&self) -> bool {
        self.event_type == RECEIPT_ITEM || self.event_type == TYPING_ITEM
    }
}

/// One entry of one agent's inbox.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub cursor: i64,
    pub mentioned: bool,
    pub event: Arc<InboxEvent>,
}

/// One event to be written into one or more inboxes.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    pub event: Arc<InboxEvent>,
    /// The concerned agents, each with its `mentioned` flag.
    pub recipients: Vec<(AgentSlug, bool)>,
}

/// One write. Every write goes through the group-commit writer, so the store has a single
/// writer and many writes share one commit.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// A homeserver transaction (deduplicated by txn id with its fingerprint, and by event
    /// ids).
    Transaction(TransactionWrite),
    /// Creates or replaces an agent record.
    Agent(AgentRecord),
    /// An agent joined or left a room.
    Membership(MembershipChange),
    /// A send with a client key succeeded: key → (what it asked for, event id).
    Sent {
        key: SentKey,
        request: RequestDigest,
        event_id: OwnedEventId,
    },
    /// A provisioned room.
    Room(RoomRecord),
    /// A room found to be encrypted.
    RoomEncrypted(OwnedRoomId),
    /// An agent deleted: its record, memberships, inbox and idempotency keys go (applied
    /// before the batch's other writes, so that a new agent of the name in the same batch
    /// stays).
    DeleteAgent(AgentSlug),
    /// Rows of an agent's crypto store (end-to-end encryption), sealed by it.
    Crypto(CryptoWrite),
}

/// What the store did with one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Transaction(TransactionOutcome),
    Done,
}

/// What the store did with one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionOutcome {
    /// Handled earlier (same id, same content): nothing was written.
    Duplicate,
    /// Written.
    Recorded {
        /// Per delivery: the cursors assigned (one per recipient, in recipient order), or
        /// `None` when the event id had been seen in an earlier transaction.
        cursors: Vec<Option<Vec<i64>>>,
        /// The id had been recorded with other content: the homeserver reused it.
        id_reused: bool,
    },
}

/// An effect waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEffect {
    pub id: i64,
    pub effect: Effect,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// A provisioned room.
#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub room_id: OwnedRoomId,
    pub alias: Option<OwnedRoomAliasId>,
    pub space_id: Option<OwnedRoomId>,
}

/// What the group commit ([`writer`]) asks of a store.
#[async_trait]
pub trait Commits: Send + Sync + 'static {
    /// Applies a batch of writes atomically (one commit); outcomes in batch order. The
    /// commit may not be durable until [`Commits::make_durable`].
    async fn apply(&self, batch: &[WriteOp]) -> StoreResult<Vec<WriteOutcome>>;

    /// Makes every commit of [`Commits::apply`] so far durable, where the commit alone
    /// does not (SQLite with `store.sync = "full"`: the WAL sync, taken off the commit path
    /// so that the next group commit is written while this one reaches the disk). The
    /// group commit calls it before answering anyone; other writes make themselves durable.
    async fn make_durable(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// The durable state operations of the daemon.
#[async_trait]
pub trait Store: Commits {
    /// Cheap round trip, for `/ready`.
    async fn ping(&self) -> StoreResult<()>;

    /// The database several replicas can share (PostgreSQL), for the cluster's leases,
    /// leader lock and commit notices; `None` for a store only one process opens.
    fn shared(&self) -> Option<&postgres::PgStore> {
        None
    }

    async fn agent(&self, slug: &AgentSlug) -> StoreResult<Option<AgentRecord>>;
    /// Agents of `range` in slug order, after `after` (exclusive), at most `limit`.
    async fn agents(
        &self,
        after: Option<&AgentSlug>,
        range: &SlugRange,
        limit: u32,
    ) -> StoreResult<Vec<AgentRecord>>;
    /// How many agents the store holds.
    async fn agent_count(&self) -> StoreResult<u64>;
    /// `(slug, display name)` of every agent that has a display name.
    async fn display_names(&self) -> StoreResult<Vec<(AgentSlug, String)>>;

    /// Every (agent, room) where an agent is joined.
    async fn memberships(&self) -> StoreResult<Vec<(AgentSlug, OwnedRoomId)>>;
    /// Every room known to be encrypted.
    async fn encrypted_rooms(&self) -> StoreResult<Vec<OwnedRoomId>>;
    /// Every room known to be replaced by an upgrade.
    async fn room_upgrades(&self) -> StoreResult<Vec<RoomUpgrade>>;

    /// The earlier send with this client key.
    async fn sent_event(&self, key: &SentKey) -> StoreResult<Option<SentRecord>>;

    /// Inbox entries of `slug` with a cursor above `after`, oldest first.
    async fn read_inbox(
        &self,
        slug: &AgentSlug,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<InboxEntry>>;
    /// Encrypted events of `room` stored as they came (undecrypted) whose Megolm session is
    /// one of `sessions`, oldest first, at most [`AWAITING_KEYS_LIMIT`].
    async fn awaiting_keys(&self, room: &RoomId, sessions: &[&str])
        -> StoreResult<Vec<InboxEvent>>;
    /// The highest cursor `slug`'s inbox has had, also when retention removed it (0 for
    /// an inbox that never had an entry).
    async fn latest_cursor(&self, slug: &AgentSlug) -> StoreResult<i64>;
    /// The newest cursor retention removed from `slug`'s inbox (0 when none was): a
    /// reader whose cursor is below it missed entries.
    async fn inbox_floor(&self, slug: &AgentSlug) -> StoreResult<i64>;
    /// Applies retention: inbox rows and handled transactions beyond what `keep` keeps, and
    /// orphaned events. Returns inbox rows removed.
    async fn prune(&self, keep: &Retention) -> StoreResult<u64>;
    /// Rows in all inboxes.
    async fn inbox_depth(&self) -> StoreResult<i64>;
    /// Rows in the inbox of each of `slugs` (one query for them all), in the order of
    /// `slugs`; 0 for an agent with none (or unknown).
    async fn inbox_depths(&self, slugs: &[AgentSlug]) -> StoreResult<Vec<u64>>;

    /// Effects due by `now` (unix seconds), oldest first, at most `limit`.
    async fn due_effects(&self, now: i64, limit: u32) -> StoreResult<Vec<PendingEffect>>;
    /// Effects waiting, due or not.
    async fn pending_effects(&self) -> StoreResult<u64>;
    /// An effect was carried out (or given up): removed.
    async fn finish_effect(&self, id: i64) -> StoreResult<()>;
    /// An effect failed for the `attempts`th time and waits until `not_before`.
    async fn defer_effect(&self, id: i64, attempts: u32, not_before: i64) -> StoreResult<()>;

    /// The provisioning recorded under a client key.
    async fn provision_key(&self, txn_id: &str) -> StoreResult<Option<ProvisionKey>>;
    /// Records a provisioning's key and answer (a key keeps its first record).
    async fn put_provision_key(&self, key: &ProvisionKey) -> StoreResult<()>;

    /// Every issued bridge token, oldest first.
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Stores a newly issued token.
    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// Deletes an issued token; whether there was one.
    async fn delete_token(&self, id: &TokenId) -> StoreResult<bool>;

    /// An agent's crypto rows (end-to-end encryption): `(kind, key, sealed value)`.
    async fn e2ee_items(&self, slug: &AgentSlug) -> StoreResult<Vec<(String, String, Vec<u8>)>>;
    /// Those of `slugs` whose crypto rows hold an account (a device made for them).
    async fn e2ee_enrolled(&self, slugs: &[AgentSlug]) -> StoreResult<Vec<AgentSlug>>;
    /// A named encryption key of the store (sealed), if it has been kept.
    async fn e2ee_key(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Keeps `value` under `name` unless a value is kept there already; answers the value
    /// kept (this one, or the one that was first).
    async fn put_e2ee_key_once(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
}

/// What the retention job keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Inbox rows per agent.
    pub inbox_per_agent: u32,
    /// Inbox rows younger than this.
    pub inbox_age: Duration,
    /// Handled transactions, to recognise a homeserver's retry: about the newest this many
    /// (rows handled in the same second as the last one kept stay too)...
    pub txn_rows: u32,
    /// ...and none older than this.
    pub txn_age: Duration,
    /// Idempotency keys of sends and provisioning (`store.idempotency_keep_s`).
    pub keys_age: Duration,
}

impl Retention {
    /// The configured inbox limits, and the transaction limits every deployment gets.
    /// Homeservers retry within minutes and send one transaction at a time per appservice,
    /// so a day and 100,000 transactions is far more than a retry needs; a transaction
    /// pruned and then retried is processed again: event-id dedupe still delivers none of
    /// its events to an inbox twice, and what else it carries (memberships, invites) is
    /// applied again, as it would be on a homeserver that does not deduplicate.
    pub fn inbox(per_agent: u32, age: Duration) -> Self {
        Self {
            inbox_per_agent: per_agent,
            inbox_age: age,
            txn_rows: 100_000,
            txn_age: Duration::from_secs(24 * 3600),
            keys_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The depths of `slugs` in their order, from `(slug, rows)` pairs of those with rows.
pub(crate) fn depths_in_order(slugs: &[AgentSlug], counted: Vec<(String, i64)>) -> Vec<u64> {
    let counted: std::collections::HashMap<String, i64> = counted.into_iter().collect();
    slugs
        .iter()
        .map(|s| counted.get(s.as_str()).map_or(0, |n| *n as u64))
        .collect()
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
