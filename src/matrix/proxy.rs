//! Proxies on the way to the homeserver, from the environment as curl reads it:
//! `HTTPS_PROXY` for an https homeserver, `HTTP_PROXY` for an http one, `ALL_PROXY` for
//! either, except for the hosts `NO_PROXY` names (hyper-util's proxy matcher, read once at
//! start-up). A proxied connection is an HTTP `CONNECT` tunnel (hyper-util's `Tunnel`),
//! itself over TLS when the proxy's URL is https, with the proxy URL's user and password as
//! `Proxy-Authorization: Basic`; the homeserver's own TLS runs inside the tunnel. A plain-http
//! homeserver is tunnelled too, so the proxy must allow `CONNECT` to its port. SOCKS proxies
//! are not supported: connections through one fail and say so.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::{
    client::{
        legacy::connect::{proxy::Tunnel, HttpConnector},
        proxy::matcher::Matcher,
    },
    rt::TokioIo,
};
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection to the homeserver's host: direct, or the far end of a tunnel.
pub type Connection = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The proxy rules of the process environment; logs the route to `homeserver` once.
pub fn from_env(homeserver: &url::Url) -> Arc<Matcher> {
    let proxies = Matcher::from_env();
    match homeserver.as_str().parse::<Uri>() {
        Ok(uri) => match proxies.intercept(&uri) {
            // The proxy's scheme, host and port only: its URL may carry a password.
            Some(proxy) => tracing::info!(
                proxy_scheme = proxy.uri().scheme_str(),
                proxy_host = proxy.uri().host(),
                proxy_port = proxy.uri().port_u16(),
                "homeserver connections go through a proxy (from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY)"
            ),
            None => tracing::debug!("homeserver connections are direct (no proxy applies)"),
        },
        Err(e) => tracing::warn!(error = %e, "cannot match the homeserver URL against proxy rules"),
    }
    Arc::new(proxies)
}

/// Connects to a destination directly or through its proxy (a tower service, as hyper's
/// client wants its connectors).
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    /// Connections to a proxy: TLS when its URL is https, with the client's roots.
    to_proxy: HttpsConnector<HttpConnector>,
    proxies: Arc<Matcher>,
}

impl ProxyConnector {
    pub fn new(
        direct: HttpConnector,
        to_proxy: HttpsConnector<HttpConnector>,
        proxies: Arc<Matcher>,
    ) -> Self {
        Self {
            direct,
            to_proxy,
            proxies,
        }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Connection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Connection, BoxError>> + Send>>;

    /// Always ready: each call works on its own clone of the inner connectors.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.proxies.intercept(&dst) else {
            let mut direct = self.direct.clone();
            return Box::pin(async move {
                std::future::poll_fn(|cx| direct.poll_ready(cx)).await?;
                Ok(MaybeHttpsStream::Http(direct.call(dst).await?))
            });
        };
        if !matches!(proxy.uri().scheme_str(), Some("http" | "https")) {
            let scheme = proxy.uri().scheme_str().unwrap_or("").to_owned();
            return Box::pin(async move {
                Err(format!("{scheme} proxies are not supported; use an http(s) proxy").into())
            });
        }
        let mut tunnel = Tunnel::new(proxy.uri().clone(), self.to_proxy.clone());
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move {
            std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
            Ok(tunnel.call(dst).await?)
        })
    }
}

#[cfg(test)]
mod tests;
