//! The JWKS cache against a [`TestIssuer`] that counts the requests it
//! answers. Time is a [`ManualClock`] shared by issuer and verifier, and the
//! background refresher is off, so every fetch counted is one the request
//! path caused.

use std::sync::Arc;
use std::time::Duration;

use latchkey_verify::clock::ManualClock;
use latchkey_verify::test_util::{TestAlgorithm, TestIssuer, TestKey};
use latchkey_verify::{Error, Verifier};

const AUD: &str = "orders";

async fn issuer_and_verifier(max_age: u64) -> (TestIssuer, Verifier, ManualClock) {
    let clock = ManualClock::new();
    let mut issuer = TestIssuer::start().await;
    issuer.set_clock(Arc::new(clock.clone()));
    issuer.set_max_age(max_age);
    let verifier = issuer
        .builder(AUD)
        .clock(Arc::new(clock.clone()))
        .background_refresh(false)
        .ttl_bounds(Duration::from_secs(1), Duration::from_secs(3600))
        .discover()
        .await
        .expect("discovery");
    (issuer, verifier, clock)
}

#[tokio::test]
async fn cached_keys_serve_until_max_age_then_an_etag_revalidates_them() {
    let (issuer, verifier, clock) = issuer_and_verifier(60).await;
    assert_eq!(issuer.jwks_requests(), 1);

    for _ in 0..50 {
        let token = issuer.token(AUD).sign();
        verifier.verify(&token).await.expect("valid");
    }
    clock.advance(Duration::from_secs(59));
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
    assert_eq!(issuer.jwks_requests(), 1, "fresh for max-age: no fetch");

    clock.advance(Duration::from_secs(2));
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
    assert_eq!(issuer.jwks_requests(), 2, "stale after max-age: one fetch");
    assert_eq!(issuer.jwks_not_modified(), 1, "If-None-Match got a 304");
    let stats = verifier.stats();
    assert_eq!((stats.fetches, stats.not_modified), (2, 1));

    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
    assert_eq!(issuer.jwks_requests(), 2, "the 304 renewed freshness");
}

#[tokio::test]
async fn max_age_is_clamped_to_the_configured_bounds() {
    let clock = ManualClock::new();
    let mut issuer = TestIssuer::start().await;
    issuer.set_clock(Arc::new(clock.clone()));
    issuer.set_max_age(0);
    let verifier = issuer
        .builder(AUD)
        .clock(Arc::new(clock.clone()))
        .background_refresh(false)
        .ttl_bounds(Duration::from_secs(10), Duration::from_secs(20))
        .discover()
        .await
        .expect("discovery");
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
    assert_eq!(
        issuer.jwks_requests(),
        1,
        "max-age=0 is raised to the minimum"
    );
    issuer.set_max_age(86_400);
    clock.advance(Duration::from_secs(11));
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
    assert_eq!(issuer.jwks_requests(), 2);
    clock.advance(Duration::from_secs(21));
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
    assert_eq!(issuer.jwks_requests(), 3, "a day is lowered to the maximum");
}

#[tokio::test]
async fn a_flood_of_forged_kids_costs_one_fetch_per_interval() {
    let (issuer, verifier, clock) = issuer_and_verifier(300).await;
    let key = issuer.signing_key();
    let forged = |i: usize| {
        let header =
            serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": format!("forged-{i}")});
        key.sign_raw(&header, &issuer.claims(AUD))
    };

    let flood = |from: usize| {
        let tasks: Vec<_> = (from..from + 300)
            .map(|i| {
                let v = verifier.clone();
                let t = forged(i);
                tokio::spawn(async move { v.verify(&t).await })
            })
            .collect();
        async move {
            for task in tasks {
                assert_eq!(task.await.expect("task").err(), Some(Error::UnknownKey));
            }
        }
    };
    flood(0).await;
    assert_eq!(issuer.jwks_requests(), 2, "300 forged kids: one refetch");
    flood(300).await;
    clock.advance(Duration::from_secs(4));
    flood(600).await;
    assert_eq!(issuer.jwks_requests(), 2, "still within the 5 s interval");
    clock.advance(Duration::from_secs(2));
    flood(900).await;
    assert_eq!(issuer.jwks_requests(), 3, "next interval: one more");
    assert_eq!(verifier.stats().unknown_kid_fetches, 2);
}

