//! Building the application: store, key ring and services, then the HTTP
//! server bound to its listener (and the metrics listener, when
//! `metrics.listen` is set), plus the background tasks (key reload, session
//! and audit purge, metrics upkeep). `Application::port` exposes the bound
//! port, so tests bind to port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::clock::Clock;
use crate::config::KeysFrom;
use crate::config::Settings;
use crate::domain::keystore;
use crate::domain::outbox::{self, Mailer, Templates};
use crate::domain::passwords::Passwords;
use crate::domain::signing::Signer;
use crate::domain::Services;
use crate::http::{self, AppState};
use crate::keys::sealed::{self, Keks};
use crate::keys::{admin, files, KeyRing, KeySet};
use crate::store::metered::MeteredStore;
use crate::store::AuditKind;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::tokens::refresh::RefreshSecret;

/// Opens the store (and migrates it), loads the keys, and wires the domain
/// services. Used by `serve` and by every CLI command.
///
/// # Errors
/// The store cannot be opened or migrated, or the keys are unusable.
pub async fn build_services(
    settings: Settings,
    clock: Arc<dyn Clock>,
    create_keys: bool,
) -> anyhow::Result<Services> {
    Ok(build_services_reporting(settings, clock, create_keys)
        .await?
        .services)
}

/// What `build_services_reporting` wires: the services, and the parts behind
/// them that only start-up, shutdown and tests reach directly.
pub struct Built {
    pub services: Services,
    pub settings: Arc<Settings>,
    /// The store the services use (metered), for closing it at shutdown and
    /// for tests that seed or inspect rows.
    pub store: Arc<dyn Store>,
    /// The key ring the services sign with, for tests that reload it.
    pub keys: Arc<KeyRing>,
    /// The kid of the first key, when this call created it.
    pub first_key: Option<String>,
}

/// `build_services`, also returning the parts behind them and the kid of
/// the first key when this call created it.
///
/// # Errors
/// As `build_services`.
pub async fn build_services_reporting(
    settings: Settings,
    clock: Arc<dyn Clock>,
    create_keys: bool,
) -> anyhow::Result<Built> {
    let db = settings.database();
    let store = crate::store::connect(
        db.url.expose_secret(),
        db.max_connections,
        StdDuration::from_secs(db.acquire_timeout_secs),
    )
    .await
    .context("opening the database")?;
    let metrics = Metrics::new();
    let store = MeteredStore::wrap(store, metrics.clone());
    store
        .migrate()
        .await
        .context("applying migrations (is the database reachable?)")?;
    let (keys, secret, first_key) =
        open_keys(&settings, store.as_ref(), clock.now(), create_keys).await?;
    let passwords = Passwords::new(&settings.argon2()).context("argon2 parameters")?;
    let templates_dir = settings.mail_templates_dir().to_owned();
    let templates = Templates::load(&templates_dir).with_context(|| {
        format!(
            "reading mail templates from {} (email.templates_dir)",
            templates_dir.display()
        )
    })?;
    let signer = Signer::for_mode(settings.signing_mode())
        .context("starting the signing threads (tokens.signing = \"pool\")")?;
    let keys = Arc::new(keys);
    let services = Services::new(
        store.clone(),
        clock,
        keys.clone(),
        settings.policy().clone(),
        passwords,
        RefreshSecret::new(&secret),
    )
    .with_metrics(metrics)
    .with_mail_templates(templates)
    .with_signer(signer);
    if let Some(kid) = &first_key {
        services
            .record_key_change(
                AuditKind::KeyGenerated,
                format!("key {kid} active now"),
                "startup",
            )
            .await
            .context("recording the first key in the audit log")?;
    }
    Ok(Built {
        services,
        settings: Arc::new(settings),
        store,
        keys,
        first_key,
    })
}

