//! The CPU cost of every hot path, measured with criterion: RS256, ES256 and
//! EdDSA signing and verification with the cached key pair (and, for comparison, `jsonwebtoken::encode`,
//! which re-parses the key on every call), verification, refresh-token
//! derivation and parsing, argon2id with the production parameters, JWKS
//! rendering and the claims build. `cargo bench` runs them; BENCHMARKS.md uses
//! the figures as the physical limits of the load tests.

#![expect(
    clippy::expect_used,
    reason = "a benchmark whose setup fails has nothing to measure"
)]

use std::hint::black_box;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use latchkey::domain::types::SessionId;
use latchkey::keys::files::generate_pem;
use latchkey::keys::jwks::{render, Jwk};
use latchkey::tokens::claims::AccessClaims;
use latchkey::tokens::jwt::{self, Algorithm as JwsAlg, KeyPair};
use latchkey::tokens::refresh::RefreshSecret;

const NOW: i64 = 1_800_000_000;

fn build_claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.com".into(),
        sub: "6f1c2b3a-8d7e-4f60-9a1b-2c3d4e5f6a7b".into(),
        aud: "latchkey".into(),
        exp: NOW + 900,
        iat: NOW,
        jti: "0e5d1b7c-3a4f-4b2e-8c9d-1f2e3a4b5c6d".into(),
        client_id: "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d".into(),
        scope: "openid email".into(),
        sid: Some("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d".into()),
        nbf: None,
        cnf: None,
    }
}

fn key_of(alg: JwsAlg) -> (KeyPair, String, Jwk) {
    let pem = generate_pem(alg, 2048).expect("key generation");
    let der = pem::parse(&pem).expect("pem").into_contents();
    let pair = KeyPair::from_pkcs8(&der).expect("pkcs8");
    let jwk = Jwk::from_public(&pair.public_key());
    (pair, pem, jwk)
}

fn key() -> (KeyPair, String, Jwk) {
    key_of(JwsAlg::Rs256)
}

/// The PKCS#1 `RSAPrivateKey` inside an RSA-2048 PKCS#8 `PrivateKeyInfo`
/// (what `jsonwebtoken`'s DER constructor takes): `SEQUENCE { version,
/// AlgorithmIdentifier, OCTET STRING }`, all with fixed-size headers here.
fn pkcs1_from_pkcs8(der: &[u8]) -> Vec<u8> {
    const OCTET_STRING_AT: usize = 4 + 3 + 15;
    assert_eq!(
        &der[OCTET_STRING_AT..OCTET_STRING_AT + 2],
        &[0x04, 0x82],
        "an RSA-2048 PKCS#8 key"
    );
    let len = usize::from(der[OCTET_STRING_AT + 2]) << 8 | usize::from(der[OCTET_STRING_AT + 3]);
    der[OCTET_STRING_AT + 4..OCTET_STRING_AT + 4 + len].to_vec()
}

fn signing(c: &mut Criterion) {
    let (pair, pem, jwk) = key();
    let pkcs1 = pkcs1_from_pkcs8(&pem::parse(&pem).expect("pem").into_contents());
    let claims = build_claims();
    c.bench_function("rs256_sign_cached_key_aws_lc_rs", |b| {
        b.iter(|| {
            jwt::sign(
                black_box(&pair),
                &jwk.kid,
                jwt::ACCESS_TOKEN_TYP,
                black_box(&claims),
            )
            .expect("signs")
        })
    });
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(jwk.kid.clone());
    c.bench_function("rs256_sign_jsonwebtoken_encode", |b| {
        b.iter(|| {
            // What `encode` users do per call: parse the key, then sign.
            let key = EncodingKey::from_rsa_der(black_box(&pkcs1));
            jsonwebtoken::encode(&header, black_box(&claims), &key).expect("encodes")
        })
    });
    let token = jwt::sign(&pair, &jwk.kid, jwt::ACCESS_TOKEN_TYP, &claims).expect("signs");
    let decoding = DecodingKey::from_rsa_components(
        jwk.n.as_deref().expect("n"),
        jwk.e.as_deref().expect("e"),
    )
    .expect("key");
    c.bench_function("rs256_verify", |b| {
        b.iter(|| {
            jwt::peek_header(black_box(&token), jwt::ACCESS_TOKEN_TYP).expect("header");
            jwt::verify::<AccessClaims>(
                black_box(&token),
                &decoding,
                JwsAlg::Rs256,
                "https://auth.example.com",
                None,
                NOW,
                60,
            )
            .expect("verifies")
        })
    });
    c.bench_function("access_claims_build_and_serialise", |b| {
        b.iter(|| serde_json::to_vec(&black_box(build_claims())).expect("json"))
    });
    let jwks = [&jwk, &jwk];
    c.bench_function("jwks_render_two_keys", |b| {
        b.iter(|| render(black_box(&jwks)))
    });
}

