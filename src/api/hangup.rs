//! Noticing that an HTTP/1 client hung up while its request waits. actix-web keeps running
//! a handler whose client has gone (actix-web#1313), so a long-poll would hold its stream
//! slot until its timeout, and a client reconnecting meanwhile could be refused for want of
//! slots. Each accepted connection keeps a duplicate of its socket ([`on_connect`]); a
//! waiting handler watches that duplicate for the end of the stream ([`hung_up`]), and an
//! SSE stream does so between its reads ([`PeerWatch`]).

use std::{any::Any, net::TcpStream as StdTcpStream, time::Duration};

use actix_web::{dev::Extensions, rt::net::TcpStream, HttpRequest};

/// A duplicate of a connection's socket (closed with the connection's extensions).
struct PeerSocket(StdTcpStream);

/// `HttpServer::on_connect` hook: keeps a duplicate of each TCP connection's socket.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    let Some(tcp) = conn.downcast_ref::<TcpStream>() else {
        return;
    };
    let dup = std::os::fd::AsFd::as_fd(tcp)
        .try_clone_to_owned()
        .map(StdTcpStream::from);
    match dup {
        Ok(sock) => {
            ext.insert(PeerSocket(sock));
        }
        Err(e) => tracing::debug!(error = %e, "cannot watch a connection for hang-ups"),
    }
}

/// How long a request waits before its connection is watched: most long-polls are answered
/// sooner, and watching costs four system calls (duplicate, register, deregister, close).
const WATCH_AFTER: Duration = Duration::from_secs(1);

/// Completes when the client of `req` has closed its connection, noticed from
/// [`WATCH_AFTER`] on (see [`PeerWatch::closed`]).
pub async fn hung_up(req: &HttpRequest) {
    tokio::time::sleep(WATCH_AFTER).await;
    PeerWatch::of(req).closed().await
}

/// A watch on the connection of one request, for as long as a response lasts.
pub struct PeerWatch(Option<TcpStream>);

impl PeerWatch {
    pub fn of(req: &HttpRequest) -> Self {
        Self(watched(req))
    }

    /// Completes when the client has closed its connection (end of stream or an error);
    /// never completes when that cannot be known: no socket kept, or the client sent more
    /// bytes (a pipelined request) rather than closing.
    pub async fn closed(&self) {
        if let Some(sock) = &self.0 {
            let mut byte = [0u8; 1];
            match sock.peek(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        std::future::pending().await
    }
}

impl crate::inbox::HangUp for PeerWatch {
    async fn closed(&self) {
        PeerWatch::closed(self).await
    }
}

/// A socket registered with this worker's reactor, from the connection's duplicate.
fn watched(req: &HttpRequest) -> Option<TcpStream> {
    let peer = req.conn_data::<PeerSocket>()?;
    let sock = peer.0.try_clone().ok()?;
    // The duplicate shares the connection's file status, which is already non-blocking.
    TcpStream::from_std(sock).ok()
}
