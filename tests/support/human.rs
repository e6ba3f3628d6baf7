//! A human Matrix user driving the real homeserver's Client-Server API.
//!
//! Created through Synapse's shared-secret admin registration
//! (`/_synapse/admin/v1/register`: nonce + HMAC-SHA1 over
//! `nonce\0user\0password\0notadmin`). All calls are blocking; path segments
//! are percent-encoded (room ids, aliases and user ids contain `!#@:`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha1::Sha1;
use url::Url;

use super::process::random_hex;
use super::synapse::http_client;

/// Polls `f` every 100 ms until it returns `Some`, or panics naming `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A registered, logged-in human user.
#[derive(Clone)]
pub struct Human {
    pub user_id: String,
    pub localpart: String,
    pub password: String,
    pub access_token: String,
    base: Url,
    client: Client,
}

impl Human {
    /// Registers `localpart` (non-admin) via the shared secret; panics on failure
    /// (e.g. the user already exists).
    pub fn register(base_url: &str, shared_secret: &str, localpart: &str) -> Human {
        let client = http_client();
        let base = Url::parse(base_url).expect("homeserver URL");
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("base URL")
            .pop_if_empty()
            .extend(["_synapse", "admin", "v1", "register"]);
        let nonce_body: Value = client
            .get(url.clone())
            .send()
            .and_then(|r| r.json())
            .expect("GET /_synapse/admin/v1/register (nonce)");
        let nonce = nonce_body["nonce"].as_str().expect("nonce in answer");
        let password = random_hex(12);
        let mut mac = Hmac::<Sha1>::new_from_slice(shared_secret.as_bytes()).expect("HMAC key");
        for (i, part) in [nonce, localpart, &password, "notadmin"].iter().enumerate() {
            if i > 0 {
                mac.update(b"\0");
            }
            mac.update(part.as_bytes());
        }
        let body = json!({
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": false,
            "mac": hex::encode(mac.finalize().into_bytes()),
        });
        let resp = client
            .post(url)
            .json(&body)
            .send()
            .expect("POST admin register");
        let status = resp.status();
        let answer: Value = resp.json().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "registering {localpart} failed: {status} {answer}"
        );
        Human {
            user_id: answer["user_id"].as_str().expect("user_id").to_owned(),
            localpart: localpart.to_owned(),
            password,
            access_token: answer["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            base,
            client,
        }
    }

