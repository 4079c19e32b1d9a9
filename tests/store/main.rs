//! The store contract: every case is an async fn over `Arc<dyn Store>`, and the
//! macro below runs it against SQLite and against PostgreSQL (when
//! `DATABASE_URL` names one; otherwise the PostgreSQL case prints a skip
//! notice).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot go on fails loudly, with a message"
)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use latchkey::domain::types::{ClientId, ClientKind, SessionId, UserId};
use latchkey::store::KeySource;
use latchkey::store::{
    self, AuditEvent, AuthorizationCodeRecord, BrowserSessionRecord, ClientRecord, ConsentRecord,
    EmailTokenRecord, Lockout, MailMessage, SealedSecret, SessionRecord, SigningKeyRecord, Store,
    StoreError, TokenPurpose, UserRecord,
};

#[path = "../common/pg_db.rs"]
mod pg_db;

use latchkey::store::{AuditKind, RevokeReason};
use pg_db::TestDb;

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let s = store::connect(&url, 8, StdDuration::from_secs(5))
        .await
        .expect("sqlite");
    s.migrate().await.expect("migrate");
    (s, dir)
}

async fn postgres() -> Option<(Arc<dyn Store>, TestDb)> {
    let db = TestDb::create().await?;
    let s = store::connect(&db.url, 8, StdDuration::from_secs(5))
        .await
        .expect("pg");
    s.migrate().await.expect("migrate");
    Some((s, db))
}

macro_rules! store_case {
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (s, _dir) = super::sqlite().await;
                super::$case(s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some((s, _db)) = super::postgres().await else {
                    return;
                };
                super::$case(s).await;
            }
        }
    };
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_123).expect("time")
}

fn user(email: &str) -> UserRecord {
    UserRecord {
        id: UserId::new_random(),
        email: email.into(),
        password_hash: "$argon2id$x".into(),
        disabled: false,
        credentials_version: 0,
        email_verified: false,
        created_at: t0(),
    }
}

fn client() -> ClientRecord {
    ClientRecord {
        id: ClientId::new_random(),
        name: "c".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some(vec![1, 2, 3]),
        grants: vec!["password".into(), "refresh_token".into()],
        scopes: vec!["openid".into()],
        audience: Some("api".into()),
        cookie_mode: true,
        origins: vec!["https://app.example".into()],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        first_party: false,
        introspect: true,
        require_dpop: false,
        key_source: None,
        created_at: t0(),
        disabled_at: None,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        admin: false,
    }
}

async fn seeded(s: &dyn Store) -> (UserRecord, ClientRecord, SessionRecord) {
    let u = user(&format!("{}@example.com", uuid::Uuid::new_v4().simple()));
    s.insert_user(&u).await.expect("user");
    let c = client();
    s.insert_client(&c).await.expect("client");
    let sess = SessionRecord {
        id: SessionId::new_random(),
        user_id: u.id,
        client_id: c.id,
        scope: latchkey::ids::Scope::parse("openid").expect("valid"),
        created_at: t0(),
        last_used_at: t0(),
        expires_at: t0() + Duration::days(30),
        generation: 0,
        rotated_at: t0(),
        revoked_at: None,
        revoked_reason: None,
        dpop_jkt: None,
    };
    assert!(s.start_session(&sess, 0).await.expect("session"));
    (u, c, sess)
}

async fn users_round_trip_and_emails_are_unique(s: Arc<dyn Store>) {
    let u = user("a@example.com");
    s.insert_user(&u).await.expect("insert");
    let found = s
        .find_user_by_email("a@example.com")
        .await
        .expect("find")
        .expect("some");
    assert_eq!((found.id, found.created_at), (u.id, u.created_at));
    assert!(matches!(
        s.insert_user(&user("a@example.com")).await,
        Err(StoreError::Conflict)
    ));
    assert!(s
        .find_user(UserId::new_random())
        .await
        .expect("find")
        .is_none());
}
store_case!(users_round_trip_and_emails_are_unique);

async fn clients_round_trip(s: Arc<dyn Store>) {
    let c = client();
    s.insert_client(&c).await.expect("insert");
    let f = s.find_client(c.id).await.expect("find").expect("some");
    assert_eq!(
        (
            f.kind,
            f.secret_hash,
            f.grants,
            f.scopes,
            f.audience,
            f.cookie_mode,
            f.origins,
            f.introspect
        ),
        (
            c.kind,
            c.secret_hash,
            c.grants,
            c.scopes,
            c.audience,
            c.cookie_mode,
            c.origins,
            c.introspect
        )
    );
}
store_case!(clients_round_trip);

async fn browser_clients_are_those_with_origins(s: Arc<dyn Store>) {
    let with = client();
    let mut without = client();
    without.cookie_mode = false;
    without.origins = vec![];
    s.insert_client(&with).await.expect("insert");
    s.insert_client(&without).await.expect("insert");
    let listed = s.list_browser_clients().await.expect("list");
    assert!(listed
        .iter()
        .any(|c| c.id == with.id && c.origins == with.origins && c.cookie_mode));
    assert!(listed.iter().all(|c| c.id != without.id));
}
store_case!(browser_clients_are_those_with_origins);

async fn every_client_change_moves_the_clients_version(s: Arc<dyn Store>) {
    let v0 = s.clients_version().await.expect("version");
    let c = client();
    s.insert_client(&c).await.expect("insert");
    let v1 = s.clients_version().await.expect("version");
    assert_ne!(v1, v0, "an insert moves it");
    assert_eq!(
        s.clients_version().await.expect("version"),
        v1,
        "reads do not"
    );

    let ev = AuditEvent::new(AuditKind::ClientSecretRotated, t0());
    s.update_client_secret(c.id, &[9, 9, 9], None, &ev)
        .await
        .expect("update");
    let v2 = s.clients_version().await.expect("version");
    assert_ne!(v2, v1, "a new secret moves it");
    let f = s.find_client(c.id).await.expect("find").expect("some");
    assert_eq!(f.secret_hash.as_deref(), Some(&[9u8, 9, 9][..]));

    // Nothing to change: NotFound, and the version stays.
    let missing = s
        .update_client_secret(ClientId::new_random(), &[1], None, &ev)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let mut public = client();
    public.kind = ClientKind::Public;
    public.secret_hash = None;
    s.insert_client(&public).await.expect("insert");
    let v3 = s.clients_version().await.expect("version");
    let refused = s.update_client_secret(public.id, &[1], None, &ev).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(s.clients_version().await.expect("version"), v3);
}
store_case!(every_client_change_moves_the_clients_version);

