//! A scripted mock homeserver in the test process, for the daemon's outbound side.
//!
//! [`MockHs::start`] serves the Client-Server endpoints the daemon calls on a free
//! loopback port (a small HTTP/1.1 server on its own tokio runtime, so that it can
//! hang, drop connections and go down exactly as a test asks), answers them with
//! sensible defaults, and records every request (method, path, query, body, time,
//! what it answered). Sends are deduplicated by request path like Synapse does for an
//! appservice token: the same room, event type and transaction id give the same event
//! id, whichever user is masqueraded.
//!
//! Faults are scripted per [`Endpoint`]: [`MockHs::script`] queues faults consumed one
//! per request, [`MockHs::always`] applies one to every request until cleared,
//! [`MockHs::hold`] parks requests until [`MockHs::release`], and
//! [`MockHs::go_down`] / [`MockHs::come_up`] close the listener (connection refused)
//! and reopen it on the same port.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    /// `PUT /_matrix/client/v3/rooms/{room}/state/{type}/{state_key}`
    State,
    /// `PUT /_matrix/client/v3/rooms/{room}/typing/{user}`
    Typing,
    /// `POST /_matrix/client/v3/createRoom`
    CreateRoom,
    /// `GET /_matrix/client/v3/capabilities`
    Capabilities,
    /// `GET|PUT /_matrix/client/v3/profile/{user}/{field}`
    Profile,
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

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    events: Vec<Event>,
    /// Send path → event id (Synapse's per-appservice transaction cache).
    txns: HashMap<String, String>,
    registered: HashSet<String>,
    scripts: HashMap<Endpoint, VecDeque<Fault>>,
    always: HashMap<Endpoint, Fault>,
    room_version: String,
    counter: u64,
    /// Periods during which the listener was closed.
    down_periods: Vec<(Instant, Option<Instant>)>,
}

struct Shared {
    server_name: String,
    /// Distinguishes ids of different mocks in one test process.
    tag: String,
    state: Mutex<State>,
    /// Endpoints whose requests are parked.
    holds: watch::Sender<HashSet<Endpoint>>,
    /// True while the mock is down.
    down: watch::Sender<bool>,
}

enum Action {
    Respond {
        delay: Duration,
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    Hang(Duration),
    Close,
}

struct Inner {
    shared: Arc<Shared>,
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
    accept: Mutex<Option<JoinHandle<()>>>,
    /// Serialises go_down / come_up.
    switch: Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The mock homeserver; clones share it. Stops when the last clone is dropped.
#[derive(Clone)]
pub struct MockHs {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockHs {
    /// Starts a mock for `server_name` (user ids `@x:<server_name>`), room version "12".
    pub fn start(server_name: &str) -> MockHs {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mock-hs")
            .enable_all()
            .build()
            .expect("mock homeserver runtime");
        let shared = Arc::new(Shared {
            server_name: server_name.to_owned(),
            tag: super::process::random_hex(3),
            state: Mutex::new(State {
                room_version: "12".into(),
                ..State::default()
            }),
            holds: watch::channel(HashSet::new()).0,
            down: watch::channel(false).0,
        });
        let port = super::ports::free_port();
        let inner = Arc::new(Inner {
            shared,
            port,
            runtime: Some(runtime),
            accept: Mutex::new(None),
            switch: Mutex::new(()),
        });
        let mock = MockHs { inner };
        mock.open_listener();
        mock
    }

    /// A mock for [`SERVER_NAME`](super::SERVER_NAME) and a daemon (own scratch dir)
    /// pointed at it, started and ready.
    pub fn with_daemon(name: &str, options: super::DaemonOptions) -> (MockHs, super::Daemon) {
        let mock = MockHs::start(super::SERVER_NAME);
        let daemon = ready_daemon(&mock, name, options);
        (mock, daemon)
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.inner.runtime.as_ref().expect("runtime alive")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.shared.state)
    }

    /// Binds the port (again) and starts accepting.
    fn open_listener(&self) {
        let port = self.inner.port;
        let listener = {
            let _guard = self.rt().enter();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match bind(port) {
                    Ok(l) => break l,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("mock homeserver: rebinding port {port}: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("mock homeserver cannot bind 127.0.0.1:{port}: {e}"),
                }
            }
        };
        let shared = self.inner.shared.clone();
        let handle = self.rt().spawn(accept_loop(shared, listener));
        *lock(&self.inner.accept) = Some(handle);
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    pub fn server_name(&self) -> &str {
        &self.inner.shared.server_name
    }

    /// Queues faults for the next requests to `endpoint`, one per request.
    pub fn script(&self, endpoint: Endpoint, faults: impl IntoIterator<Item = Fault>) {
        self.state()
            .scripts
            .entry(endpoint)
            .or_default()
            .extend(faults);
    }

    /// Applies `fault` to every request to `endpoint` (after its script) until cleared.
    pub fn always(&self, endpoint: Endpoint, fault: Fault) {
        self.state().always.insert(endpoint, fault);
    }

    pub fn clear_always(&self, endpoint: Endpoint) {
        self.state().always.remove(&endpoint);
    }

    /// The first `n` joins answer 403 `M_FORBIDDEN` (agent not invited).
    pub fn fail_joins(&self, n: usize) {
        self.script(
            Endpoint::Join,
            (0..n).map(|_| Fault::error(403, "M_FORBIDDEN")),
        );
    }

    /// The default room version reported by `/capabilities`.
    pub fn set_room_version(&self, version: &str) {
        self.state().room_version = version.to_owned();
    }

    /// Parks every request to `endpoint` (recorded on arrival) until [`MockHs::release`].
    pub fn hold(&self, endpoint: Endpoint) {
        self.inner.shared.holds.send_modify(|h| {
            h.insert(endpoint);
        });
    }

    pub fn release(&self, endpoint: Endpoint) {
        self.inner.shared.holds.send_modify(|h| {
            h.remove(&endpoint);
        });
    }

    /// Closes the listener and every open connection (requests being handled are dropped
    /// without effect): connections are refused until [`MockHs::come_up`]. Returns once
    /// the port is closed.
    pub fn go_down(&self) {
        let _switch = lock(&self.inner.switch);
        if *self.inner.shared.down.borrow() {
            return;
        }
        {
            // Under the state lock: no request takes effect after `down_periods` says down.
            let mut st = self.state();
            self.inner.shared.down.send_replace(true);
            st.down_periods.push((Instant::now(), None));
        }
        if let Some(handle) = lock(&self.inner.accept).take() {
            let _ = self.rt().block_on(handle);
        }
    }

    /// Listens again on the same port.
    pub fn come_up(&self) {
        let _switch = lock(&self.inner.switch);
        if !*self.inner.shared.down.borrow() {
            return;
        }
        {
            let mut st = self.state();
            self.inner.shared.down.send_replace(false);
            if let Some(last) = st.down_periods.last_mut() {
                last.1 = Some(Instant::now());
            }
        }
        self.open_listener();
    }

    /// Goes down now and comes back after `duration` (in a background thread).
    pub fn down_for(&self, duration: Duration) -> std::thread::JoinHandle<()> {
        self.go_down();
        let mock = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            mock.come_up();
        })
    }

