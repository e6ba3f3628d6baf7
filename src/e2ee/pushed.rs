//! What a pushed transaction carries for encryption (MSC2409 and MSC3202, under Synapse's
//! unstable names): to-device events, each addressed to one user's device; one-time-key
//! counts and unused fallback key types per user and device; device list changes. Sorted
//! per agent here, for the agents' own device only. What cannot be read is skipped and
//! counted, never the transaction: a corrupt to-device event costs only itself.

use std::collections::BTreeMap;

use ruma::{
    api::client::sync::sync_events::DeviceLists, events::AnyToDeviceEvent, serde::Raw,
    OneTimeKeyAlgorithm, OwnedDeviceId, OwnedUserId, UInt,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::DEVICE_ID;
use crate::ids::{AgentSlug, Namespaces};

/// The transaction's encryption parts, as the homeserver sent them (raw until needed).
#[derive(Debug, Default, Clone, Copy)]
pub struct CryptoParts<'a> {
    pub to_device: &'a [&'a RawValue],
    pub one_time_key_counts: Option<&'a RawValue>,
    pub unused_fallback_keys: Option<&'a RawValue>,
    pub device_lists: Option<&'a RawValue>,
}

impl CryptoParts<'_> {
    /// Whether there is anything for the agents' machines.
    pub fn is_empty(&self) -> bool {
        self.to_device.is_empty()
            && self.one_time_key_counts.is_none()
            && self.unused_fallback_keys.is_none()
            && self.device_lists.is_none()
    }
}

/// What one agent's machine receives from a transaction.
#[derive(Debug, Default)]
pub struct ForAgent {
    pub to_device: Vec<Raw<AnyToDeviceEvent>>,
    pub one_time_key_counts: BTreeMap<OneTimeKeyAlgorithm, UInt>,
    pub unused_fallback_keys: Option<Vec<OneTimeKeyAlgorithm>>,
}

/// The transaction's encryption parts sorted per agent.
#[derive(Debug, Default)]
pub struct Sorted {
    pub agents: BTreeMap<AgentSlug, ForAgent>,
    /// Users whose devices changed (or who left all shared rooms): every machine that
    /// tracks them queries their keys again.
    pub device_lists: DeviceLists,
    /// Parts that could not be read, with why.
    pub skipped: Vec<String>,
    /// The transaction brought back the to-device probe (see [`super::probe`]).
    pub probe_seen: bool,
}

type PerDevice<T> = BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, T>>;

/// The addressing of a to-device event (MSC2409), and its type.
#[derive(Deserialize)]
struct Addressed<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    to_user_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    to_device_id: std::borrow::Cow<'a, str>,
}

/// Sorts `parts` per agent: only what is addressed to an agent's own device.
pub fn sort(parts: &CryptoParts<'_>, ns: &Namespaces) -> Sorted {
    let mut sorted = Sorted::default();
    let agent_of = |user: &str, device: &str| -> Option<AgentSlug> {
        let user = <&ruma::UserId>::try_from(user).ok()?;
        (device == DEVICE_ID).then(|| ns.agent_slug(user)).flatten()
    };
    for raw in parts.to_device {
        match serde_json::from_str::<Addressed<'_>>(raw.get()) {
            Ok(a) => {
                if a.kind == super::probe::PROBE_TYPE {
                    sorted.probe_seen = true;
                } else if let Some(slug) = agent_of(&a.to_user_id, &a.to_device_id) {
                    let event = Raw::from_json((*raw).to_owned());
                    sorted.agents.entry(slug).or_default().to_device.push(event);
                }
            }
            Err(e) => sorted.skipped.push(format!("to-device event: {e}")),
        }
    }
    if let Some(raw) = parts.one_time_key_counts {
        match serde_json::from_str::<PerDevice<BTreeMap<OneTimeKeyAlgorithm, UInt>>>(raw.get()) {
            Ok(counts) => each_agent_device(counts, &agent_of, |slug, mut counts| {
                // A device listed without a count of its one-time keys has none left
                // (the machine reads a missing count as "unknown" and would not upload).
                counts
                    .entry(OneTimeKeyAlgorithm::SignedCurve25519)
                    .or_insert(UInt::MIN);
                sorted.agents.entry(slug).or_default().one_time_key_counts = counts;
            }),
            Err(e) => sorted.skipped.push(format!("one-time key counts: {e}")),
        }
    }
    if let Some(raw) = parts.unused_fallback_keys {
        match serde_json::from_str::<PerDevice<Vec<OneTimeKeyAlgorithm>>>(raw.get()) {
            Ok(types) => each_agent_device(types, &agent_of, |slug, types| {
                sorted.agents.entry(slug).or_default().unused_fallback_keys = Some(types);
            }),
            Err(e) => sorted
                .skipped
                .push(format!("unused fallback key types: {e}")),
        }
    }
    if let Some(raw) = parts.device_lists {
        match serde_json::from_str::<DeviceLists>(raw.get()) {
            Ok(lists) => sorted.device_lists = lists,
            Err(e) => sorted.skipped.push(format!("device lists: {e}")),
        }
    }
    sorted
}

