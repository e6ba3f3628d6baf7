//! Tests of the proxy route through the whole transport, against a CONNECT proxy and a
//! homeserver on loopback.

use std::time::Duration;

use http::{HeaderValue, Method};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::mpsc,
};

use super::*;
use crate::matrix::{tls, transport::Transport};

/// A homeserver answering every request on a connection `200 {}`.
async fn homeserver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                while sock.read(&mut buf).await.unwrap_or(0) > 0 {
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                    if sock.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A CONNECT proxy that reports each request head it reads, answers `status`, and when
/// that is 200 joins the client to the destination.
async fn connect_proxy(status: u16) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (heads, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(sock);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if client.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let _ = heads.send(head);
                let answer = format!("HTTP/1.1 {status} Proxy Says So\r\n\r\n");
                if client.get_mut().write_all(answer.as_bytes()).await.is_err() || status != 200 {
                    return;
                }
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(client.get_mut(), &mut upstream).await;
                }
            });
        }
    });
    (addr, seen)
}

fn transport(proxies: Matcher) -> Transport {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Transport::new(tls::client_config(roots), Arc::new(proxies))
}

async fn get(transport: &Transport, url: &str) -> Result<u16, String> {
    let auth = HeaderValue::from_static("Bearer t");
    transport
        .send(
            Method::GET,
            url.parse().unwrap(),
            &auth,
            None,
            Duration::from_secs(5),
        )
        .await
        .map(|answer| answer.status)
        .map_err(|e| e.to_string())
}

/// A proxy for the homeserver's scheme carries the request through a CONNECT tunnel, with
/// the credentials of its URL as Basic proxy authorization.
#[tokio::test]
async fn a_matching_proxy_tunnels_the_connection() {
    let hs = homeserver().await;
    let (proxy, mut seen) = connect_proxy(200).await;
    let proxies = Matcher::builder()
        .http(format!("http://agent:s3cret@{proxy}"))
        .build();
    let t = transport(proxies);
    assert_eq!(get(&t, &format!("http://{hs}/x")).await, Ok(200));
    let head = seen.try_recv().expect("the proxy was asked");
    assert!(
        head.starts_with(&format!("CONNECT {hs} HTTP/1.1\r\n")),
        "{head}"
    );
    // base64("agent:s3cret")
    assert!(
        head.contains("Proxy-Authorization: Basic YWdlbnQ6czNjcmV0\r\n"),
        "{head}"
    );
    assert_eq!(get(&t, &format!("http://{hs}/y")).await, Ok(200));
    assert!(seen.try_recv().is_err(), "the pooled tunnel is used again");
}

/// `NO_PROXY` hosts, and schemes no proxy is set for, are reached directly.
#[tokio::test]
async fn no_proxy_hosts_and_other_schemes_go_direct() {
    let hs = homeserver().await;
    let (proxy, mut seen) = connect_proxy(200).await;
    let t = transport(
        Matcher::builder()
            .http(format!("http://{proxy}"))
            .no("127.0.0.1")
            .build(),
    );
    assert_eq!(get(&t, &format!("http://{hs}/x")).await, Ok(200));
    let t = transport(Matcher::builder().https(format!("http://{proxy}")).build());
    assert_eq!(get(&t, &format!("http://{hs}/x")).await, Ok(200));
    assert!(seen.try_recv().is_err(), "the proxy was not asked");
}

/// A proxy that refuses the tunnel fails the attempt with its reason; a SOCKS proxy is
/// refused by name.
#[tokio::test]
async fn a_refused_tunnel_and_a_socks_proxy_fail_clearly() {
    let hs = homeserver().await;
    let (proxy, _seen) = connect_proxy(407).await;
    let t = transport(Matcher::builder().http(format!("http://{proxy}")).build());
    let err = get(&t, &format!("http://{hs}/x")).await.unwrap_err();
    assert!(err.contains("proxy authorization required"), "{err}");

    let t = transport(Matcher::builder().all("socks5://127.0.0.1:9").build());
    let err = get(&t, &format!("http://{hs}/x")).await.unwrap_err();
    assert!(err.contains("socks5 proxies are not supported"), "{err}");
}