    /// When the mock went down and came back up.
    pub fn down_periods(&self) -> Vec<(Instant, Option<Instant>)> {
        self.state().down_periods.clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// Requests to one endpoint, in arrival order.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<Request> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .cloned()
            .collect()
    }

    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .count()
    }

    /// `m.room.message` events, in creation order.
    pub fn messages(&self) -> Vec<Event> {
        self.state()
            .events
            .iter()
            .filter(|e| e.event_type == "m.room.message")
            .cloned()
            .collect()
    }

    /// Users registered so far.
    pub fn registered(&self) -> HashSet<String> {
        self.state().registered.clone()
    }

    /// Polls `f` every 20 ms until it gives a value; panics after `timeout`.
    pub fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&MockHs) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("mock homeserver: timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut down = shared.down.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(shared.clone(), stream));
                }
            }
            _ = down.wait_for(|d| *d) => return,
        }
    }
}

/// One parsed HTTP request.
struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (Content-Length bodies only); `None` when the peer closed or the
/// request cannot be read.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RawRequest> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_owned();
            let target = first.next()?.to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if headers
                .iter()
                .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
            {
                eprintln!("mock homeserver: chunked request bodies are not supported");
                return None;
            }
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16 * 1024];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Some(RawRequest {
                method,
                target,
                headers,
                body,
            });
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut down = shared.down.subscribe();
    let mut holds = shared.holds.subscribe();
    let mut buf = Vec::new();
    loop {
        let raw = tokio::select! {
            r = read_request(&mut stream, &mut buf) => match r {
                Some(r) => r,
                None => return,
            },
            _ = down.wait_for(|d| *d) => return,
        };
        let keep_alive = !raw
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let (seq, endpoint) = shared.arrive(&raw);
        tokio::select! {
            _ = holds.wait_for(|h| !h.contains(&endpoint)) => {}
            _ = down.wait_for(|d| *d) => {
                shared.set_outcome(seq, Outcome::Closed);
                return;
            }
        }
        match shared.decide(seq) {
            Action::Respond {
                delay,
                status,
                body,
                headers,
            } => {
                if !delay.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = down.wait_for(|d| *d) => {
                            shared.set_outcome(seq, Outcome::Closed);
                            return;
                        }
                    }
                }
                let text = body.to_string();
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    reason(status),
                    text.len()
                );
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if !keep_alive {
                    head.push_str("connection: close\r\n");
                }
                head.push_str("\r\n");
                head.push_str(&text);
                shared.set_outcome(seq, Outcome::Answered(status));
                if stream.write_all(head.as_bytes()).await.is_err() || !keep_alive {
                    return;
                }
            }
            Action::Hang(duration) => {
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = down.wait_for(|d| *d) => {}
                }
                shared.set_outcome(seq, Outcome::Hung);
                return;
            }
            Action::Close => {
                shared.set_outcome(seq, Outcome::Closed);
                return;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Mock",
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi * 16 + lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Records a request on arrival.
    fn arrive(&self, raw: &RawRequest) -> (usize, Endpoint) {
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

    fn set_outcome(&self, seq: usize, outcome: Outcome) {
        self.state().requests[seq].outcome = outcome;
    }

    /// Picks the fault (if any) and applies the request's effect.
    fn decide(&self, seq: usize) -> Action {
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
            Endpoint::Send => {
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
                let id = self.next_id(st);
                let room_id = if st.room_version.parse::<u32>().is_ok_and(|v| v >= 12) {
                    format!("!mockRoom{id}")
                } else {
                    format!("!mockRoom{id}:{}", self.server_name)
                };
                (200, json!({ "room_id": room_id }))
            }
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

/// A `mosaic-as` daemon (own scratch dir) pointed at `mock`, started and ready.
pub fn ready_daemon(mock: &MockHs, name: &str, options: super::DaemonOptions) -> super::Daemon {
    let mut daemon = super::Daemon::standalone(name, &mock.url(), mock.server_name(), options);
    daemon.start();
    daemon.wait_ready(Duration::from_secs(20));
    daemon
}
