//! The demo page and its cookie-mode client.

use super::*;

async fn demo_app(backend: Backend) -> Option<TestApp> {
    crate::helpers::spawn_on_with(backend, |s| s.demo.enabled = true).await
}

#[tokio::test]
async fn the_demo_serves_its_page_script_and_config_when_enabled() {
    let app = demo_app(Backend::Sqlite).await.expect("sqlite");

    for (path, ty) in [
        ("/demo/", "text/html"),
        ("/demo/demo.js", "text/javascript"),
        ("/demo/demo.css", "text/css"),
    ] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            header(&res, "content-type").is_some_and(|t| t.starts_with(ty)),
            "{path}"
        );
        let csp = header(&res, "content-security-policy").expect("CSP");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    }
    let res = app
        .client
        .get(app.url("/demo"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 308);
    assert_eq!(header(&res, "location"), Some("demo/"));
    let config: Value = app
        .client
        .get(app.url("/demo/config.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(config["origin"], "http://127.0.0.1:8080");
    assert_eq!(config["scope"], "openid email");
    assert!(uuid::Uuid::parse_str(str_field(&config, "client_id")).is_ok());
}

#[tokio::test]
async fn the_demo_is_absent_when_disabled() {
    let app = spawn_app().await;

    for path in ["/demo", "/demo/", "/demo/demo.js", "/demo/config.json"] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_demo_client_logs_in_from_the_issuer_origin() {
    let app = demo_app(Backend::Sqlite).await.expect("sqlite");
    let config: Value = app
        .client
        .get(app.url("/demo/config.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let client = TestClient {
        id: str_field(&config, "client_id").to_owned(),
        secret: None,
    };
    let email = new_user(&app).await;

    let res = login_from(&app, &client, &email, Some(str_field(&config, "origin"))).await;

    assert_eq!(res.status(), 200);
    token_cookies(&res, REFRESH_TTL);
    assert_origin_refused(login_from(&app, &client, &email, Some(ORIGIN)).await).await;
}

async fn racing_instances_provision_the_demo_client_once(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let a = spawn_instance(&shared, |_| {}).await;
    let b = spawn_instance(&shared, |_| {}).await;

    let (ra, rb) = tokio::join!(
        a.services.ensure_demo_client(),
        b.services.ensure_demo_client()
    );

    let (ida, idb) = (ra.expect("a provisions"), rb.expect("b provisions"));
    assert_eq!(ida, idb);
    let created = a
        .store
        .list_audit(None, None, 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.kind == "client_created" && e.client_id == Some(ida))
        .count();
    assert_eq!(created, 1);
    // A restart with the demo on finds it and starts.
    let c = spawn_instance(&shared, |s| s.demo.enabled = true).await;
    assert_eq!(c.services.ensure_demo_client().await.expect("again"), ida);
}
both_backends!(racing_instances_provision_the_demo_client_once);
