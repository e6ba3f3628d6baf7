//! What a test scripts and reads: the endpoints the mock tells apart, the faults it can
//! play instead of an answer, and its records of requests and the events they made.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The Client-Server endpoints the daemon calls (plus `Other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /_matrix/client/v1/appservice/{id}/ping`
    Ping,
    /// `POST /_matrix/client/v3/register`
    Register,
    /// `POST /_matrix/client/v3/join/{room}`
    Join,
    /// `POST /_matrix/client/v3/rooms/{room}/invite`
    Invite,
    /// `POST /_matrix/client/v3/rooms/{room}/leave`
    Leave,
    /// `PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn}`
    Send,
    /// `PUT /_matrix/client/v3/rooms/{room}/redact/{event}/{txn}`
    Redact,
    /// `POST /_matrix/client/v3/rooms/{room}/receipt/{type}/{event}` and
    /// `POST /_matrix/client/v3/rooms/{room}/read_markers`
    Receipt,
    /// `PUT /_matrix/client/v3/rooms/{room}/state/{type}/{state_key}`
    State,
    /// `PUT /_matrix/client/v3/rooms/{room}/typing/{user}`
    Typing,
    /// `POST /_matrix/client/v3/createRoom`
    CreateRoom,
    /// `GET /_matrix/client/v3/directory/room/{alias}`
    Directory,
    /// `GET /_matrix/client/v3/rooms/{room}/state/{type}/{state_key}`
    StateRead,
    /// `GET /_matrix/client/versions` (asked instead of the ping by a replica that is not
    /// the leader, on a PostgreSQL store)
    Versions,
    /// `GET /_matrix/client/v3/capabilities`
    Capabilities,
    /// `GET|PUT /_matrix/client/v3/profile/{user}/{field}`
    Profile,
    /// `POST /_matrix/media/v3/upload`
    Upload,
    /// `GET /_matrix/client/v3/rooms/{room}/messages`, `.../state`, `.../joined_members`
    /// (an empty room: no history, no state, no members)
    RoomRead,
    /// Anything else (answered 404 `M_UNRECOGNIZED`).
    Other,
}

/// What to do with one request instead of the normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status, JSON body and extra headers; the request has no effect.
    Answer {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// Keep the connection open without answering for `duration`, then close it. With
    /// `processed`, the request takes effect first (a send creates its event), as when a
    /// homeserver commits and the answer is lost.
    Hang { duration: Duration, processed: bool },
    /// Close the connection right after reading the request; no effect.
    Close,
    /// Answer normally, after a delay.
    Delay(Duration),
}

impl Fault {
    /// A Matrix error answer.
    pub fn error(status: u16, errcode: &str) -> Fault {
        Fault::Answer {
            status,
            body: json!({ "errcode": errcode, "error": format!("mock {status} {errcode}") }),
            headers: Vec::new(),
        }
    }

    /// A bare 5xx (or any status) with `M_UNKNOWN`.
    pub fn status(status: u16) -> Fault {
        Fault::error(status, "M_UNKNOWN")
    }

    /// 429 `M_LIMIT_EXCEEDED` with `retry_after_ms` in the body.
    pub fn rate_limited(retry_after_ms: u64) -> Fault {
        Fault::Answer {
            status: 429,
            body: json!({
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too Many Requests",
                "retry_after_ms": retry_after_ms,
            }),
            headers: Vec::new(),
        }
    }

    /// Hang without effect.
    pub fn hang(duration: Duration) -> Fault {
        Fault::Hang {
            duration,
            processed: false,
        }
    }

    /// Take effect, then hang without answering.
    pub fn hang_processed(duration: Duration) -> Fault {
        Fault::Hang {
            duration,
            processed: true,
        }
    }
}

/// What the mock did with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still being handled (held, delayed or hanging).
    Pending,
    /// Answered with this status.
    Answered(u16),
    /// Hung and closed without an answer.
    Hung,
    /// Closed without an answer.
    Closed,
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Request {
    /// Index in arrival order.
    pub seq: usize,
    pub at: Instant,
    pub method: String,
    /// The raw path (percent-encoded, no query).
    pub path: String,
    /// Decoded path segments.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
    pub endpoint: Endpoint,
    /// Room id (or alias) in the path, if any.
    pub room: Option<String>,
    /// Event type of sends and state events.
    pub event_type: Option<String>,
    /// Transaction id of sends.
    pub txn_id: Option<String>,
    /// State key of state events.
    pub state_key: Option<String>,
    pub outcome: Outcome,
}

impl Request {
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The masqueraded user (`?user_id=`).
    pub fn user_id(&self) -> Option<&str> {
        self.query_param("user_id")
    }
}

/// An event the mock created (a send or a state event).
#[derive(Clone, Debug)]
pub struct Event {
    pub event_id: String,
    pub room: String,
    pub sender: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub txn_id: Option<String>,
    pub content: Value,
    pub at: Instant,
}
