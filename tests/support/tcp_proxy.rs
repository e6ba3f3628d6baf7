//! A TCP proxy on loopback that a test can cut: [`TcpProxy::cut`] closes every connection
//! through it and closes each new one at once (the server behind it "goes away", as when a
//! database host or its network fails), [`TcpProxy::restore`] lets connections through
//! again. Between the two, bytes pass unchanged.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// What the accepting thread and the test share.
#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    /// Set when the handle is dropped: nothing passes any more.
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Both sockets of every open connection, by id, so that a cut can close them.
    open: Mutex<HashMap<u64, [TcpStream; 2]>>,
    /// Connections refused while cut.
    refused: AtomicU64,
}

pub struct TcpProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`
    /// (`host:port`).
    pub fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TCP proxy");
        let port = listener.local_addr().expect("its address").port();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let upstream = upstream.to_owned();
        thread::Builder::new()
            .name("tcp-proxy".into())
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    if accepting.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    if accepting.cut.load(Ordering::SeqCst) {
                        accepting.refused.fetch_add(1, Ordering::Relaxed);
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    let (shared, upstream) = (accepting.clone(), upstream.clone());
                    thread::spawn(move || {
                        let _ = forward(&shared, client, &upstream);
                    });
                }
            })
            .expect("start the TCP proxy");
        TcpProxy { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every open connection and, until [`TcpProxy::restore`], each new one.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        let open: Vec<_> = lock(&self.shared.open).drain().collect();
        for (_, sockets) in open {
            for s in sockets {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Connections closed on arrival because the proxy was cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accepting thread, which then sees `closed` and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Joins `client` to a new connection to `upstream` until either side ends or a cut.
fn forward(shared: &Shared, client: TcpStream, upstream: &str) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut open = lock(&shared.open);
        // A cut between the accept and here: this connection is cut too.
        if shared.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        open.insert(id, [client.try_clone()?, server.try_clone()?]);
    }
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    let _ = io::copy(&mut from_server, &mut to_client);
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = from_server.shutdown(Shutdown::Both);
    let _ = up.join();
    lock(&shared.open).remove(&id);
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
