//! Which store the daemons of a test use, and PostgreSQL databases of their own.
//!
//! `MOSAIC_TEST_STORE` picks the store of every daemon that does not ask for one:
//! `sqlite` (the default: a file in the daemon's directory) or `postgres` (a database
//! `mosaic_it_<uuid>` on the server `MOSAIC_TEST_POSTGRES_URL` names, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`: a role allowed to create databases, on a
//! database to connect to meanwhile). A [`PgDatabase`] is created before the daemon starts
//! and dropped `WITH (FORCE)` when its last holder goes; one still held when the test
//! process exits (the shared stack is never dropped) is dropped then, and one a killed test
//! process left behind is swept by the next one on this host.

use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection, Row};

/// The server the tests use unless `MOSAIC_TEST_POSTGRES_URL` names another.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Longest wait for the test server while creating or dropping a database.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The test server's URL: `MOSAIC_TEST_POSTGRES_URL`, or the local default.
pub fn admin_url() -> String {
    std::env::var("MOSAIC_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The store of one daemon ([`DaemonOptions::store`](super::DaemonOptions::store)).
#[derive(Clone, Debug, Default)]
pub enum TestStore {
    /// What `MOSAIC_TEST_STORE` says: `sqlite` (default) or `postgres`.
    #[default]
    FromEnv,
    /// A SQLite file in the daemon's directory, whatever the environment says.
    Sqlite,
    /// A PostgreSQL database of its own, whatever the environment says.
    Postgres,
    /// A database another daemon (or the test) holds too, reached at `url`: its own URL
    /// ([`TestStore::same_as`]) or one through a proxy. Dropped with its last holder.
    Shared {
        database: Arc<PgDatabase>,
        url: String,
    },
    /// This store URL as it is; nothing is created or dropped (for start-up errors).
    Url(String),
}

impl TestStore {
    /// The store `MOSAIC_TEST_STORE` asks for: `Sqlite` or `Postgres`.
    pub fn from_env() -> TestStore {
        match std::env::var("MOSAIC_TEST_STORE").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => TestStore::Sqlite,
            Ok("postgres") => TestStore::Postgres,
            Ok(other) => panic!("MOSAIC_TEST_STORE={other:?}: expected sqlite or postgres"),
        }
    }

    /// Whether this run's daemons use PostgreSQL unless a test asks otherwise.
    pub fn env_is_postgres() -> bool {
        matches!(TestStore::from_env(), TestStore::Postgres)
    }

    /// The store URL of a daemon in `dir`, and the database behind it when the harness made
    /// one (created here for [`TestStore::Postgres`]).
    pub fn resolve(&self, dir: &std::path::Path) -> (String, Option<Arc<PgDatabase>>) {
        let store = match self {
            TestStore::FromEnv => TestStore::from_env(),
            other => other.clone(),
        };
        match store {
            TestStore::Postgres => {
                let database = Arc::new(PgDatabase::create());
                (database.url.clone(), Some(database))
            }
            TestStore::Shared { database, url } => (url, Some(database)),
            TestStore::Url(url) => (url, None),
            TestStore::Sqlite | TestStore::FromEnv => (
                format!("sqlite://{}", dir.join("mosaic.db").display()),
                None,
            ),
        }
    }

    /// `database` at its own URL.
    pub fn database(database: Arc<PgDatabase>) -> TestStore {
        let url = database.url.clone();
        TestStore::Shared { database, url }
    }

    /// The database `daemon` uses (which must be one of the harness's).
    pub fn same_as(daemon: &super::Daemon) -> TestStore {
        let database = daemon
            .database()
            .unwrap_or_else(|| panic!("{} has no PostgreSQL database", daemon.base_url()))
            .clone();
        TestStore::Shared {
            database,
            url: daemon.store_url().to_owned(),
        }
    }
}

/// A database `mosaic_it_<uuid>` on the test server, dropped with this value.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    /// The database's URL: the admin URL with the database replaced.
    pub url: String,
}