async fn client_lifecycle_changes_round_trip_with_their_audit(s: Arc<dyn Store>) {
    let (_, c, sess) = seeded(s.as_ref()).await;
    let audits = |kind: &'static str| {
        let s = s.clone();
        async move {
            s.list_audit(None, None, 100)
                .await
                .expect("audit")
                .into_iter()
                .filter(|e| e.kind == kind)
                .count()
        }
    };
    // Update: settings change, secrets, kind and times stay.
    let mut changed = c.clone();
    changed.name = "renamed".into();
    changed.scopes = vec!["read".into()];
    changed.origins = vec![];
    changed.secret_hash = Some(vec![7]);
    let v0 = s.clients_version().await.expect("version");
    s.update_client(&changed, &AuditEvent::new(AuditKind::ClientUpdated, t0()))
        .await
        .expect("update");
    assert_ne!(s.clients_version().await.expect("version"), v0);
    let f = s.find_client(c.id).await.expect("find").expect("some");
    assert_eq!(
        (f.name.as_str(), f.scopes.clone()),
        ("renamed", vec!["read".to_owned()])
    );
    assert_eq!(
        f.secret_hash, c.secret_hash,
        "update never touches the secret"
    );
    assert_eq!(audits("client_updated").await, 1);
    let mut ghost = changed.clone();
    ghost.id = ClientId::new_random();
    assert!(matches!(
        s.update_client(&ghost, &AuditEvent::new(AuditKind::ClientUpdated, t0()))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        audits("client_updated").await,
        1,
        "a refused change is not audited"
    );

    // Disable and enable: kept with its sessions; hidden from CORS.
    let mut browser = client();
    browser.origins = vec!["https://b.example".into()];
    s.insert_client(&browser).await.expect("insert");
    s.set_client_disabled(
        browser.id,
        Some(t0()),
        &AuditEvent::new(AuditKind::ClientDisabled, t0()),
    )
    .await
    .expect("disable");
    let f = s
        .find_client(browser.id)
        .await
        .expect("find")
        .expect("some");
    assert_eq!(f.disabled_at, Some(t0()));
    assert!(s
        .list_browser_clients()
        .await
        .expect("list")
        .iter()
        .all(|x| x.id != browser.id));
    s.set_client_disabled(
        browser.id,
        None,
        &AuditEvent::new(AuditKind::ClientEnabled, t0()),
    )
    .await
    .expect("enable");
    assert!(s
        .find_client(browser.id)
        .await
        .expect("find")
        .expect("some")
        .disabled_at
        .is_none());
    assert!(matches!(
        s.set_client_disabled(
            ClientId::new_random(),
            None,
            &AuditEvent::new(AuditKind::ClientEnabled, t0())
        )
        .await,
        Err(StoreError::NotFound)
    ));

    // Rotation with an overlap keeps the replaced digest until then.
    let until = t0() + Duration::hours(24);
    s.update_client_secret(
        c.id,
        &[8],
        Some(until),
        &AuditEvent::new(AuditKind::ClientSecretRotated, t0()),
    )
    .await
    .expect("rotate");
    let f = s.find_client(c.id).await.expect("find").expect("some");
    assert_eq!(f.secret_hash.as_deref(), Some(&[8u8][..]));
    assert_eq!(f.previous_secret_hash, c.secret_hash);
    assert_eq!(f.previous_secret_expires_at, Some(until));
    s.update_client_secret(
        c.id,
        &[9],
        None,
        &AuditEvent::new(AuditKind::ClientSecretRotated, t0()),
    )
    .await
    .expect("rotate");
    let f = s.find_client(c.id).await.expect("find").expect("some");
    assert!(f.previous_secret_hash.is_none() && f.previous_secret_expires_at.is_none());
    assert_eq!(audits("client_secret_rotated").await, 2);

    // Delete: the client and every session of it go, in one transaction.
    let ended = s
        .delete_client(c.id, &AuditEvent::new(AuditKind::ClientDeleted, t0()))
        .await
        .expect("delete");
    assert_eq!(ended, 1);
    assert!(s.find_client(c.id).await.expect("find").is_none());
    assert!(s.find_session(sess.id).await.expect("find").is_none());
    assert_eq!(audits("client_deleted").await, 1);
    assert!(matches!(
        s.delete_client(c.id, &AuditEvent::new(AuditKind::ClientDeleted, t0()))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(audits("client_deleted").await, 1);
}
store_case!(client_lifecycle_changes_round_trip_with_their_audit);

async fn key_clients_round_trip_their_key_source_and_have_no_secret_to_rotate(s: Arc<dyn Store>) {
    let mut by_uri = client();
    by_uri.secret_hash = None;
    by_uri.key_source = Some(KeySource::JwksUri("https://keys.example/jwks.json".into()));
    let mut inline = client();
    inline.secret_hash = None;
    inline.key_source = Some(KeySource::Jwks(r#"{"keys":[{"kty":"OKP"}]}"#.into()));
    for c in [&by_uri, &inline] {
        s.insert_client(c).await.expect("insert");
        let f = s.find_client(c.id).await.expect("find").expect("some");
        assert_eq!(f.key_source, c.key_source);
        assert_eq!(f.auth_method(), "private_key_jwt");
    }
    // An update may change where the keys come from.
    let mut moved = by_uri.clone();
    moved.key_source = Some(KeySource::JwksUri("https://keys.example/v2.json".into()));
    s.update_client(&moved, &AuditEvent::new(AuditKind::ClientUpdated, t0()))
        .await
        .expect("update");
    let f = s.find_client(moved.id).await.expect("find").expect("some");
    assert_eq!(f.key_source, moved.key_source);
    // Such a client has no secret, and cannot be given one by a rotation.
    assert!(matches!(
        s.update_client_secret(
            inline.id,
            &[9],
            None,
            &AuditEvent::new(AuditKind::ClientSecretRotated, t0()),
        )
        .await,
        Err(StoreError::NotFound)
    ));
    let f = s.find_client(inline.id).await.expect("find").expect("some");
    assert!(f.secret_hash.is_none());
    // A client with a secret reads back as one.
    let plain = client();
    s.insert_client(&plain).await.expect("insert");
    let f = s.find_client(plain.id).await.expect("find").expect("some");
    assert_eq!(f.auth_method(), "client_secret");
    assert!(f.key_source.is_none());
}
store_case!(key_clients_round_trip_their_key_source_and_have_no_secret_to_rotate);

async fn clients_are_listed_in_pages_by_id(s: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let c = client();
        s.insert_client(&c).await.expect("insert");
        ids.push(c.id);
    }
    ids.sort_by_key(|i| i.to_string());
    let first = s.list_clients(None, 3).await.expect("list");
    assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), ids[..3]);
    let rest = s.list_clients(Some(ids[2]), 3).await.expect("list");
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), ids[3..]);
    assert!(s
        .list_clients(Some(ids[4]), 3)
        .await
        .expect("list")
        .is_empty());
}
store_case!(clients_are_listed_in_pages_by_id);

/// Keyset pages in `(created_at, id)` order: ties on the time are broken by
/// the id, every row comes once, and the admin flag round-trips.
async fn clients_are_paged_by_creation_then_id(s: Arc<dyn Store>) {
    let mut keys = Vec::new();
    for i in 0..7i64 {
        let c = ClientRecord {
            // Three share a creation time; the others are older or newer.
            created_at: t0() + Duration::milliseconds([5, 0, 5, 9, 5, 1, 2][i as usize]),
            admin: i == 3,
            ..client()
        };
        s.insert_client(&c).await.expect("insert");
        keys.push((c.created_at, c.id));
    }
    let mut want = keys.clone();
    want.sort_by_key(|(at, id)| (*at, id.to_string()));
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = s.page_clients(after, 3).await.expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(store::PageAfter {
            created_at: last.created_at,
            id: last.id,
        });
        got.extend(page.iter().map(|c| (c.created_at, c.id)));
    }
    // SQLite orders ids as text, PostgreSQL as uuids: both are the same
    // byte order for the hyphenated lower-case form.
    assert_eq!(got, want);
    let admin = s.find_client(keys[3].1).await.expect("find").expect("some");
    assert!(admin.admin);
    assert!(
        !s.find_client(keys[0].1)
            .await
            .expect("find")
            .expect("some")
            .admin
    );
}
store_case!(clients_are_paged_by_creation_then_id);

