//! Load driver for a running latchkey server on loopback: refresh chains, password and
//! client-credentials grants, introspection and JWKS, with latency percentiles, error
//! counts, server memory and a CSV row per run. It speaks HTTP only and does not link
//! the latchkey library, so it builds and runs against any version of the server.
//!
//! Run `cargo run --release --example load -- --help` for the options. Counting rules:
//! `requests` is every finished request; `rps` and the latency percentiles cover the
//! successful ones; setup (sign-ups, first logins, probes) is never timed.

mod api;
mod cli;
mod report;
mod rss;
mod scenario;
mod stats;
mod target;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::Parser;
use tokio::task::JoinSet;

use crate::api::Api;
use crate::cli::{Args, Plan};
use crate::report::RunResult;
use crate::rss::RssSampler;
use crate::scenario::Budget;
use crate::stats::{LatencySummary, Progress, WorkerStats};

fn main() -> ExitCode {
    match Plan::try_from(Args::parse()).and_then(|plan| run(&plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: `{:#}` joins the context chain with ": ".
            eprintln!("load: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the runtime and runs every concurrency of the plan in turn.
fn run(plan: &Plan) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run_plan(plan))
}

/// One run per concurrency (a sweep has several); each is printed and appended as it ends.
async fn run_plan(plan: &Plan) -> anyhow::Result<()> {
    if let Some(pid) = plan.server_pid {
        // Fail before any load if the pid is wrong, not after the run.
        rss::read_sample(pid).context("--server-pid")?;
    }
    for &concurrency in &plan.concurrencies {
        let result = run_once(plan, concurrency)
            .await
            .with_context(|| format!("{} at concurrency {concurrency}", plan.scenario.name()))?;
        println!("{}", result.to_text());
        if let Some(path) = &plan.csv {
            report::append_csv(path, &result)?;
        }
    }
    Ok(())
}

/// Sets up one run, drives its workers to the bounds, and gathers the result.
async fn run_once(plan: &Plan, concurrency: usize) -> anyhow::Result<RunResult> {
    let api = Arc::new(connect(plan, concurrency).await?);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let works = scenario::prepare(&api, plan, concurrency, &run_id[..12]).await?;

    // Nothing below outlives this bound: in-flight requests end by their timeout.
    let time_bound = plan.duration + plan.timeout + Duration::from_secs(2);
    let sampler = plan
        .server_pid
        .map(|pid| RssSampler::start(pid, time_bound));
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let printer =
        tokio::spawn(Arc::clone(&progress).print_every_second(started, time_bound.as_secs()));
    let budget = Arc::new(Budget::new(plan.max_requests, started + plan.duration));

    let mut workers = JoinSet::new();
    for work in works {
        workers.spawn(scenario::run_worker(
            work,
            Arc::clone(&api),
            Arc::clone(&budget),
            Arc::clone(&progress),
        ));
    }
    let totals = join_workers(workers).await;
    let elapsed = started.elapsed();
    printer.abort();
    let memory = match sampler {
        Some(sampler) => sampler.finish().await,
        None => None,
    };
    let totals = totals?;
    Ok(RunResult {
        scenario: plan.scenario.name(),
        label: plan.label.as_str().to_owned(),
        concurrency,
        requests: totals.latencies.len() + totals.errors.total(),
        elapsed,
        latency: LatencySummary::from_histogram(&totals.latencies),
        errors: totals.errors,
        relogins: totals.relogins,
        stopped_early: totals.stopped_early,
        memory,
    })
}

/// Builds the run's client and checks that the server answers /healthz.
async fn connect(plan: &Plan, concurrency: usize) -> anyhow::Result<Api> {
    let client = target::build_client(concurrency, plan.timeout)?;
    let endpoints = target::Endpoints::new(&plan.base_url)?;
    let health = endpoints.health.clone();
    let api = Api::new(client, endpoints, plan.scope.clone());
    api.health()
        .await
        .map_err(|f| anyhow!("server not ready at {health}: {f}"))?;
    Ok(api)
}

/// Waits for every worker and merges their measurements.
async fn join_workers(mut workers: JoinSet<WorkerStats>) -> anyhow::Result<WorkerStats> {
    let mut totals = WorkerStats::new();
    while let Some(joined) = workers.join_next().await {
        totals.merge(joined.context("a worker task failed")?)?;
    }
    Ok(totals)
}
