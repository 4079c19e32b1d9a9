use crate::helpers::{spawn_app, str_field};

#[tokio::test]
async fn signup_returns_201_with_id_email_and_created_at() {
    let app = spawn_app().await;
    let res = app
        .signup("  Alice@Example.com ", "correct horse battery")
        .await;
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(uuid::Uuid::parse_str(str_field(&body, "id")).is_ok());
    assert_eq!(body["email"], "alice@example.com");
    assert!(body["created_at"].is_string());
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

#[tokio::test]
async fn signup_with_taken_email_is_409_email_taken() {
    let app = spawn_app().await;
    assert_eq!(
        app.signup("bob@example.com", "correct horse battery")
            .await
            .status(),
        201
    );
    let res = app.signup("BOB@example.com", "another long password").await;
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "email_taken");
}

#[tokio::test]
async fn signup_with_weak_password_is_400_weak_password() {
    let app = spawn_app().await;
    for pw in ["short".to_owned(), "x".repeat(257)] {
        let res = app.signup("carol@example.com", &pw).await;
        assert_eq!(res.status(), 400);
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], "weak_password");
    }
    // Nothing was created: the address is still free.
    assert_eq!(
        app.signup("carol@example.com", "correct horse battery")
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn signup_with_bad_email_is_400_invalid_email() {
    let app = spawn_app().await;
    for email in [
        "not-an-email",
        "a@b",
        "",
        &format!("{}@example.com", "a".repeat(300)),
    ] {
        let res = app.signup(email, "correct horse battery").await;
        assert_eq!(res.status(), 400, "{email}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], "invalid_email");
    }
}

#[tokio::test]
async fn signup_can_be_turned_off() {
    let app = crate::helpers::spawn_on_with(crate::helpers::Backend::Sqlite, |s| {
        s.signup.enabled = false
    })
    .await
    .expect("sqlite");
    let res = app
        .signup("dave@example.com", "correct horse battery")
        .await;
    assert_eq!(res.status(), 403);
}