/// Users page the same way, and the email search is a literal prefix.
async fn users_are_paged_and_searched_by_email_prefix(s: Arc<dyn Store>) {
    let emails = [
        "ann@example.com",
        "anne@example.org",
        "bob@example.com",
        "a%b@example.com",
        "a_c@example.com",
        "zoe@ann.example",
    ];
    let mut ids = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let u = UserRecord {
            created_at: t0() + Duration::milliseconds(i as i64 % 2),
            ..user(email)
        };
        s.insert_user(&u).await.expect("insert");
        ids.push((u.created_at, u.id));
    }
    let all = s.page_users(None, None, 100).await.expect("page");
    let mut want = ids.clone();
    want.sort_by_key(|(at, id)| (*at, id.to_string()));
    assert_eq!(
        all.iter().map(|u| (u.created_at, u.id)).collect::<Vec<_>>(),
        want
    );
    let first = s.page_users(None, None, 4).await.expect("page");
    let last = first.last().expect("some");
    let rest = s
        .page_users(
            Some(store::PageAfter {
                created_at: last.created_at,
                id: last.id,
            }),
            None,
            4,
        )
        .await
        .expect("page");
    assert_eq!(first.len() + rest.len(), emails.len());
    assert!(rest.iter().all(|u| !first.iter().any(|f| f.id == u.id)));

    let found = |prefix: &'static str| {
        let s = s.clone();
        async move {
            let mut v: Vec<String> = s
                .page_users(None, Some(prefix), 100)
                .await
                .expect("search")
                .into_iter()
                .map(|u| u.email)
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(found("ann").await, ["ann@example.com", "anne@example.org"]);
    assert_eq!(found("ann@example.com").await, ["ann@example.com"]);
    assert_eq!(found("a%").await, ["a%b@example.com"]);
    assert_eq!(found("a_").await, ["a_c@example.com"]);
    assert!(found("%").await.is_empty());
    assert!(found("example").await.is_empty());
}
store_case!(users_are_paged_and_searched_by_email_prefix);

/// Concurrent rotations with an overlap: each reads and moves the current
/// digest in one statement, so afterwards the previous digest is one that
/// another rotation set, not the original one read by two at once.
async fn concurrent_secret_rotations_keep_a_consistent_pair(s: Arc<dyn Store>) {
    let c = client();
    s.insert_client(&c).await.expect("insert");
    let until = t0() + Duration::hours(1);
    let tasks: Vec<_> = (0u8..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.update_client_secret(
                    c.id,
                    &[100 + i],
                    Some(until),
                    &AuditEvent::new(AuditKind::ClientSecretRotated, t0()),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("rotate");
    }
    let f = s.find_client(c.id).await.expect("find").expect("some");
    let current = f.secret_hash.expect("current");
    let previous = f.previous_secret_hash.expect("previous");
    assert_ne!(current, previous);
    assert!((100..108).contains(&current[0]));
    // Serially, the last rotation moved aside the digest of the one before
    // it; only a lost update could leave the original there.
    assert!((100..108).contains(&previous[0]), "{previous:?}");
}
store_case!(concurrent_secret_rotations_keep_a_consistent_pair);

async fn sessions_round_trip_with_exact_times(s: Arc<dyn Store>) {
    let (_, _, sess) = seeded(s.as_ref()).await;
    assert_eq!(
        s.find_session(sess.id).await.expect("find").expect("some"),
        sess
    );
}
store_case!(sessions_round_trip_with_exact_times);

async fn concurrent_rotations_of_one_generation_let_exactly_one_through(s: Arc<dyn Store>) {
    let (_, c, sess) = seeded(s.as_ref()).await;
    let now = t0() + Duration::seconds(1);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.rotate_session(sess.id, c.id, 0, None, now, t0() - Duration::days(1))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task").expect("no store error").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let after = s.find_session(sess.id).await.expect("find").expect("some");
    assert_eq!(after.generation, 1);
    assert_eq!(after.last_used_at, now);
}
store_case!(concurrent_rotations_of_one_generation_let_exactly_one_through);

async fn rotation_refuses_revoked_expired_idle_and_foreign(s: Arc<dyn Store>) {
    let (_, c, sess) = seeded(s.as_ref()).await;
    let now = t0() + Duration::seconds(1);
    let idle = t0() - Duration::days(1);
    assert!(s
        .rotate_session(sess.id, ClientId::new_random(), 0, None, now, idle)
        .await
        .expect("ok")
        .is_none());
    assert!(s
        .rotate_session(sess.id, c.id, 0, None, t0() + Duration::days(31), idle)
        .await
        .expect("ok")
        .is_none());
    assert!(s
        .rotate_session(sess.id, c.id, 0, None, now, t0() + Duration::seconds(1))
        .await
        .expect("ok")
        .is_none());
    let ev = AuditEvent::new(AuditKind::SessionRevoked, now);
    assert!(s
        .revoke_session(sess.id, RevokeReason::Logout, &ev)
        .await
        .expect("revoke"));
    assert!(
        !s.revoke_session(sess.id, RevokeReason::Logout, &ev)
            .await
            .expect("revoke again"),
        "a second revocation is a no-op"
    );
    assert!(s
        .rotate_session(sess.id, c.id, 0, None, now, idle)
        .await
        .expect("ok")
        .is_none());
    let audit = s.list_audit(None, None, 10).await.expect("audit");
    assert_eq!(
        audit.iter().filter(|e| e.kind == "session_revoked").count(),
        1
    );
}
store_case!(rotation_refuses_revoked_expired_idle_and_foreign);

async fn concurrent_revocations_write_one_audit_record(s: Arc<dyn Store>) {
    let (u, _, sess) = seeded(s.as_ref()).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut ev = AuditEvent::new(AuditKind::RefreshTokenReused, t0());
                ev.user_id = Some(u.id);
                s.revoke_session(sess.id, RevokeReason::RefreshTokenReuse, &ev)
                    .await
            })
        })
        .collect();
    let mut revoked = 0;
    for t in tasks {
        if t.await.expect("task").expect("no store error") {
            revoked += 1;
        }
    }
    assert_eq!(revoked, 1);
    assert_eq!(
        s.list_audit(Some(u.id), None, 100)
            .await
            .expect("audit")
            .len(),
        1
    );
}
store_case!(concurrent_revocations_write_one_audit_record);

async fn session_status_sees_revocation_and_disabled_users(s: Arc<dyn Store>) {
    let (u, _, sess) = seeded(s.as_ref()).await;
    let st = s
        .session_status(sess.id)
        .await
        .expect("status")
        .expect("some");
    assert!(!st.revoked && !st.user_disabled);
    s.set_user_disabled(u.id, true, &AuditEvent::new(AuditKind::UserDisabled, t0()))
        .await
        .expect("disable");
    let st = s
        .session_status(sess.id)
        .await
        .expect("status")
        .expect("some");
    assert!(
        st.revoked && st.user_disabled,
        "disabling revokes the sessions"
    );
    assert!(s
        .session_status(SessionId::new_random())
        .await
        .expect("status")
        .is_none());
    assert!(matches!(
        s.set_user_disabled(
            UserId::new_random(),
            true,
            &AuditEvent::new(AuditKind::SessionsRevoked, t0())
        )
        .await,
        Err(StoreError::NotFound)
    ));
}
store_case!(session_status_sees_revocation_and_disabled_users);

