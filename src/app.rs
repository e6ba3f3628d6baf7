//! Assembles and runs the daemon: store, group-commit writer, services, arbiter pool,
//! supervisor, HTTP server, the homeserver ping loop and the retention job; then shuts
//! down in order when the injected `shutdown` future completes.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use actix::{Actor, Arbiter};
use actix_web::{middleware::from_fn, web, App, HttpServer};

use crate::{
    actors::{
        registry::AgentRegistry,
        supervisor::{PrepareShutdown, Supervisor},
        ActorNotices, Hub,
    },
    api,
    config::Config,
    inbound::{AfterCommit, Directory},
    inbox::Inboxes,
    metrics::METRICS,
    services::{Services, Shared},
    store::{self, writer::CommitWriter, MembershipChange, Retention, StoreError},
};

/// Transactions waiting for the group-commit writer.
const WRITER_QUEUE: usize = 4096;
/// How often the homeserver is pinged while it is up / down. `/ready` reports the last
/// ping, so the up interval (plus the ping's own retry deadline) bounds how long an outage
/// goes unnoticed.
const PING_UP: Duration = Duration::from_secs(10);
const PING_DOWN: Duration = Duration::from_secs(2);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Server(std::io::Error),
}

/// Runs the daemon until `shutdown` completes. Must run inside an actix system.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    let listen = config.appservice.listen;
    let store = store::open(&config.store.url).await?;
    let shared = Shared {
        inboxes: Arc::new(Inboxes::new(store.clone(), config.limits.streams_per_agent)),
        directory: Arc::new(Directory::default()),
        agents: Arc::new(AgentRegistry::new()),
        store,
    };
    let after_commit = Arc::new(AfterCommit::new(
        shared.inboxes.clone(),
        shared.directory.clone(),
    ));
    let writer = CommitWriter::spawn(shared.store.clone(), WRITER_QUEUE, after_commit.clone());
    let svc = Services::new(config, shared, writer);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    svc.agents.start_arbiters(workers);
    restore_directory(&svc).await?;

    let supervisor_arbiter = Arbiter::new();
    let s = svc.clone();
    let supervisor =
        Supervisor::start_in_arbiter(&supervisor_arbiter.handle(), move |_| Supervisor::new(s));
    after_commit.connect(Arc::new(ActorNotices {
        agents: svc.agents.clone(),
        supervisor: supervisor.clone(),
    }));
    let hub = Hub {
        svc: svc.clone(),
        supervisor: supervisor.clone(),
    };
    let max_body = svc.config.limits.max_body_bytes;
    let hub_data = web::Data::new(hub);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(hub_data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                api::error::ApiError::InvalidParam(format!("query: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                api::error::ApiError::InvalidParam(format!("path: {e}")).into()
            }))
            .wrap(from_fn(api::request_context))
            .configure(api::configure)
    })
    .workers(workers)
    .on_connect(api::hangup::on_connect)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(listen)
    .map_err(|source| AppError::Bind {
        addr: listen,
        source,
    })?
    .run();
    let handle = server.handle();
    tracing::info!(%listen, homeserver = %svc.config.homeserver.url, "mosaic-as listening");

    let ping = actix_rt::spawn(ping_loop(svc.clone()));
    let retention = actix_rt::spawn(retention_loop(svc.clone()));
    let server_task = actix_rt::spawn(server);

    shutdown.await;
    tracing::info!("shutting down: stopping HTTP, clearing typing indicators");
    handle.stop(true).await;
    let _ = supervisor
        .send(PrepareShutdown {
            within: Duration::from_secs(5),
        })
        .await;
    ping.abort();
    retention.abort();
    svc.agents.stop_arbiters();
    supervisor_arbiter.stop();
    match server_task.await {
        Ok(Err(e)) => Err(AppError::Server(e)),
        _ => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Rebuilds the routing directory from the store.
async fn restore_directory(svc: &Arc<Services>) -> Result<(), StoreError> {
    let memberships = svc.store.memberships().await?;
    let n = memberships.len();
    for (slug, room_id) in memberships {
        svc.directory.apply(&MembershipChange {
            slug,
            room_id,
            joined: true,
        });
    }
    for (slug, name) in svc.store.display_names().await? {
        svc.directory.set_display_name(&slug, Some(&name));
    }
    tracing::info!(memberships = n, "routing directory restored");
    Ok(())
}

/// Pings the homeserver at start-up (which also makes it redeliver queued transactions)
/// and then periodically, logging every change of state.
async fn ping_loop(svc: Arc<Services>) {
    let mut was_ok: Option<bool> = None;
    loop {
        let result = svc.hs.check().await;
        let ok = result.is_ok();
        if was_ok != Some(ok) {
            match &result {
                Ok(()) => tracing::info!(
                    url = %svc.config.appservice.url,
                    "homeserver ping succeeded: the homeserver reaches mosaic-as"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    homeserver = %svc.config.homeserver.url,
                    "homeserver ping failed; retrying (bridge calls answer 503 while it is unreachable)"
                ),
            }
        }
        was_ok = Some(ok);
        actix_rt::time::sleep(if ok { PING_UP } else { PING_DOWN }).await;
    }
}

/// Applies retention (inboxes, handled transactions) and refreshes the inbox depth gauge.
async fn retention_loop(svc: Arc<Services>) {
    let inbox = &svc.config.inbox;
    let keep = Retention::inbox(inbox.retention_count, inbox.retention_age_s);
    loop {
        match svc.store.prune(&keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "inbox retention applied"),
            Err(e) => tracing::warn!(error = %e, "inbox retention failed"),
        }
        if let Ok(depth) = svc.store.inbox_depth().await {
            METRICS.inbox_depth.set(depth);
        }
        actix_rt::time::sleep(RETENTION_EVERY).await;
    }
}
