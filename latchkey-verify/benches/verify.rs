//! What the crate costs over a bare `jsonwebtoken::decode` with the same
//! key and the same checks (`iss`, `aud`, `exp`, algorithm), per algorithm:
//! `Verifier::verify` through the JWKS cache (key already cached), the
//! pure `verify_with_set`, and the bare decode.
//!
//! `cargo bench -p latchkey-verify --bench verify`

#![expect(
    clippy::expect_used,
    reason = "a benchmark whose setup fails has nothing to measure"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey_verify::keys::KeySet;
use latchkey_verify::test_util::{TestAlgorithm, TestIssuer, TestKey};
use latchkey_verify::verify::{verify_with_set, Expectations};

const AUD: &str = "orders";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (name, alg, jwt_alg) in [
        ("RS256", TestAlgorithm::Rs256, Algorithm::RS256),
        ("ES256", TestAlgorithm::Es256, Algorithm::ES256),
        ("EdDSA", TestAlgorithm::EdDsa, Algorithm::EdDSA),
    ] {
        let (issuer, verifier) = rt.block_on(async {
            let issuer = TestIssuer::with_key(TestKey::generate(alg)).await;
            let verifier = issuer.verifier(AUD).await;
            (issuer, verifier)
        });
        let token = issuer.token(AUD).scope("orders:read").sign();
        let key = issuer.signing_key();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": [key.jwk] })).expect("json");
        let set = KeySet::from_json(&jwks).expect("set");
        let expect = Expectations::new(&issuer.url, AUD, Duration::from_secs(60));
        let j = &key.jwk;
        let bare_key = match jwt_alg {
            Algorithm::RS256 => DecodingKey::from_rsa_components(
                j["n"].as_str().expect("n"),
                j["e"].as_str().expect("e"),
            ),
            Algorithm::ES256 => DecodingKey::from_ec_components(
                j["x"].as_str().expect("x"),
                j["y"].as_str().expect("y"),
            ),
            _ => DecodingKey::from_ed_components(j["x"].as_str().expect("x")),
        }
        .expect("key");
        let mut validation = Validation::new(jwt_alg);
        validation.set_issuer(&[&issuer.url]);
        validation.set_audience(&[AUD]);
        let now = i64::try_from(
            latchkey_verify::clock::Clock::now(&latchkey_verify::clock::SystemClock).as_secs(),
        )
        .expect("now");

        let mut group = c.benchmark_group(format!("verify_{name}"));
        group
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        group.bench_function("bare_jsonwebtoken_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    black_box(&token),
                    &bare_key,
                    &validation,
                )
                .expect("valid")
            })
        });
        group.bench_function("crate_verify_with_set", |b| {
            b.iter(|| verify_with_set(black_box(&token), &set, &expect, now).expect("valid"))
        });
        group.bench_function("crate_verifier_cached", |b| {
            b.to_async(&rt)
                .iter(|| async { verifier.verify(black_box(&token)).await.expect("valid") })
        });
        group.finish();
        drop(issuer);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