async fn session_with_user_status_is_one_lookup_of_both(s: Arc<dyn Store>) {
    let (u, _, sess) = seeded(s.as_ref()).await;
    let (found, disabled) = s
        .find_session_with_user_status(sess.id)
        .await
        .expect("lookup")
        .expect("some");
    assert_eq!(found, sess);
    assert!(!disabled);
    s.set_user_disabled(u.id, true, &AuditEvent::new(AuditKind::UserDisabled, t0()))
        .await
        .expect("disable");
    let (found, disabled) = s
        .find_session_with_user_status(sess.id)
        .await
        .expect("lookup")
        .expect("some");
    assert!(disabled);
    assert!(found.revoked_at.is_some(), "disabling revokes the sessions");
    assert!(s
        .find_session_with_user_status(SessionId::new_random())
        .await
        .expect("lookup")
        .is_none());
}
store_case!(session_with_user_status_is_one_lookup_of_both);

async fn password_update_keeps_only_the_current_session(s: Arc<dyn Store>) {
    let (u, c, keep) = seeded(s.as_ref()).await;
    let mut other = keep.clone();
    other.id = SessionId::new_random();
    assert!(s.start_session(&other, 0).await.expect("second session"));
    let n = s
        .update_password(
            u.id,
            "$argon2id$new",
            Some(0),
            Some(keep.id),
            &AuditEvent::new(AuditKind::PasswordChanged, t0()),
        )
        .await
        .expect("update");
    assert_eq!(n, 1);
    assert!(s
        .find_session(other.id)
        .await
        .expect("find")
        .expect("some")
        .revoked_at
        .is_some());
    assert!(s
        .find_session(keep.id)
        .await
        .expect("find")
        .expect("some")
        .revoked_at
        .is_none());
    assert_eq!(
        s.find_user(u.id)
            .await
            .expect("find")
            .expect("some")
            .password_hash,
        "$argon2id$new"
    );
    let _ = c;
}
store_case!(password_update_keeps_only_the_current_session);

async fn a_hash_upgrade_is_a_compare_and_set_that_keeps_sessions(s: Arc<dyn Store>) {
    let (u, _, _) = seeded(s.as_ref()).await;
    // A password change committed first: an upgrade of the hash it replaced
    // writes nothing.
    s.update_password(
        u.id,
        "$argon2id$changed",
        None,
        None,
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("password");
    assert!(!s
        .upgrade_password_hash(u.id, &u.password_hash, "$argon2id$upgraded-old")
        .await
        .expect("upgrade"));
    let now = s.find_user(u.id).await.expect("find").expect("some");
    assert_eq!(now.password_hash, "$argon2id$changed");
    let (u, _, sess) = seeded(s.as_ref()).await;
    assert!(s
        .upgrade_password_hash(u.id, &u.password_hash, "$argon2id$upgraded")
        .await
        .expect("upgrade"));
    let now = s.find_user(u.id).await.expect("find").expect("some");
    assert_eq!(now.password_hash, "$argon2id$upgraded");
    assert_eq!(now.credentials_version, u.credentials_version);
    assert!(s
        .find_session(sess.id)
        .await
        .expect("find")
        .expect("some")
        .revoked_at
        .is_none());
    // Two upgrades racing from one hash: one writes.
    let (a, b) = tokio::join!(
        s.upgrade_password_hash(u.id, "$argon2id$upgraded", "$argon2id$a"),
        s.upgrade_password_hash(u.id, "$argon2id$upgraded", "$argon2id$b"),
    );
    assert_eq!(u8::from(a.expect("a")) + u8::from(b.expect("b")), 1);
    assert!(!s
        .upgrade_password_hash(UserId::new_random(), "$argon2id$upgraded", "h")
        .await
        .expect("unknown user"));
}
store_case!(a_hash_upgrade_is_a_compare_and_set_that_keeps_sessions);

async fn purge_deletes_in_bounded_batches(s: Arc<dyn Store>) {
    let (_, _, sess) = seeded(s.as_ref()).await;
    for _ in 0..5 {
        let mut other = sess.clone();
        other.id = SessionId::new_random();
        assert!(s.start_session(&other, 0).await.expect("session"));
    }
    let later = t0() + Duration::days(31);
    let idle = later - Duration::days(14);
    assert_eq!(
        s.purge_sessions(later, idle, later, 4)
            .await
            .expect("purge"),
        4
    );
    assert_eq!(
        s.purge_sessions(later, idle, later, 4)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        s.purge_sessions(later, idle, later, 4)
            .await
            .expect("purge"),
        0
    );
}
store_case!(purge_deletes_in_bounded_batches);

async fn login_failures_count_within_a_window_and_restart_after_it(s: Arc<dyn Store>) {
    let key = "account:x@example.com";
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.reserve_login_attempt(key, t0(), 900).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("recorded");
    }
    let c = s.login_failures(key).await.expect("read").expect("some");
    assert_eq!(c.failures, 10, "concurrent failures all count");
    let c = s
        .reserve_login_attempt(key, t0() + Duration::seconds(901), 900)
        .await
        .expect("recorded");
    assert_eq!(c.failures, 1, "a new window starts");
    s.clear_login_failures(key).await.expect("clear");
    assert!(s.login_failures(key).await.expect("read").is_none());
}
store_case!(login_failures_count_within_a_window_and_restart_after_it);

async fn of_concurrent_lock_attempts_exactly_one_locks(s: Arc<dyn Store>) {
    let key = "account:lock@example.com";
    for _ in 0..5 {
        s.reserve_login_attempt(key, t0(), 900)
            .await
            .expect("recorded");
    }
    let lock = Lockout {
        max_failures: 5,
        seen_lockouts: 0,
        lockouts: 1,
        now: t0(),
        until: t0() + Duration::seconds(900),
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.lock_login_failures(key, &lock).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.expect("task").expect("locked"));
    }
    assert_eq!(won, 1, "exactly one caller locks");
    let c = s.login_failures(key).await.expect("read").expect("some");
    assert_eq!(
        (c.failures, c.lockouts, c.locked_until),
        (0, 1, Some(t0() + Duration::seconds(900))),
        "the lock restarts the count and remembers the lockout"
    );
    assert_eq!(c.window_started_at, t0());
    // Below the limit, nothing locks.
    let c = s
        .reserve_login_attempt(key, t0() + Duration::seconds(901), 900)
        .await
        .expect("recorded");
    assert_eq!((c.failures, c.lockouts), (1, 1));
    let again = Lockout {
        seen_lockouts: 1,
        lockouts: 2,
        ..lock
    };
    assert!(!s.lock_login_failures(key, &again).await.expect("query"));
    s.clear_login_failures(key).await.expect("clear");
    assert!(s.login_failures(key).await.expect("read").is_none());
}
store_case!(of_concurrent_lock_attempts_exactly_one_locks);

async fn audit_purge_deletes_only_old_events_in_bounded_batches(s: Arc<dyn Store>) {
    for i in 0..5 {
        let mut ev = AuditEvent::new(AuditKind::LoginFailed, t0() + Duration::seconds(i));
        ev.address = Some("192.0.2.1".into());
        s.insert_audit(&ev).await.expect("audit");
    }
    let recent = AuditEvent::new(AuditKind::UserSignedUp, t0() + Duration::days(10));
    s.insert_audit(&recent).await.expect("audit");
    let before = t0() + Duration::days(1);

    let batches = [
        s.purge_audit(before, 2).await.expect("purge"),
        s.purge_audit(before, 2).await.expect("purge"),
        s.purge_audit(before, 2).await.expect("purge"),
        s.purge_audit(before, 2).await.expect("purge"),
    ];

    assert_eq!(batches, [2, 2, 1, 0]);
    let left = s.list_audit(None, None, 100).await.expect("list");
    assert_eq!(left, vec![recent]);
}
store_case!(audit_purge_deletes_only_old_events_in_bounded_batches);

