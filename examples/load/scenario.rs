//! The scenarios: their untimed setup (users, logins, a client token) and the bounded
//! request loop each worker runs. Timing and counting go to `stats`; reporting is elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use reqwest::header::HeaderValue;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{Api, Failure, User};
use crate::cli::{ClientAuth, Plan, Scenario};
use crate::stats::{micros, Progress, WorkerStats};

/// Pause after a failure that says "not now" (429, 5xx, transport), so a server that is
/// down or shedding load is not hammered in a tight loop.
const BACKOFF: Duration = Duration::from_millis(50);

/// Sign-ups and logins in flight during setup. Each costs the server an argon2 hash,
/// and the server bounds hashes in flight: a large concurrency sent all at once would
/// queue there until the driver's own timeout failed the setup.
const SETUP_PARALLELISM: usize = 8;

/// The shared bounds of a run: whichever of the request count and the deadline comes first.
pub struct Budget {
    issued: AtomicU64,
    limit: u64,
    deadline: Instant,
}

impl Budget {
    /// A budget of `limit` requests until `deadline`.
    pub fn new(limit: u64, deadline: Instant) -> Self {
        Budget {
            issued: AtomicU64::new(0),
            limit,
            deadline,
        }
    }

    /// Claims one request; false once either bound is reached.
    pub fn try_take(&self) -> bool {
        Instant::now() < self.deadline && self.issued.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

/// One worker's scenario state.
pub enum Work {
    /// A refresh chain: its own user and the newest refresh token it holds.
    Refresh {
        client_id: Arc<str>,
        user: User,
        refresh_token: String,
    },
    /// Logins cycling through a shared pool of users, from `next`.
    Password {
        client_id: Arc<str>,
        pool: Arc<[User]>,
        next: usize,
    },
    /// client_credentials grants.
    ClientCredentials { basic: HeaderValue },
    /// Introspection of one access token, replaced if it stops being active.
    Introspect { basic: HeaderValue, token: String },
    /// JWKS fetches.
    Jwks,
}

/// What a worker does after a failed request.
enum Recovery {
    /// Go on with the next request.
    Continue,
    /// Go on; the refresh chain logged in again first.
    Relogged,
    /// Give up: recovery itself failed.
    Stop,
}

impl Work {
    /// Sends one timed request.
    async fn step(&mut self, api: &Api) -> Result<(), Failure> {
        match self {
            Work::Refresh {
                client_id,
                refresh_token,
                ..
            } => {
                let tokens = api.refresh_grant(client_id, refresh_token).await?;
                // Always continue from the newest token, as a real client must (SPEC: rotation).
                *refresh_token = tokens.refresh_token.ok_or(Failure::BadBody)?;
                Ok(())
            }
            Work::Password {
                client_id,
                pool,
                next,
            } => {
                // `pool` is never empty and `next < pool.len()`: see `password_works`.
                let user = &pool[*next];
                *next = (*next + 1) % pool.len();
                api.password_grant(client_id, user).await.map(drop)
            }
            Work::ClientCredentials { basic } => api.client_credentials(basic).await.map(drop),
            Work::Introspect { basic, token } => api.introspect(basic, token).await,
            Work::Jwks => api.jwks().await,
        }
    }

    /// Brings the worker back to a usable state after `failure`; not timed.
    async fn recover(&mut self, api: &Api, failure: &Failure) -> Recovery {
        match (self, failure) {
            // The chain's token is dead (used up, family revoked, expired): start a new session.
            (
                Work::Refresh {
                    client_id,
                    user,
                    refresh_token,
                },
                f,
            ) if f.is_client_error() => match login(api, client_id, user).await {
                Ok(token) => {
                    *refresh_token = token;
                    Recovery::Relogged
                }
                Err(_) => Recovery::Stop,
            },
            // The access token expired during a long run: fetch a fresh one.
            (Work::Introspect { basic, token }, Failure::Inactive) => {
                match api.client_credentials(basic).await {
                    Ok(tokens) => {
                        *token = tokens.access_token;
                        Recovery::Continue
                    }
                    Err(_) => Recovery::Stop,
                }
            }
            (_, f) if f.is_client_error() || matches!(f, Failure::BadBody) => Recovery::Continue,
            // 429, 5xx, timeouts, connection trouble: transient, so wait a little. A refresh
            // chain keeps its token: if the server did rotate, the grace period answers the
            // retry with the same new token.
            _ => {
                tokio::time::sleep(BACKOFF).await;
                Recovery::Continue
            }
        }
    }
}

/// Runs one worker until the budget is spent or its recovery fails.
pub async fn run_worker(
    mut work: Work,
    api: Arc<Api>,
    budget: Arc<Budget>,
    progress: Arc<Progress>,
) -> WorkerStats {
    let mut stats = WorkerStats::new();
    // The budget stops the loop; the range only makes the bound visible here.
    for _ in 0..budget.limit {
        if !budget.try_take() {
            break;
        }
        let started = Instant::now();
        let outcome = work.step(&api).await;
        let latency = started.elapsed();
        progress.record(outcome.is_ok());
        let Err(failure) = outcome else {
            stats.latencies.saturating_record(micros(latency));
            continue;
        };
        stats.errors.add(&failure);
        match work.recover(&api, &failure).await {
            Recovery::Continue => {}
            Recovery::Relogged => stats.relogins += 1,
            Recovery::Stop => {
                stats.stopped_early = true;
                break;
            }
        }
    }
    stats
}

/// The untimed setup: one `Work` per worker, or the first setup failure.
///
/// # Errors
/// When a sign-up, login or probe request fails; the message names the step.
pub async fn prepare(
    api: &Arc<Api>,
    plan: &Plan,
    concurrency: usize,
    run_id: &str,
) -> anyhow::Result<Vec<Work>> {
    match (plan.scenario, &plan.client) {
        (Scenario::Refresh, ClientAuth::Public(id)) => {
            refresh_works(api, id.as_str().into(), concurrency, run_id).await
        }
        (Scenario::Password, ClientAuth::Public(id)) => {
            let users = plan.users.unwrap_or(concurrency);
            password_works(api, id.as_str().into(), concurrency, users, run_id).await
        }
        (Scenario::ClientCredentials, ClientAuth::Basic(basic)) => {
            api.client_credentials(basic)
                .await
                .map_err(|f| anyhow!("client_credentials probe: {f}"))?;
            Ok((0..concurrency)
                .map(|_| Work::ClientCredentials {
                    basic: basic.clone(),
                })
                .collect())
        }
        (Scenario::Introspect, ClientAuth::Basic(basic)) => {
            introspect_works(api, basic, concurrency).await
        }
        (Scenario::Jwks, _) => {
            api.jwks().await.map_err(|f| anyhow!("JWKS probe: {f}"))?;
            Ok((0..concurrency).map(|_| Work::Jwks).collect())
        }
        (scenario, _) => bail!(
            "the {} scenario got the wrong kind of client",
            scenario.name()
        ),
    }
}

/// Signs up and logs in one user per chain, `SETUP_PARALLELISM` chains at a time.
async fn refresh_works(
    api: &Arc<Api>,
    client_id: Arc<str>,
    concurrency: usize,
    run_id: &str,
) -> anyhow::Result<Vec<Work>> {
    let permits = Arc::new(Semaphore::new(SETUP_PARALLELISM));
    let mut tasks = JoinSet::new();
    for index in 0..concurrency {
        let (api, client_id, user) = (
            Arc::clone(api),
            Arc::clone(&client_id),
            User::synthetic(run_id, index),
        );
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire().await.context("setup permits closed")?;
            sign_up(&api, &user).await?;
            let refresh_token = login(&api, &client_id, &user)
                .await
                .with_context(|| format!("login of {}", user.email))?;
            Ok(Work::Refresh {
                client_id,
                user,
                refresh_token,
            })
        });
    }
    collect(tasks).await
}

