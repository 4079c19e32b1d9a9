//! The authorization code flow's browser side: `GET /authorize`, the login
//! form (`POST /login`), the consent form (`POST /consent`) and
//! RP-initiated logout (`GET/POST /logout`). Every page here is rendered by
//! `pages`, carries the strict CSP, and posts only with a CSRF token bound to
//! the browser and to the pending request.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;

use super::cookies::single_cookie;
use super::error::ApiError;
use super::extract::{client_address, StrictForm};
use super::pages::{page, Browser};
use super::AppState;
use crate::domain::authorization::{AuthorizationRequest, AuthorizeError, AuthorizeParams, Next};
use crate::domain::error::DomainError;
use crate::domain::records::{BrowserSessionRecord, UserRecord};
use crate::domain::types::Password;

/// The browser session at latchkey. `SameSite=Lax`: the client's top-level
/// redirect to `/authorize` must carry it, a cross-site POST must not.
pub const SESSION_COOKIE: &str = "__Host-lk_session";

const CSRF_LOGIN: &str = "login";
const CSRF_CONSENT: &str = "consent";
const CSRF_LOGOUT: &str = "logout";

fn params_of(query: &str) -> AuthorizeParams {
    AuthorizeParams::from_pairs(url::form_urlencoded::parse(query.as_bytes()).into_owned())
}

/// The CSP source a redirect URI's origin needs in `form-action` (the
/// login and consent forms' answers redirect there).
fn form_target(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) if u.has_host() => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => String::new(),
    }
}

/// The session cookie: set at login, cleared at logout.
fn session_cookie(value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// `303 See Other` to `location` (after a form: the browser follows with GET).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Turns a refused request into its answer: the error page, or a redirect
/// to the client with `error`, `state` and `iss`.
fn refused(state: &AppState, err: AuthorizeError) -> HttpResponse {
    match err {
        AuthorizeError::Page(message) => state.pages.error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            message,
        ),
        AuthorizeError::Redirect(r) => see_other(&r.location(state.settings.issuer())),
        AuthorizeError::Domain(e) => domain_failure(state, &e),
    }
}

/// A store or key failure on a page: 503 with `Retry-After` when it will
/// pass, else 500; never the details.
fn domain_failure(state: &AppState, e: &DomainError) -> HttpResponse {
    // The client was deleted while its request was on a page: the store
    // refused the code or consent that named it. An answer, not a fault.
    if matches!(e, DomainError::NotFound) {
        return state.pages.error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in is unavailable",
            "The application that sent you here is no longer registered.",
        );
    }
    tracing::error!(error = ?e, "authorization flow failed");
    let (status, msg) = if e.is_unavailable() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "latchkey is busy or cannot reach its database. Try again in a moment.",
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.",
        )
    };
    let mut res = state
        .pages
        .error_page(status, "Sign-in is unavailable", msg);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
    }
    res
}