async fn pool_stats_report_the_configured_limit(s: Arc<dyn Store>) {
    s.ping().await.expect("ping");

    let stats = s.pool_stats();

    assert_eq!(stats.max, 8);
    assert!(stats.size >= 1 && stats.size <= stats.max, "{stats:?}");
    assert!(stats.idle <= stats.size, "{stats:?}");
}
store_case!(pool_stats_report_the_configured_limit);

async fn sessions_start_only_for_an_enabled_client_that_still_exists(s: Arc<dyn Store>) {
    let (u, c, sess) = seeded(s.as_ref()).await;
    let fresh = || SessionRecord {
        id: SessionId::new_random(),
        ..sess.clone()
    };
    let v = u.credentials_version;
    s.set_client_disabled(
        c.id,
        Some(t0()),
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("disable");
    assert!(!s.start_session(&fresh(), v).await.expect("start"));
    s.set_client_disabled(
        c.id,
        None,
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("enable");
    assert!(s.start_session(&fresh(), v).await.expect("start"));
    s.delete_client(c.id, &AuditEvent::new(AuditKind::SessionsRevoked, t0()))
        .await
        .expect("delete");
    // Not a foreign key failure: a plain "not started".
    assert!(!s.start_session(&fresh(), v).await.expect("start"));
}
store_case!(sessions_start_only_for_an_enabled_client_that_still_exists);

async fn sessions_start_only_from_current_credentials(s: Arc<dyn Store>) {
    let (u, _, sess) = seeded(s.as_ref()).await;
    let fresh = |s: &SessionRecord| SessionRecord {
        id: SessionId::new_random(),
        ..s.clone()
    };
    let v = s
        .find_user(u.id)
        .await
        .expect("find")
        .expect("some")
        .credentials_version;
    assert!(s.start_session(&fresh(&sess), v).await.expect("start"));
    // Each wholesale end of sessions moves the version on, so a login that
    // read the old one starts nothing.
    s.revoke_user_sessions(
        u.id,
        None,
        RevokeReason::RevokedByAdmin,
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("revoke");
    assert!(!s.start_session(&fresh(&sess), v).await.expect("start"));
    let v = v + 1;
    s.update_password(
        u.id,
        "$argon2id$new",
        Some(v),
        None,
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("password");
    assert!(!s.start_session(&fresh(&sess), v).await.expect("start"));
    let v = v + 1;
    assert!(matches!(
        s.update_password(
            u.id,
            "$argon2id$other",
            Some(v - 1),
            None,
            &AuditEvent::new(AuditKind::SessionsRevoked, t0())
        )
        .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.update_password(
            UserId::new_random(),
            "h",
            None,
            None,
            &AuditEvent::new(AuditKind::SessionsRevoked, t0())
        )
        .await,
        Err(StoreError::NotFound)
    ));
    s.set_user_disabled(
        u.id,
        true,
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("disable");
    assert!(!s.start_session(&fresh(&sess), v).await.expect("start"));
    s.set_user_disabled(
        u.id,
        false,
        &AuditEvent::new(AuditKind::SessionsRevoked, t0()),
    )
    .await
    .expect("enable");
    let user = s.find_user(u.id).await.expect("find").expect("some");
    assert_eq!(user.password_hash, "$argon2id$new");
    assert_eq!(user.credentials_version, v + 1);
    assert!(!s.start_session(&fresh(&sess), v).await.expect("start"));
    assert!(s.start_session(&fresh(&sess), v + 1).await.expect("start"));
}
store_case!(sessions_start_only_from_current_credentials);

async fn sessions_started_while_a_user_is_disabled_all_end(s: Arc<dyn Store>) {
    let (u, _, sess) = seeded(s.as_ref()).await;
    let starts: Vec<_> = (0..16)
        .map(|_| {
            let (s, mut new) = (s.clone(), sess.clone());
            new.id = SessionId::new_random();
            tokio::spawn(async move { (new.id, s.start_session(&new, 0).await.expect("start")) })
        })
        .collect();
    s.set_user_disabled(u.id, true, &AuditEvent::new(AuditKind::UserDisabled, t0()))
        .await
        .expect("disable");
    for start in starts {
        let (id, _) = start.await.expect("task");
        if let Some(found) = s.find_session(id).await.expect("find") {
            assert!(found.revoked_at.is_some(), "a session outlived the disable");
        }
    }
    let refreshed = s
        .rotate_session(
            sess.id,
            sess.client_id,
            0,
            None,
            t0(),
            t0() - Duration::days(1),
        )
        .await
        .expect("rotate");
    assert!(refreshed.is_none());
}
store_case!(sessions_started_while_a_user_is_disabled_all_end);

fn code(user: UserId, client: ClientId, hash: &str) -> AuthorizationCodeRecord {
    AuthorizationCodeRecord {
        code_hash: hash.into(),
        client_id: client,
        user_id: user,
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: "c".repeat(43),
        nonce: Some("n".into()),
        scope: "openid".into(),
        auth_time: t0(),
        credentials_version: 0,
        expires_at: t0() + Duration::seconds(60),
        used_at: None,
        session_id: None,
        dpop_jkt: Some("k".repeat(43)),
    }
}

async fn a_code_round_trips_and_is_consumed_exactly_once_under_a_race(s: Arc<dyn Store>) {
    let (u, c, sess) = seeded(&*s).await;
    let rec = code(u.id, c.id, "hash-1");
    s.insert_authorization_code(&rec).await.expect("insert");
    assert_eq!(
        s.find_authorization_code("hash-1").await.expect("find"),
        Some(rec.clone())
    );

    let tries = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            s.consume_authorization_code("hash-1", sess.id, t0() + Duration::seconds(1))
                .await
                .expect("consume")
        })
    });
    let wins = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().expect("join"))
        .count();

    assert_eq!(wins, 1);
    let used = s
        .find_authorization_code("hash-1")
        .await
        .expect("find")
        .expect("row");
    assert_eq!(used.session_id, Some(sess.id));
    assert!(used.used_at.is_some());
    let late = code(u.id, c.id, "hash-2");
    s.insert_authorization_code(&late).await.expect("insert");
    assert!(
        !s.consume_authorization_code("hash-2", sess.id, t0() + Duration::seconds(60))
            .await
            .expect("consume"),
        "an expired code is never consumed"
    );
}
store_case!(a_code_round_trips_and_is_consumed_exactly_once_under_a_race);

async fn a_code_or_consent_for_a_deleted_client_is_not_found(s: Arc<dyn Store>) {
    let (u, _, _) = seeded(&*s).await;
    // A client deleted after the authorization request was validated: the
    // foreign key refuses the write, and the caller hears `NotFound`, not a
    // backend failure.
    let gone = ClientId::new_random();
    let err = s
        .insert_authorization_code(&code(u.id, gone, "hash-gone"))
        .await
        .expect_err("no such client");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = s
        .upsert_consent(&ConsentRecord {
            user_id: u.id,
            client_id: gone,
            scope: "openid".into(),
            granted_at: t0(),
        })
        .await
        .expect_err("no such client");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(
        s.find_authorization_code("hash-gone").await.expect("find"),
        None
    );
}
store_case!(a_code_or_consent_for_a_deleted_client_is_not_found);