#[tokio::test]
async fn a_new_kid_is_fetched_at_once_not_after_the_cache_expires() {
    let (issuer, verifier, _clock) = issuer_and_verifier(300).await;
    issuer.rotate_to(TestKey::generate(TestAlgorithm::Rs256));
    let token = issuer.token(AUD).scope("orders:read").sign();
    let claims = verifier
        .verify(&token)
        .await
        .expect("the new key is fetched");
    assert!(claims.has_scope("orders:read"));
    assert_eq!(issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn requests_racing_for_a_new_kid_all_wait_for_its_one_fetch() {
    let (issuer, verifier, _clock) = issuer_and_verifier(300).await;
    issuer.rotate_to(TestKey::generate(TestAlgorithm::Rs256));
    let token = issuer.token(AUD).sign();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let v = verifier.clone();
            let t = token.clone();
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task")
            .expect("the new key is found by every request");
    }
    assert_eq!(issuer.jwks_requests(), 2, "one fetch for all of them");
}

#[tokio::test]
async fn many_requests_at_expiry_share_one_fetch() {
    let (issuer, verifier, clock) = issuer_and_verifier(30).await;
    clock.advance(Duration::from_secs(31));
    let token = issuer.token(AUD).sign();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let v = verifier.clone();
            let t = token.clone();
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("valid");
    }
    assert_eq!(issuer.jwks_requests(), 2, "single-flight");
}

#[tokio::test]
async fn the_last_good_set_serves_while_the_issuer_is_down_within_the_bound() {
    let clock = ManualClock::new();
    let mut issuer = TestIssuer::start().await;
    issuer.set_clock(Arc::new(clock.clone()));
    issuer.set_max_age(60);
    let verifier = issuer
        .builder(AUD)
        .clock(Arc::new(clock.clone()))
        .background_refresh(false)
        .stale_if_error(Duration::from_secs(600))
        .retry_interval(Duration::from_secs(5))
        .discover()
        .await
        .expect("discovery");

    issuer.set_unreachable(true);
    clock.advance(Duration::from_secs(61));
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("stale set serves");
    assert_eq!(issuer.jwks_requests(), 2, "one attempt");
    for _ in 0..20 {
        verifier
            .verify(&issuer.token(AUD).sign())
            .await
            .expect("stale set serves");
    }
    assert_eq!(
        issuer.jwks_requests(),
        2,
        "no retry within the retry interval"
    );
    assert_eq!(verifier.stats().failures, 1);

    clock.advance(Duration::from_secs(600));
    assert_eq!(
        verifier.verify(&issuer.token(AUD).sign()).await.err(),
        Some(Error::Unavailable),
        "beyond the stale bound the set is not trusted"
    );

    issuer.set_unreachable(false);
    clock.advance(Duration::from_secs(5));
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("recovered");
}

#[tokio::test]
async fn keys_of_unknown_types_are_skipped_not_fatal() {
    let issuer = TestIssuer::start().await;
    issuer.publish_jwk(serde_json::json!({"kty": "PQC", "kid": "future", "alg": "ML-DSA-65"}));
    issuer.publish_jwk(serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}));
    issuer.publish_jwk(
        serde_json::json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}),
    );
    let verifier = issuer.verifier(AUD).await;
    verifier
        .verify(&issuer.token(AUD).sign())
        .await
        .expect("valid");
}

#[tokio::test]
async fn es256_and_eddsa_keys_verify_each_pinned_to_its_algorithm() {
    for alg in [TestAlgorithm::Es256, TestAlgorithm::EdDsa] {
        let issuer = TestIssuer::with_key(TestKey::generate(alg)).await;
        let verifier = issuer.verifier(AUD).await;
        verifier
            .verify(&issuer.token(AUD).sign())
            .await
            .expect("valid");
        let key = issuer.signing_key();
        for other in ["RS256", "ES256", "EdDSA", "HS256", "none"] {
            if other == key.alg {
                continue;
            }
            let header = serde_json::json!({"alg": other, "typ": "at+jwt", "kid": key.kid});
            let token = key.sign_raw(&header, &issuer.claims(AUD));
            assert_eq!(
                verifier.verify(&token).await.err(),
                Some(Error::Algorithm),
                "{} key, header {other}",
                key.alg
            );
        }
    }
}

#[tokio::test]
async fn discovery_requires_the_exact_issuer() {
    let issuer = TestIssuer::start().await;
    let err = Verifier::discover(&format!("{}/", issuer.url), AUD)
        .await
        .expect_err("a trailing slash is another issuer");
    assert!(matches!(
        err,
        latchkey_verify::SetupError::IssuerMismatch { .. }
    ));
}