fn each_agent_device<T>(
    per_device: PerDevice<T>,
    agent_of: &impl Fn(&str, &str) -> Option<AgentSlug>,
    mut f: impl FnMut(AgentSlug, T),
) {
    for (user, devices) in per_device {
        for (device, value) in devices {
            if let Some(slug) = agent_of(user.as_str(), device.as_str()) {
                f(slug, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ns() -> Namespaces {
        Namespaces::new("hs".try_into().unwrap(), "agent-", "m-", "bot")
    }

    fn raw(v: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    /// Only what is addressed to an agent's own device reaches it; what cannot be read is
    /// skipped with a reason, and the rest still sorted.
    #[test]
    fn parts_are_sorted_per_agent_device() {
        let to_device = [
            raw(
                json!({"type": "m.room.encrypted", "sender": "@h:hs", "content": {},
                       "to_user_id": "@agent-a:hs", "to_device_id": "MOSAICAS"}),
            ),
            raw(
                json!({"type": "m.room.encrypted", "sender": "@h:hs", "content": {},
                       "to_user_id": "@agent-a:hs", "to_device_id": "OTHER"}),
            ),
            raw(
                json!({"type": "m.room.encrypted", "sender": "@h:hs", "content": {},
                       "to_user_id": "@h:hs", "to_device_id": "MOSAICAS"}),
            ),
            raw(json!({"type": "m.room.encrypted", "content": {}})),
            raw(
                json!({"type": "io.mosaic-as.probe", "sender": "@agent-a:hs", "content": {},
                       "to_user_id": "@agent-a:hs", "to_device_id": "MOSAICAS"}),
            ),
            raw(
                json!({"type": "m.room.encrypted", "sender": "@h:hs", "content": {},
                       "to_user_id": "@agent-b:hs", "to_device_id": "MOSAICAS"}),
            ),
        ];
        let to_device: Vec<&RawValue> = to_device.iter().map(|r| &**r).collect();
        let counts = raw(
            json!({"@agent-a:hs": {"MOSAICAS": {"signed_curve25519": 7}},
                   "@agent-b:hs": {"MOSAICAS": {}},
                   "@h:hs": {"MOSAICAS": {"signed_curve25519": 1}}}),
        );
        let fallback = raw(json!({"@agent-b:hs": {"MOSAICAS": ["signed_curve25519"]}}));
        let lists = raw(json!({"changed": ["@h:hs"]}));
        let parts = CryptoParts {
            to_device: &to_device,
            one_time_key_counts: Some(&counts),
            unused_fallback_keys: Some(&fallback),
            device_lists: Some(&lists),
        };
        let sorted = sort(&parts, &ns());
        let a = &sorted.agents[&AgentSlug::parse("a").unwrap()];
        assert_eq!(a.to_device.len(), 1);
        assert_eq!(
            a.one_time_key_counts[&OneTimeKeyAlgorithm::SignedCurve25519],
            UInt::from(7u32)
        );
        assert!(a.unused_fallback_keys.is_none());
        let b = &sorted.agents[&AgentSlug::parse("b").unwrap()];
        assert_eq!(b.to_device.len(), 1);
        // Listed without a count: none left.
        assert_eq!(
            b.one_time_key_counts[&OneTimeKeyAlgorithm::SignedCurve25519],
            UInt::MIN
        );
        assert_eq!(
            b.unused_fallback_keys.as_deref(),
            Some(&[OneTimeKeyAlgorithm::SignedCurve25519][..])
        );
        assert_eq!(sorted.agents.len(), 2);
        assert!(
            sorted.probe_seen,
            "the probe is seen, and given to no machine"
        );
        assert_eq!(sorted.device_lists.changed, ["@h:hs"]);
        assert_eq!(sorted.skipped.len(), 1, "{:?}", sorted.skipped);

        let bad = raw(json!({"@agent-a:hs": "not counts"}));
        let parts = CryptoParts {
            one_time_key_counts: Some(&bad),
            ..Default::default()
        };
        let sorted = sort(&parts, &ns());
        assert!(sorted.agents.is_empty());
        assert!(
            sorted.skipped[0].contains("one-time key counts"),
            "{:?}",
            sorted.skipped
        );
    }
}
