//! Residents' identity over real sockets: tokens signed in the test with RS256 and ES256 key
//! pairs made here, verified by the server against a JWKS served by a small HTTP server on
//! 127.0.0.1 (as an identity provider serves it), with the layers' `[access]` rules and
//! row ownership.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use common::{Response, TestServer, root, tile_of};
use urbantile::auth::jwks::JwksSource;
use urbantile::auth::token::{OidcConfig, Verifier, owner_of};

const AUDIENCE: &str = "city-map";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A key pair of the provider: signs tokens, and shows itself as a JWK.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key as PEM text: what an HS256 forgery "signs" with.
    public_pem: String,
}

fn rsa_key(kid: &str) -> SigningKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(&public.n().to_bytes_be()),
            "e": b64(&public.e().to_bytes_be()),
        }),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

fn ec_key(kid: &str) -> SigningKey {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = private.verifying_key().to_encoded_point(false);
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(private.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": b64(point.x().unwrap()),
            "y": b64(point.y().unwrap()),
        }),
        public_pem: private
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

impl SigningKey {
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// Signed with this key, naming `kid` as its key.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A small identity provider on 127.0.0.1: its discovery document and its key set, which a
/// test can change (key rotation), counting the requests for each.
struct Provider {
    addr: SocketAddr,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_hits: Arc<AtomicUsize>,
}

impl Provider {
    fn start(keys: &[&SigningKey]) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let set = Arc::new(Mutex::new(
            keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
        ));
        let hits = Arc::new(AtomicUsize::new(0));
        let (keys, jwks_hits) = (set.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_owned();
                let (status, body) = match path.as_str() {
                    "/.well-known/openid-configuration" => (
                        "200 OK",
                        json!({
                            "issuer": format!("http://{addr}"),
                            "jwks_uri": format!("http://{addr}/jwks"),
                        })
                        .to_string(),
                    ),
                    "/jwks" => {
                        jwks_hits.fetch_add(1, Ordering::SeqCst);
                        let keys = keys.lock().unwrap().clone();
                        ("200 OK", json!({ "keys": keys }).to_string())
                    }
                    _ => ("404 Not Found", "{}".into()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Provider {
            addr,
            keys: set,
            jwks_hits: hits,
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }
}

/// Claims of a valid token of `sub`, with `extra` claims added.
fn claims(issuer: &str, sub: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now(),
        "exp": now() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Layer files: urban problems residents may report (and change their own), reports that
/// publish their owner, and a private planning layer for planners.
fn layers(dir: &Path) -> std::path::PathBuf {
    let layers = dir.join("layers");
    std::fs::create_dir(&layers).unwrap();
    let problems = std::fs::read_to_string(root().join("layers/urban_problems.toml")).unwrap();
    let problems = problems.replace(
        "[source]",
        "[access]\ncreate = [\"signed-in\"]\nupdate = [\"owner\", \"claim:roles=city-inspector\"]\ndelete = [\"owner\", \"claim:realm_access.roles=city-inspector\"]\n[source]",
    );
    std::fs::write(layers.join("urban_problems.toml"), problems).unwrap();
    std::fs::write(
        layers.join("reports.toml"),
        r#"title = "Reports"
geometry = "point"
properties = { note = "string", reported_by = "string" }
[access]
create = ["signed-in"]
update = ["owner"]
owner_property = "reported_by"
"#,
    )
    .unwrap();
    std::fs::write(
        layers.join("plans.toml"),
        r#"title = "Detailed plans in preparation"
geometry = "polygon"
private = true
properties = { name = "string" }
[access]
read = ["claim:roles=city-planner"]
"#,
    )
    .unwrap();
    layers
}

fn server(dir: &Path, issuer: &str, jwks: JwksSource) -> TestServer {
    let config = OidcConfig {
        issuer: issuer.into(),
        audiences: vec![AUDIENCE.into(), "other-app".into()],
        jwks,
        leeway_s: 30,
    };
    let verifier = Arc::new(Verifier::new(config).unwrap());
    TestServer::start_configured(
        &layers(dir),
        urbantile::compute::Limits::default(),
        move |s| s.oidc = Some(verifier),
    )
}

/// A provider publishing `keys`, and a server that reads them from its JWKS URL (the
/// folder holds the server's store and layers).
fn served_by(keys: &[&SigningKey]) -> (Provider, tempfile::TempDir, TestServer) {
    let provider = Provider::start(keys);
    let issuer = provider.issuer();
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &issuer,
        JwksSource::Url(format!("{issuer}/jwks")),
    );
    (provider, dir, s)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn get(s: &TestServer, path: &str, token: &str) -> Response {
    s.get(path, &[("Authorization", &bearer(token))])
}

fn send(s: &TestServer, method: &str, path: &str, token: &str, body: &Value) -> Response {
    s.request(
        method,
        path,
        &[
            ("Authorization", &bearer(token)),
            ("Content-Type", "application/geo+json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// The path of the feature a 201 answer's Location names.
fn created_path(s: &TestServer, r: &Response) -> String {
    let url = r.header("location").expect("a Location");
    url.split_once(&s.addr.to_string()).unwrap().1.to_owned()
}

const AT: (f64, f64) = (24.9425, 60.1690);

fn problem(text: &str) -> Value {
    json!({
        "type": "Feature",
        "geometry": { "type": "Point", "coordinates": [AT.0, AT.1] },
        "properties": { "category": "pothole", "description": text, "status": "open" },
    })
}

#[test]
fn tokens_are_verified_and_every_bad_one_is_refused() {
    let rsa = rsa_key("rsa-1");
    let ec = ec_key("ec-1");
    let (provider, _dir, s) = served_by(&[&rsa, &ec]);
    let issuer = provider.issuer();
    let planner = json!({ "roles": ["city-planner"] });

    // Both algorithms sign a planner in, who sees the private layer.
    for key in [&rsa, &ec] {
        let token = key.sign(&claims(&issuer, "pia", planner.clone()));
        let r = get(&s, "/collections/plans", &token);
        assert_eq!(r.status, 200, "{:?}: {}", key.alg, r.text());
    }
    // Nobody else does; to them the layer does not exist.
    assert_eq!(s.get("/collections/plans", &[]).status, 404);
    let resident = rsa.sign(&claims(&issuer, "rami", json!({ "roles": ["resident"] })));
    assert_eq!(get(&s, "/collections/plans", &resident).status, 404);

    let base = claims(&issuer, "pia", planner.clone());
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let tampered = {
        let token = rsa.sign(&base);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        // The same header and signature over other claims: a resident making themself a
        // planner.
        parts[1] = b64(with("sub", json!("mallory")).to_string().as_bytes());
        parts.join(".")
    };
    let unknown = rsa_key("rsa-unknown");
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#),
        b64(base.to_string().as_bytes())
    );
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        encode(
            &header,
            &base,
            &EncodingKey::from_secret(rsa.public_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let hs256_with_ec_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("ec-1".into());
        encode(
            &header,
            &base,
            &EncodingKey::from_secret(ec.public_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let mut no_sub = base.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            rsa.sign(&with("exp", json!(now() - 120))),
            "expired",
        ),
        (
            "not yet valid",
            rsa.sign(&with("nbf", json!(now() + 300))),
            "not valid yet",
        ),
        (
            "wrong audience",
            ec.sign(&with("aud", json!("someone-else"))),
            "audience",
        ),
        (
            "wrong issuer",
            rsa.sign(&with("iss", json!("https://evil.example"))),
            "issuer",
        ),
        ("unknown kid", unknown.sign(&base), "rsa-unknown"),
        ("bad signature", tampered, "signature"),
        ("alg none", alg_none, "none"),
        (
            "HS256 with the RSA public key",
            hs256_with_public_key,
            "HS256",
        ),
        (
            "HS256 with the EC public key",
            hs256_with_ec_public_key,
            "HS256",
        ),
        ("no sub", rsa.sign(&no_sub), "sub"),
        ("not a JWT", "a.b.c".into(), "well-formed"),
    ];
    for (case, token, says) in &cases {
        let r = get(&s, "/collections/plans", token);
        assert_eq!(r.status, 401, "{case}: {}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{case}");
        let description = r.json()["description"].as_str().unwrap().to_owned();
        assert!(description.contains(says), "{case}: {description}");
        // Refused on public routes too: a client learns its token is wrong.
        assert_eq!(get(&s, "/collections/urban_problems", token).status, 401);
    }
    // Within the skew an expired token still passes.
    let token = rsa.sign(&with("exp", json!(now() - 5)));
    assert_eq!(get(&s, "/collections/plans", &token).status, 200);
    // A token for the server's second audience, and one whose `aud` is a list.
    let token = ec.sign(&with("aud", json!(["x", "other-app"])));
    assert_eq!(get(&s, "/collections/plans", &token).status, 200);
}

#[test]
fn a_rotated_key_is_fetched_once_and_made_up_kids_cannot_hammer_the_provider() {
    let old = rsa_key("2026-11");
    let new = ec_key("2026-12");
    let provider = Provider::start(&[&old]);
    let issuer = provider.issuer();
    let dir = tempfile::tempdir().unwrap();
    // Found through the provider's discovery document.
    let s = server(dir.path(), &issuer, JwksSource::parse(None, &issuer));
    let token = old.sign(&claims(&issuer, "a", json!({})));
    for _ in 0..20 {
        assert_eq!(get(&s, "/catalog", &token).status, 200);
    }
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 1);

    // The provider rotates: a token signed with the new key makes the server read the
    // set again, at once.
    provider.publish(&[&old, &new]);
    let token = new.sign(&claims(&issuer, "a", json!({})));
    let r = get(&s, "/catalog", &token);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);

    // Tokens naming keys that do not exist are refused without reading the set again
    // within the refetch interval.
    for i in 0..50 {
        let forged =
            rsa_key_cached().sign_as(&format!("made-up-{i}"), &claims(&issuer, "m", json!({})));
        assert_eq!(get(&s, "/catalog", &forged).status, 401);
    }
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);
}

/// One RSA key for the forgeries (2048-bit keys take a while to make).
fn rsa_key_cached() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| rsa_key("forger"))
}

#[test]
fn residents_change_only_their_own_reports_and_their_identity_is_never_served() {
    let key = ec_key("k");
    let (provider, _dir, s) = served_by(&[&key]);
    let issuer = provider.issuer();
    let alice = key.sign(&claims(&issuer, "alice-4711", json!({})));
    let bob = key.sign(&claims(&issuer, "bob-0815", json!({})));
    let inspector = key.sign(&claims(
        &issuer,
        "ilse",
        json!({ "roles": ["city-inspector"], "realm_access": { "roles": ["city-inspector"] } }),
    ));
    let items = "/collections/urban_problems/items";

    // Anonymous: 401; a signed-in resident may report.
    let anonymous = s.request(
        "POST",
        items,
        &[("Content-Type", "application/geo+json")],
        problem("x").to_string().as_bytes(),
    );
    assert_eq!(anonymous.status, 401);
    let r = send(&s, "POST", items, &alice, &problem("deep pothole"));
    assert_eq!(r.status, 201, "{}", r.text());
    let path = created_path(&s, &r);

    // Bob may neither change nor delete it; Alice may.
    let patch = |token: &str, text: &str| {
        send(
            &s,
            "PATCH",
            &path,
            token,
            &json!({ "properties": { "description": text } }),
        )
    };
    let r = patch(&bob, "not so deep");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["description"].as_str().unwrap().contains("owner"));
    let r = send(&s, "PUT", &path, &bob, &problem("mine now"));
    assert_eq!(r.status, 403);
    assert_eq!(
        s.request("DELETE", &path, &[("Authorization", &bearer(&bob))], b"")
            .status,
        403
    );
    assert_eq!(patch(&alice, "deeper").status, 200);
    // The inspector's role allows changing anyone's.
    assert_eq!(patch(&inspector, "fixed soon").status, 200);
    let now = s.get(&path, &[]).json();
    assert_eq!(now["properties"]["description"], "fixed soon");

    // Nothing served says who reported it: not the items, not the tiles.
    let owner = owner_of(&issuer, "alice-4711");
    let (z, x, y) = tile_of(AT.0, AT.1, 16);
    let tile = s.get(&format!("/tiles/urban_problems/{z}/{x}/{y}.mvt"), &[]);
    assert_eq!(tile.status, 200);
    let listing = s.get(&format!("{items}?limit=10000"), &[]).text();
    for served in [
        &tile.body,
        listing.as_bytes(),
        s.get(&path, &[]).body.as_slice(),
    ] {
        for secret in [owner.as_bytes(), b"alice-4711"] {
            assert!(
                !served.windows(secret.len()).any(|w| w == secret),
                "the owner is served"
            );
        }
    }

    // A key's write scope still covers everything; features it wrote have no owner, so a
    // resident with an owner-only right may not touch them.
    let service = s.add_key("service", "-", "urban_problems");
    let r = s.request(
        "POST",
        items,
        &[
            ("Authorization", &bearer(&service)),
            ("Content-Type", "application/geo+json"),
        ],
        problem("from the call centre").to_string().as_bytes(),
    );
    assert_eq!(r.status, 201);
    let service_path = created_path(&s, &r);
    let r = send(
        &s,
        "PATCH",
        &service_path,
        &alice,
        &json!({ "properties": { "status": "closed" } }),
    );
    assert_eq!(r.status, 403);

    // Deleting: Bob no, Alice yes; then it is gone.
    assert_eq!(
        s.request("DELETE", &path, &[("Authorization", &bearer(&alice))], b"")
            .status,
        204
    );
    assert_eq!(s.get(&path, &[]).status, 404);

    // A private layer the token may not read does not exist for it, writes included.
    let r = send(
        &s,
        "POST",
        "/collections/plans/items",
        &alice,
        &problem("x"),
    );
    assert_eq!(
        r.status, 404,
        "a private layer the token cannot read does not exist"
    );
}

#[test]
fn a_layer_that_publishes_the_owner_writes_it_itself() {
    let key = rsa_key("k");
    let (provider, _dir, s) = served_by(&[&key]);
    let issuer = provider.issuer();
    let alice = key.sign(&claims(&issuer, "alice", json!({})));
    let report = json!({
        "type": "Feature",
        "geometry": { "type": "Point", "coordinates": [AT.0, AT.1] },
        // A forged owner is overwritten.
        "properties": { "note": "bench broken", "reported_by": "the mayor" },
    });
    let r = send(&s, "POST", "/collections/reports/items", &alice, &report);
    assert_eq!(r.status, 201, "{}", r.text());
    let owner = owner_of(&issuer, "alice");
    assert_eq!(r.json()["properties"]["reported_by"], owner.as_str());
    let path = created_path(&s, &r);
    // An edit keeps it, whatever it sends.
    let r = send(
        &s,
        "PATCH",
        &path,
        &alice,
        &json!({ "properties": { "reported_by": "someone else", "note": "bench gone" } }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let now = s.get(&path, &[]).json();
    assert_eq!(now["properties"]["reported_by"], owner.as_str());
    assert_eq!(now["properties"]["note"], "bench gone");
    // And the tile carries it (the layer says so).
    let (z, x, y) = tile_of(AT.0, AT.1, 14);
    let tile = s.get(&format!("/tiles/reports/{z}/{x}/{y}.mvt"), &[]);
    assert_eq!(tile.status, 200);
    assert!(
        tile.body
            .windows(owner.len())
            .any(|w| w == owner.as_bytes())
    );
    // The hash is the only form of the identity served.
    let listing = s.get("/collections/reports/items", &[]).text();
    assert!(!listing.contains("\"alice\""));
    // Creating is for signed-in people; the owner-only right does not cover deleting.
    let r = s.request("DELETE", &path, &[("Authorization", &bearer(&alice))], b"");
    assert_eq!(r.status, 403);
}

#[test]
fn an_unreachable_provider_is_503_not_401_and_keys_keep_working() {
    let key = rsa_key("k");
    // A port with nobody listening.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let issuer = format!("http://{closed}");
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &issuer,
        JwksSource::Url(format!("{issuer}/jwks")),
    );
    let token = key.sign(&claims(&issuer, "a", json!({})));
    let r = get(&s, "/catalog", &token);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let service = s.add_key("svc", "*", "-");
    assert_eq!(get(&s, "/catalog", &service).status, 200);
    assert_eq!(s.get("/catalog", &[]).status, 200);
}

#[test]
fn serve_takes_the_provider_from_its_flags() {
    let key = ec_key("file-key");
    let dir = tempfile::tempdir().unwrap();
    let layers = layers(dir.path());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [key.jwk] }).to_string()).unwrap();
    let issuer = "https://id.city.example/realms/residents";

    // A key set file that is not one stops the start, naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"keys\": 7}").unwrap();
    let out = std::process::Command::new(common::urbantile_bin())
        .current_dir(root())
        .args(["--layers"])
        .arg(&layers)
        .args([
            "--database",
            &format!("sqlite://{}", dir.path().join("a.db").display()),
        ])
        .args(["serve", "--bind", "127.0.0.1:0", "--oidc-issuer", issuer])
        .args(["--oidc-audience", AUDIENCE, "--oidc-jwks"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json"), "{err}");

    // With a good file, a resident reports through the real binary.
    let addr = common::free_addr();
    let mut child = std::process::Command::new(common::urbantile_bin())
        .current_dir(root())
        .args(["--layers"])
        .arg(&layers)
        .args([
            "--database",
            &format!("sqlite://{}", dir.path().join("b.db").display()),
        ])
        .args([
            "serve",
            "--bind",
            &addr.to_string(),
            "--oidc-issuer",
            issuer,
        ])
        .args(["--oidc-audience", &format!("app,{AUDIENCE}"), "--oidc-jwks"])
        .arg(&jwks)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while common::try_http_request(addr, "GET", "/health", &[], b"") != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(120), "no start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let token = key.sign(&claims(issuer, "resident-1", json!({})));
    let r = common::http_request(
        addr,
        "POST",
        "/collections/reports/items",
        &[
            ("Authorization", &bearer(&token)),
            ("Content-Type", "application/geo+json"),
        ],
        json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": [AT.0, AT.1] },
            "properties": { "note": "lamp out" },
        })
        .to_string()
        .as_bytes(),
    );
    let answer = String::from_utf8_lossy(&r.body).into_owned();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 201, "{answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        v["properties"]["reported_by"],
        owner_of(issuer, "resident-1").as_str()
    );
}