/// ES256 and EdDSA: what `keys.algorithm` buys on the signing path.
fn other_algorithms(c: &mut Criterion) {
    let claims = build_claims();
    for alg in [JwsAlg::Es256, JwsAlg::EdDsa] {
        let (pair, _, jwk) = key_of(alg);
        let name = alg.name().to_lowercase();
        c.bench_function(&format!("{name}_sign_cached_key_aws_lc_rs"), |b| {
            b.iter(|| {
                jwt::sign(
                    black_box(&pair),
                    &jwk.kid,
                    jwt::ACCESS_TOKEN_TYP,
                    black_box(&claims),
                )
                .expect("signs")
            })
        });
        let token = jwt::sign(&pair, &jwk.kid, jwt::ACCESS_TOKEN_TYP, &claims).expect("signs");
        let decoding = match alg {
            JwsAlg::Es256 => DecodingKey::from_ec_components(
                jwk.x.as_deref().expect("x"),
                jwk.y.as_deref().expect("y"),
            ),
            _ => DecodingKey::from_ed_components(jwk.x.as_deref().expect("x")),
        }
        .expect("key");
        c.bench_function(&format!("{name}_verify"), |b| {
            b.iter(|| {
                jwt::peek_header(black_box(&token), jwt::ACCESS_TOKEN_TYP).expect("header");
                jwt::verify::<AccessClaims>(
                    black_box(&token),
                    &decoding,
                    alg,
                    "https://auth.example.com",
                    None,
                    NOW,
                    60,
                )
                .expect("verifies")
            })
        });
    }
}

fn refresh_tokens(c: &mut Criterion) {
    let secret = RefreshSecret::new(&[7u8; 32]);
    let sid = SessionId::new_random();
    c.bench_function("refresh_token_derive", |b| {
        b.iter(|| secret.token(black_box(sid), black_box(42)))
    });
    let token = secret.token(sid, 42);
    c.bench_function("refresh_token_parse_and_check_mac", |b| {
        b.iter(|| secret.parse(black_box(&token)).expect("parses"))
    });
}

fn passwords(c: &mut Criterion) {
    let params = Params::new(19456, 2, 1, None).expect("params");
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(&[9u8; 16]).expect("salt");
    let mut group = c.benchmark_group("argon2id_m19456_t2_p1");
    group.sample_size(20);
    group.bench_function("hash", |b| {
        b.iter(|| {
            argon
                .hash_password(black_box(b"correct horse battery"), &salt)
                .expect("hashes")
        })
    });
    let stored = argon
        .hash_password(b"correct horse battery", &salt)
        .expect("hashes")
        .to_string();
    let parsed = PasswordHash::new(&stored).expect("phc");
    group.bench_function("verify", |b| {
        b.iter(|| argon.verify_password(black_box(b"correct horse battery"), &parsed))
    });
    group.finish();
}

criterion_group!(
    benches,
    signing,
    other_algorithms,
    refresh_tokens,
    passwords
);
criterion_main!(benches);
