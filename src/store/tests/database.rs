//! A PostgreSQL database of its own for one test: created on the test server (any server:
//! nothing is assumed of what else it holds) and dropped when the test ends, also when it
//! fails.

use sqlx::{Connection, PgConnection};

/// The server the tests use unless `MOSAIC_TEST_POSTGRES_URL` names another: a role
/// allowed to create databases, on a database to connect to meanwhile.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database `mosaic_test_<random>`, dropped with this value.
pub(crate) struct TestDatabase {
    admin_url: String,
    name: String,
    /// The database's URL: the admin URL with the database replaced.
    pub url: String,
}

impl TestDatabase {
    pub(crate) async fn create() -> Self {
        let admin_url = std::env::var("MOSAIC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let name = format!("mosaic_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL test server is not reachable ({e}); start one or set \
                 MOSAIC_TEST_POSTGRES_URL"
            )
        });
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("the test role may create databases");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("MOSAIC_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            admin_url,
            name,
            url: url.into(),
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the database (closing whatever connections are left) on a thread of its own:
    /// this may run inside a runtime, which cannot block on its own futures.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok::<_, String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} was not dropped: {e}", self.name),
            Err(_) => eprintln!("test database {} was not dropped", self.name),
        }
    }
}
