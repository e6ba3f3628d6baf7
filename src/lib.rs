//! mosaic-as: a Matrix application service that hosts AI agents as virtual Matrix users.
//! Agent processes call a token-protected HTTP bridge API; the homeserver pushes events
//! over the Application Service API.
//!
//! # Layout
//! - [`config`]: the TOML file plus secrets from the environment, validated in one pass.
//! - [`ids`]: agent slugs and the registration's namespaces (user ids, aliases).
//! - [`matrix`]: the homeserver client (retries, deadline, in-flight cap), message content,
//!   the registration file.
//! - [`store`]: the durable state trait, the SQLite backend, the group-commit writer, and
//!   the fingerprint that tells a homeserver retry from a reused transaction id.
//! - [`actors`]: the supervisor and one actor per agent; the registry and routing directory.
//! - [`api`]: every HTTP route (homeserver-facing, bridge, operations) and the one mapping
//!   of errors to HTTP answers.
//! - [`services`]: the shared handles; [`app`]: start-up and shutdown; [`metrics`];
//!   [`telemetry`].

pub mod actors;
pub mod api;
pub mod app;
pub mod config;
pub mod ids;
pub mod matrix;
pub mod metrics;
pub mod services;
pub mod store;
pub mod telemetry;
