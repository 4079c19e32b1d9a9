//! An "orders" service on actix-web that trusts latchkey's access tokens:
//!
//! ```sh
//! cargo run -p latchkey-verify --example orders -- \
//!     --issuer http://127.0.0.1:8080 --audience orders --listen 127.0.0.1:8081
//! ```
//!
//! `GET /orders` needs a token for the audience with scope `orders:read`
//! and answers `{"sub": …, "orders": []}`; no or a bad token is 401, a
//! token without the scope 403 (RFC 6750). `GET /stats` shows the JWKS
//! cache's counters, what a real service would export as metrics.

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use latchkey_verify::actix::RequireScope;
use latchkey_verify::Verifier;

latchkey_verify::scope!(OrdersRead = "orders:read");

/// The example's command line (the same for `orders-axum`).
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

async fn get_orders(auth: RequireScope<OrdersRead>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "sub": auth.claims().sub,
        "orders": [],
    }))
}

async fn get_stats(verifier: web::Data<Verifier>) -> HttpResponse {
    let s = verifier.stats();
    HttpResponse::Ok().json(serde_json::json!({
        "jwks_fetches": s.fetches,
        "jwks_not_modified": s.not_modified,
        "jwks_unknown_kid_fetches": s.unknown_kid_fetches,
        "jwks_failures": s.failures,
    }))
}

#[actix_web::main]
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
    let verifier = web::Data::new(verifier);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .route("/orders", web::get().to(get_orders))
            .route("/stats", web::get().to(get_stats))
    })
    .workers(2)
    .bind(&args.listen)?;
    for addr in server.addrs() {
        println!("orders listening on {addr}");
    }
    server.run().await
}
