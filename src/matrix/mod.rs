//! Talking Matrix: the homeserver client (daemon → homeserver) and its errors, the retry
//! policy (the whole decision: backoff, rate-limit hints, the call's deadline and each
//! attempt's timeout), the cap on requests in flight, the homeserver's readiness
//! (reachable, last ping's problem), what calls look like on the wire (URLs, answers),
//! rooms (creation, aliases, state), the registration file, message content building
//! with its HTML subset, what an agent does in a room (messages, reactions, redactions,
//! receipts) as Matrix requests, reading a room as an agent, media uploads, and how the bridge API's document describes Matrix
//! identifiers.

pub mod client;
pub mod content;
pub mod error;
pub mod html;
pub mod media;
mod proxy;
pub mod readiness;
pub mod reads;
pub mod registration;
pub mod retry;
pub mod room_act;
pub mod rooms;
pub mod schema;
mod slots;
mod tls;
mod transport;
mod wire;

pub use client::HomeserverClient;
pub use error::HomeserverError;
