//! The mock's state and its answers: each request is recorded on arrival, matched to its
//! [`Endpoint`], given its scripted fault if any, and otherwise answered (and takes
//! effect) as a homeserver would.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use super::script::{Endpoint, Event, Fault, Outcome, Request};
use super::serve::{percent_decode, RawRequest};

/// What the mock has seen and been told to do.
#[derive(Default)]
pub(super) struct State {
    pub(super) requests: Vec<Request>,
    pub(super) events: Vec<Event>,
    /// Send path → event id (Synapse's per-appservice transaction cache).
    pub(super) txns: HashMap<String, String>,
    pub(super) registered: HashSet<String>,
    pub(super) scripts: HashMap<Endpoint, VecDeque<Fault>>,
    pub(super) always: HashMap<Endpoint, Fault>,
    pub(super) room_version: String,
    pub(super) counter: u64,
    /// Rooms made by createRoom: room id → the content of its create event.
    pub(super) rooms: HashMap<String, Value>,
    /// Room aliases → room ids.
    pub(super) aliases: HashMap<String, String>,
    /// Periods during which the listener was closed.
    pub(super) down_periods: Vec<(Instant, Option<Instant>)>,
}

/// What the mock's handle and its connections share.
pub(super) struct Shared {
    pub(super) server_name: String,
    /// Distinguishes ids of different mocks in one test process.
    pub(super) tag: String,
    pub(super) state: Mutex<State>,
    /// Endpoints whose requests are parked.
    pub(super) holds: watch::Sender<HashSet<Endpoint>>,
    /// True while the mock is down.
    pub(super) down: watch::Sender<bool>,
}

/// What a connection does with a request.
pub(super) enum Action {
    Respond {
        delay: Duration,
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    Hang(Duration),
    Close,
}

/// Locks `m`, also after a panic elsewhere.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Records a request on arrival.
    pub(super) fn arrive(&self, raw: &RawRequest) -> (usize, Endpoint) {
        let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let body = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let owned = |i: usize| s.get(i).map(|v| (*v).to_owned());
        let (endpoint, room, event_type, txn_id, state_key) = match (raw.method.as_str(), &s[..]) {
            ("POST", ["_matrix", "client", "v1", "appservice", _, "ping"]) => {
                (Endpoint::Ping, None, None, None, None)
            }
            ("POST", ["_matrix", "client", "v3", "register"]) => {
                (Endpoint::Register, None, None, None, None)
            }
            ("POST", ["_matrix", "client", "v3", "join", _]) => {
                (Endpoint::Join, owned(4), None, None, None)
            }
            ("POST", ["_matrix", "client", "v3", "rooms", _, "invite"]) => {
                (Endpoint::Invite, owned(4), None, None, None)
            }
            ("POST", ["_matrix", "client", "v3", "rooms", _, "leave"]) => {
                (Endpoint::Leave, owned(4), None, None, None)
            }
            ("PUT", ["_matrix", "client", "v3", "rooms", _, "send", _, _]) => {
                (Endpoint::Send, owned(4), owned(6), owned(7), None)
            }
            ("PUT", ["_matrix", "client", "v3", "rooms", _, "redact", _, _]) => {
                (Endpoint::Redact, owned(4), None, owned(7), None)
            }
            ("POST", ["_matrix", "client", "v3", "rooms", _, "receipt", _, _])
            | ("POST", ["_matrix", "client", "v3", "rooms", _, "read_markers"]) => {
                (Endpoint::Receipt, owned(4), None, None, None)
            }
            ("PUT", ["_matrix", "client", "v3", "rooms", _, "state", _]) => (
                Endpoint::State,
                owned(4),
                owned(6),
                None,
                Some(String::new()),
            ),
            ("PUT", ["_matrix", "client", "v3", "rooms", _, "state", _, _]) => {
                (Endpoint::State, owned(4), owned(6), None, owned(7))
            }
            ("PUT", ["_matrix", "client", "v3", "rooms", _, "typing", _]) => {
                (Endpoint::Typing, owned(4), None, None, None)
            }
            ("POST", ["_matrix", "client", "v3", "createRoom"]) => {
                (Endpoint::CreateRoom, None, None, None, None)
            }
            ("GET", ["_matrix", "client", "v3", "directory", "room", _]) => {
                (Endpoint::Directory, None, None, None, owned(5))
            }
            ("GET", ["_matrix", "client", "v3", "rooms", _, "state", _, ..]) => (
                Endpoint::StateRead,
                owned(4),
                owned(6),
                None,
                Some(owned(7).unwrap_or_default()),
            ),
            (
                "GET",
                ["_matrix", "client", "v3", "rooms", _, "messages" | "state" | "joined_members"],
            ) => (Endpoint::RoomRead, owned(4), owned(5), None, None),
            ("POST", ["_matrix", "media", "v3", "upload"]) => {
                (Endpoint::Upload, None, None, None, None)
            }
            ("GET", ["_matrix", "client", "versions"]) => {
                (Endpoint::Versions, None, None, None, None)
            }
            ("GET", ["_matrix", "client", "v3", "capabilities"]) => {
                (Endpoint::Capabilities, None, None, None, None)
            }
            ("GET" | "PUT", ["_matrix", "client", "v3", "profile", _, _]) => {
                (Endpoint::Profile, None, None, None, None)
            }
            _ => (Endpoint::Other, None, None, None, None),
        };
        let mut st = self.state();
        let seq = st.requests.len();
        st.requests.push(Request {
            seq,
            at: Instant::now(),
            method: raw.method.clone(),
            path: path.to_owned(),
            segments,
            query,
            authorization: raw.header("authorization").map(str::to_owned),
            body,
            endpoint,
            room,
            event_type,
            txn_id,
            state_key,
            outcome: Outcome::Pending,
        });
        (seq, endpoint)
    }

