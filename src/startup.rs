//! Building the application: store, key ring and services, then the HTTP
//! server bound to its listener, plus the background tasks (key reload and
//! session purge). `Application::port` exposes the bound port, so tests bind
//! to port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::passwords::Passwords;
use crate::domain::Services;
use crate::http::{self, AppState};
use crate::keys::{admin, files, KeyRing};
use crate::tokens::refresh::RefreshSecret;

/// Opens the store (and migrates it), loads the keys, and wires the domain
/// services. Used by `serve` and by every CLI command.
///
/// # Errors
/// The store cannot be opened or migrated, or the keys folder is unusable.
pub async fn build_services(
    settings: Settings,
    clock: Arc<dyn Clock>,
    create_keys: bool,
) -> anyhow::Result<Services> {
    let db = &settings.raw.database;
    let store = crate::store::connect(
        db.url.expose_secret(),
        db.max_connections,
        StdDuration::from_secs(db.acquire_timeout_secs),
    )
    .await
    .context("opening the database")?;
    store
        .migrate()
        .await
        .context("applying migrations (is the database reachable?)")?;
    let dir = settings.raw.keys.dir.clone();
    if create_keys {
        if let Some(kid) = admin::ensure_initial_key(&dir, settings.raw.keys.rsa_bits, clock.now())
            .context("creating the first signing key")?
        {
            tracing::info!(key.id = %kid, dir = %dir.display(), "signing key ready");
        }
    }
    let keys = Arc::new(
        KeyRing::load(&dir).with_context(|| format!("loading keys from {}", dir.display()))?,
    );
    let secret =
        files::load_or_create_refresh_secret(&dir).context("loading the refresh-token secret")?;
    let passwords = Passwords::new(&settings.raw.passwords, settings.max_concurrent_hashes())
        .context("argon2 parameters")?;
    Ok(Services::new(
        store,
        clock,
        keys,
        Arc::new(settings),
        passwords,
        RefreshSecret::new(&secret),
    ))
}

/// A built server, ready to run.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
}

impl Application {
    /// Builds everything and binds the listener.
    ///
    /// # Errors
    /// Any start-up failure, with context.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let address = format!("{}:{}", settings.raw.server.host, settings.raw.server.port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let services = build_services(settings, clock, true).await?;
        if services.settings.raw.demo.enabled {
            services
                .ensure_demo_client()
                .await
                .context("provisioning the demo client (demo.enabled)")?;
        }
        let server = run(listener, services.clone())?;
        spawn_background(&services);
        Ok(Self {
            port,
            server,
            services,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The services behind the server (tests drive keys and time through it).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped. SIGTERM stops it gracefully: the listener
    /// closes at once, requests in flight finish within
    /// `server.shutdown_timeout_secs`, then the database pool closes. (SIGINT
    /// and SIGQUIT stop at once, as actix does.) A refresh is one conditional
    /// `UPDATE`, so a request cut off at the timeout either rotated or did
    /// not; nothing is half-applied.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.services.store.clone();
        let out = self.server.await;
        store.close().await;
        tracing::info!("server stopped; database pool closed");
        out
    }
}

fn run(listener: TcpListener, services: Services) -> anyhow::Result<Server> {
    let https = services.settings.issuer.starts_with("https://");
    let workers = match services.settings.raw.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let shutdown = services.settings.raw.server.shutdown_timeout_secs;
    let state = web::Data::new(AppState {
        discovery: http::discovery::render(&services.settings),
        services,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Inner to CORS and the security headers, so replaced bodies get them too.
            .wrap(http::error::json_errors())
            .wrap(actix_web::middleware::from_fn(http::cors::cors))
            .wrap(http::security_headers(https))
            .configure(http::routes)
    })
    .workers(workers)
    .shutdown_timeout(shutdown)
    .listen(listener)
    .context("listening")?
    .run();
    Ok(server)
}

/// Key reload and session purge, on intervals, for the life of the process.
fn spawn_background(services: &Services) {
    let keys = services.keys.clone();
    let every = StdDuration::from_secs(services.settings.raw.keys.reload_interval_secs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match keys.reload() {
                Ok(true) => tracing::info!("keys reloaded"),
                Ok(false) => {}
                Err(err) => tracing::error!(?err, "key reload failed; keeping the keys in use"),
            }
        }
    });
    let s = services.clone();
    let every = StdDuration::from_secs(services.settings.raw.sessions.purge_interval_secs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match s.purge_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "ended sessions purged"),
                Err(err) => tracing::warn!(?err, "session purge failed"),
            }
        }
    });
}