async fn browser_sessions_end_by_logout_idleness_expiry_and_disabled_users(s: Arc<dyn Store>) {
    let (u, _, _) = seeded(&*s).await;
    let b = BrowserSessionRecord {
        id_hash: "bs-1".into(),
        user_id: u.id,
        auth_time: t0(),
        credentials_version: 0,
        last_seen_at: t0(),
        expires_at: t0() + Duration::hours(24),
        revoked_at: None,
    };
    s.insert_browser_session(&b).await.expect("insert");
    let later = t0() + Duration::minutes(30);
    let live = s
        .touch_browser_session("bs-1", later, later - Duration::hours(1))
        .await
        .expect("touch")
        .expect("live");
    assert_eq!(live.last_seen_at, later);
    assert!(
        s.touch_browser_session(
            "bs-1",
            later + Duration::hours(2),
            later + Duration::minutes(1)
        )
        .await
        .expect("touch")
        .is_none(),
        "idle"
    );
    assert!(
        s.touch_browser_session("bs-1", t0() + Duration::hours(25), t0())
            .await
            .expect("touch")
            .is_none(),
        "expired"
    );
    s.set_user_disabled(u.id, true, &AuditEvent::new(AuditKind::UserDisabled, later))
        .await
        .expect("disable");
    assert!(
        s.touch_browser_session("bs-1", later, t0())
            .await
            .expect("touch")
            .is_none(),
        "disabled user"
    );
    s.set_user_disabled(u.id, false, &AuditEvent::new(AuditKind::UserEnabled, later))
        .await
        .expect("enable");
    assert!(s.end_browser_session("bs-1", later).await.expect("end"));
    assert!(
        !s.end_browser_session("bs-1", later).await.expect("end"),
        "idempotent"
    );
    assert!(
        s.touch_browser_session("bs-1", later, t0())
            .await
            .expect("touch")
            .is_none(),
        "ended"
    );
}
store_case!(browser_sessions_end_by_logout_idleness_expiry_and_disabled_users);

async fn withdrawing_consent_revokes_that_clients_sessions(s: Arc<dyn Store>) {
    let (u, c, sess) = seeded(&*s).await;
    let consent = ConsentRecord {
        user_id: u.id,
        client_id: c.id,
        scope: "openid".into(),
        granted_at: t0(),
    };
    s.upsert_consent(&consent).await.expect("upsert");
    let wider = ConsentRecord {
        scope: "openid email".into(),
        ..consent.clone()
    };
    s.upsert_consent(&wider).await.expect("upsert again");
    assert_eq!(
        s.find_consent(u.id, c.id).await.expect("find"),
        Some(wider.clone())
    );
    assert_eq!(s.list_consents(u.id).await.expect("list"), vec![wider]);

    let ev = AuditEvent::new(AuditKind::ConsentWithdrawn, t0() + Duration::minutes(1));
    assert!(s.delete_consent(u.id, c.id, &ev).await.expect("delete"));
    assert!(
        !s.delete_consent(u.id, c.id, &ev).await.expect("delete"),
        "gone"
    );
    let status = s
        .session_status(sess.id)
        .await
        .expect("status")
        .expect("row");
    assert!(status.revoked);
    assert!(s.find_consent(u.id, c.id).await.expect("find").is_none());
}
store_case!(withdrawing_consent_revokes_that_clients_sessions);

async fn rotation_is_stamped_and_aged_by_the_database_clock(s: Arc<dyn Store>) {
    // `t0()` is far from the real time: the instance's notion of now does
    // not enter the grace measure, only the database's clock does.
    let (_, c, sess) = seeded(s.as_ref()).await;
    s.rotate_session(sess.id, c.id, 0, None, t0(), t0() - Duration::days(1))
        .await
        .expect("rotate")
        .expect("rotated");
    let found = s
        .find_rotated_session(sess.id)
        .await
        .expect("find")
        .expect("some");
    assert_eq!(found.session.generation, 1);
    assert!(
        found.since_rotation >= Duration::zero() && found.since_rotation < Duration::seconds(30),
        "{:?}",
        found.since_rotation
    );
    assert!(s
        .find_rotated_session(SessionId::new_random())
        .await
        .expect("find")
        .is_none());
}
store_case!(rotation_is_stamped_and_aged_by_the_database_clock);

async fn reservations_count_nothing_while_locked_and_can_be_given_back(s: Arc<dyn Store>) {
    let key = "account:burst@example.com";
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.reserve_login_attempt(key, t0(), 900).await })
        })
        .collect();
    let mut places = Vec::new();
    for t in tasks {
        places.push(t.await.expect("task").expect("reserve").failures);
    }
    places.sort_unstable();
    assert_eq!(
        places,
        (1..=20).collect::<Vec<i64>>(),
        "each sees its own place"
    );
    s.release_login_attempt(key).await.expect("release");
    let lock = Lockout {
        max_failures: 5,
        seen_lockouts: 0,
        lockouts: 1,
        now: t0(),
        until: t0() + Duration::seconds(900),
    };
    assert!(s.lock_login_failures(key, &lock).await.expect("lock"));
    let during = s
        .reserve_login_attempt(key, t0() + Duration::seconds(10), 900)
        .await
        .expect("reserve");
    assert_eq!(during.failures, 0, "a locked key counts nothing");
    assert_eq!(during.locked_until, Some(lock.until));
    s.release_login_attempt(key).await.expect("release");
    let after = s
        .reserve_login_attempt(key, t0() + Duration::seconds(901), 900)
        .await
        .expect("reserve");
    assert_eq!(after.failures, 1);
}
store_case!(reservations_count_nothing_while_locked_and_can_be_given_back);

fn mail(n: usize, at: DateTime<Utc>) -> MailMessage {
    MailMessage {
        id: uuid::Uuid::new_v4(),
        recipient: format!("r{n}@example.com"),
        subject: "s".into(),
        body_text: "t".into(),
        body_html: "h".into(),
        created_at: at,
    }
}

/// Many senders claim the same outbox at once, each in small batches until
/// nothing is left: every message is claimed by exactly one of them.
async fn concurrent_senders_claim_each_message_once(s: Arc<dyn Store>) {
    const MESSAGES: usize = 60;
    for n in 0..MESSAGES {
        s.enqueue_mail(&mail(n, t0())).await.expect("enqueue");
    }
    let now = t0() + Duration::seconds(1);
    let senders = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = s
                    .claim_mail(now, now + Duration::minutes(5), 3)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.message.id));
            }
        })
    });
    let mut claimed: Vec<uuid::Uuid> = futures_util::future::join_all(senders)
        .await
        .into_iter()
        .flat_map(|r| r.expect("sender"))
        .collect();
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(total, MESSAGES, "no message claimed twice");
    assert_eq!(claimed.len(), MESSAGES);
}
store_case!(concurrent_senders_claim_each_message_once);

