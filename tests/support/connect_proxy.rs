//! An HTTP `CONNECT` proxy on loopback, for tests of the daemon's proxy support: it records
//! each tunnel's request line and joins the client to the destination (on loopback only; a
//! destination elsewhere is refused with 403).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

pub struct ConnectProxy {
    port: u16,
    tunnels: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// Listens on a free loopback port until the test process ends.
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("its address").port();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        thread::Builder::new()
            .name("connect-proxy".into())
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    let seen = seen.clone();
                    thread::spawn(move || tunnel(client, &seen));
                }
            })
            .expect("start the proxy");
        ConnectProxy { port, tunnels }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines of the tunnels asked for (`CONNECT host:port HTTP/1.1`).
    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().expect("clone the client socket"));
    let mut request = String::new();
    if reader.read_line(&mut request).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        if header == "\r\n" {
            break;
        }
    }
    let request = request.trim_end().to_owned();
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());
    let target = request.split_whitespace().nth(1).unwrap_or("").to_owned();
    let loopback = target.starts_with("localhost:") || target.starts_with("127.0.0.1:");
    let mut client = client;
    let upstream = match request.starts_with("CONNECT ") && loopback {
        true => TcpStream::connect(&target).ok(),
        false => None,
    };
    let Some(upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut up_read, mut up_write) = (
        upstream.try_clone().expect("clone the upstream socket"),
        upstream,
    );
    let mut client_write = client;
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
    });
    // The reader may hold bytes the client sent after its request head.
    let _ = std::io::copy(&mut reader, &mut up_write);
    let _ = up_write.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
}