/// What the login page shows besides the form.
#[derive(Default)]
struct LoginView<'a> {
    error: Option<&'a str>,
    email: Option<&'a str>,
    status: Option<StatusCode>,
    retry_after: Option<i64>,
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    params: &AuthorizeParams,
    areq: &AuthorizationRequest,
    view: LoginView<'_>,
) -> Result<HttpResponse, ApiError> {
    let browser = Browser::from_request(req)?;
    let request = params.to_query_without_prompt();
    let csrf = state.pages.csrf().token(CSRF_LOGIN, &browser.id, &request);
    let email = view.email.or(areq.login_hint.as_deref()).unwrap_or("");
    let body = state.pages.render(
        "login.html",
        context! {
            client_name => &areq.client.name, email => email, error => view.error,
            csrf_token => csrf, request => request,
        },
    );
    let target = form_target(&areq.redirect_uri);
    let mut res = page(view.status.unwrap_or(StatusCode::OK), &[&target]);
    browser.set_cookie(&mut res);
    if let Some(secs) = view.retry_after {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    Ok(res.body(body))
}

/// The consent page's response head and body (the caller may add the
/// session cookie before sending it).
fn consent_page(
    state: &AppState,
    req: &HttpRequest,
    params: &AuthorizeParams,
    areq: &AuthorizationRequest,
    user: &UserRecord,
) -> Result<(actix_web::HttpResponseBuilder, String), ApiError> {
    let browser = Browser::from_request(req)?;
    let request = params.to_query_without_prompt();
    let csrf = state
        .pages
        .csrf()
        .token(CSRF_CONSENT, &browser.id, &request);
    let scopes: Vec<String> = areq
        .scope
        .tokens()
        .iter()
        .map(|s| state.settings.scope_description(s))
        .collect();
    let body = state.pages.render(
        "consent.html",
        context! {
            client_name => &areq.client.name, email => &user.email, scopes => scopes,
            csrf_token => csrf, request => request,
        },
    );
    let target = form_target(&areq.redirect_uri);
    let mut res = page(StatusCode::OK, &[&target]);
    browser.set_cookie(&mut res);
    Ok((res, body))
}

/// Renders whatever comes next: login, consent, or the redirect; with the
/// new browser session's cookie after a login.
fn answer(
    state: &AppState,
    req: &HttpRequest,
    params: &AuthorizeParams,
    areq: &AuthorizationRequest,
    next: Next,
    new_session: Option<(String, &BrowserSessionRecord)>,
) -> Result<HttpResponse, ApiError> {
    let (mut res, body) = match next {
        Next::Login => return login_page(state, req, params, areq, LoginView::default()),
        Next::Consent(user, _) => consent_page(state, req, params, areq, &user)?,
        Next::Redirect(location) => {
            let mut r = HttpResponse::SeeOther();
            r.insert_header((header::LOCATION, location))
                .insert_header((header::CACHE_CONTROL, "no-store"));
            (r, String::new())
        }
    };
    if let Some((secret, record)) = new_session {
        let max_age = (record.expires_at - state.services.now()).num_seconds();
        res.cookie(session_cookie(secret, max_age));
    }
    Ok(res.body(body))
}

/// The request's live browser session, if any.
/// A duplicated cookie (one planted by a sibling host) counts as none.
async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<BrowserSessionRecord>, DomainError> {
    let cookie = single_cookie(req, SESSION_COOKIE).ok().flatten();
    state.services.browser_session(cookie.as_deref()).await
}

/// `GET /authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2).
///
/// # Errors
/// Only for failures outside the flow (no randomness); everything else is
/// a page or a redirect.
pub async fn get_authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = params_of(req.query_string());
    let areq = match state.services.validate_authorization(&params).await {
        Ok(r) => r,
        Err(e) => return Ok(refused(&state, e)),
    };
    let session = match current_session(&state, &req).await {
        Ok(s) => s,
        Err(e) => return Ok(domain_failure(&state, &e)),
    };
    match state.services.next_step(&areq, session, false).await {
        Ok(next) => answer(&state, &req, &params, &areq, next, None),
        Err(e) => Ok(refused(&state, e)),
    }
}

/// Checks a form's CSRF token and re-validates the request it carries.
async fn form_request(
    state: &AppState,
    req: &HttpRequest,
    form: &StrictForm,
    purpose: &str,
) -> Result<(AuthorizeParams, AuthorizationRequest), HttpResponse> {
    let request = form.get("request").unwrap_or("");
    let ok = Browser::existing(req).is_some_and(|b| {
        state.pages.csrf().is_valid(
            purpose,
            &b.id,
            request,
            form.get("csrf_token").unwrap_or(""),
        )
    });
    if !ok {
        return Err(state.pages.error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from this browser's sign-in page, or it is too old. \
             Go back to the application and start again.",
        ));
    }
    let params = params_of(request);
    match state.services.validate_authorization(&params).await {
        Ok(areq) => Ok((params, areq)),
        Err(e) => Err(refused(state, e)),
    }
}

