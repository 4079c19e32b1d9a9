//! A client changed on one instance, or behind every server's back by an
//! operator's command, stops working on every running instance within the
//! documented bound (`clients.change_poll_ms`), not at the next restart.

use std::time::{Duration, Instant};

use crate::both_backends;
use crate::helpers::{new_shared, spawn_instance, Backend, SharedHandle, TestApp, TestClient};

/// The documented bound is one poll interval (1 s by default); a loaded test
/// machine gets ten times that before the test gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

async fn client_credentials(app: &TestApp, client: &TestClient) -> u16 {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Polls (bounded) until `app` refuses `client`; how long that took.
async fn until_refused(app: &TestApp, client: &TestClient) -> Duration {
    let start = Instant::now();
    loop {
        let status = client_credentials(app, client).await;
        if status == 401 {
            return start.elapsed();
        }
        assert_eq!(status, 200);
        assert!(
            start.elapsed() < GIVE_UP_AFTER,
            "the client still works {GIVE_UP_AFTER:?} after it was deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the client straight in the database, as another process (the
/// CLI, another instance) would: no running server hears of it.
async fn delete_in_the_database(shared: &SharedHandle, client: &TestClient) {
    use sqlx::Connection;
    let id = uuid::Uuid::parse_str(&client.id).expect("uuid");
    match &shared.db {
        Some(db) => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            let done = sqlx::query("DELETE FROM clients WHERE id = $1")
                .bind(id)
                .execute(&mut conn)
                .await
                .expect("delete");
            assert_eq!(done.rows_affected(), 1);
        }
        None => {
            let url = format!(
                "sqlite://{}",
                shared.data_dir.path().join("latchkey.db").display()
            );
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            let done = sqlx::query("DELETE FROM clients WHERE id = ?1")
                .bind(id.to_string())
                .execute(&mut conn)
                .await
                .expect("delete");
            assert_eq!(done.rows_affected(), 1);
        }
    }
}

async fn a_deleted_client_stops_working_on_every_running_instance(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    // Two instances on PostgreSQL; SQLite is one server (and the CLI).
    let mut apps = vec![spawn_instance(&shared, |_| {}).await];
    if backend == Backend::Postgres {
        apps.push(spawn_instance(&shared, |_| {}).await);
    }
    let client = apps[0].confidential_client().await;
    for app in &apps {
        // Each instance has now looked the client up (and cached it).
        assert_eq!(client_credentials(app, &client).await, 200);
    }

    delete_in_the_database(&shared, &client).await;

    for app in &apps {
        let took = until_refused(app, &client).await;
        eprintln!("refused after {took:?}");
    }
}

both_backends!(a_deleted_client_stops_working_on_every_running_instance);

/// A new secret given on one instance with no overlap: the old one stops working on the
/// other within the poll interval (100 ms here), and the new one works there.
async fn a_rotated_secret_holds_on_every_instance(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let fast_poll = |s: &mut latchkey::config::RawSettings| s.clients.change_poll_ms = 100;
    let a = spawn_instance(&shared, fast_poll).await;
    let b = spawn_instance(&shared, fast_poll).await;
    let old = a.confidential_client().await;
    assert_eq!(client_credentials(&b, &old).await, 200);

    let id = latchkey::domain::types::ClientId::parse(&old.id).expect("id");
    let rotated = a
        .services
        .rotate_client_secret(id, chrono::Duration::zero(), "test")
        .await
        .expect("rotated");
    let new = TestClient {
        id: old.id.clone(),
        secret: Some(rotated.secret),
    };

    // The instance that rotated refuses the old secret at once.
    assert_eq!(client_credentials(&a, &old).await, 401);
    assert_eq!(client_credentials(&a, &new).await, 200);
    let took = until_refused(&b, &old).await;
    eprintln!("refused after {took:?}");
    assert_eq!(client_credentials(&b, &new).await, 200);
}
both_backends!(a_rotated_secret_holds_on_every_instance);
