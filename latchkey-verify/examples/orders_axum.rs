//! The "orders" service again, on axum; same command line and behaviour as
//! the actix-web example:
//!
//! ```sh
//! cargo run -p latchkey-verify --example orders-axum -- \
//!     --issuer http://127.0.0.1:8080 --audience orders --listen 127.0.0.1:8081
//! ```

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use latchkey_verify::axum::RequireScope;
use latchkey_verify::Verifier;

latchkey_verify::scope!(OrdersRead = "orders:read");

/// The example's command line (the same for `orders`).
#[derive(Parser)]
struct Args {
    /// latchkey's issuer URL, exactly as its discovery document names it.
    #[arg(long)]
    issuer: String,
    /// The audience tokens must be issued for.
    #[arg(long)]
    audience: String,
    /// Address to listen on (port 0 picks a free one; the chosen address is
    /// printed).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// Lower bound on the JWKS cache's freshness, in seconds.
    #[arg(long, default_value_t = 5)]
    jwks_min_ttl_secs: u64,
}

async fn get_orders(auth: RequireScope<OrdersRead>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "sub": auth.claims().sub, "orders": [] }))
}

async fn get_stats(State(verifier): State<Verifier>) -> Json<serde_json::Value> {
    let s = verifier.stats();
    Json(serde_json::json!({
        "jwks_fetches": s.fetches,
        "jwks_not_modified": s.not_modified,
        "jwks_unknown_kid_fetches": s.unknown_kid_fetches,
        "jwks_failures": s.failures,
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let verifier = Verifier::builder(&args.issuer, &args.audience)
        .ttl_bounds(
            Duration::from_secs(args.jwks_min_ttl_secs),
            Duration::from_secs(3600),
        )
        .discover()
        .await
        .map_err(std::io::Error::other)?;
    let app = Router::new()
        .route("/orders", get(get_orders))
        .route("/stats", get(get_stats))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("orders listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