impl PgDatabase {
    /// Creates a database on the test server (`MOSAIC_TEST_POSTGRES_URL`); panics saying
    /// what to do when the server is not there.
    pub fn create() -> PgDatabase {
        let admin_url = admin_url();
        static SWEPT: Once = Once::new();
        SWEPT.call_once(|| sweep_stale(&admin_url));
        let name = format!("mosaic_it_{}", uuid::Uuid::new_v4().simple());
        let comment = format!("{} {}", owner_tag(), std::process::id());
        let create = [
            format!("CREATE DATABASE {name}"),
            format!("COMMENT ON DATABASE {name} IS '{comment}'"),
        ];
        if let Err(e) = admin(&admin_url, &create) {
            panic!(
                "cannot create a test database on the PostgreSQL server ({e}); start one or set \
                 MOSAIC_TEST_POSTGRES_URL (MOSAIC_TEST_STORE=postgres or a test that asks for \
                 PostgreSQL needs it)"
            );
        }
        let mut url = url::Url::parse(&admin_url).expect("MOSAIC_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        live().push((admin_url.clone(), name.clone()));
        static AT_EXIT: Once = Once::new();
        // SAFETY: registers a plain `extern "C" fn()`.
        AT_EXIT.call_once(|| unsafe {
            libc::atexit(drop_left_over);
        });
        eprintln!("harness: PostgreSQL database {name}");
        PgDatabase {
            admin_url,
            name,
            url: url.into(),
        }
    }

    /// The database's URL with host and port replaced (e.g. by a proxy's).
    pub fn url_via(&self, host: &str, port: u16) -> String {
        let mut url = url::Url::parse(&self.url).expect("the database URL");
        url.set_host(Some(host)).expect("a host");
        url.set_port(Some(port)).expect("a port");
        url.into()
    }

    /// `host:port` of the server.
    pub fn server_addr(&self) -> String {
        let url = url::Url::parse(&self.url).expect("the database URL");
        let host = url.host_str().unwrap_or("127.0.0.1");
        format!("{host}:{}", url.port().unwrap_or(5432))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        live().retain(|(_, name)| name != &self.name);
        drop_database(&self.admin_url, &self.name);
    }
}

/// Databases created and not dropped yet, as (admin URL, name).
fn live() -> std::sync::MutexGuard<'static, Vec<(String, String)>> {
    static LIVE: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// At exit: drops what is still held (the shared stack's database).
extern "C" fn drop_left_over() {
    let left: Vec<_> = std::mem::take(&mut *live());
    for (admin_url, name) in left {
        drop_database(&admin_url, &name);
    }
}

fn drop_database(admin_url: &str, name: &str) {
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    if let Err(e) = admin(admin_url, &[sql]) {
        eprintln!("harness: test database {name} was not dropped: {e}");
    }
}

/// What a database's comment starts with: made by this harness on this host.
fn owner_tag() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("mosaic-as integration test, host {}, pid", host.trim())
}

/// Drops the databases of this host's test processes that no longer run.
fn sweep_stale(admin_url: &str) {
    let tag = owner_tag();
    let url = admin_url.to_owned();
    let ours = block_on(async move {
        let mut conn = PgConnection::connect(&url).await?;
        let rows = sqlx::query(
            "SELECT datname::text AS name, shobj_description(oid, 'pg_database') AS note \
             FROM pg_database WHERE datname LIKE 'mosaic\\_it\\_%'",
        )
        .fetch_all(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get::<String, _>("name"),
                    r.get::<Option<String>, _>("note")?,
                ))
            })
            .collect::<Vec<_>>())
    });
    for (name, note) in ours.unwrap_or_default() {
        let pid = note
            .strip_prefix(tag.as_str())
            .and_then(|rest| rest.trim().parse::<i32>().ok());
        // SAFETY: kill with signal 0 only checks whether the process exists.
        if pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0) {
            eprintln!("harness: dropping {name}, left behind by a test process that is gone");
            drop_database(admin_url, &name);
        }
    }
}

impl PgDatabase {
    /// The first column of `sql`'s rows (text), `$1` bound to `param`.
    pub fn query_strings(&self, sql: &str, param: &str) -> Vec<String> {
        let (url, sql, param) = (self.url.clone(), sql.to_owned(), param.to_owned());
        block_on(async move {
            let mut conn = PgConnection::connect(&url).await?;
            let rows = sqlx::query(&sql).bind(param).fetch_all(&mut conn).await?;
            let _ = conn.close().await;
            Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
        })
        .expect("query the test database")
    }
}

/// Whether the server at `admin_url` has a database `name`.
pub fn exists(admin_url: &str, name: &str) -> bool {
    let (url, name) = (admin_url.to_owned(), name.to_owned());
    block_on(async move {
        let mut conn = PgConnection::connect(&url).await?;
        let found = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(found.is_some())
    })
    .expect("ask the test server for its databases")
}

/// Runs `statements` one by one on a connection of its own to `url`.
fn admin(url: &str, statements: &[String]) -> Result<(), String> {
    let (url, statements) = (url.to_owned(), statements.to_vec());
    block_on(async move {
        let mut conn = PgConnection::connect(&url).await?;
        for sql in statements {
            conn.execute(sql.as_str()).await?;
        }
        let _ = conn.close().await;
        Ok(())
    })
}

/// Runs `work` on a runtime of its own, on a thread of its own (the caller may be inside a
/// runtime, or exiting), within [`ADMIN_TIMEOUT`].
fn block_on<T: Send + 'static>(
    work: impl std::future::Future<Output = sqlx::Result<T>> + Send + 'static,
) -> Result<T, String> {
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // The timer is made inside the runtime.
        match runtime.block_on(async { tokio::time::timeout(ADMIN_TIMEOUT, work).await }) {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {ADMIN_TIMEOUT:?}")),
        }
    });
    thread
        .join()
        .unwrap_or_else(|_| Err("the database thread panicked".into()))
}
