//! The ceiling for JWKS throughput: a bare actix-web server that answers every
//! GET with a fixed body, built with the same framework, runtime and release
//! profile as latchkey but doing no work of its own. The load driver's `jwks`
//! scenario against it measures what this machine can serve at all, so
//! BENCHMARKS.md can state latchkey's JWKS figure as a fraction of it.
//!
//! `cargo run --release --example static_ceiling -- PORT [BODY_FILE]`
//! (the body defaults to a JWKS-sized JSON document).

use std::process::ExitCode;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;

/// About the size of latchkey's JWKS with two RSA-2048 keys.
const DEFAULT_BODY_BYTES: usize = 900;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(port) = args.next().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: static_ceiling PORT [BODY_FILE]");
        return ExitCode::FAILURE;
    };
    let body = match args.next() {
        Some(path) => match std::fs::read(&path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(err) => {
                eprintln!("static_ceiling: reading {path}: {err}");
                return ExitCode::FAILURE;
            }
        },
        None => Bytes::from(format!(
            "{{\"keys\":[{{\"pad\":\"{}\"}}]}}",
            "x".repeat(DEFAULT_BODY_BYTES - 20)
        )),
    };
    match serve(port, body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("static_ceiling: {err}");
            ExitCode::FAILURE
        }
    }
}

#[actix_web::main]
async fn serve(port: u16, body: Bytes) -> std::io::Result<()> {
    println!("static_ceiling listening on 127.0.0.1:{port}");
    HttpServer::new(move || {
        let body = body.clone();
        App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .insert_header((CONTENT_TYPE, "application/json"))
                    .insert_header((CACHE_CONTROL, "public, max-age=300"))
                    .body(body)
            }
        }))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