/// The key ring and the refresh-token secret, from the folder or the store
/// (`keys.source`), plus the kid of a first key created here. With
/// `create`, a fresh setup gets its first key (and, in store mode, its KEK
/// file when none is configured); without, commands that never sign get an
/// empty ring and a throwaway secret when there are no keys to read.
async fn open_keys(
    settings: &Settings,
    store: &dyn Store,
    now: chrono::DateTime<chrono::Utc>,
    create: bool,
) -> anyhow::Result<(KeyRing, Vec<u8>, Option<String>)> {
    match settings.keys_from() {
        KeysFrom::Folder => open_folder_keys(settings, now, create),
        KeysFrom::Store => open_store_keys(settings, store, now, create).await,
    }
}

fn open_folder_keys(
    settings: &Settings,
    now: chrono::DateTime<chrono::Utc>,
    create: bool,
) -> anyhow::Result<(KeyRing, Vec<u8>, Option<String>)> {
    let dir = settings.keys().dir.clone();
    let mut first_key = None;
    if create {
        first_key = admin::ensure_initial_key(&dir, settings.key_spec(), now)
            .context("creating the first signing key")?;
        if let Some(kid) = &first_key {
            tracing::info!(key.id = %kid, key.alg = %settings.key_spec().algorithm, dir = %dir.display(), "signing key ready");
        }
    }
    let keys =
        KeyRing::load(&dir).with_context(|| format!("loading keys from {}", dir.display()))?;
    let secret = if create {
        files::load_or_create_refresh_secret(&dir).context("loading the refresh-token secret")?
    } else {
        // Commands that never issue a refresh token (migrate, audit) leave
        // the keys folder alone: without a secret file they get a throwaway
        // one that no token will ever be checked against.
        match files::load_refresh_secret(&dir).context("loading the refresh-token secret")? {
            Some(secret) => secret,
            None => files::new_refresh_secret()?.to_vec(),
        }
    };
    Ok((keys, secret, first_key))
}

async fn open_store_keys(
    settings: &Settings,
    store: &dyn Store,
    now: chrono::DateTime<chrono::Utc>,
    create: bool,
) -> anyhow::Result<(KeyRing, Vec<u8>, Option<String>)> {
    let initialized = keystore::is_initialized(store)
        .await
        .context("reading the store's keys")?;
    if create && !initialized {
        refuse_unimported_folder(settings)?;
    }
    let Some(keks) = resolve_keks(settings, create && !initialized)? else {
        if create {
            anyhow::bail!(
                "keys.source is \"store\" and the store holds keys, but no key-encryption key is configured: set keys.kek (LATCHKEY__KEYS__KEK) or keys.kek_file ({} does not exist)",
                settings.keys().kek_file.display()
            );
        }
        // Nothing to open with: commands that never sign still run.
        return Ok((
            KeyRing::without_keys(),
            files::new_refresh_secret()?.to_vec(),
            None,
        ));
    };
    let mut first_key = None;
    if create && !initialized {
        first_key = keystore::initialize_fresh(store, &keks, settings.key_spec(), now)
            .await
            .context("creating the first signing key in the store")?;
        if let Some(kid) = &first_key {
            tracing::info!(key.id = %kid, key.alg = %settings.key_spec().algorithm, "signing key ready (store)");
        }
    }
    if !create && !keystore::is_initialized(store).await.unwrap_or(false) {
        return Ok((
            KeyRing::from_store(keks, KeySet::empty()),
            files::new_refresh_secret()?.to_vec(),
            None,
        ));
    }
    let set = keystore::read_set(store, &keks)
        .await
        .context("loading the signing keys from the store")?;
    let secret = keystore::read_refresh_secret(store, &keks)
        .await
        .context("loading the refresh-token secret from the store")?;
    Ok((KeyRing::from_store(keks, set), secret, first_key))
}

