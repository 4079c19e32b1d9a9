//! Server-rendered pages (login, consent, logout, and any later page): the
//! template set, the shared layout and stylesheet, the headers every page
//! carries, and the per-browser cookie CSRF tokens are bound to.
//!
//! Templates are minijinja, compiled into the binary from `assets/pages/` and
//! overridable one file at a time from `pages.templates_dir` (a deployment
//! brands a page by dropping a file of the same name there). They are parsed
//! once at start-up, so a broken override stops start-up instead of failing a
//! user. Rendering knows nothing of the flow a page belongs to.

use std::path::Path;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{Environment, Value};

use super::error::ApiError;
use super::AppState;
use crate::domain::types::random_token;
use crate::tokens::csrf::CsrfKey;
use crate::tokens::refresh::RefreshSecret;

/// The built-in templates, by name. A file with one of these names in the
/// templates folder replaces it.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../assets/pages/layout.html"),
    ),
    ("error.html", include_str!("../../assets/pages/error.html")),
    ("login.html", include_str!("../../assets/pages/login.html")),
    (
        "message.html",
        include_str!("../../assets/pages/message.html"),
    ),
    (
        "verify_email.html",
        include_str!("../../assets/pages/verify_email.html"),
    ),
    (
        "reset_password.html",
        include_str!("../../assets/pages/reset_password.html"),
    ),
    (
        "consent.html",
        include_str!("../../assets/pages/consent.html"),
    ),
    (
        "logout.html",
        include_str!("../../assets/pages/logout.html"),
    ),
    (
        "logged_out.html",
        include_str!("../../assets/pages/logged_out.html"),
    ),
];
const STYLESHEET_NAME: &str = "latchkey.css";
const STYLESHEET: &str = include_str!("../../assets/pages/latchkey.css");

/// The cookie binding CSRF tokens to one browser. `__Host-`: only latchkey's
/// own origin can set it, over https, for the whole host.
pub const BROWSER_COOKIE: &str = "__Host-lk_browser";

/// Why the pages could not be loaded (start-up only).
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// An override could not be read (a missing one is no error: the
    /// built-in stays).
    #[error("reading template {path}")]
    Read {
        /// Its full path under `pages.templates_dir`.
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A template does not parse.
    #[error("template {name} is invalid: {source}")]
    Template {
        /// The name it goes by, such as `login.html`, whether the built-in
        /// or an override failed.
        name: String,
        /// What minijinja said.
        #[source]
        source: minijinja::Error,
    },
}

/// The loaded template set and stylesheet.
pub struct Pages {
    env: Environment<'static>,
    stylesheet: String,
    /// The issuer's path (`""` or `/auth`), the prefix of every link.
    base_path: String,
    csrf: CsrfKey,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

fn read_override(dir: &Path, name: &str) -> Result<Option<String>, PagesError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PagesError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

impl Pages {
    /// Loads the built-in templates, each replaced by a file of the same name
    /// in `dir` when there is one, and parses them all.
    ///
    /// # Errors
    /// An override that cannot be read or a template that does not parse.
    pub fn load(dir: &Path, issuer: &str, secret: &RefreshSecret) -> Result<Self, PagesError> {
        let mut env = Environment::new();
        // Every template is HTML: escape everything interpolated, whatever
        // the override's file name says.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, builtin) in TEMPLATES {
            let source = read_override(dir, name)?.unwrap_or_else(|| (*builtin).to_owned());
            env.add_template_owned(*name, source)
                .map_err(|source| PagesError::Template {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        let stylesheet =
            read_override(dir, STYLESHEET_NAME)?.unwrap_or_else(|| STYLESHEET.to_owned());
        Ok(Self {
            env,
            stylesheet,
            base_path: issuer_path(issuer),
            csrf: CsrfKey::new(secret.derive("csrf")),
        })
    }

    /// The CSRF key forms are protected with.
    pub fn csrf(&self) -> &CsrfKey {
        &self.csrf
    }

    /// Renders template `name` with `ctx` (plus `base_path`). A template that
    /// fails at render time (a broken override) gives the built-in error
    /// page's words instead of a half page.
    pub fn render(&self, name: &str, ctx: Value) -> String {
        let ctx = minijinja::context! { base_path => &self.base_path, ..ctx };
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|err| {
                tracing::error!(template = name, error = %err, "template failed to render");
                "<!doctype html><title>Error</title><p>This page could not be shown.</p>".to_owned()
            })
    }

    /// An error page that never redirects (RFC 6749 §4.1.2.1: a bad client
    /// or redirect URI must not be sent anywhere).
    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> HttpResponse {
        let body = self.render(
            "error.html",
            minijinja::context! { title => title, message => message },
        );
        page(status, &[]).body(body)
    }
}

/// The path part of the issuer URL, without a trailing slash.
fn issuer_path(issuer: &str) -> String {
    let rest = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) => rest[i..].trim_end_matches('/').to_owned(),
        None => String::new(),
    }
}

