//! The token cookies: set at login with every attribute, rotated by
//! refresh, cleared by logout; the Origin check on every cookie-authenticated
//! state change, and planted or foreign cookies ignored.

use super::*;

#[tokio::test]
async fn login_sets_both_token_cookies_with_every_attribute_and_no_token_in_the_body() {
    let app = spawn_app().await;
    let client = cookie_client(&app).await;
    let email = new_user(&app).await;

    let res = login_from(&app, &client, &email, Some(ORIGIN)).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    token_cookies(&res, REFRESH_TTL);
    let body: Value = res.json().await.expect("json");
    let keys: BTreeSet<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["token_type", "expires_in", "scope"]));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], ACCESS_TTL);
    assert_eq!(body["scope"], "openid email");
}

#[tokio::test]
async fn a_client_without_refresh_gets_the_access_cookie_only() {
    let app = spawn_app().await;
    let client = cookie_client_with(&app, true, &[GrantType::Password]).await;
    let email = new_user(&app).await;

    let res = login_from(&app, &client, &email, Some(ORIGIN)).await;

    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1);
    assert_eq!(cookies[0].name, ACCESS);
    assert_eq!(cookies[0].attrs, attrs("/", ACCESS_TTL));
}

#[tokio::test]
async fn body_mode_clients_get_tokens_in_the_body_and_no_cookies() {
    let app = spawn_app().await;
    let client =
        cookie_client_with(&app, false, &[GrantType::Password, GrantType::RefreshToken]).await;
    let email = new_user(&app).await;

    let res = login_from(&app, &client, &email, None).await;

    assert_eq!(res.status(), 200);
    assert!(set_cookies(&res).is_empty());
    let body: Value = res.json().await.expect("json");
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
}

#[tokio::test]
async fn password_login_of_a_cookie_mode_client_needs_an_allowed_origin() {
    let app = spawn_app().await;
    let client = cookie_client(&app).await;
    let email = new_user(&app).await;

    for origin in [None, Some("https://evil.example"), Some("null")] {
        assert_origin_refused(login_from(&app, &client, &email, origin).await).await;
    }

    // No session was started by the refused attempts.
    let res = login_from(&app, &client, &email, Some(ORIGIN)).await;
    let jar = token_cookies(&res, REFRESH_TTL);
    let res = with_access_cookie(
        &app,
        reqwest::Method::GET,
        "/v1/account/sessions",
        &jar,
        None,
    )
    .send()
    .await
    .expect("request");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["sessions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn userinfo_and_the_session_list_accept_the_access_cookie() {
    let app = spawn_app().await;
    let (_, _, jar) = logged_in(&app).await;

    let res = userinfo(&app, &jar).await;

    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert!(uuid::Uuid::parse_str(str_field(&body, "sub")).is_ok());
    let res = with_access_cookie(
        &app,
        reqwest::Method::GET,
        "/v1/account/sessions",
        &jar,
        None,
    )
    .send()
    .await
    .expect("request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["sessions"][0]["current"], true);
}

#[tokio::test]
async fn the_access_cookie_of_a_body_mode_client_is_refused() {
    let app = spawn_app().await;
    let (_, _, login) = app.logged_in_user(None).await;
    let jar = Jar {
        access: str_field(&login, "access_token").to_owned(),
        refresh: String::new(),
    };

    let res = userinfo(&app, &jar).await;

    assert_eq!(res.status(), 401);
}

async fn refresh_from_the_cookie_rotates_both_cookies(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, jar) = logged_in(&app).await;

    let res = refresh_cookie(&app, &client, &jar.refresh).await;

    assert_eq!(res.status(), 200);
    let next = token_cookies(&res, REFRESH_TTL);
    assert_ne!(next.refresh, jar.refresh);
    assert_ne!(next.access, jar.access);
    let body: Value = res.json().await.expect("json");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(userinfo(&app, &next).await.status(), 200);
    // The new one rotates in turn.
    let res = refresh_cookie(&app, &client, &next.refresh).await;
    assert_eq!(res.status(), 200);
    assert_ne!(token_cookies(&res, REFRESH_TTL).refresh, next.refresh);
}
both_backends!(refresh_from_the_cookie_rotates_both_cookies);

async fn grace_replay_from_the_cookie_sets_the_same_refresh_cookie(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, jar) = logged_in(&app).await;
    let first = token_cookies(
        &refresh_cookie(&app, &client, &jar.refresh).await,
        REFRESH_TTL,
    );
    app.advance_clock(Duration::seconds(5));

    let res = refresh_cookie(&app, &client, &jar.refresh).await;

    assert_eq!(res.status(), 200);
    let replay = token_cookies(&res, REFRESH_TTL - 5);
    assert_eq!(replay.refresh, first.refresh);
    assert_ne!(replay.access, first.access);
}
both_backends!(grace_replay_from_the_cookie_sets_the_same_refresh_cookie);