/// A store with no keys next to a keys folder that has some: starting would
/// create a new first key, and every token the folder's keys signed would
/// stop verifying. The folder must be imported first.
fn refuse_unimported_folder(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.keys().dir;
    let (manifest, _) = files::read_manifest(dir).unwrap_or_default();
    if !manifest.keys.is_empty() {
        anyhow::bail!(
            "keys.source is \"store\", the store has no keys, and {} holds some: run `latchkey keys import {}` first, so tokens they signed stay valid",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The KEKs: `keys.kek` when set, else `keys.kek_file`. With `create` (a
/// fresh store), an absent file is created with a new KEK, mode 0600.
/// `None` when neither is there and nothing may be created.
fn resolve_keks(settings: &Settings, create: bool) -> anyhow::Result<Option<Keks>> {
    let kek = settings.keys().kek.expose_secret();
    if !kek.trim().is_empty() {
        return Ok(Some(Keks::parse(kek).context("keys.kek")?));
    }
    let path = &settings.keys().kek_file;
    if !path.exists() {
        if !create {
            return Ok(None);
        }
        create_kek_file(path)?;
    }
    Ok(Some(Keks::read_file(path).with_context(|| {
        format!("keys.kek_file {}", path.display())
    })?))
}

/// Writes a new KEK to `path` unless one appeared meanwhile (create-if-absent,
/// so instances starting together on one machine share it).
fn create_kek_file(path: &std::path::Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    files::ensure_dir(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("keys.kek_file must name a file")?;
    let text = sealed::generate_kek_text()?;
    files::create_secret_file_if_absent(dir, name, format!("{text}\n").as_bytes())
        .with_context(|| format!("creating keys.kek_file {}", path.display()))?;
    tracing::warn!(path = %path.display(), "created a new key-encryption key; back it up: without it the store's keys cannot be opened");
    Ok(())
}

/// A built server, ready to run.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    metrics: Option<(u16, Server)>,
    /// Stops the outbox sender, and its task.
    mail_sender: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
}

impl Application {
    /// Builds everything and binds the listener.
    ///
    /// # Errors
    /// Any start-up failure, with context.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let address = format!("{}:{}", settings.server().host, settings.server().port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let metrics_listener = match settings.metrics_listen() {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .with_context(|| format!("binding metrics.listen {addr}"))?,
            ),
            None => None,
        };
        let mailer = Mailer::new(&settings.mailer()).context("the [email] settings")?;
        let Built {
            services,
            settings,
            store,
            keys,
            ..
        } = build_services_reporting(settings, clock, true).await?;
        if settings.demo_enabled() {
            services
                .ensure_demo_client()
                .await
                .context("provisioning the demo client (demo.enabled)")?;
        }
        let server = run(listener, services.clone(), &settings)?;
        let metrics = match metrics_listener {
            Some(l) => {
                let port = l
                    .local_addr()
                    .context("reading the metrics address")?
                    .port();
                Some((port, run_metrics(l, services.clone(), &settings)?))
            }
            None => None,
        };
        spawn_background(&services, &settings);
        let (stop_mail, stop) = tokio::sync::watch::channel(false);
        let sender = outbox::spawn_sender(services.clone(), Arc::new(mailer), stop);
        Ok(Self {
            port,
            server,
            services,
            settings,
            store,
            keys,
            metrics,
            mail_sender: (stop_mail, sender),
        })
    }

    /// The port the main listener got: the configured one, unless that was
    /// 0 and the system picked one (as tests do).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when `metrics.listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The services behind the server (tests drive time through it).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The validated settings the server runs with.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// The store behind the services, for tests that seed or inspect rows
    /// the API does not show.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key ring the services sign with, for tests that reload it
    /// without waiting for the reload interval.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
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
    /// The I/O error the HTTP server stopped with.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.store.clone();
        // The metrics listener lives exactly as long as the main one.
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let out = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        // The sender finishes its round (each delivery is bounded by
        // email.smtp_timeout_secs) before the pool closes.
        let (stop_mail, sender) = self.mail_sender;
        let _ = stop_mail.send(true);
        let _ = sender.await;
        store.close().await;
        tracing::info!("server stopped; database pool closed");
        out
    }
}

