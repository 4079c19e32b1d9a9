//! Verified addresses and password reset by email, through a real SMTP
//! server (the in-process sink) on a loopback port: the tests read the
//! delivered message, follow its link, and check what it did.

use chrono::Duration;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::smtp_sink::{Mode, Received, SmtpSink};
use crate::helpers::{
    mail_to_sink, new_shared, spawn_instance, spawn_on_with, spawn_with_mail, str_field, Backend,
    TestApp,
};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new passphrase";
const VERIFY: &str = "/verify-email?token=";
const RESET: &str = "/reset-password?token=";

fn new_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn token(mail: &Received, marker: &str) -> String {
    mail.token_after(marker)
        .unwrap_or_else(|| panic!("no token after {marker} in {}", mail.data))
}

async fn signed_up(app: &TestApp, sink: &SmtpSink) -> (String, Received) {
    let email = new_email();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    let mail = sink.wait_for_to(&email, VERIFY).await;
    (email, mail)
}

async fn request_reset(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_json(
        "/v1/account/password/reset",
        serde_json::json!({ "email": email }),
    )
    .await
}

async fn confirm_reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/v1/account/password/reset/confirm",
        serde_json::json!({ "token": token, "new_password": password }),
    )
    .await
}

async fn reset_mails(sink: &SmtpSink, email: &str, n: usize) -> Vec<Received> {
    sink.wait_until(&format!("{n} reset mails to {email}"), |s| {
        s.messages()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == email) && m.data.contains(RESET))
            .count()
            >= n
    })
    .await;
    sink.messages()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == email) && m.data.contains(RESET))
        .collect()
}

async fn verification_link_verifies_the_address(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (email, mail) = signed_up(&app, &sink).await;
    assert_eq!(mail.subject(), Some("Confirm your Acme email address"));
    assert!(mail.data.contains("text/html"), "an HTML part");
    assert!(!mail.data.contains("<img"), "no tracking pixels");
    let client = app.public_client().await;
    let before: Value = app
        .login(&client, &email, PASSWORD, Some("openid email"))
        .await
        .json()
        .await
        .expect("json");
    let info: Value = app
        .get_bearer("/userinfo", str_field(&before, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["email_verified"], false);

    let t = token(&mail, VERIFY);
    let used = app
        .post_json(
            "/v1/account/email/verify",
            serde_json::json!({ "token": t }),
        )
        .await;
    assert_eq!(used.status(), 204);

    let after: Value = app
        .login(&client, &email, PASSWORD, Some("openid email"))
        .await
        .json()
        .await
        .expect("json");
    let info: Value = app
        .get_bearer("/userinfo", str_field(&after, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["email_verified"], true);
    let id_token =
        crate::password_grant::verify_with_jwks(&app, str_field(&after, "id_token"), &client.id)
            .await;
    assert_eq!(id_token["email_verified"], true);

    // Single use.
    let again = app
        .post_json(
            "/v1/account/email/verify",
            serde_json::json!({ "token": t }),
        )
        .await;
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}
both_backends!(verification_link_verifies_the_address);

async fn verification_links_expire(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (_, mail) = signed_up(&app, &sink).await;
    app.advance_clock(Duration::hours(24) + Duration::seconds(1));
    let res = app
        .post_json(
            "/v1/account/email/verify",
            serde_json::json!({ "token": token(&mail, VERIFY) }),
        )
        .await;
    assert_eq!(res.status(), 400);
}
both_backends!(verification_links_expire);

async fn password_reset_sets_the_password_ends_sessions_and_clears_a_lockout(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let rs = app.confidential_client().await;
    let (email, _) = signed_up(&app, &sink).await;
    let client = app.public_client().await;
    let login: Value = app
        .login(&client, &email, PASSWORD, None)
        .await
        .json()
        .await
        .expect("json");
    let intro: Value = app
        .introspect(&rs, str_field(&login, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], true, "active before the reset");
    // Lock the account with wrong passwords.
    let mut locked = false;
    for _ in 0..10 {
        if app
            .login(&client, &email, "wrong password!", None)
            .await
            .status()
            == 429
        {
            locked = true;
            break;
        }
    }
    assert!(locked, "the account locks");

    let res = request_reset(&app, &email).await;
    assert_eq!(res.status(), 202);
    let mail = &reset_mails(&sink, &email, 1).await[0];
    assert_eq!(mail.subject(), Some("Reset your Acme password"));
    let t = token(mail, RESET);
    assert_eq!(confirm_reset(&app, &t, NEW_PASSWORD).await.status(), 204);

    // Every session ended: refresh refused, access token inactive.
    assert_eq!(
        app.refresh(&client, str_field(&login, "refresh_token"))
            .await
            .status(),
        400
    );
    let intro: Value = app
        .introspect(&rs, str_field(&login, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], false);
    // The lockout is cleared and the new password works; the old one not.
    assert_eq!(
        app.login(&client, &email, PASSWORD, None).await.status(),
        400
    );
    assert_eq!(
        app.login(&client, &email, NEW_PASSWORD, None)
            .await
            .status(),
        200
    );
    // Single use.
    assert_eq!(
        confirm_reset(&app, &t, "yet another passphrase")
            .await
            .status(),
        400
    );
    // The owner is told.
    let notice = sink
        .wait_for_to(&email, "password of your Acme account was just changed")
        .await;
    assert_eq!(notice.subject(), Some("Your Acme password was changed"));
    // Audited.
    let audit = app.store.list_audit(None, None, 100).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "password_reset"));
}
both_backends!(password_reset_sets_the_password_ends_sessions_and_clears_a_lockout);

