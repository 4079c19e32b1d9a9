//! The recovery pages a mailed link opens: `GET/POST /verify-email` and
//! `GET/POST /reset-password`. Server-rendered, no script, the pages' strict
//! CSP. A GET only shows a form and uses nothing, so a mail scanner that
//! prefetches the link cannot consume it; the POST does the work. The link's
//! token travels in the form as a hidden field: a secret only the mail's
//! reader knows, which is what a CSRF token is, so no other page can forge
//! the POST.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::client_address;
use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::records::TokenPurpose;
use crate::domain::types::Password;

const DEAD_LINK: &str =
    "This link is invalid, has expired, or was already used. Ask for a new one.";

/// `?token=…` of a mailed link.
#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// What `POST /verify-email` reads: the link's token, carried back as a
/// hidden field.
#[derive(Deserialize)]
pub struct VerifyForm {
    token: String,
}

/// What `POST /reset-password` reads; the two passwords must match before
/// anything else is checked.
#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    new_password: String,
    confirm_password: String,
}

fn message(state: &AppState, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let body = state.pages.render(
        "message.html",
        minijinja::context! { title => title, message => text },
    );
    super::pages::page(status, &[]).body(body)
}

fn dead_link(state: &AppState) -> HttpResponse {
    message(state, StatusCode::BAD_REQUEST, "Link not valid", DEAD_LINK)
}

fn unavailable(state: &AppState) -> HttpResponse {
    let mut res = message(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "The service is busy or unavailable right now. Please try again in a moment.",
    );
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("2"),
    );
    res
}

/// A failure as a page: a dead link, or the service being unavailable.
fn failure(state: &AppState, err: &DomainError) -> HttpResponse {
    if err.is_unavailable() {
        return unavailable(state);
    }
    if !matches!(err, DomainError::EmailTokenRefused) {
        tracing::error!(?err, "recovery page failed");
        return message(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "An internal error occurred. Please try again later.",
        );
    }
    dead_link(state)
}

/// `GET /verify-email?token=…`: a page with one button that confirms.
pub async fn get_verify_email(
    query: web::Query<LinkQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(token) = query.into_inner().token else {
        return dead_link(&state);
    };
    match state
        .services
        .check_email_token(&token, TokenPurpose::VerifyEmail)
        .await
    {
        Ok(_) => {
            let body = state
                .pages
                .render("verify_email.html", minijinja::context! { token => token });
            super::pages::page(StatusCode::OK, &[]).body(body)
        }
        Err(err) => failure(&state, &err),
    }
}

/// `POST /verify-email`: uses the link.
pub async fn post_verify_email(
    req: HttpRequest,
    form: web::Form<VerifyForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let address = client_address(&req, state.settings.trusted_proxies());
    match state
        .services
        .verify_email(&form.token, address.as_deref())
        .await
    {
        Ok(_) => message(
            &state,
            StatusCode::OK,
            "Email address confirmed",
            "Thank you: your email address is confirmed. You can close this page.",
        ),
        Err(err) => failure(&state, &err),
    }
}

fn reset_form(
    state: &AppState,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> HttpResponse {
    let body = state.pages.render(
        "reset_password.html",
        minijinja::context! { token => token, error => error },
    );
    super::pages::page(status, &[]).body(body)
}

/// `GET /reset-password?token=…`: the new-password form.
pub async fn get_reset_password(
    query: web::Query<LinkQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(token) = query.into_inner().token else {
        return dead_link(&state);
    };
    match state
        .services
        .check_email_token(&token, TokenPurpose::ResetPassword)
        .await
    {
        Ok(_) => reset_form(&state, StatusCode::OK, &token, None),
        Err(err) => failure(&state, &err),
    }
}

/// `POST /reset-password`: sets the new password; a mismatch or a weak
/// password shows the form again with the reason.
pub async fn post_reset_password(
    req: HttpRequest,
    form: web::Form<ResetForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let ResetForm {
        token,
        new_password,
        confirm_password,
    } = form.into_inner();
    if new_password != confirm_password {
        let why = "The two passwords do not match.";
        return reset_form(&state, StatusCode::BAD_REQUEST, &token, Some(why));
    }
    let address = client_address(&req, state.settings.trusted_proxies());
    match state
        .services
        .confirm_password_reset(&token, Password(new_password), address.as_deref())
        .await
    {
        Ok(()) => message(
            &state,
            StatusCode::OK,
            "Password changed",
            "Your password has been changed and you were signed out everywhere. \
             Sign in again with the new password.",
        ),
        Err(DomainError::WeakPassword(why)) => {
            reset_form(&state, StatusCode::BAD_REQUEST, &token, Some(why))
        }
        Err(err) => failure(&state, &err),
    }
}
