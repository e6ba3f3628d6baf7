//! End-to-end encryption's tests' set-up: a Synapse with appservice encryption on and a
//! daemon with `[e2ee] enabled`, encrypted rooms, an agent and a human with a crypto client
//! (matrix-nio) in one, and what the tests read back.

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    daemon::DaemonOptions, metrics::metric, nio::NioClient, stack_api::WAIT, wait_until, Human,
    Stack,
};

/// Every agent's device id.
pub const DEVICE: &str = "MOSAICAS";

pub fn encrypted_stack(name: &str) -> Stack {
    encrypted_stack_with(name, "")
}

/// [`encrypted_stack`] with more `[e2ee]` settings.
pub fn encrypted_stack_with(name: &str, e2ee: &str) -> Stack {
    Stack::start_with(name, e2ee_options(e2ee))
}

/// A daemon with end-to-end encryption on, and `e2ee` more `[e2ee]` settings.
pub fn e2ee_options(e2ee: &str) -> DaemonOptions {
    DaemonOptions {
        receive_ephemeral: true,
        extra_toml: format!("[e2ee]\nenabled = true\n{e2ee}"),
        env: vec![(
            "MOSAIC_E2EE_KEY".into(),
            super::unique("e2ee-key-").repeat(3),
        )],
        ..Default::default()
    }
}

pub fn encrypted_room(human: &Human) -> String {
    human.create_room(json!({
        "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "",
                           "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    }))
}

/// The agent's device keys as another user's `/keys/query` finds them.
pub fn device_keys(human: &Human, user: &str) -> Option<Value> {
    let body = json!({"device_keys": {user: []}});
    let answer = human.call_ok(Method::POST, &["keys", "query"], &[], Some(&body));
    let device = answer["device_keys"][user][DEVICE].clone();
    (!device.is_null()).then_some(device)
}

/// The agent's message into `room`, through the bridge; answers its event id.
pub fn agent_says(stack: &Stack, agent: &str, room: &str, body: &str) -> String {
    let request = json!({"room_id": room, "agent": agent, "body": body});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &request);
    assert!(status.is_success(), "{status}: {answer}");
    answer["event_id"].as_str().expect("event_id").to_owned()
}

/// `mosaic_as_e2ee_events_total` of `outcome`.
pub fn events_total(stack: &Stack, outcome: &str) -> f64 {
    let name = "mosaic_as_e2ee_events_total";
    metric(&stack.metrics(), name, &[("outcome", outcome)])
}

/// What the agent's inbox holds for `event_id`, once it is there.
pub fn inbox_item(stack: &Stack, agent: &str, event_id: &str) -> Value {
    let inbox = stack.wait_inbox(agent, &[event_id.to_owned()], WAIT);
    inbox
        .into_iter()
        .find(|e| e["event_id"] == event_id)
        .expect("the item")
}

/// An agent (`prefix`), and a human with a crypto client on their phone, in an encrypted
/// room the human made; once the agent's device keys are published.
pub struct Scene {
    pub agent: String,
    pub user: String,
    pub alice: Human,
    pub phone: NioClient,
    pub room: String,
}

/// [`scene`] after a first message from the phone, which the agent read decrypted: the
/// phone has the agent's device and an Olm session with it by then.
pub fn greeted_scene(stack: &Stack, prefix: &str) -> Scene {
    let mut scene = scene(stack, prefix);
    let first = scene.phone.send(&scene.room, "first");
    assert_eq!(inbox_item(stack, &scene.agent, &first)["decrypted"], true);
    scene
}

pub fn scene(stack: &Stack, prefix: &str) -> Scene {
    let agent = super::unique(prefix);
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let phone = NioClient::login(stack.synapse.base_url(), &alice, "ALICEPHONE");
    let room = encrypted_room(&alice);
    alice.invite(&room, &user);
    wait_until(WAIT, "the agent's device keys are published", || {
        device_keys(&alice, &user)
    });
    Scene {
        agent,
        user,
        alice,
        phone,
        room,
    }
}