/// A claim holds its rows until its lease ends; only the holder settles
/// them; a failure with a retry time makes the row due again then, and one
/// without gives it up and blanks its bodies.
async fn outbox_leases_retries_and_settling(s: Arc<dyn Store>) {
    let m = mail(0, t0());
    s.enqueue_mail(&m).await.expect("enqueue");
    let lease = t0() + Duration::minutes(5);
    let first = s.claim_mail(t0(), lease, 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].message, m);
    assert!(s
        .claim_mail(t0(), lease, 10)
        .await
        .expect("claim")
        .is_empty());
    let stranger = uuid::Uuid::new_v4();
    assert!(!s.mark_mail_sent(m.id, stranger, t0()).await.expect("mark"));
    let retry = t0() + Duration::seconds(30);
    assert!(s
        .mark_mail_failed(m.id, first[0].claim, t0(), Some(retry), "refused")
        .await
        .expect("fail"));
    assert!(s
        .claim_mail(retry - Duration::seconds(1), lease, 10)
        .await
        .expect("claim")
        .is_empty());
    let second = s.claim_mail(retry, lease, 10).await.expect("claim");
    assert_eq!(second[0].attempts, 2);
    assert!(s
        .mark_mail_failed(m.id, second[0].claim, retry, None, "refused")
        .await
        .expect("give up"));
    let counts = s.outbox_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 0, 1));
    // A lease that ran out (its sender died) lets another sender take over.
    let other = mail(1, t0());
    s.enqueue_mail(&other).await.expect("enqueue");
    let held = s.claim_mail(t0(), lease, 10).await.expect("claim");
    let taken = s
        .claim_mail(lease, lease + Duration::minutes(5), 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    assert!(!s
        .mark_mail_sent(other.id, held[0].claim, lease)
        .await
        .expect("mark"));
    assert!(s
        .mark_mail_sent(other.id, taken[0].claim, lease)
        .await
        .expect("mark"));
    assert_eq!(s.outbox_counts().await.expect("counts").sent, 1);
    assert_eq!(
        s.purge_outbox(lease + Duration::seconds(1), 10)
            .await
            .expect("purge"),
        2
    );
}
store_case!(outbox_leases_retries_and_settling);

fn email_token(user: UserId, purpose: TokenPurpose, bound: Option<String>) -> EmailTokenRecord {
    EmailTokenRecord {
        digest: uuid::Uuid::new_v4().as_bytes().to_vec(),
        user_id: user,
        purpose,
        bound_hash: bound,
        created_at: t0(),
        expires_at: t0() + Duration::minutes(30),
    }
}

/// Sixteen uses of one token at once: exactly one succeeds.
async fn concurrent_uses_of_an_email_token_succeed_once(s: Arc<dyn Store>) {
    let (u, _, _) = seeded(&*s).await;
    let token = email_token(
        u.id,
        TokenPurpose::ResetPassword,
        Some(u.password_hash.clone()),
    );
    s.insert_email_token(&token, &mail(0, t0()))
        .await
        .expect("insert");
    let uses = (0..16).map(|_| {
        let s = s.clone();
        let digest = token.digest.clone();
        tokio::spawn(async move {
            s.consume_email_token(&digest, TokenPurpose::ResetPassword, t0())
                .await
                .expect("consume")
        })
    });
    let winners = futures_util::future::join_all(uses)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Some(_))))
        .count();
    assert_eq!(winners, 1);
}
store_case!(concurrent_uses_of_an_email_token_succeed_once);

/// Tokens answer only for their purpose, until they expire, while their
/// password is current, and only the newest of a purpose per user; a
/// verification token marks the address verified.
async fn email_tokens_are_scoped_bound_and_superseded(s: Arc<dyn Store>) {
    let (u, _, _) = seeded(&*s).await;
    let reset = email_token(
        u.id,
        TokenPurpose::ResetPassword,
        Some(u.password_hash.clone()),
    );
    s.insert_email_token(&reset, &mail(0, t0()))
        .await
        .expect("insert");
    let d = &reset.digest;
    assert_eq!(
        s.find_email_token(d, TokenPurpose::VerifyEmail, t0())
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        s.find_email_token(d, TokenPurpose::ResetPassword, t0())
            .await
            .expect("find"),
        Some(u.id)
    );
    assert_eq!(
        s.find_email_token(d, TokenPurpose::ResetPassword, reset.expires_at)
            .await
            .expect("find"),
        None,
        "expired"
    );
    // A newer token of the same purpose voids it.
    let newer = email_token(
        u.id,
        TokenPurpose::ResetPassword,
        Some(u.password_hash.clone()),
    );
    s.insert_email_token(&newer, &mail(1, t0()))
        .await
        .expect("insert");
    assert_eq!(
        s.find_email_token(d, TokenPurpose::ResetPassword, t0())
            .await
            .expect("find"),
        None
    );
    // A password change voids the newer one too.
    let ev = AuditEvent::new(AuditKind::PasswordChanged, t0());
    s.update_password(u.id, "$argon2id$other", None, None, &ev)
        .await
        .expect("update");
    assert_eq!(
        s.consume_email_token(&newer.digest, TokenPurpose::ResetPassword, t0())
            .await
            .expect("consume"),
        None
    );
    // Verification.
    let verify = email_token(u.id, TokenPurpose::VerifyEmail, None);
    s.insert_email_token(&verify, &mail(2, t0()))
        .await
        .expect("insert");
    let ev = AuditEvent::new(AuditKind::EmailVerified, t0());
    assert_eq!(
        s.verify_email_with_token(&verify.digest, t0(), &ev)
            .await
            .expect("verify"),
        Some(u.id)
    );
    assert!(
        s.find_user(u.id)
            .await
            .expect("find")
            .expect("user")
            .email_verified
    );
    assert_eq!(
        s.verify_email_with_token(&verify.digest, t0(), &ev)
            .await
            .expect("verify"),
        None
    );
    assert_eq!(s.outbox_counts().await.expect("counts").pending, 3);
}
store_case!(email_tokens_are_scoped_bound_and_superseded);

async fn mail_requests_resolve_once_under_their_claim(s: Arc<dyn Store>) {
    let (u, _, _) = seeded(s.as_ref()).await;
    let lease = t0() + Duration::minutes(5);
    let first = uuid::Uuid::new_v4();
    s.enqueue_mail_request(first, &u.email, TokenPurpose::ResetPassword, t0())
        .await
        .expect("queue");
    let claimed = s.claim_mail(t0(), lease, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let row = &claimed[0];
    assert_eq!(row.request, Some(TokenPurpose::ResetPassword));
    assert_eq!(row.message.recipient, u.email);
    assert_eq!(row.message.subject, "");
    let token = EmailTokenRecord {
        digest: vec![7; 32],
        user_id: u.id,
        purpose: TokenPurpose::ResetPassword,
        bound_hash: Some(u.password_hash.clone()),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(30),
    };
    let mut message = mail(1, t0());
    message.id = first;
    assert!(
        !s.resolve_mail_request(uuid::Uuid::new_v4(), &token, &message)
            .await
            .expect("resolve"),
        "another claim"
    );
    assert_eq!(
        s.find_email_token(&token.digest, TokenPurpose::ResetPassword, t0())
            .await
            .expect("find"),
        None,
        "nothing minted without the claim"
    );
    assert!(s
        .resolve_mail_request(row.claim, &token, &message)
        .await
        .expect("resolve"));
    assert_eq!(
        s.find_email_token(&token.digest, TokenPurpose::ResetPassword, t0())
            .await
            .expect("find"),
        Some(u.id)
    );
    assert!(
        !s.resolve_mail_request(row.claim, &token, &message)
            .await
            .expect("resolve"),
        "resolved once"
    );

    // An older request resolved after the newer token: dropped, and the
    // newer link stays the live one.
    let older = uuid::Uuid::new_v4();
    let before = t0() - Duration::seconds(1);
    s.enqueue_mail_request(older, &u.email, TokenPurpose::ResetPassword, before)
        .await
        .expect("queue");
    let claimed = s.claim_mail(t0(), lease, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let stale = EmailTokenRecord {
        digest: vec![8; 32],
        created_at: before,
        ..token.clone()
    };
    let mut message = mail(2, before);
    message.id = older;
    assert!(!s
        .resolve_mail_request(claimed[0].claim, &stale, &message)
        .await
        .expect("resolve"));
    assert_eq!(
        s.find_email_token(&stale.digest, TokenPurpose::ResetPassword, t0())
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        s.find_email_token(&token.digest, TokenPurpose::ResetPassword, t0())
            .await
            .expect("find"),
        Some(u.id)
    );

    // A request for no account is deleted by its claim's holder only.
    let nobody = uuid::Uuid::new_v4();
    s.enqueue_mail_request(
        nobody,
        "nobody@example.com",
        TokenPurpose::VerifyEmail,
        t0(),
    )
    .await
    .expect("queue");
    let claimed = s.claim_mail(t0(), lease, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].request, Some(TokenPurpose::VerifyEmail));
    assert!(!s
        .drop_mail_request(nobody, uuid::Uuid::new_v4())
        .await
        .expect("drop"));
    assert!(s
        .drop_mail_request(nobody, claimed[0].claim)
        .await
        .expect("drop"));
    // Left: the first request, resolved and still claimed for delivery.
    assert_eq!(s.outbox_counts().await.expect("counts").pending, 1);
}
store_case!(mail_requests_resolve_once_under_their_claim);

async fn of_concurrent_uses_of_one_jti_exactly_one_is_first(s: Arc<dyn Store>) {
    let until = DateTime::from_timestamp(4_000_000_000, 0).expect("time");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.remember_jti("dpop:k1", "digest-a", until).await })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        if t.await.expect("task").expect("remember") {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);
    // Namespaces keep uses apart; a later use in the same one is a replay.
    assert!(s
        .remember_jti("client_assertion:c1", "digest-a", until)
        .await
        .expect("remember"));
    assert!(!s
        .remember_jti("dpop:k1", "digest-a", until)
        .await
        .expect("remember"));
}
store_case!(of_concurrent_uses_of_one_jti_exactly_one_is_first);