async fn a_reused_refresh_cookie_revokes_the_session(backend: Backend) {
    // No grace: a replay of the cookie just rotated is reuse at once.
    let Some(app) = spawn_on_with(backend, |s| s.tokens.refresh_grace_secs = 0).await else {
        return;
    };
    let (client, _, jar) = logged_in(&app).await;
    let first = token_cookies(
        &refresh_cookie(&app, &client, &jar.refresh).await,
        REFRESH_TTL,
    );

    let res = refresh_cookie(&app, &client, &jar.refresh).await;

    assert_eq!(res.status(), 400);
    assert!(set_cookies(&res).is_empty());
    let err: Value = res.json().await.expect("json");
    assert!(str_field(&err, "error_description").contains("already used"));
    let res = refresh_cookie(&app, &client, &first.refresh).await;
    let err: Value = res.json().await.expect("json");
    assert!(str_field(&err, "error_description").contains("revoked"));
    assert_eq!(userinfo(&app, &first).await.status(), 401);
}
both_backends!(a_reused_refresh_cookie_revokes_the_session);

async fn a_cookie_refresh_from_a_foreign_origin_is_refused_and_changes_nothing(backend: Backend) {
    let Some(app) = spawn_on_with(backend, |s| s.tokens.refresh_grace_secs = 0).await else {
        return;
    };
    let (client, _, jar) = logged_in(&app).await;
    let cookie = format!("{REFRESH}={}", jar.refresh);
    let refusals: [&[(&str, &str)]; 5] = [
        &[],
        &[("Origin", "https://evil.example")],
        &[("Origin", "null")],
        &[("Origin", "https://app.example.evil.example")],
        &[("Referer", "https://evil.example/app.example")],
    ];

    for headers in refusals {
        assert_origin_refused(refresh_with(&app, &client, &cookie, headers).await).await;
    }

    // Had any refusal rotated the token, presenting it again would be reuse
    // (there is no grace period here); it still rotates.
    assert_eq!(
        refresh_cookie(&app, &client, &jar.refresh).await.status(),
        200
    );
}
both_backends!(a_cookie_refresh_from_a_foreign_origin_is_refused_and_changes_nothing);

#[tokio::test]
async fn referer_stands_in_for_a_missing_origin() {
    let app = spawn_app().await;
    let (client, _, jar) = logged_in(&app).await;
    let cookie = format!("{REFRESH}={}", jar.refresh);

    let res = refresh_with(
        &app,
        &client,
        &cookie,
        &[("Referer", "https://app.example/account?tab=1")],
    )
    .await;

    assert_eq!(res.status(), 200);
    token_cookies(&res, REFRESH_TTL);
}

#[tokio::test]
async fn a_cookie_refresh_for_a_body_mode_client_needs_the_parameter() {
    let app = spawn_app().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let cookie = format!("{REFRESH}={}", str_field(&login, "refresh_token"));

    let res = refresh_with(&app, &client, &cookie, &[("Origin", ORIGIN)]).await;

    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"], "invalid_request");
}

#[tokio::test]
async fn a_duplicated_refresh_cookie_is_refused() {
    let app = spawn_app().await;
    let (client, _, jar) = logged_in(&app).await;
    let cookie = format!("{REFRESH}={}; {REFRESH}=lk_rt_planted", jar.refresh);

    let res = refresh_with(&app, &client, &cookie, &[("Origin", ORIGIN)]).await;

    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"], "invalid_request");
}