/// The Content-Security-Policy of a page: nothing but this server's
/// stylesheet, no script at all, no framing (RFC 9700 §4.16), forms posted
/// only to latchkey. `form_targets` adds the places a form's answer may
/// redirect to (browsers apply `form-action` to the redirects after a
/// submission too), e.g. the client's redirect URI.
pub fn content_security_policy(form_targets: &[&str]) -> String {
    let mut form_action = String::from("'self'");
    for t in form_targets {
        form_action.push(' ');
        form_action.push_str(t);
    }
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
         form-action {form_action}; frame-ancestors 'none'"
    )
}

/// A page response: HTML, the strict CSP, never cached or framed.
pub fn page(status: StatusCode, form_targets: &[&str]) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(form_targets),
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    res
}

/// The browser's CSRF binding: the `__Host-lk_browser` cookie's value, or
/// a fresh random one that the response must set.
#[derive(Debug, Clone)]
pub struct Browser {
    /// What the login, consent and logout forms' CSRF tokens are bound to.
    pub id: String,
    is_new: bool,
}

impl Browser {
    /// The binding from the request's cookie, minting one when absent or
    /// malformed (a GET may start a form; a POST must present it, see
    /// `existing`).
    ///
    /// # Errors
    /// No randomness.
    pub fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        match Self::existing(req) {
            Some(b) => Ok(b),
            None => Ok(Self {
                id: random_token(32)?,
                is_new: true,
            }),
        }
    }

    /// The binding the request carries, if it carries a well-formed one.
    pub fn existing(req: &HttpRequest) -> Option<Self> {
        let c = req.cookie(BROWSER_COOKIE)?;
        let v = c.value();
        let ok = (32..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self {
            id: v.to_owned(),
            is_new: false,
        })
    }

    /// Sets the cookie on `res` when it was minted for this response.
    /// `SameSite=Lax` so that the first GET of a page reached from another
    /// site (the client's redirect to `/authorize`) already binds.
    pub fn set_cookie(&self, res: &mut actix_web::HttpResponseBuilder) {
        if self.is_new {
            res.cookie(
                Cookie::build(BROWSER_COOKIE, self.id.clone())
                    .path("/")
                    .secure(true)
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .finish(),
            );
        }
    }
}

/// `GET /assets/latchkey.css`: the pages' one stylesheet.
pub async fn get_stylesheet(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.pages.stylesheet.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(dir: &Path) -> Pages {
        Pages::load(
            dir,
            "https://auth.example.com/base/",
            &RefreshSecret::new(&[7; 32]),
        )
        .expect("load")
    }

    #[test]
    fn the_built_in_templates_load_and_escape_what_they_interpolate() {
        let p = pages(Path::new("/nonexistent"));
        let html = p.render(
            "error.html",
            minijinja::context! { title => "<script>", message => "a&b" },
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("a&amp;b"), "{html}");
        assert!(html.contains("base/assets/latchkey.css"), "{html}");
    }

    #[test]
    fn a_file_in_the_templates_folder_replaces_the_built_in_one() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("error.html"), "Branded: {{ title }}").expect("write");
        std::fs::write(dir.path().join("latchkey.css"), "body{}").expect("write");
        let p = pages(dir.path());
        assert_eq!(
            p.render("error.html", minijinja::context! { title => "T" }),
            "Branded: T"
        );
        assert_eq!(p.stylesheet, "body{}");
    }

    #[test]
    fn a_broken_override_stops_loading() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("login.html"), "{% if %}").expect("write");
        let err = Pages::load(dir.path(), "http://x", &RefreshSecret::new(&[7; 32]))
            .expect_err("must fail");
        assert!(err.to_string().contains("login.html"), "{err}");
    }

    #[test]
    fn the_policy_allows_no_script_and_no_framing() {
        let csp = content_security_policy(&["https://app.example.com"]);
        assert!(csp.contains("default-src 'none'"));
        assert!(!csp.contains("script-src"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("form-action 'self' https://app.example.com"));
    }

    #[test]
    fn issuer_path_is_the_prefix_of_links() {
        assert_eq!(issuer_path("http://127.0.0.1:8080"), "");
        assert_eq!(issuer_path("https://a.example/auth/"), "/auth");
    }
}
