//! A uniquely named PostgreSQL database per test, shared by the API and
//! store test binaries (each includes this file as a module).

/// A uniquely named PostgreSQL database, dropped on `Drop`.
pub struct TestDb {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDb {
    /// Creates a database on the server named by `DATABASE_URL`, or `None`
    /// (with a skip notice) when it does not name PostgreSQL.
    pub async fn create() -> Option<Self> {
        let admin_url = match std::env::var("DATABASE_URL") {
            Ok(u) if u.starts_with("postgres") => u,
            _ => {
                eprintln!("skipping PostgreSQL case: DATABASE_URL is not a postgres:// URL");
                return None;
            }
        };
        let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::Executor::execute(&mut conn, format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create database");
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("DATABASE_URL has a database name");
        let url = format!("{base}/{name}");
        Some(Self {
            url,
            admin_url,
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread
        // drops the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}
