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
//!
//! This file is the handle a test holds; `script` has the endpoints, faults and records,
//! `serve` the HTTP server, and `state` what the mock remembers and how it answers.

mod script;
mod serve;
mod state;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use script::{Endpoint, Event, Fault, Outcome, Request};
use serve::{accept_loop, bind};
use state::{lock, Shared, State};

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
    /// How many rooms createRoom made.
    pub fn rooms_created(&self) -> usize {
        self.state().rooms.len()
    }

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

/// A `mosaic-as` daemon (own scratch dir) pointed at `mock`, started and ready.
pub fn ready_daemon(mock: &MockHs, name: &str, options: super::DaemonOptions) -> super::Daemon {
    let mut daemon = super::Daemon::standalone(name, &mock.url(), mock.server_name(), options);
    daemon.start();
    daemon.wait_ready(Duration::from_secs(20));
    daemon
}