/// Signs up the pool (split across at most `SETUP_PARALLELISM` tasks) and spreads the workers over it.
async fn password_works(
    api: &Arc<Api>,
    client_id: Arc<str>,
    concurrency: usize,
    users: usize,
    run_id: &str,
) -> anyhow::Result<Vec<Work>> {
    let pool: Arc<[User]> = (0..users.max(1))
        .map(|i| User::synthetic(run_id, i))
        .collect();
    let setup_tasks = pool.len().min(SETUP_PARALLELISM);
    let mut tasks = JoinSet::new();
    for first in 0..setup_tasks {
        let (api, pool) = (Arc::clone(api), Arc::clone(&pool));
        tasks.spawn(async move {
            for user in pool.iter().skip(first).step_by(setup_tasks) {
                sign_up(&api, user).await?;
            }
            anyhow::Ok(())
        });
    }
    collect(tasks).await?;
    let works = (0..concurrency).map(|worker| Work::Password {
        client_id: Arc::clone(&client_id),
        pool: Arc::clone(&pool),
        next: worker % pool.len(),
    });
    Ok(works.collect())
}

/// Obtains one access token and checks that this client may introspect it.
async fn introspect_works(
    api: &Api,
    basic: &HeaderValue,
    concurrency: usize,
) -> anyhow::Result<Vec<Work>> {
    let token = api
        .client_credentials(basic)
        .await
        .map_err(|f| anyhow!("client_credentials for the token to introspect: {f}"))?
        .access_token;
    api.introspect(basic, &token)
        .await
        .map_err(|f| anyhow!("introspection probe: {f}"))?;
    let works = (0..concurrency).map(|_| Work::Introspect {
        basic: basic.clone(),
        token: token.clone(),
    });
    Ok(works.collect())
}

/// Tries of a sign-up or login that the server answers "not now".
const PATIENT_TRIES: u32 = 6;

/// Runs `call` again while the server answers 503 or 429, backing off from
/// 200 ms to 2 s, as `Retry-After` asks: a server busy hashing (or a machine
/// busy with other work) delays the untimed set-up instead of failing it.
async fn patiently<T, Fut>(mut call: impl FnMut() -> Fut) -> Result<T, Failure>
where
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut wait = Duration::from_millis(200);
    for _ in 1..PATIENT_TRIES {
        match call().await {
            Err(Failure::Status(429 | 503, _)) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
    call().await
}

/// POST /v1/users for one synthetic user.
async fn sign_up(api: &Api, user: &User) -> anyhow::Result<()> {
    patiently(|| api.sign_up(user))
        .await
        .map_err(|f| anyhow!("sign-up of {}: {f}", user.email))
}

/// A password login that must return a refresh token.
async fn login(api: &Api, client_id: &str, user: &User) -> anyhow::Result<String> {
    let tokens = patiently(|| api.password_grant(client_id, user))
        .await
        .map_err(|f| anyhow!("{f}"))?;
    tokens
        .refresh_token
        .context("the password grant returned no refresh_token")
}

/// Waits for every setup task; the first failure wins, and the rest are dropped (aborted).
async fn collect<T: 'static>(mut tasks: JoinSet<anyhow::Result<T>>) -> anyhow::Result<Vec<T>> {
    let mut done = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        done.push(joined.context("a setup task failed")??);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stops_at_the_request_bound() {
        let budget = Budget::new(3, Instant::now() + Duration::from_secs(60));
        let taken = (0..10).filter(|_| budget.try_take()).count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn budget_stops_at_the_deadline() {
        let budget = Budget::new(1_000, Instant::now());
        assert!(!budget.try_take());
    }
}