    /// `{base}/_matrix/client/v3/{segments...}` with each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("base URL")
            .pop_if_empty()
            .extend(["_matrix", "client", "v3"])
            .extend(segments);
        url
    }

    /// Any Client-Server call; answers the status and the JSON body (Null if none).
    pub fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self
            .client
            .request(method.clone(), url)
            .bearer_auth(&self.access_token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {segments:?} as {}: {e}", self.user_id));
        let status = resp.status();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Like [`Human::call`] but panics unless the answer is 2xx.
    pub fn call_ok(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Value {
        let (status, answer) = self.call(method.clone(), segments, query, body);
        assert!(
            status.is_success(),
            "{method} {segments:?} as {} answered {status}: {answer}",
            self.user_id
        );
        answer
    }

    /// `POST /createRoom` with `options` as the body; answers the room id.
    pub fn create_room(&self, options: Value) -> String {
        let answer = self.call_ok(Method::POST, &["createRoom"], &[], Some(&options));
        answer["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Creates a private space named `name`; answers its room id.
    pub fn create_space(&self, name: &str) -> String {
        self.create_room(json!({
            "name": name,
            "preset": "private_chat",
            "creation_content": {"type": "m.space"},
        }))
    }

    pub fn invite(&self, room_id: &str, user_id: &str) {
        let body = json!({"user_id": user_id});
        self.call_ok(
            Method::POST,
            &["rooms", room_id, "invite"],
            &[],
            Some(&body),
        );
    }

    /// Joins a room by id or alias; answers the room id.
    pub fn join(&self, room_or_alias: &str) -> String {
        let answer = self.call_ok(
            Method::POST,
            &["join", room_or_alias],
            &[],
            Some(&json!({})),
        );
        answer["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Sends an `m.room.message` of msgtype `m.text`; answers the event id.
    pub fn send_text(&self, room_id: &str, body: &str) -> String {
        self.send_event(
            room_id,
            "m.room.message",
            &json!({"msgtype": "m.text", "body": body}),
        )
    }

    /// Sends any timeline event; answers the event id.
    pub fn send_event(&self, room_id: &str, event_type: &str, content: &Value) -> String {
        static TXN: AtomicU64 = AtomicU64::new(0);
        let txn = format!("h{}-{}", TXN.fetch_add(1, Ordering::Relaxed), random_hex(4));
        let segments = ["rooms", room_id, "send", event_type, &txn];
        let answer = self.call_ok(Method::PUT, &segments, &[], Some(content));
        answer["event_id"].as_str().expect("event_id").to_owned()
    }

    /// Sets a state event; answers the event id.
    pub fn set_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        content: &Value,
    ) -> String {
        let segments = ["rooms", room_id, "state", event_type, state_key];
        let answer = self.call_ok(Method::PUT, &segments, &[], Some(content));
        answer["event_id"].as_str().expect("event_id").to_owned()
    }

    /// The latest 50 timeline events, newest first (`/messages?dir=b&limit=50`).
    pub fn messages(&self, room_id: &str) -> Vec<Value> {
        let query = [("dir", "b"), ("limit", "50")];
        let answer = self.call_ok(Method::GET, &["rooms", room_id, "messages"], &query, None);
        answer["chunk"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `/messages` until an event satisfies `pred`; answers that event.
    pub fn wait_message(
        &self,
        room_id: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_until(timeout, &format!("a matching event in {room_id}"), || {
            self.messages(room_id).into_iter().find(|e| pred(e))
        })
    }

    /// Every current state event of the room.
    pub fn state(&self, room_id: &str) -> Vec<Value> {
        let answer = self.call_ok(Method::GET, &["rooms", room_id, "state"], &[], None);
        answer.as_array().cloned().unwrap_or_default()
    }

    /// The content of one state event; `None` when it does not exist.
    pub fn state_event(&self, room_id: &str, event_type: &str, state_key: &str) -> Option<Value> {
        let segments = ["rooms", room_id, "state", event_type, state_key];
        match self.call(Method::GET, &segments, &[], None) {
            (status, content) if status.is_success() => Some(content),
            (StatusCode::NOT_FOUND, _) => None,
            (status, answer) => {
                panic!("GET state {event_type}/{state_key} in {room_id}: {status} {answer}")
            }
        }
    }

    /// `membership` of `user_id` in the room (`join`, `invite`, ...), if any.
    pub fn membership(&self, room_id: &str, user_id: &str) -> Option<String> {
        let content = self.state_event(room_id, "m.room.member", user_id)?;
        content["membership"].as_str().map(str::to_owned)
    }

    /// `GET /sync`, optionally from `since`, waiting up to `timeout_ms`, with an
    /// inline `filter`.
    pub fn sync(&self, since: Option<&str>, timeout_ms: u64, filter: Option<&Value>) -> Value {
        let timeout = timeout_ms.to_string();
        let filter = filter.map(Value::to_string);
        let mut query = vec![("timeout", timeout.as_str())];
        if let Some(since) = since {
            query.push(("since", since));
        }
        if let Some(filter) = &filter {
            query.push(("filter", filter.as_str()));
        }
        self.call_ok(Method::GET, &["sync"], &query, None)
    }

    /// User ids of the room's joined members.
    pub fn joined_members(&self, room_id: &str) -> Vec<String> {
        let answer = self.call_ok(
            Method::GET,
            &["rooms", room_id, "joined_members"],
            &[],
            None,
        );
        let joined = answer["joined"].as_object().cloned().unwrap_or_default();
        joined.keys().cloned().collect()
    }

    /// The room's ephemeral events of `event_type` as this human's `/sync` shows them
    /// right now (an initial sync filtered to them).
    pub fn ephemeral(&self, room_id: &str, event_type: &str) -> Vec<Value> {
        let filter = json!({
            "room": {
                "rooms": [room_id],
                "timeline": {"limit": 0},
                "state": {"types": []},
                "account_data": {"types": []},
                "ephemeral": {"types": [event_type]},
            },
            "presence": {"types": []},
            "account_data": {"types": []},
        });
        let sync = self.sync(None, 0, Some(&filter));
        let events = &sync["rooms"]["join"][room_id]["ephemeral"]["events"];
        let events = events.as_array().into_iter().flatten();
        events
            .filter(|e| e["type"] == event_type)
            .cloned()
            .collect()
    }

    /// Who is typing in the room right now, as this human's `/sync` shows it.
    pub fn typing_users(&self, room_id: &str) -> Vec<String> {
        self.ephemeral(room_id, "m.typing")
            .iter()
            .flat_map(|e| {
                e["content"]["user_ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect()
    }

    /// The events related to `event_id` by `rel_type` (`GET /v1/.../relations`).
    pub fn relations(&self, room_id: &str, event_id: &str, rel_type: &str) -> Vec<Value> {
        let mut url = self.url(&["rooms", room_id, "relations", event_id, rel_type]);
        url.set_path(&url.path().replacen("/client/v3/", "/client/v1/", 1));
        let resp = self
            .client
            .get(url)
            .bearer_auth(&self.access_token)
            .send()
            .expect("GET relations");
        assert!(resp.status().is_success(), "relations: {}", resp.status());
        let answer: Value = resp.json().expect("relations JSON");
        answer["chunk"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `user_id` is (`typing == true`) or is not typing in the room.
    pub fn wait_typing(&self, room_id: &str, user_id: &str, typing: bool, timeout: Duration) {
        let what = format!("{user_id} typing={typing} in {room_id}");
        wait_until(timeout, &what, || {
            (self.typing_users(room_id).iter().any(|u| u == user_id) == typing).then_some(())
        });
    }

    /// `GET /profile/{user_id}`: status and body.
    pub fn profile(&self, user_id: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &["profile", user_id], &[], None)
    }
}