async fn a_second_reset_request_voids_the_first_and_links_expire(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (email, _) = signed_up(&app, &sink).await;
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    let first = token(&reset_mails(&sink, &email, 1).await[0], RESET);
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    let second = token(&reset_mails(&sink, &email, 2).await[1], RESET);
    assert_ne!(first, second);
    assert_eq!(
        confirm_reset(&app, &first, NEW_PASSWORD).await.status(),
        400,
        "the newer request voided the first link"
    );
    app.advance_clock(Duration::minutes(30) + Duration::seconds(1));
    assert_eq!(
        confirm_reset(&app, &second, NEW_PASSWORD).await.status(),
        400,
        "reset links expire after 30 minutes"
    );
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    let third = token(&reset_mails(&sink, &email, 3).await[2], RESET);
    assert_eq!(
        confirm_reset(&app, &third, NEW_PASSWORD).await.status(),
        204
    );
}
both_backends!(a_second_reset_request_voids_the_first_and_links_expire);

async fn a_password_change_voids_an_outstanding_reset_link(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (email, _) = signed_up(&app, &sink).await;
    let client = app.public_client().await;
    let login: Value = app
        .login(&client, &email, PASSWORD, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    let t = token(&reset_mails(&sink, &email, 1).await[0], RESET);
    let changed = app
        .client
        .post(app.url("/v1/account/password"))
        .bearer_auth(str_field(&login, "access_token"))
        .json(&serde_json::json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(changed.status(), 204);
    assert_eq!(
        confirm_reset(&app, &t, "an attacker's passphrase")
            .await
            .status(),
        400
    );
}
both_backends!(a_password_change_voids_an_outstanding_reset_link);

async fn unknown_email_gets_the_same_answer(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (email, _) = signed_up(&app, &sink).await;
    let known = request_reset(&app, &email).await;
    let unknown = request_reset(&app, &new_email()).await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    let strip = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(strip(&known), strip(&unknown));
    assert_eq!(
        known.text().await.expect("body"),
        unknown.text().await.expect("body")
    );
    reset_mails(&sink, &email, 1).await;
    // Only the known address got mail: the signup's and the reset's.
    let total = sink.messages().len();
    assert_eq!(total, 2, "{:?}", sink.messages());
}
both_backends!(unknown_email_gets_the_same_answer);

async fn reset_requests_are_throttled_per_client(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let port = sink.port;
    let Some(app) = spawn_on_with(backend, move |s| {
        mail_to_sink(s, port);
        s.email.max_requests_per_client = 3;
        s.email.max_requests_per_email = 1;
    })
    .await
    else {
        return;
    };
    let (email, _) = signed_up(&app, &sink).await;
    // Beyond the per-email limit: still 202, but no second mail.
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    assert_eq!(request_reset(&app, &new_email()).await.status(), 202);
    let over = request_reset(&app, &new_email()).await;
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    reset_mails(&sink, &email, 1).await;
    // The first request is delivered; the second, over the per-email
    // limit, never queued anything.
    let counts = settled(&app).await;
    assert_eq!((counts.sent, counts.failed), (2, 0));
}
both_backends!(reset_requests_are_throttled_per_client);

async fn unverified_users_are_refused_when_verification_is_required(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let port = sink.port;
    let Some(app) = spawn_on_with(backend, move |s| {
        mail_to_sink(s, port);
        s.signup.require_verified_email = true;
    })
    .await
    else {
        return;
    };
    let (email, mail) = signed_up(&app, &sink).await;
    let client = app.public_client().await;
    let refused = app.login(&client, &email, PASSWORD, None).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    assert!(str_field(&body, "error_description").contains("not verified"));
    // A wrong password still gets the generic answer.
    let wrong: Value = app
        .login(&client, &email, "wrong password!", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(wrong["error_description"], "invalid username or password");
    // Nothing was re-sent on its own.
    assert_eq!(sink.messages().len(), 1);
    let used = app
        .post_json(
            "/v1/account/email/verify",
            serde_json::json!({ "token": token(&mail, VERIFY) }),
        )
        .await;
    assert_eq!(used.status(), 204);
    assert_eq!(
        app.login(&client, &email, PASSWORD, None).await.status(),
        200
    );
}
both_backends!(unverified_users_are_refused_when_verification_is_required);

async fn a_new_verification_link_can_be_asked_for(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (email, first) = signed_up(&app, &sink).await;
    let res = app
        .post_json(
            "/v1/account/email/verify",
            serde_json::json!({ "email": email }),
        )
        .await;
    assert_eq!(res.status(), 202);
    sink.wait_for(2).await;
    let second = sink.messages().pop().expect("second");
    assert_ne!(token(&first, VERIFY), token(&second, VERIFY));
    let old = app
        .post_json(
            "/v1/account/email/verify",
            serde_json::json!({ "token": token(&first, VERIFY) }),
        )
        .await;
    assert_eq!(old.status(), 400, "the new link voided the old one");
    let neither = app
        .post_json("/v1/account/email/verify", serde_json::json!({}))
        .await;
    assert_eq!(neither.status(), 400);
}
both_backends!(a_new_verification_link_can_be_asked_for);

async fn a_hanging_mail_server_delays_no_request(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Hang).await else {
        return;
    };
    let email = new_email();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    // The sender is now stuck in a connection the server never answers...
    sink.wait_until("a hanging connection", |s| s.connections().1 >= 1)
        .await;
    // ...and requests that queue mail still answer while it hangs.
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    assert_eq!(app.signup(&new_email(), PASSWORD).await.status(), 201);
    let client = app.public_client().await;
    assert_eq!(
        app.login(&client, &email, PASSWORD, None).await.status(),
        200
    );
    assert!(
        sink.connections().1 >= 1,
        "the mail connection was still hanging when the requests were answered"
    );
    assert!(sink.messages().is_empty());
}
both_backends!(a_hanging_mail_server_delays_no_request);

async fn a_refusing_mail_server_is_retried_with_backoff(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Refuse).await else {
        return;
    };
    let email = new_email();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    sink.wait_until("a refused attempt", |s| s.connections().0 >= 1)
        .await;
    wait_for_metric(&app, "latchkey_mail_attempts_failed_total 1").await;
    sink.set_mode(Mode::Accept);
    // Not due before the backoff ends; due after it.
    app.advance_clock(Duration::seconds(31));
    sink.wait_for_to(&email, VERIFY).await;
    wait_for_metric(&app, "latchkey_mail_sent_total 1").await;
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("latchkey_mail_queued_total 1"),
        "{metrics}"
    );
    assert_eq!(sink.messages().len(), 1);
}
both_backends!(a_refusing_mail_server_is_retried_with_backoff);

