//! The mock's HTTP/1.1 server on its own tokio runtime: binding the port, accepting
//! connections, reading requests (Content-Length bodies only) and playing the action the
//! state decided for each (answer, hang or close), cut short when the mock goes down.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::script::Outcome;
use super::state::{Action, Shared};

/// A listener on 127.0.0.1:`port` (address reuse on, to rebind after going down).
pub(super) fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

/// Accepts connections until the mock goes down.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
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
pub(super) struct RawRequest {
    pub(super) method: String,
    pub(super) target: String,
    headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl RawRequest {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
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

/// Decodes `%XX` escapes (invalid ones are kept as they are).
pub(super) fn percent_decode(s: &str) -> String {
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
