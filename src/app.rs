//! Assembles and runs the daemon: store, group-commit writer, services, arbiter pool,
//! supervisor, HTTP server, the homeserver ping loop and the retention job, and (on a
//! shared PostgreSQL store) this replica's lease, leader election and commit notices; then
//! shuts down in order when the injected `shutdown` future completes.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use actix::Arbiter;
use actix_web::{middleware::from_fn, web, App, HttpServer};

use crate::{
    actors::{
        agent::drop_idle_machines,
        enrol::{enrol_the_unenrolled, Enrolment},
        outbox,
        replicated::ReplicaNotices,
        supervisor::{registry::AgentRegistry, PrepareShutdown},
        ActorNotices, AppState, StateParts,
    },
    api, cluster,
    config::Config,
    inbound::{AfterCommit, Directory},
    inbox::Inboxes,
    matrix::HomeserverError,
    metrics::METRICS,
    store::{self, writer::CommitWriter, Retention, StoreError},
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
    #[error("end-to-end encryption: {0}")]
    E2ee(#[from] crate::e2ee::E2eeStartError),
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
    let store = store::open(
        &config.store.url,
        config.secrets.store_password.as_ref(),
        config.store.sync,
    )
    .await?;
    let parts = StateParts {
        inboxes: Arc::new(Inboxes::new(store.clone(), config.limits.streams_per_agent)),
        directory: Arc::new(Directory::default()),
        agents: Arc::new(AgentRegistry::new()),
        store,
    };
    let after_commit = Arc::new(AfterCommit::new(
        parts.inboxes.clone(),
        parts.directory.clone(),
    ));
    let writer = CommitWriter::spawn(parts.store.clone(), WRITER_QUEUE, after_commit.clone());
    let app = AppState::new(config, parts, writer);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    app.agents.start_arbiters(workers);
    app.load_directory().await?;
    app.load_stored().await?;
    app.open_e2ee().await?;
    // Retention runs once before the first request, so no reader sees entries that
    // the configured limits already exclude (and a reader behind them learns of the gap).
    apply_retention(&app).await;

    // The first lease before the first request (an agent's acts need it).
    if let Err(e) = cluster::lease::renew(&app.cluster).await {
        tracing::warn!(error = %e, "cannot take this replica's lease yet; retrying");
    }
    let cluster_tasks = app
        .cluster
        .spawn_tasks(Arc::new(ReplicaNotices { app: app.clone() }));

    let supervisor_arbiter = Arbiter::new();
    let supervisor = app.start_supervisor(&supervisor_arbiter.handle());
    let enrolment = app.e2ee.get().map(|_| {
        let enrolment = Arc::new(Enrolment::default());
        actix_rt::spawn(enrolment.clone().run(app.clone()));
        actix_rt::spawn(enrol_the_unenrolled(app.clone(), enrolment.clone()));
        actix_rt::spawn(drop_idle_machines(app.clone()));
        enrolment
    });
    after_commit.connect(Arc::new(ActorNotices {
        agents: app.agents.clone(),
        outbox: app.outbox.clone(),
        enrolment,
    }));
    let max_body = app.config.limits.max_body_bytes;
    let max_transaction = app.config.limits.max_transaction_bytes;
    let app_data = web::Data::from(app.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                api::error::ApiError::InvalidParam(format!("query: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                api::error::ApiError::InvalidParam(format!("path: {e}")).into()
            }))
            .wrap(from_fn(api::request_context))
            .configure(|cfg| api::configure(cfg, max_transaction))
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
    tracing::info!(%listen, homeserver = %app.config.homeserver.url, "mosaic-as listening");

    let ping = actix_rt::spawn(ping_loop(app.clone()));
    let retention = actix_rt::spawn(retention_loop(app.clone()));
    let outbox = actix_rt::spawn(outbox::run(app.clone()));
    let server_task = actix_rt::spawn(server);

    shutdown.await;
    tracing::info!("shutting down: stopping HTTP, clearing typing indicators");
    // The live view's streams end now rather than at the server's stop timeout.
    app.activity.close();
    handle.stop(true).await;
    let _ = supervisor
        .send(PrepareShutdown {
            within: Duration::from_secs(5),
        })
        .await;
    ping.abort();
    retention.abort();
    outbox.abort();
    cluster::lease::release(&app.cluster).await;
    for task in cluster_tasks {
        task.abort();
    }
    app.agents.stop_arbiters();
    supervisor_arbiter.stop();
    match server_task.await {
        Ok(Err(e)) => Err(AppError::Server(e)),
        _ => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Pings the homeserver at start-up (which also makes it redeliver queued transactions)
/// and then periodically, logging every change of state.
async fn ping_loop(app: Arc<AppState>) {
    let mut was: Option<(bool, bool)> = None;
    loop {
        // The leader pings (which makes the homeserver redeliver what it queued); the
        // others only ask whether the homeserver answers.
        let leader = app.cluster.is_leader();
        let result = if leader {
            app.hs.check().await
        } else {
            app.hs.check_versions().await
        };
        let ok = result.is_ok();
        if was != Some((leader, ok)) {
            match &result {
                Ok(()) if leader => tracing::info!(
                    url = %app.config.appservice.url,
                    "homeserver ping succeeded: the homeserver reaches mosaic-as"
                ),
                Ok(()) => tracing::info!(
                    homeserver = %app.config.homeserver.url,
                    "the homeserver answers (the leader replica pings it)"
                ),
                Err(e @ HomeserverError::Status { .. }) => tracing::error!(
                    error = %e,
                    url = %app.config.appservice.url,
                    "the homeserver answers but cannot reach mosaic-as at its appservice.url \
                     (transactions wait at the homeserver; the bridge works); retrying"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    homeserver = %app.config.homeserver.url,
                    "homeserver ping failed; retrying (bridge calls answer 503 while it is unreachable)"
                ),
            }
        }
        was = Some((leader, ok));
        // Leadership that changed during the check (its notice reached nobody: this loop was
        // not waiting yet): ping, or stop pinging, now rather than after the pause.
        if app.cluster.is_leader() != leader {
            continue;
        }
        let pause = actix_rt::time::sleep(if ok { PING_UP } else { PING_DOWN });
        tokio::select! {
            () = pause => {}
            () = app.cluster.leadership_changed() => {}
        }
    }
}

/// Applies retention every [`RETENTION_EVERY`] (the first run happens before start-up ends).
async fn retention_loop(app: Arc<AppState>) {
    loop {
        actix_rt::time::sleep(RETENTION_EVERY).await;
        if app.cluster.is_leader() {
            apply_retention(&app).await;
        }
    }
}

/// Applies retention (inboxes, handled transactions) and refreshes the inbox depth gauge.
async fn apply_retention(app: &AppState) {
    let inbox = &app.config.inbox;
    let keep = Retention {
        keys_age: app.config.store.idempotency_keep,
        ..Retention::inbox(inbox.retention_count, inbox.retention_age)
    };
    match app.store.prune(&keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "inbox retention applied"),
        Err(e) => tracing::warn!(error = %e, "inbox retention failed"),
    }
    if let Ok(depth) = app.store.inbox_depth().await {
        METRICS.inbox_depth.set(depth);
    }
}