async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text")
}

async fn wait_for_metric(app: &TestApp, line: &str) {
    for _ in 0..300 {
        if metrics_text(app).await.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "metric line {line:?} never appeared:\n{}",
        metrics_text(app).await
    );
}

/// The outbox counts once nothing is pending (bounded wait for the sender
/// to record the delivery the sink has already seen).
async fn settled(app: &TestApp) -> latchkey::store::OutboxCounts {
    for _ in 0..300 {
        let c = app.store.outbox_counts().await.expect("counts");
        if c.pending == 0 {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the outbox never drained");
}

async fn queued_mail_survives_a_restart(backend: Backend) {
    let sink = SmtpSink::start(Mode::Refuse).await;
    let port = sink.port;
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let first = spawn_instance(&shared, |s| mail_to_sink(s, port)).await;
    let email = new_email();
    assert_eq!(first.signup(&email, PASSWORD).await.status(), 201);
    sink.wait_until("a refused attempt", |s| s.connections().0 >= 1)
        .await;
    first.stop().await;
    sink.set_mode(Mode::Accept);
    let second = spawn_instance(&shared, |s| mail_to_sink(s, port)).await;
    second.advance_clock(Duration::seconds(31));
    sink.wait_for_to(&email, VERIFY).await;
    let counts = settled(&second).await;
    assert_eq!((counts.pending, counts.sent), (0, 1));
    assert_eq!(sink.messages().len(), 1);
}
both_backends!(queued_mail_survives_a_restart);

/// Two instances on one database, each with its own sender polling the same
/// outbox: every message is delivered exactly once.
async fn two_instances_deliver_each_message_exactly_once(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let port = sink.port;
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let a = spawn_instance(&shared, |s| mail_to_sink(s, port)).await;
    let b = spawn_instance(&shared, |s| mail_to_sink(s, port)).await;
    const N: usize = 16;
    let mut emails = Vec::new();
    // One after another: the hashing queue is not what is under test, the
    // two senders draining one outbox are.
    for i in 0..N {
        let email = new_email();
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
        emails.push(email);
    }
    sink.wait_for(N).await;
    assert_eq!(settled(&a).await.sent, N as i64);
    a.stop().await;
    b.stop().await;
    let mut delivered: Vec<String> = sink.messages().into_iter().flat_map(|m| m.to).collect();
    delivered.sort();
    emails.sort();
    assert_eq!(delivered, emails, "each message exactly once");
}
both_backends!(two_instances_deliver_each_message_exactly_once);

async fn get_page(app: &TestApp, url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let res = app.client.get(url).send().await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.expect("body"), headers)
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = app
        .client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// The mailed links open pages that act only on a POST: a mail scanner
/// that fetches the link (even twice) uses nothing.
async fn mailed_links_open_pages_that_act_only_on_post(backend: Backend) {
    let Some((app, sink)) = spawn_with_mail(backend, Mode::Accept).await else {
        return;
    };
    let (email, mail) = signed_up(&app, &sink).await;
    let link = format!("{}{VERIFY}{}", app.address, token(&mail, VERIFY));
    for _ in 0..2 {
        let (status, body, headers) = get_page(&app, &link).await;
        assert_eq!(status, 200);
        assert!(body.contains("<form method=\"post\""), "{body}");
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
        assert_eq!(headers["cache-control"], "no-store");
    }
    let (status, body) =
        post_form(&app, "/verify-email", &[("token", &token(&mail, VERIFY))]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Email address confirmed"));
    assert!(
        app.store
            .find_user_by_email(&email)
            .await
            .expect("find")
            .expect("user")
            .email_verified
    );
    assert_eq!(get_page(&app, &link).await.0, 400, "used");

    assert_eq!(request_reset(&app, &email).await.status(), 202);
    let t = token(&reset_mails(&sink, &email, 1).await[0], RESET);
    let link = format!("{}{RESET}{t}", app.address);
    let (status, body, _) = get_page(&app, &link).await;
    assert_eq!(status, 200);
    assert!(body.contains("autocomplete=\"new-password\""));
    let (status, body) = post_form(
        &app,
        "/reset-password",
        &[
            ("token", &t),
            ("new_password", NEW_PASSWORD),
            ("confirm_password", "different one"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("do not match"), "{body}");
    let (status, body) = post_form(
        &app,
        "/reset-password",
        &[
            ("token", &t),
            ("new_password", "short"),
            ("confirm_password", "short"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("role=\"alert\""), "{body}");
    let (status, body) = post_form(
        &app,
        "/reset-password",
        &[
            ("token", &t),
            ("new_password", NEW_PASSWORD),
            ("confirm_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client = app.public_client().await;
    assert_eq!(
        app.login(&client, &email, NEW_PASSWORD, None)
            .await
            .status(),
        200
    );
    assert_eq!(get_page(&app, &link).await.0, 400, "used");
    let (status, body, _) = get_page(&app, &app.url("/reset-password?token=<script>")).await;
    assert_eq!(status, 400);
    assert!(!body.contains("<script>"));
}
both_backends!(mailed_links_open_pages_that_act_only_on_post);

/// A reset request causes the same work whatever the address: one queued
/// request row, no lookup, no token, no mail on the request path. Only the
/// sender, off the request path, tells the addresses apart: it mints and
/// delivers for the account and drops the other row.
async fn a_reset_request_does_the_same_work_for_any_address(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let port = sink.port;
    let Some(app) = spawn_on_with(backend, move |s| {
        mail_to_sink(s, port);
        // The sender rounds only when woken by mail composed on this
        // instance; requests do not wake it.
        s.email.poll_interval_ms = 3_600_000;
    })
    .await
    else {
        return;
    };
    let (email, _) = signed_up(&app, &sink).await;
    let before = settled(&app).await;
    assert_eq!(request_reset(&app, &email).await.status(), 202);
    assert_eq!(request_reset(&app, &new_email()).await.status(), 202);
    let queued = app.store.outbox_counts().await.expect("counts");
    assert_eq!(
        (queued.pending, queued.sent),
        (2, before.sent),
        "one row per request, and nothing else yet"
    );
    let audit = app.store.list_audit(None, None, 100).await.expect("audit");
    assert!(
        !audit.iter().any(|e| e.kind == "password_reset_requested"),
        "the request path resolved the address"
    );

    let mailer = latchkey::domain::outbox::Mailer::new(&app.settings.mailer()).expect("mailer");
    app.services.send_due_mail(&mailer).await.expect("a round");
    let t = token(&reset_mails(&sink, &email, 1).await[0], RESET);
    let after = app.store.outbox_counts().await.expect("counts");
    assert_eq!((after.pending, after.sent), (0, before.sent + 1));
    assert_eq!(sink.messages().len(), 2, "the signup's and the reset's");
    assert_eq!(confirm_reset(&app, &t, NEW_PASSWORD).await.status(), 204);
}
both_backends!(a_reset_request_does_the_same_work_for_any_address);

/// Reset requests queued on two instances, resolved by both senders: each
/// account gets one mail per request, each link is minted once, and only the
/// newest link of an account works.
async fn two_instances_resolve_each_reset_request_once(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let port = sink.port;
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let tweak = move |s: &mut latchkey::config::RawSettings| {
        mail_to_sink(s, port);
        s.email.max_requests_per_client = 1000;
    };
    let a = spawn_instance(&shared, tweak).await;
    let b = spawn_instance(&shared, tweak).await;
    const USERS: usize = 4;
    let mut emails = Vec::new();
    for _ in 0..USERS {
        let (email, _) = signed_up(&a, &sink).await;
        emails.push(email);
    }
    // Two requests per account, one on each instance, and as many for
    // addresses without an account, all at once.
    let strangers: Vec<String> = (0..USERS).map(|_| new_email()).collect();
    let mut requests = Vec::new();
    for (email, stranger) in emails.iter().zip(&strangers) {
        requests.push(request_reset(&a, email));
        requests.push(request_reset(&b, email));
        requests.push(request_reset(&b, stranger));
    }
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.status(), 202);
    }
    let counts = settled(&a).await;
    sink.wait_for(counts.sent as usize).await;
    assert_eq!(sink.messages().len() as i64, counts.sent, "each mail once");
    for email in &emails {
        let mails = reset_mails(&sink, email, 1).await;
        assert!(mails.len() <= 2, "{email}: {}", mails.len());
        // A request resolved after a newer one of the same account is
        // dropped rather than mail a link the newer one voided.
        let tokens: Vec<String> = mails.iter().map(|m| token(m, RESET)).collect();
        let works: Vec<u16> = {
            let mut out = Vec::new();
            for t in &tokens {
                out.push(
                    a.client
                        .get(a.url(&format!("{RESET}{t}")))
                        .send()
                        .await
                        .expect("page")
                        .status()
                        .as_u16(),
                );
            }
            out
        };
        assert_eq!(
            works.iter().filter(|s| **s == 200).count(),
            1,
            "exactly one live link for {email}: {works:?}"
        );
    }
    a.stop().await;
    b.stop().await;
}
both_backends!(two_instances_resolve_each_reset_request_once);

/// The reset request's only non-202 answer is the per-client limit, counted
/// for every request whatever the address: at every point of the throttle an
/// address with an account and one without get the same status, body and
/// headers (but the request id and the date).
async fn known_and_unknown_addresses_get_identical_answers_at_every_point_of_the_throttle(
    backend: Backend,
) {
    let tweak = |s: &mut latchkey::config::RawSettings| {
        s.email.max_requests_per_client = 3;
        s.email.max_requests_per_email = 1;
    };
    let (Some(with), Some(without)) = (new_shared(backend).await, new_shared(backend).await) else {
        return;
    };
    let known = spawn_instance(&with, tweak).await;
    let unknown =
        crate::helpers::spawn_instance_with_clock(&without, with.clock.clone(), tweak).await;
    let email = new_email();
    assert_eq!(known.signup(&email, PASSWORD).await.status(), 201);
    let strip = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        h.sort();
        h
    };
    let mut statuses = Vec::new();
    for i in 0..6 {
        let (k, u) = (
            request_reset(&known, &email).await,
            request_reset(&unknown, &email).await,
        );
        assert_eq!(k.status(), u.status(), "request {i}");
        assert_eq!(strip(&k), strip(&u), "request {i}");
        statuses.push(k.status().as_u16());
        assert_eq!(
            k.text().await.expect("body"),
            u.text().await.expect("body"),
            "request {i}"
        );
    }
    // Under both limits, over the per-email one (still 202), over the
    // per-client one (429 with Retry-After).
    assert_eq!(statuses, [202, 202, 202, 429, 429, 429]);
    // Once the window has passed, both answer 202 again.
    with.clock
        .advance(Duration::hours(1) + Duration::seconds(1));
    let (k, u) = (
        request_reset(&known, &email).await,
        request_reset(&unknown, &email).await,
    );
    assert_eq!((k.status().as_u16(), u.status().as_u16()), (202, 202));
}
both_backends!(known_and_unknown_addresses_get_identical_answers_at_every_point_of_the_throttle);
