//! What one agent does in its rooms (messages, reactions, redactions, receipts): a FIFO
//! per room with one act in flight per room (the ordering guarantee), rooms in parallel, a
//! bound on queued acts, and idempotent acts through the
//! `(agent, room, txn_id) → (request, event_id)` map.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use actix::prelude::*;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::{crypto::CryptoMachine, ready::Joining, AgentActor, AppState};
use crate::{
    actors::error::{AgentError, AgentResult},
    e2ee::outbound,
    ids::AgentSlug,
    matrix::room_act::RoomAct,
    store::{AgentRecord, MembershipChange, RequestDigest, SentKey},
};

/// Does something in a room as the agent, after what it asked for before in that room.
#[derive(Message)]
#[rtype(result = "AgentResult<Sent>")]
pub struct ActInRoom {
    pub room: OwnedRoomId,
    pub act: RoomAct,
    /// The client's idempotency key; one is generated when absent.
    pub client_txn: Option<String>,
    /// How the agent gets into the room when it is not in it.
    pub joining: Joining,
    /// Send a message or reaction into an encrypted room in the clear.
    pub allow_unencrypted: bool,
}

/// A done (or earlier done) act.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The event the act made (receipts make none).
    pub event_id: Option<OwnedEventId>,
    /// The client's idempotency key, when it gave one.
    pub txn_id: Option<String>,
}

struct SendJob {
    act: RoomAct,
    txn_id: String,
    /// The key came from the client (so it may have been used before).
    client_key: bool,
    joining: Joining,
    allow_unencrypted: bool,
}

type Reply = oneshot::Sender<AgentResult<Sent>>;

#[derive(Default)]
struct RoomQueue {
    busy: bool,
    waiting: VecDeque<(SendJob, Reply)>,
}

#[derive(Default)]
pub(super) struct SendQueues {
    rooms: BTreeMap<OwnedRoomId, RoomQueue>,
    /// Messages waiting or in flight, across rooms.
    queued: usize,
}

impl SendQueues {
    pub(super) fn queued(&self) -> usize {
        self.queued
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queued == 0 && self.rooms.is_empty()
    }
}

/// The Matrix transaction id of a send: derived from agent and key, because the homeserver
/// deduplicates per appservice token, not per masqueraded user, and from what a client's
/// key asked for, so the homeserver's deduplication never answers one request with
/// another's event.
pub fn matrix_txn_id(slug: &AgentSlug, key: &str, request: Option<&RequestDigest>) -> String {
    let mut h = Sha256::new();
    h.update(slug.as_str().as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    if let Some(request) = request {
        h.update([0]);
        h.update(request.as_bytes());
    }
    format!("mas.{}", hex::encode(&h.finalize()[..16]))
}

impl Handler<ActInRoom> for AgentActor {
    type Result = ResponseFuture<AgentResult<Sent>>;

    fn handle(&mut self, msg: ActInRoom, ctx: &mut Self::Context) -> Self::Result {
        let cap = self.app.config.limits.agent_queue;
        if self.rooms.as_ref().is_some_and(|r| r.sends.queued >= cap) {
            return Box::pin(async {
                Err(AgentError::QueueFull {
                    retry_after: std::time::Duration::from_secs(1),
                })
            });
        }
        let (reply, answer) = oneshot::channel();
        let client_key = msg.client_txn.is_some();
        let txn_id = msg
            .client_txn
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let sends = &mut self.rooms().sends;
        sends.queued += 1;
        sends
            .rooms
            .entry(msg.room.clone())
            .or_default()
            .waiting
            .push_back((
                SendJob {
                    act: msg.act,
                    txn_id,
                    client_key,
                    joining: msg.joining,
                    allow_unencrypted: msg.allow_unencrypted,
                },
                reply,
            ));
        self.pump(msg.room, ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(AgentError::Stopped)) })
    }
}

/// What a finished send changed besides its result.
struct SendOutcome {
    /// The agent is registered (the send got past the ready step).
    registered: bool,
    result: AgentResult<Sent>,
}

impl AgentActor {
    /// Starts the next send of `room` unless one is in flight.
    fn pump(&mut self, room: OwnedRoomId, ctx: &mut Context<Self>) {
        let Some(state) = self.rooms.as_deref_mut() else {
            return;
        };
        let Some(queue) = state.sends.rooms.get_mut(&room) else {
            return;
        };
        if queue.busy {
            return;
        }
        let Some((job, reply)) = queue.waiting.pop_front() else {
            state.sends.rooms.remove(&room);
            return;
        };
        queue.busy = true;
        let ends_typing = job.act.ends_typing();
        let leaves = job.act.leaves();
        let work = deliver(
            self.app.clone(),
            self.record(),
            self.user_id(),
            room.clone(),
            job,
        );
        ctx.spawn(work.into_actor(self).map(move |outcome, act, ctx| {
            act.registered |= outcome.registered;
            if ends_typing && outcome.result.is_ok() {
                // A message ends the agent's typing in that room (Synapse does not).
                act.end_typing(&room, ctx);
            }
            if leaves && outcome.result.is_ok() {
                act.drop_typing(&room, ctx);
            }
            let _ = reply.send(outcome.result);
            let sends = &mut act.rooms().sends;
            sends.queued -= 1;
            if let Some(q) = sends.rooms.get_mut(&room) {
                q.busy = false;
            }
            act.pump(room, ctx);
        }));
    }
}

