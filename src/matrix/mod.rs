//! Talking Matrix: the homeserver client (daemon → homeserver), its errors and retry
//! policy, the registration file, and message content building.

pub mod client;
pub mod content;
pub mod error;
pub mod registration;
pub mod retry;
mod transport;

pub use client::HomeserverClient;
pub use error::HomeserverError;
