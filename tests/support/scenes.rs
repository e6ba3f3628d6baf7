//! What many end-to-end tests set up or read: a human's room with agents in it, and an
//! agent's whole inbox.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{wait_until, Human, Stack};

impl Stack {
    /// A room created by a new human who invites `agents`; answers once all have joined,
    /// as the human sees it and as the daemon has recorded it (the homeserver shows a join
    /// a moment before the daemon's join call returns and records it).
    pub fn room_with_agents(&self, agents: &[&str], timeout: Duration) -> (Human, String) {
        let alice = self.human("alice");
        let room = alice.create_room(json!({"preset": "private_chat", "name": "Agents"}));
        for agent in agents {
            alice.invite(&room, &self.agent_user(agent));
        }
        for agent in agents {
            let user = self.agent_user(agent);
            wait_until(timeout, &format!("{user} joins"), || {
                (alice.membership(&room, &user).as_deref() == Some("join")).then_some(())
            });
            wait_until(
                timeout,
                &format!("the daemon records {user}'s join"),
                || {
                    let path = format!("/bridge/v1/agents/{agent}");
                    let (_, state) = self.daemon.bridge_get(&path);
                    super::json_list_contains(&state["joined_rooms"], &room).then_some(())
                },
            );
        }
        (alice, room)
    }

    /// Every event of the agent's inbox, from the oldest.
    pub fn whole_inbox(&self, agent: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut since = String::new();
        loop {
            let (status, answer) = self.daemon.bridge_get(&format!(
                "/bridge/v1/agents/{agent}/events?since={since}&limit=100"
            ));
            assert_eq!(status, StatusCode::OK, "{answer}");
            let events = answer["events"].as_array().expect("events").clone();
            since = answer["next"].as_str().expect("next").to_owned();
            if events.is_empty() {
                return all;
            }
            all.extend(events);
        }
    }

    /// Waits until the agent's inbox holds every event of `ids`; answers the inbox.
    pub fn wait_inbox(&self, agent: &str, ids: &[String], timeout: Duration) -> Vec<Value> {
        wait_until(timeout, &format!("{ids:?} in the inbox of {agent}"), || {
            let all = self.whole_inbox(agent);
            ids.iter()
                .all(|id| all.iter().any(|e| e["event_id"] == id.as_str()))
                .then_some(all)
        })
    }
}

/// How often each of `ids` is in `inbox`.
pub fn copies(inbox: &[Value], id: &str) -> usize {
    inbox.iter().filter(|e| e["event_id"] == id).count()
}