#[tokio::test]
async fn cookie_authenticated_state_changes_need_an_allowed_origin() {
    let app = spawn_app().await;
    let (client, email, jar) = logged_in(&app).await;
    let sessions_of = |jar: Jar| {
        let app = &app;
        async move {
            let res = with_access_cookie(
                app,
                reqwest::Method::GET,
                "/v1/account/sessions",
                &jar,
                None,
            )
            .send()
            .await
            .expect("request");
            let body: Value = res.json().await.expect("json");
            body["sessions"].as_array().cloned().unwrap_or_default()
        }
    };
    let sid = str_field(&sessions_of(jar.clone()).await[0], "sid").to_owned();
    let path = format!("/v1/account/sessions/{sid}");

    for origin in [None, Some("https://evil.example")] {
        let res = with_access_cookie(&app, reqwest::Method::DELETE, &path, &jar, origin)
            .send()
            .await
            .expect("request");
        assert_origin_refused(res).await;
        let res = with_access_cookie(&app, reqwest::Method::POST, "/v1/account/password", &jar, origin)
            .json(&serde_json::json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
            .send()
            .await
            .expect("request");
        assert_origin_refused(res).await;
    }

    // Nothing changed: the session lives and the old password still works.
    assert_eq!(sessions_of(jar.clone()).await.len(), 1);
    assert_eq!(
        login_from(&app, &client, &email, Some(ORIGIN))
            .await
            .status(),
        200
    );
    // From the registered origin, the same request goes through.
    let res = with_access_cookie(&app, reqwest::Method::DELETE, &path, &jar, Some(ORIGIN))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn logout_by_cookie_revokes_the_session_and_clears_every_cookie() {
    let app = spawn_app().await;
    let (client, _, jar) = logged_in(&app).await;
    let cookie = format!("{REFRESH}={}", jar.refresh);

    let res = logout(&app, &cookie, Some(ORIGIN)).await;

    assert_eq!(res.status(), 204);
    let cleared = set_cookies(&res);
    assert_eq!(cleared.len(), 3, "{cleared:?}");
    let mut seen = BTreeSet::new();
    for c in &cleared {
        assert_eq!(c.value, "");
        assert_eq!(c.attrs, attrs(c.path(), 0));
        seen.insert((c.name.as_str(), c.path()));
    }
    assert_eq!(
        seen,
        BTreeSet::from([
            (ACCESS, "/"),
            (REFRESH, "/oauth/token"),
            (REFRESH, "/v1/logout")
        ])
    );
    assert_eq!(userinfo(&app, &jar).await.status(), 401);
    let err: Value = refresh_cookie(&app, &client, &jar.refresh)
        .await
        .json()
        .await
        .expect("json");
    assert!(str_field(&err, "error_description").contains("revoked"));
    // Idempotent.
    assert_eq!(logout(&app, &cookie, Some(ORIGIN)).await.status(), 204);
}

#[tokio::test]
async fn logout_by_the_access_cookie_alone_revokes_the_session() {
    let app = spawn_app().await;
    let (_, _, jar) = logged_in(&app).await;

    let res = logout(&app, &format!("{ACCESS}={}", jar.access), Some(ORIGIN)).await;

    assert_eq!(res.status(), 204);
    assert_eq!(set_cookies(&res).len(), 3);
    assert_eq!(userinfo(&app, &jar).await.status(), 401);
}

#[tokio::test]
async fn logout_by_cookie_from_a_foreign_origin_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (client, _, jar) = logged_in(&app).await;
    let both = format!("{ACCESS}={}; {REFRESH}={}", jar.access, jar.refresh);
    let access_only = format!("{ACCESS}={}", jar.access);
    let forged = format!("{REFRESH}=lk_rt_{}", "A".repeat(80));

    for cookie in [&both, &access_only, &forged] {
        for origin in [None, Some("https://evil.example")] {
            assert_origin_refused(logout(&app, cookie, origin).await).await;
        }
    }

    assert_eq!(userinfo(&app, &jar).await.status(), 200);
    app.advance_clock(Duration::seconds(11));
    assert_eq!(
        refresh_cookie(&app, &client, &jar.refresh).await.status(),
        200
    );
}

#[tokio::test]
async fn logout_with_an_unknown_refresh_cookie_still_clears_the_cookies() {
    let app = spawn_app().await;
    let _ = cookie_client(&app).await;

    let res = logout(&app, &format!("{REFRESH}=lk_rt_garbage"), Some(ORIGIN)).await;

    assert_eq!(res.status(), 204);
    assert_eq!(set_cookies(&res).len(), 3);
}

#[tokio::test]
async fn another_cookie_clients_origin_cannot_use_the_refresh_cookie() {
    let app = spawn_app().await;
    let (client, _, jar) = logged_in(&app).await;
    let other = app
        .services
        .create_client(NewClient {
            name: "other".into(),
            kind: ClientKind::Public,
            grants: vec![GrantType::Password, GrantType::RefreshToken],
            scopes: Scope::parse("openid").expect("scope"),
            audience: None,
            cookie_mode: true,
            origins: vec!["https://other.example".into()],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            key_source: None,
            admin: false,
        })
        .await
        .expect("client");
    let other = TestClient {
        id: other.client.id.to_string(),
        secret: None,
    };
    let cookie = format!("{REFRESH}={}", jar.refresh);

    let res = refresh_with(
        &app,
        &other,
        &cookie,
        &[("Origin", "https://other.example")],
    )
    .await;

    assert_eq!(res.status(), 400);
    assert!(set_cookies(&res).is_empty());
    let err: Value = res.json().await.expect("json");
    assert_eq!(err["error"], "invalid_grant");
    // Nothing changed: not rotated, not revoked as reuse.
    app.advance_clock(Duration::seconds(11));
    assert_eq!(
        refresh_cookie(&app, &client, &jar.refresh).await.status(),
        200
    );
}

/// With two cookie-mode apps on one site, a page of one app reads with
/// `fetch(..., {credentials: "include"})` and the browser attaches the other
/// app's access cookie: a cookie-authenticated read that names an origin
/// must name one of the token's client's origins.
async fn a_cookie_read_from_a_foreign_origin_is_refused(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, _, jar) = logged_in(&app).await;
    for path in ["/userinfo", "/v1/account/sessions"] {
        for foreign in ["https://other-app.example", "null"] {
            let res = with_access_cookie(&app, reqwest::Method::GET, path, &jar, Some(foreign))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 403, "{path} from {foreign}");
            let body: Value = res.json().await.expect("json");
            assert_eq!(body["error"], "invalid_request");
        }
        // The app's own pages, and plain navigations (no Origin), read.
        for origin in [Some(ORIGIN), None] {
            let res = with_access_cookie(&app, reqwest::Method::GET, path, &jar, origin)
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 200, "{path} from {origin:?}");
        }
    }
}
both_backends!(a_cookie_read_from_a_foreign_origin_is_refused);