fn run(
    listener: TcpListener,
    services: Services,
    settings: &Arc<Settings>,
) -> anyhow::Result<Server> {
    let https = settings.issuer().starts_with("https://");
    let workers = match settings.server().workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let shutdown = settings.server().shutdown_timeout_secs;
    let public_metrics = settings.metrics_listen().is_none();
    let state = web::Data::new(AppState {
        discovery: http::discovery::render(settings),
        pages: load_pages(&services, settings)?,
        services,
        settings: settings.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Inner to CORS and the security headers, so replaced bodies get them too.
            .wrap(http::error::json_errors())
            .wrap(actix_web::middleware::from_fn(http::cors::cors))
            .wrap(http::security_headers(https))
            // Outermost: the request id and metrics cover every response.
            .wrap(from_fn(http::observe::observe))
            .configure(http::routes)
            .configure(|cfg| {
                if public_metrics {
                    http::ops::metrics_route(cfg);
                }
            })
    })
    .workers(workers)
    .shutdown_timeout(shutdown)
    .listen(listener)
    .context("listening")?
    .run();
    Ok(server)
}

/// The page templates, with the deployment's overrides.
fn load_pages(services: &Services, settings: &Settings) -> anyhow::Result<Arc<http::pages::Pages>> {
    let dir = std::path::Path::new(&settings.pages().templates_dir);
    let pages = http::pages::Pages::load(dir, settings.issuer(), &services.refresh_secret)
        .context("loading the page templates")?;
    Ok(Arc::new(pages))
}

/// The metrics listener: `GET /metrics` and nothing else, on one worker.
fn run_metrics(
    listener: TcpListener,
    services: Services,
    settings: &Arc<Settings>,
) -> anyhow::Result<Server> {
    let shutdown = settings.server().shutdown_timeout_secs;
    let state = web::Data::new(AppState {
        discovery: http::discovery::render(settings),
        pages: load_pages(&services, settings)?,
        services,
        settings: settings.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(http::ops::metrics_route)
            .default_service(web::to(http::not_found))
    })
    .workers(1)
    .shutdown_timeout(shutdown)
    .listen(listener)
    .context("listening for metrics")?
    .run();
    Ok(server)
}

/// Key reload, session and audit purge, the client change poll, and metrics
/// upkeep, on intervals,
/// for the life of the process.
fn spawn_background(services: &Services, settings: &Settings) {
    let s = services.clone();
    let every = settings.key_reload_interval();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A store that cannot be reached keeps the ring in use: JWKS and
            // verification go on, and the next tick tries again.
            match s.reload_keys().await {
                Ok(true) => {
                    tracing::info!(keys.version = s.key_ring_version(), "keys reloaded");
                }
                Ok(false) => {}
                Err(err) => tracing::error!(?err, "key reload failed; keeping the keys in use"),
            }
        }
    });
    let s = services.clone();
    let every = settings.purge_interval();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match s.purge_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "ended sessions purged"),
                Err(err) => tracing::warn!(?err, "session purge failed"),
            }
            match s.purge_audit_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired audit events purged"),
                Err(err) => tracing::warn!(?err, "audit purge failed"),
            }
            match s.purge_mail_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired email tokens and settled mail purged"),
                Err(err) => tracing::warn!(?err, "mail purge failed"),
            }
        }
    });
    let s = services.clone();
    let every = settings.client_change_poll();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // A slow store must not make polls pile up and fire in a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match s.poll_client_changes().await {
                Ok(true) => tracing::debug!("clients changed; cached clients dropped"),
                Ok(false) => {}
                Err(err) => tracing::warn!(?err, "client change poll failed"),
            }
        }
    });
    let metrics = services.metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(StdDuration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    });
}
