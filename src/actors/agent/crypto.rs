//! The agent's crypto machine (end-to-end encryption on): opened the first time something
//! needs it (the agent is in an encrypted room, a transaction brings it keys or encrypted
//! events, it sends into an encrypted room), kept by the actor while it lives, dropped
//! with it; the next opening restores it from the store.

use actix::prelude::*;
use matrix_sdk_crypto::OlmMachine;

use super::AgentActor;
use crate::actors::error::{AgentError, AgentResult};

/// The agent's crypto machine, opened when it has none. Answered one at a time (an
/// atomic response), so two callers never open two machines.
#[derive(Message)]
#[rtype(result = "AgentResult<OlmMachine>")]
pub struct CryptoMachine;

impl Handler<CryptoMachine> for AgentActor {
    type Result = AtomicResponse<Self, AgentResult<OlmMachine>>;

    fn handle(&mut self, _: CryptoMachine, _: &mut Self::Context) -> Self::Result {
        if let Some(machine) = &self.crypto {
            let machine = machine.clone();
            return AtomicResponse::new(Box::pin(fut::ready(Ok(machine))));
        }
        let (app, slug) = (self.app.clone(), self.slug.clone());
        let open = async move {
            let e2ee = app.e2ee.get().ok_or(AgentError::EncryptionOff)?;
            e2ee.machine(&slug).await.map_err(|e| {
                tracing::warn!(agent = %slug, error = %e, "cannot open the agent's crypto machine");
                AgentError::Encryption(e.to_string())
            })
        };
        AtomicResponse::new(Box::pin(open.into_actor(self).map(|opened, act, _| {
            let machine = opened?;
            act.crypto = Some(machine.clone());
            Ok(machine)
        })))
    }
}
