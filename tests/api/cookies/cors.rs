//! CORS: registered origins get their headers (with credentials for
//! cookie-mode clients), everyone else nothing, never a wildcard.

use super::*;

async fn get_with_origin(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("Origin", origin)
        .send()
        .await
        .expect("request")
}

fn varies_on_origin(res: &reqwest::Response) -> bool {
    res.headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin"))
}

#[tokio::test]
async fn cors_echoes_a_cookie_mode_origin_with_credentials() {
    let app = spawn_app().await;
    let (_, _, jar) = logged_in(&app).await;

    let res = with_access_cookie(&app, reqwest::Method::GET, "/userinfo", &jar, Some(ORIGIN))
        .send()
        .await
        .expect("request");

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert!(varies_on_origin(&res));
    // Errors carry the headers too, so the page can read why.
    let res = get_with_origin(&app, "/userinfo", ORIGIN).await;
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ORIGIN));
}

#[tokio::test]
async fn cors_gives_unregistered_origins_nothing_and_never_a_wildcard() {
    let app = spawn_app().await;
    let _ = cookie_client(&app).await;

    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.evil.example",
    ] {
        let res = get_with_origin(&app, "/.well-known/jwks.json", origin).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "access-control-allow-origin"), None);
        assert_eq!(header(&res, "access-control-allow-credentials"), None);
        assert!(varies_on_origin(&res));
    }
    let res = app.get_jwks().await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert!(varies_on_origin(&res));
}

#[tokio::test]
async fn cors_for_a_body_mode_origin_has_no_credentials() {
    let app = spawn_app().await;
    let _ = cookie_client_with(&app, false, &[GrantType::Password]).await;

    let res = get_with_origin(&app, "/.well-known/openid-configuration", ORIGIN).await;

    assert_eq!(header(&res, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(header(&res, "access-control-allow-credentials"), None);
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn preflight_is_answered_for_registered_origins_only() {
    let app = spawn_app().await;
    let _ = cookie_client(&app).await;

    let res = preflight(&app, "/v1/account/sessions/x", ORIGIN, "DELETE").await;

    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    let methods = header(&res, "access-control-allow-methods").expect("methods");
    assert!(["GET", "POST", "DELETE"]
        .iter()
        .all(|m| methods.contains(m)));
    let headers = header(&res, "access-control-allow-headers")
        .expect("headers")
        .to_ascii_lowercase();
    assert!(headers.contains("content-type") && headers.contains("authorization"));
    assert!(header(&res, "access-control-max-age").is_some());
    assert!(varies_on_origin(&res));

    let res = preflight(
        &app,
        "/v1/account/sessions/x",
        "https://evil.example",
        "DELETE",
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "access-control-allow-credentials"), None);
}

#[tokio::test]
async fn origins_registered_through_another_instance_are_seen() {
    let shared = new_shared(Backend::Sqlite).await.expect("sqlite");
    let a = spawn_instance(&shared, |_| {}).await;
    let b = spawn_instance(&shared, |_| {}).await;
    // A reads the registered origins before the client exists.
    let res = get_with_origin(&a, "/.well-known/jwks.json", ORIGIN).await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);

    let _ = cookie_client(&b).await;
    a.advance_clock(Duration::seconds(6));

    let res = get_with_origin(&a, "/.well-known/jwks.json", ORIGIN).await;
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
}