/// A sibling subdomain can plant a `__Secure-` refresh cookie (of the
/// attacker's own session) in the victim's browser, to log the victim into
/// the attacker's account. Beside a live access cookie of another session it
/// is ignored, and nothing is rotated.
async fn a_planted_refresh_cookie_of_another_session_is_ignored(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = cookie_client(&app).await;
    let mut jars = Vec::new();
    for _ in 0..2 {
        let email = new_user(&app).await;
        let res = login_from(&app, &client, &email, Some(ORIGIN)).await;
        assert_eq!(res.status(), 200);
        jars.push(token_cookies(&res, REFRESH_TTL));
    }
    let (victim, attacker) = (&jars[0], &jars[1]);
    let planted = format!("{ACCESS}={}; {REFRESH}={}", victim.access, attacker.refresh);
    let res = refresh_with(&app, &client, &planted, &[("Origin", ORIGIN)]).await;
    assert_eq!(res.status(), 400);
    assert!(set_cookies(&res).is_empty(), "no session is swapped in");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");

    // The attacker's token was not used: it still rotates once, cleanly.
    assert_eq!(
        refresh_cookie(&app, &client, &attacker.refresh)
            .await
            .status(),
        200
    );
    // The victim's own pair refreshes as always.
    let own = format!("{ACCESS}={}; {REFRESH}={}", victim.access, victim.refresh);
    assert_eq!(
        refresh_with(&app, &client, &own, &[("Origin", ORIGIN)])
            .await
            .status(),
        200
    );
}
both_backends!(a_planted_refresh_cookie_of_another_session_is_ignored);
