//! What a signed-in request costs: the full check of a token (header, key lookup,
//! signature, claims) for RS256 (2048-bit) and ES256, and a token the server has already
//! verified (remembered by its SHA-256), next to an access key's hash.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use urbantile::auth::jwks::JwksSource;
use urbantile::auth::token::{OidcConfig, Verifier};

const ISSUER: &str = "https://id.city.example/realms/residents";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn bench(c: &mut Criterion) {
    use p256::pkcs8::EncodePrivateKey;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let ec = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = ec.verifying_key().to_encoded_point(false);
    let jwks = json!({ "keys": [
        { "kty": "RSA", "kid": "rsa", "n": b64(&rsa.n().to_bytes_be()), "e": b64(&rsa.e().to_bytes_be()) },
        { "kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()) },
    ]});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verifier = Arc::new(
        Verifier::new(OidcConfig {
            issuer: ISSUER.into(),
            audiences: vec!["city-map".into()],
            jwks: JwksSource::File(file),
            leeway_s: 30,
        })
        .unwrap(),
    );
    runtime.block_on(verifier.keys().refresh()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": "city-map", "sub": "f3c1a9e2-5b7d-4e8a-9c0f-1d2e3f4a5b6c",
        "exp": now + 3600, "iat": now, "roles": ["resident"], "email_verified": true,
    });
    let sign = |alg, kid: &str, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        encode(&h, &claims, key).unwrap()
    };
    let rs256 = sign(
        Algorithm::RS256,
        "rsa",
        &EncodingKey::from_rsa_der(rsa.to_pkcs1_der().unwrap().as_bytes()),
    );
    let es256 = sign(
        Algorithm::ES256,
        "ec",
        &EncodingKey::from_ec_der(ec.to_pkcs8_der().unwrap().as_bytes()),
    );
    for (name, token) in [("rs256", &rs256), ("es256", &es256)] {
        c.bench_function(&format!("check_{name}"), |b| {
            b.iter(|| runtime.block_on(verifier.check(token)).unwrap())
        });
        c.bench_function(&format!("verify_remembered_{name}"), |b| {
            b.iter(|| runtime.block_on(verifier.verify(token)).unwrap())
        });
    }
    let key = urbantile::auth::generate_key().unwrap();
    c.bench_function("access_key_hash", |b| {
        b.iter(|| urbantile::auth::hash_key(&key))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