    pub(super) fn set_outcome(&self, seq: usize, outcome: Outcome) {
        self.state().requests[seq].outcome = outcome;
    }

    /// Picks the fault (if any) and applies the request's effect.
    pub(super) fn decide(&self, seq: usize) -> Action {
        let mut st = self.state();
        if *self.down.borrow() {
            // Caught by the outage: dropped without effect.
            return Action::Close;
        }
        let req = st.requests[seq].clone();
        let fault = st
            .scripts
            .get_mut(&req.endpoint)
            .and_then(VecDeque::pop_front)
            .or_else(|| st.always.get(&req.endpoint).cloned());
        let normal = |st: &mut State, delay: Duration| {
            let (status, body) = self.process(st, &req);
            Action::Respond {
                delay,
                status,
                body,
                headers: Vec::new(),
            }
        };
        match fault {
            None => normal(&mut st, Duration::ZERO),
            Some(Fault::Delay(d)) => normal(&mut st, d),
            Some(Fault::Answer {
                status,
                body,
                headers,
            }) => Action::Respond {
                delay: Duration::ZERO,
                status,
                body,
                headers,
            },
            Some(Fault::Hang {
                duration,
                processed,
            }) => {
                if processed {
                    self.process(&mut st, &req);
                }
                Action::Hang(duration)
            }
            Some(Fault::Close) => Action::Close,
        }
    }

    fn next_id(&self, st: &mut State) -> String {
        st.counter += 1;
        format!("{}x{}", st.counter, self.tag)
    }

    fn new_event(&self, st: &mut State, req: &Request) -> String {
        let event_id = format!("$mockEv{}", self.next_id(st));
        st.events.push(Event {
            event_id: event_id.clone(),
            room: req.room.clone().unwrap_or_default(),
            sender: req.user_id().unwrap_or("").to_owned(),
            event_type: req.event_type.clone().unwrap_or_default(),
            state_key: req.state_key.clone(),
            txn_id: req.txn_id.clone(),
            content: req.body.clone(),
            at: Instant::now(),
        });
        event_id
    }

