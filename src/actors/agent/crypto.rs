//! The agent's crypto machine (end-to-end encryption on): opened the first time something
//! needs it (the agent is in an encrypted room, a transaction brings it keys or encrypted
//! events, it sends into an encrypted room), kept by the actor, lent to whoever works with
//! it, and dropped once idle for `[e2ee] idle_s` (or with the actor); the next opening
//! restores it from the store.

use std::{sync::Arc, time::Duration};

use actix::prelude::*;

use super::AgentActor;
use crate::{
    actors::{
        error::{AgentError, AgentResult},
        AppState,
    },
    e2ee::open::MachineLease,
};

/// The agent's crypto machine, opened when it has none. Answered one at a time (an
/// atomic response), so two callers never open two machines.
#[derive(Message)]
#[rtype(result = "AgentResult<MachineLease>")]
pub struct CryptoMachine;

impl Handler<CryptoMachine> for AgentActor {
    type Result = AtomicResponse<Self, AgentResult<MachineLease>>;

    fn handle(&mut self, _: CryptoMachine, _: &mut Self::Context) -> Self::Result {
        if let (Some(open), Some(e2ee)) = (&self.crypto, self.app.e2ee.get()) {
            let lease = e2ee.open.lend(open);
            return AtomicResponse::new(Box::pin(fut::ready(Ok(lease))));
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
            let open = opened?;
            let e2ee = act.app.e2ee.get().ok_or(AgentError::EncryptionOff)?;
            let lease = e2ee.open.lend(&open);
            act.crypto = Some(open);
            Ok(lease)
        })))
    }
}

/// Drops the agent's machine if it is still idle (checked here, in the actor's order, so
/// that no lease taken meanwhile is left on a dropped machine).
#[derive(Message)]
#[rtype(result = "()")]
struct DropIfIdle(Duration);

impl Handler<DropIfIdle> for AgentActor {
    type Result = ();

    fn handle(&mut self, DropIfIdle(idle): DropIfIdle, _: &mut Self::Context) {
        let Some(e2ee) = self.app.e2ee.get() else {
            return;
        };
        if self
            .crypto
            .as_ref()
            .is_some_and(|open| e2ee.open.is_idle(open, idle))
        {
            self.crypto = None;
            e2ee.open.closed(&self.slug);
        }
    }
}

/// Drops machines idle for `[e2ee] idle_s`, looking every half of it (at most every 30 s).
pub async fn drop_idle_machines(app: Arc<AppState>) {
    let Some(e2ee) = app.e2ee.get() else {
        return;
    };
    let idle = app.config.e2ee.idle;
    let every = (idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::time::sleep(every).await;
        for slug in e2ee.open.idle(idle) {
            if let Some(agent) = app.agents.get(&slug) {
                agent.do_send(DropIfIdle(idle));
            }
        }
    }
}