/// `POST /login`: the login form. The same path as the password grant:
/// throttling before hashing, bounded hashing slots, one answer and one cost
/// for unknown email, wrong password and disabled account.
///
/// # Errors
/// Only for failures outside the flow.
pub async fn post_login(
    req: HttpRequest,
    form: StrictForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (params, areq) = match form_request(&state, &req, &form, CSRF_LOGIN).await {
        Ok(x) => x,
        Err(res) => return Ok(res),
    };
    let email = form.get("email").unwrap_or("");
    let password = Password(form.get("password").unwrap_or("").to_owned());
    let address = client_address(&req, state.settings.trusted_proxies());
    let user = match state
        .services
        .login_with_password(&areq.client, email, password, address.as_deref())
        .await
    {
        Ok(u) => u,
        Err(e) => return login_failed(&state, &req, &params, &areq, email, &e),
    };
    // A new login replaces the browser's session: the old one ends, and the
    // new secret is fresh (a session id planted before login is worthless).
    let previous = single_cookie(&req, SESSION_COOKIE).ok().flatten();
    if let Err(e) = state
        .services
        .end_browser_session(previous.as_deref())
        .await
    {
        return Ok(domain_failure(&state, &e));
    }
    let (secret, record) = match state.services.start_browser_session(&user).await {
        Ok(x) => x,
        Err(e) => return Ok(domain_failure(&state, &e)),
    };
    match state
        .services
        .next_step(&areq, Some(record.clone()), true)
        .await
    {
        Ok(next) => answer(&state, &req, &params, &areq, next, Some((secret, &record))),
        Err(e) => Ok(refused(&state, e)),
    }
}

fn login_failed(
    state: &AppState,
    req: &HttpRequest,
    params: &AuthorizeParams,
    areq: &AuthorizationRequest,
    email: &str,
    e: &DomainError,
) -> Result<HttpResponse, ApiError> {
    let view = match e {
        DomainError::InvalidCredentials => LoginView {
            error: Some("The email or password is not right."),
            status: Some(StatusCode::UNAUTHORIZED),
            ..LoginView::default()
        },
        DomainError::Throttled { retry_after_secs } => LoginView {
            error: Some("Too many failed attempts. Wait a while before trying again."),
            status: Some(StatusCode::TOO_MANY_REQUESTS),
            retry_after: Some(*retry_after_secs),
            ..LoginView::default()
        },
        e if e.is_unavailable() => LoginView {
            error: Some("latchkey is busy. Try again in a moment."),
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            retry_after: Some(2),
            ..LoginView::default()
        },
        e => return Ok(domain_failure(state, e)),
    };
    let email = (email.len() <= 254).then_some(email);
    login_page(state, req, params, areq, LoginView { email, ..view })
}

/// `POST /consent`: Allow or Deny.
///
/// # Errors
/// Only for failures outside the flow.
pub async fn post_consent(
    req: HttpRequest,
    form: StrictForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (params, areq) = match form_request(&state, &req, &form, CSRF_CONSENT).await {
        Ok(x) => x,
        Err(res) => return Ok(res),
    };
    let session = match current_session(&state, &req).await {
        Ok(Some(s)) => s,
        Ok(None) => return login_page(&state, &req, &params, &areq, LoginView::default()),
        Err(e) => return Ok(domain_failure(&state, &e)),
    };
    if form.get("decision") != Some("allow") {
        let err =
            state
                .services
                .redirect_error(&areq, "access_denied", "the user denied the request");
        return Ok(refused(&state, err));
    }
    match state.services.consent_and_issue(&areq, &session).await {
        Ok(Some(location)) => Ok(see_other(&location)),
        Ok(None) => login_page(&state, &req, &params, &areq, LoginView::default()),
        Err(e) => Ok(domain_failure(&state, &e)),
    }
}

