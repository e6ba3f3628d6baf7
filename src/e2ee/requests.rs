//! The crypto machine's outgoing requests, sent as the agent's device: key uploads,
//! key queries, one-time-key claims, to-device messages and signature uploads. Each answer
//! goes back to the machine (`mark_request_as_sent`), which may then have more to send.

use matrix_sdk_crypto::{
    types::requests::{AnyOutgoingRequest, ToDeviceRequest},
    OlmMachine,
};
use ruma::api::client::{keys::get_keys, to_device::send_event_to_device};

use super::E2eeError;
use crate::matrix::HomeserverClient;

/// Sends every request the machine has queued, and those its answers lead to, until it
/// has none; at most `MAX_ROUNDS` rounds, and one key query: users whose keys a query did
/// not bring (a server that does not answer for them) are asked again at the next flush,
/// not in a loop.
pub async fn flush(machine: &OlmMachine, hs: &HomeserverClient) -> Result<(), E2eeError> {
    const MAX_ROUNDS: usize = 8;
    let mut queried = false;
    for _ in 0..MAX_ROUNDS {
        let requests = machine.outgoing_requests().await?;
        let mut sent = false;
        for request in requests {
            let query = matches!(request.request(), AnyOutgoingRequest::KeysQuery(_));
            if query && queried {
                continue;
            }
            queried |= query;
            sent = true;
            send(machine, hs, request.request_id(), request.request()).await?;
        }
        if !sent {
            return Ok(());
        }
    }
    Ok(())
}

/// Sends one of the machine's requests and hands it the answer.
pub async fn send(
    machine: &OlmMachine,
    hs: &HomeserverClient,
    id: &ruma::TransactionId,
    request: &AnyOutgoingRequest,
) -> Result<(), E2eeError> {
    let (user, device) = (machine.user_id(), machine.device_id());
    match request {
        AnyOutgoingRequest::KeysUpload(r) => {
            let answer = hs
                .call_as_device("keys_upload", user, device, r.clone())
                .await?;
            machine.mark_request_as_sent(id, &answer).await?;
        }
        AnyOutgoingRequest::KeysQuery(r) => {
            let mut query = get_keys::v3::Request::new();
            query.device_keys = r.device_keys.clone();
            query.timeout = r.timeout;
            let answer = hs.call_as_device("keys_query", user, device, query).await?;
            machine.mark_request_as_sent(id, &answer).await?;
        }
        AnyOutgoingRequest::KeysClaim(r) => {
            let answer = hs
                .call_as_device("keys_claim", user, device, r.clone())
                .await?;
            machine.mark_request_as_sent(id, &answer).await?;
        }
        AnyOutgoingRequest::ToDeviceRequest(r) => {
            let answer = to_device(hs, machine, r).await?;
            machine.mark_request_as_sent(id, &answer).await?;
        }
        AnyOutgoingRequest::SignatureUpload(r) => {
            let answer = hs
                .call_as_device("signature_upload", user, device, r.clone())
                .await?;
            machine.mark_request_as_sent(id, &answer).await?;
        }
        // In-room verification messages: agents do not verify interactively.
        AnyOutgoingRequest::RoomMessage(_) => {}
    }
    Ok(())
}

/// Sends one to-device request (room keys for other devices, mostly).
pub async fn to_device(
    hs: &HomeserverClient,
    machine: &OlmMachine,
    r: &ToDeviceRequest,
) -> Result<send_event_to_device::v3::Response, E2eeError> {
    let request = send_event_to_device::v3::Request::new_raw(
        r.event_type.clone(),
        r.txn_id.clone(),
        r.messages.clone(),
    );
    Ok(hs
        .call_as_device(
            "send_to_device",
            machine.user_id(),
            machine.device_id(),
            request,
        )
        .await?)
}
