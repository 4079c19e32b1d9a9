//! DPoP-bound tokens at a service (RFC 9449 §7): `verify_dpop` with a
//! proof from the client's key, and every way around it refused.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::dpop::{MemoryReplayStore, ProofError};
use latchkey_verify::test_util::{TestAlgorithm, TestIssuer, TestKey};
use latchkey_verify::thumbprint::jwk_thumbprint;
use latchkey_verify::Error;
use serde_json::json;

const AUD: &str = "orders";
const URL: &str = "https://orders.example/orders";

fn frozen() -> i64 {
    0
}

fn proof(key: &TestKey, htm: &str, iat: i64, token: Option<&str>) -> String {
    let mut claims =
        json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": htm, "htu": URL, "iat": iat});
    if let Some(t) = token {
        claims["ath"] = URL_SAFE_NO_PAD
            .encode(digest::digest(&digest::SHA256, t.as_bytes()))
            .into();
    }
    key.sign_raw(
        &json!({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.jwk}),
        &claims,
    )
}

fn jkt(key: &TestKey) -> String {
    jwk_thumbprint(key.jwk.as_object().expect("object")).expect("thumbprint")
}

#[tokio::test]
async fn bound_tokens_need_a_fresh_proof_of_their_key() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(AUD).await;
    let client = TestKey::generate(TestAlgorithm::Es256);
    let token = issuer
        .token(AUD)
        .claim("cnf", json!({"jkt": jkt(&client)}))
        .sign();
    let iat = issuer.claims(AUD)["iat"].as_i64().expect("iat");
    let replay = MemoryReplayStore::new(1000, frozen);
    let good = proof(&client, "GET", iat, Some(&token));

    let claims = verifier
        .verify_dpop(&token, &[good.as_str()], "GET", URL, &replay)
        .await
        .expect("a bound token with its proof");

    assert_eq!(claims.dpop_jkt(), Some(jkt(&client).as_str()));
    let other = TestKey::generate(TestAlgorithm::EdDsa);
    let unbound = issuer.token(AUD).sign();
    let cases: Vec<(&str, String, &str, Error)> = vec![
        (
            "replayed",
            good.clone(),
            token.as_str(),
            Error::DpopProof(ProofError::Replayed),
        ),
        (
            "another key",
            proof(&other, "GET", iat, Some(&token)),
            token.as_str(),
            Error::DpopProof(ProofError::Binding),
        ),
        (
            "no ath",
            proof(&client, "GET", iat, None),
            token.as_str(),
            Error::DpopProof(ProofError::AccessTokenHash),
        ),
        (
            "another method",
            proof(&client, "POST", iat, Some(&token)),
            token.as_str(),
            Error::DpopProof(ProofError::Method),
        ),
        (
            "stale",
            proof(&client, "GET", iat - 3600, Some(&token)),
            token.as_str(),
            Error::DpopProof(ProofError::Time),
        ),
        (
            "unbound token",
            proof(&client, "GET", iat, Some(&unbound)),
            unbound.as_str(),
            Error::DpopBinding,
        ),
    ];
    for (case, p, t, expected) in cases {
        let got = verifier
            .verify_dpop(t, &[p.as_str()], "GET", URL, &replay)
            .await;
        assert_eq!(got, Err(expected), "{case}");
    }
    let two = proof(&client, "GET", iat, Some(&token));
    assert_eq!(
        verifier
            .verify_dpop(&token, &[two.as_str(), two.as_str()], "GET", URL, &replay)
            .await,
        Err(Error::DpopProof(ProofError::Malformed))
    );
    // As a bearer token, a bound token is refused.
    assert_eq!(verifier.verify(&token).await, Err(Error::DpopBinding));
}