/// Carries out one act. A client key is looked up first (the same request again answers
/// the first event id; another request under the key is a conflict) and recorded before
/// the room's next act starts, so no later act with the key can miss it.
async fn deliver(
    app: Arc<AppState>,
    record: AgentRecord,
    user: OwnedUserId,
    room: OwnedRoomId,
    job: SendJob,
) -> SendOutcome {
    let SendJob {
        act,
        txn_id,
        client_key,
        joining,
        allow_unencrypted,
    } = job;
    let mut registered = record.registered;
    let result = async {
        let slug = record.slug.clone();
        let prepared = act.prepare();
        let keyed = match client_key {
            true => {
                let key = SentKey {
                    slug: slug.clone(),
                    room_id: room.clone(),
                    client_txn: txn_id.clone(),
                };
                let request = RequestDigest::of(prepared.kind, prepared.body.get().as_bytes());
                if let Some(prior) = app.store.sent_event(&key).await? {
                    if prior.request != request {
                        return Err(AgentError::IdempotencyConflict(txn_id));
                    }
                    return Ok(Sent {
                        event_id: Some(prior.event_id),
                        txn_id: Some(txn_id),
                    });
                }
                Some((key, request))
            }
            false => None,
        };
        let into_room = (!act.leaves()).then(|| super::ready::RoomEntry::new(&room, joining));
        super::ready::ready(&app, &record, &user, into_room).await?;
        registered = true;
        // Known once the agent is in the room (joining learns it). With end-to-end
        // encryption on the act is encrypted; without, it is refused unless allowed.
        let encrypt = act.encryptable() && !allow_unencrypted && app.directory.is_encrypted(&room);
        if encrypt && app.e2ee.get().is_none() {
            return Err(AgentError::EncryptedRoom(room));
        }
        // The fencing rule, checked again just before the act goes out: a replica whose
        // lease lapsed while the act waited in the queue or joined the room stops here.
        if !app.cluster.lease_is_valid() {
            return Err(AgentError::LeaseLost);
        }
        let matrix_txn = match &keyed {
            Some((_, request)) => matrix_txn_id(&slug, &txn_id, Some(request)),
            // A key drawn here (a random UUID) is already unique under the appservice's
            // token: no digest needed.
            None => format!("mas.{txn_id}"),
        };
        let event_id = match act.room_event(&prepared).filter(|_| encrypt) {
            Some((event_type, content)) => {
                let machine = app.ask(&slug, CryptoMachine).await??;
                let rooms = app.e2ee.get().map(|e2ee| &e2ee.rooms);
                let rooms = rooms.ok_or(AgentError::EncryptionOff)?;
                let sealed =
                    outbound::encrypt(&machine, &app.hs, rooms, &room, event_type, content).await?;
                let event_id = app
                    .hs
                    .send_event(&user, &room, "m.room.encrypted", &matrix_txn, &sealed)
                    .await?;
                Some(event_id)
            }
            None => {
                act.perform(&app.hs, &user, &room, &matrix_txn, &prepared)
                    .await?
            }
        };
        if act.leaves() {
            app.writer
                .set_membership(MembershipChange {
                    slug: slug.clone(),
                    room_id: room.clone(),
                    joined: false,
                })
                .await?;
        }
        // Only a client's key can come back: a generated one needs no record (nobody
        // can retry with it), which keeps the store out of the plain send path.
        let txn_id = match (keyed, &event_id) {
            (Some((key, request)), Some(event_id)) => {
                app.writer
                    .record_sent(key, request, event_id.clone())
                    .await?;
                Some(txn_id)
            }
            (Some(_), None) => Some(txn_id),
            (None, _) => None,
        };
        Ok(Sent { event_id, txn_id })
    }
    .await;
    SendOutcome { registered, result }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ids_differ_per_agent_key_and_request() {
        let a = AgentSlug::parse("a").unwrap();
        let b = AgentSlug::parse("b").unwrap();
        assert_eq!(matrix_txn_id(&a, "k", None), matrix_txn_id(&a, "k", None));
        assert_ne!(matrix_txn_id(&a, "k", None), matrix_txn_id(&b, "k", None));
        assert_ne!(matrix_txn_id(&a, "k", None), matrix_txn_id(&a, "k2", None));
        // No ambiguity between ("a", "bk") and ("ab", "k").
        let ab = AgentSlug::parse("ab").unwrap();
        assert_ne!(matrix_txn_id(&a, "bk", None), matrix_txn_id(&ab, "k", None));
        let hi = RequestDigest::of("m.room.message", b"hi");
        let bye = RequestDigest::of("m.room.message", b"bye");
        assert_eq!(
            matrix_txn_id(&a, "k", Some(&hi)),
            matrix_txn_id(&a, "k", Some(&hi))
        );
        assert_ne!(
            matrix_txn_id(&a, "k", Some(&hi)),
            matrix_txn_id(&a, "k", Some(&bye))
        );
    }
}