/// `GET /logout` (and an RP's `POST /logout` without our CSRF token):
/// validate, then ask the user to confirm (RP-Initiated Logout §2: a
/// cross-site request alone must not log anyone out).
///
/// # Errors
/// Only for failures outside the flow.
pub async fn get_logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    logout_confirmation(&state, &req, &params_of(req.query_string())).await
}

async fn logout_confirmation(
    state: &AppState,
    req: &HttpRequest,
    params: &AuthorizeParams,
) -> Result<HttpResponse, ApiError> {
    let logout = match state.services.validate_logout(params).await {
        Ok(Ok(l)) => l,
        Ok(Err(msg)) => {
            return Ok(state.pages.error_page(
                StatusCode::BAD_REQUEST,
                "This sign-out link is not valid",
                msg,
            ))
        }
        Err(e) => return Ok(domain_failure(state, &e)),
    };
    let browser = Browser::from_request(req)?;
    let request = to_query(params);
    let csrf = state.pages.csrf().token(CSRF_LOGOUT, &browser.id, &request);
    let body = state.pages.render(
        "logout.html",
        context! {
            client_name => logout.client.as_ref().map(|c| c.name.clone()),
            csrf_token => csrf, request => request,
        },
    );
    let target = logout
        .post_logout_redirect_uri
        .as_deref()
        .map(form_target)
        .unwrap_or_default();
    let mut res = page(StatusCode::OK, &[&target]);
    browser.set_cookie(&mut res);
    Ok(res.body(body))
}

fn to_query(params: &AuthorizeParams) -> String {
    let mut names: Vec<&String> = params.values.keys().collect();
    names.sort();
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for n in names {
        s.append_pair(n, &params.values[n]);
    }
    s.finish()
}

/// `POST /logout`: with our CSRF token (the confirmation form), ends the
/// browser session and sends the browser to the registered
/// `post_logout_redirect_uri` with `state`, or shows "signed out"; without
/// it (an RP posting the logout request), asks for confirmation.
///
/// # Errors
/// Only for failures outside the flow.
pub async fn post_logout(
    req: HttpRequest,
    form: StrictForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = form.get("csrf_token") else {
        let params = AuthorizeParams::from_pairs(form.0.clone());
        return logout_confirmation(&state, &req, &params).await;
    };
    let request = form.get("request").unwrap_or("");
    let ok = Browser::existing(&req).is_some_and(|b| {
        state
            .pages
            .csrf()
            .is_valid(CSRF_LOGOUT, &b.id, request, token)
    });
    if !ok {
        return Ok(state.pages.error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The sign-out form was not sent from this browser's page. Start again.",
        ));
    }
    let logout = match state.services.validate_logout(&params_of(request)).await {
        Ok(Ok(l)) => l,
        Ok(Err(msg)) => {
            return Ok(state.pages.error_page(
                StatusCode::BAD_REQUEST,
                "This sign-out link is not valid",
                msg,
            ))
        }
        Err(e) => return Ok(domain_failure(&state, &e)),
    };
    let cookie = single_cookie(&req, SESSION_COOKIE).ok().flatten();
    if let Err(e) = state.services.end_browser_session(cookie.as_deref()).await {
        return Ok(domain_failure(&state, &e));
    }
    let mut res = match &logout.post_logout_redirect_uri {
        Some(uri) => {
            let mut p = Vec::new();
            if let Some(st) = &logout.state {
                p.push(("state", st.as_str()));
            }
            let location = if p.is_empty() {
                uri.clone()
            } else {
                crate::domain::authorization::with_query(uri, &p)
            };
            let mut r = HttpResponse::SeeOther();
            r.insert_header((header::LOCATION, location));
            r
        }
        None => page(StatusCode::OK, &[]),
    };
    res.cookie(session_cookie(String::new(), 0));
    if logout.post_logout_redirect_uri.is_some() {
        return Ok(res.finish());
    }
    Ok(res.body(state.pages.render("logged_out.html", context! {})))
}
