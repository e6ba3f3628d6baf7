//! A round-robin HTTP proxy on loopback: each request goes to the next backend in turn (a
//! backend that refuses the connection is skipped, as a load balancer skips a dead pod), so
//! one client's requests — the homeserver's transactions, an agent's sends — alternate
//! between replicas. Counts what each backend answered.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use std::thread;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

pub struct RoundRobin {
    port: u16,
    served: Arc<Vec<AtomicUsize>>,
}

struct Backends {
    urls: Vec<String>,
    next: AtomicUsize,
    served: Arc<Vec<AtomicUsize>>,
    client: reqwest::Client,
}

impl RoundRobin {
    /// Listens on `port` (pick it before the backends' configs name it) until the test
    /// process ends.
    pub fn start(port: u16, backends: Vec<String>) -> RoundRobin {
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let state = web::Data::new(Backends {
            urls: backends,
            next: AtomicUsize::new(0),
            served: served.clone(),
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("round-robin".into())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(state.clone())
                            .app_data(web::PayloadConfig::new(64 << 20))
                            .default_service(web::to(pass))
                    })
                    .workers(2)
                    .bind(("127.0.0.1", port))
                    .expect("bind the round-robin proxy")
                    .run();
                    let _ = ready_tx.send(());
                    let _ = server.await;
                });
            })
            .expect("start the proxy");
        ready_rx.recv().expect("the proxy started");
        RoundRobin { port, served }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests each backend answered.
    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}

async fn pass(req: HttpRequest, body: web::Bytes, b: web::Data<Backends>) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let first = b.next.fetch_add(1, Ordering::Relaxed);
    for i in 0..b.urls.len() {
        let n = (first + i) % b.urls.len();
        let mut call = b
            .client
            .request(method.clone(), format!("{}{path}", b.urls[n]))
            .body(body.clone());
        for (name, value) in req.headers() {
            if !matches!(name.as_str(), "host" | "connection" | "content-length") {
                call = call.header(name.as_str(), value.as_bytes());
            }
        }
        match call.send().await {
            Ok(answer) => {
                b.served[n].fetch_add(1, Ordering::Relaxed);
                let mut out = HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(answer.status().as_u16())
                        .expect("status"),
                );
                for (name, value) in answer.headers() {
                    if !matches!(
                        name.as_str(),
                        "connection" | "content-length" | "transfer-encoding"
                    ) {
                        out.insert_header((name.as_str(), value.as_bytes()));
                    }
                }
                return match answer.bytes().await {
                    Ok(bytes) => out.body(bytes),
                    Err(_) => HttpResponse::BadGateway().finish(),
                };
            }
            Err(e) if e.is_connect() => continue,
            Err(_) => return HttpResponse::BadGateway().finish(),
        }
    }
    HttpResponse::BadGateway().finish()
}
