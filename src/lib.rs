//! mosaic-as: a Matrix application service that hosts AI agents as virtual Matrix users.
//! Agent processes call a token-protected HTTP bridge API; the homeserver pushes events
//! over the Application Service API.
//!
//! # Layout
//! - [`config`]: the TOML file plus secrets from the environment, validated in one pass.
//! - [`ids`]: agent slugs and the registration's namespaces (user ids, aliases).
//! - [`matrix`]: the homeserver client (in-flight cap), its retry policy (the whole
//!   decision under a call's deadline), the homeserver's readiness, message content, what
//!   an agent does in a room as Matrix requests, reads and uploads as an agent, the
//!   registration file.
//! - [`store`]: the durable state trait, its SQLite and PostgreSQL backends (one plan of
//!   what a batch of writes does, shared by both), the group-commit writer, and the
//!   fingerprint that tells a homeserver retry from a reused transaction id.
//! - [`inbound`]: what the homeserver pushes: routing, the membership directory, and the
//!   one after-commit step that applies a committed transaction's consequences.
//! - [`inbox`]: agents' inboxes as readers see them: in-memory tails, long-poll and SSE
//!   readers, stream slots.
//! - [`access`]: who calls the bridge: every bridge token by digest, with its scopes,
//!   agent patterns, expiry and rate limit; the one place requests are authorised.
//! - [`e2ee`]: end-to-end encryption for agents in encrypted rooms: each one's device and
//!   crypto machine (matrix-sdk-crypto) over a store sealed with the store cipher and
//!   written through the group commit, and the machine's requests sent as its device.
//! - [`cluster`]: several replicas on one PostgreSQL database: this replica's lease, each
//!   agent's owner (with an epoch as fencing token), the leader lock, and the listener of
//!   other replicas' commit notices.
//! - [`actors`]: the supervisor (with the registry of live agents and provisioning) and one
//!   actor per agent; [`actors::AppState`], the shared state everything else holds.
//! - [`api`]: every HTTP route (homeserver-facing, bridge, operations, the operator
//!   console's files), the one mapping of errors to HTTP answers, and the bridge API's
//!   OpenAPI document.
//! - [`activity`]: what the console's live view shows: the errors of the moment (bridge
//!   answers of 500 and above, failed homeserver calls) in a small ring and a broadcast to
//!   watchers, and the traffic summary read from [`metrics`].
//! - [`client`]: the bridge API as the command line calls it (`mosaic-as token`, `send`,
//!   `typing`, `tail`, `agents`, `provision`).
//! - [`app`]: start-up and shutdown; [`metrics`]; [`telemetry`]; [`tokens`]: bearer
//!   tokens kept and compared as digests, scopes, agent patterns, issued-token records;
//!   [`whole_number`]: request fields that JSON may spell `5` or `5.0`.
//!
//! Dependencies go one way: `api` → `actors` → `inbound` → `inbox` → `store`, and
//! `actors` → `access` → `store`, `actors` → `cluster` → `store`, `actors` → `e2ee` → `store`, with `config`, `ids`, `tokens`, `matrix`, `metrics` and
//! `whole_number` below (and `activity` below `matrix`: a failed call is told to it); a lower module reaches a higher one only through a trait it
//! declares (`inbound::AgentNotices`, `inbox::HangUp`, `cluster::listen::Replicated`).

pub mod access;
pub mod activity;
pub mod actors;
pub mod api;
pub mod app;
pub mod client;
pub mod cluster;
pub mod config;
pub mod e2ee;
pub mod ids;
pub mod inbound;
pub mod inbox;
pub mod matrix;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod whole_number;