    /// The normal answer (and effect) of a request.
    fn process(&self, st: &mut State, req: &Request) -> (u16, Value) {
        match req.endpoint {
            Endpoint::Ping
            | Endpoint::Invite
            | Endpoint::Leave
            | Endpoint::Typing
            | Endpoint::Receipt
            | Endpoint::Profile => (200, json!({})),
            Endpoint::Register => {
                let username = req.body["username"].as_str().unwrap_or("unnamed");
                let user_id = format!("@{username}:{}", self.server_name);
                if st.registered.insert(user_id.clone()) {
                    (200, json!({ "user_id": user_id }))
                } else {
                    (
                        400,
                        json!({ "errcode": "M_USER_IN_USE", "error": "User ID already taken." }),
                    )
                }
            }
            Endpoint::Join => (200, json!({ "room_id": req.room })),
            Endpoint::Send | Endpoint::Redact => {
                let event_id = match st.txns.get(&req.path) {
                    Some(id) => id.clone(),
                    None => {
                        let id = self.new_event(st, req);
                        st.txns.insert(req.path.clone(), id.clone());
                        id
                    }
                };
                (200, json!({ "event_id": event_id }))
            }
            Endpoint::State => (200, json!({ "event_id": self.new_event(st, req) })),
            Endpoint::CreateRoom => {
                let alias = req.body["room_alias_name"]
                    .as_str()
                    .map(|name| format!("#{name}:{}", self.server_name));
                if alias.as_ref().is_some_and(|a| st.aliases.contains_key(a)) {
                    let error = "Room alias already taken";
                    return (400, json!({ "errcode": "M_ROOM_IN_USE", "error": error }));
                }
                let id = self.next_id(st);
                let room_id = if st.room_version.parse::<u32>().is_ok_and(|v| v >= 12) {
                    format!("!mockRoom{id}")
                } else {
                    format!("!mockRoom{id}:{}", self.server_name)
                };
                let mut create = req.body["creation_content"].clone();
                if !create.is_object() {
                    create = json!({});
                }
                create["room_version"] = json!(st.room_version);
                st.rooms.insert(room_id.clone(), create);
                if let Some(alias) = alias {
                    st.aliases.insert(alias, room_id.clone());
                }
                (200, json!({ "room_id": room_id }))
            }
            Endpoint::Directory => {
                let alias = req.state_key.as_deref().unwrap_or_default();
                match st.aliases.get(alias) {
                    Some(room) => (200, json!({ "room_id": room, "servers": [] })),
                    None => (
                        404,
                        json!({ "errcode": "M_NOT_FOUND", "error": "Room alias not found" }),
                    ),
                }
            }
            Endpoint::StateRead => {
                let room = req.room.as_deref().unwrap_or_default();
                match (req.event_type.as_deref(), st.rooms.get(room)) {
                    (Some("m.room.create"), Some(create)) => (200, create.clone()),
                    _ => (
                        404,
                        json!({ "errcode": "M_NOT_FOUND", "error": "Event not found" }),
                    ),
                }
            }
            Endpoint::Upload => {
                let id = self.next_id(st);
                let uri = format!("mxc://{}/mockMedia{id}", self.server_name);
                (200, json!({ "content_uri": uri }))
            }
            Endpoint::RoomRead => match req.event_type.as_deref() {
                Some("messages") => (200, json!({ "chunk": [], "start": "s0" })),
                Some("state") => (200, json!([])),
                _ => (200, json!({ "joined": {} })),
            },
            Endpoint::Versions => (200, json!({ "versions": ["v1.11", "v1.12"] })),
            Endpoint::Capabilities => (
                200,
                json!({ "capabilities": { "m.room_versions": {
                    "default": st.room_version, "available": {}
                } } }),
            ),
            Endpoint::Other => (
                404,
                json!({ "errcode": "M_UNRECOGNIZED", "error": "Unrecognized request" }),
            ),
        }
    }
}