async fn used_jtis_expire_and_are_purged_in_bounded_batches(s: Arc<dyn Store>) {
    // "Expired" is judged by the database's clock: one time long before
    // it, one long after it.
    let past = DateTime::from_timestamp(1_000_000_000, 0).expect("time");
    let now = past + Duration::seconds(5);
    let future = DateTime::from_timestamp(4_000_000_000, 0).expect("time");
    assert!(s
        .remember_jti("dpop:k", "old", past)
        .await
        .expect("remember"));
    // An id whose window has closed may be taken over.
    assert!(s
        .remember_jti("dpop:k", "old", future)
        .await
        .expect("remember"));
    assert!(!s
        .remember_jti("dpop:k", "old", future)
        .await
        .expect("remember"));
    for i in 0..5 {
        let jti = format!("gone-{i}");
        assert!(s
            .remember_jti("dpop:k", &jti, past)
            .await
            .expect("remember"));
    }
    assert_eq!(s.purge_used_jtis(now, 4).await.expect("purge"), 4);
    assert_eq!(s.purge_used_jtis(now, 4).await.expect("purge"), 1);
    assert_eq!(s.purge_used_jtis(now, 4).await.expect("purge"), 0);
    // The live one survived the purge and is still a replay.
    assert!(!s
        .remember_jti("dpop:k", "old", future)
        .await
        .expect("remember"));
}
store_case!(used_jtis_expire_and_are_purged_in_bounded_batches);

fn key_row(kid: &str, at: DateTime<Utc>) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        algorithm: "ES256".into(),
        sealed: kid.as_bytes().to_vec(),
        kek_id: "kek-1".into(),
        published_at: at,
        activates_at: at,
        retires_at: None,
        expires_at: None,
    }
}

fn refresh_secret(bytes: &[u8]) -> SealedSecret {
    SealedSecret {
        name: "refresh".into(),
        sealed: bytes.to_vec(),
        kek_id: "kek-1".into(),
    }
}

async fn of_concurrent_key_initialisations_exactly_one_writes(s: Arc<dyn Store>) {
    let v0 = s.keys_version().await.expect("version");
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let kid = format!("first-{i}");
            s.initialize_keys(&refresh_secret(&[i]), &[key_row(&kid, t0())])
                .await
                .expect("no error")
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.expect("task"));
    }
    assert_eq!(won, 1);
    let (v, keys) = s.list_signing_keys().await.expect("lists");
    assert_eq!(keys.len(), 1);
    assert!(v > v0, "initialising moves the version");
    // The secret is the winner's.
    let secret = s
        .find_key_secret("refresh")
        .await
        .expect("reads")
        .expect("present");
    assert_eq!(keys[0].kid, format!("first-{}", secret.sealed[0]));
}
store_case!(of_concurrent_key_initialisations_exactly_one_writes);

async fn key_schedule_writes_compare_and_set_the_version(s: Arc<dyn Store>) {
    assert!(s
        .initialize_keys(&refresh_secret(b"s"), &[key_row("a", t0())])
        .await
        .expect("initialises"));
    let (v, keys) = s.list_signing_keys().await.expect("lists");
    assert_eq!(keys, vec![key_row("a", t0())]);
    // Two changes computed from the same version: exactly one lands.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut a = key_row("a", t0());
            a.retires_at = Some(t0() + Duration::seconds(i));
            let new = key_row(&format!("n{i}"), t0() + Duration::seconds(i));
            s.save_signing_keys(v, &[a, new], &[], None).await
        }));
    }
    let mut landed = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => landed += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(landed, 1);
    let (v2, keys) = s.list_signing_keys().await.expect("lists");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(v2 > v);
    assert_eq!(s.keys_version().await.expect("version"), v2);
    // Deleting and re-sealing the secret, from the current version.
    let secret = SealedSecret {
        kek_id: "kek-2".into(),
        ..refresh_secret(b"t")
    };
    s.save_signing_keys(v2, &[], &["a".to_owned()], Some(&secret))
        .await
        .expect("saves");
    let (_, keys) = s.list_signing_keys().await.expect("lists");
    assert_eq!(keys.len(), 1);
    assert_eq!(
        s.find_key_secret("refresh").await.expect("reads"),
        Some(secret)
    );
    assert!(!s
        .initialize_keys(&refresh_secret(b"again"), &[key_row("z", t0())])
        .await
        .expect("no error"));
}
store_case!(key_schedule_writes_compare_and_set_the_version);
async fn a_bound_session_rotates_only_with_its_key(s: Arc<dyn Store>) {
    let (_, c, sess) = seeded(s.as_ref()).await;
    let bound = SessionRecord {
        id: SessionId::new_random(),
        dpop_jkt: Some("key-a".into()),
        ..sess.clone()
    };
    assert!(s.start_session(&bound, 0).await.expect("start"));
    assert_eq!(
        s.find_session(bound.id)
            .await
            .expect("find")
            .and_then(|f| f.dpop_jkt)
            .as_deref(),
        Some("key-a")
    );
    let idle = t0() - Duration::days(1);
    for other in [None, Some("key-b")] {
        assert!(s
            .rotate_session(bound.id, c.id, 0, other, t0(), idle)
            .await
            .expect("rotate")
            .is_none());
    }
    let rotated = s
        .rotate_session(bound.id, c.id, 0, Some("key-a"), t0(), idle)
        .await
        .expect("rotate")
        .expect("rotated with its key");
    assert_eq!(rotated.generation, 1);
    // An unbound session rotates with or without a proof key.
    assert!(s
        .rotate_session(sess.id, c.id, 0, Some("key-b"), t0(), idle)
        .await
        .expect("rotate")
        .is_some());
}
store_case!(a_bound_session_rotates_only_with_its_key);
