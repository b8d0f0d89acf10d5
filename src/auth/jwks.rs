//! The identity provider's signing keys (a JWKS), read from a file or fetched from its URL,
//! and kept.
//!
//! - Keys are looked up by `kid`. A known key is answered from memory; once the set is older
//!   than its lifetime (the answer's `Cache-Control: max-age`, held between
//!   [`MIN_MAX_AGE`] and [`MAX_MAX_AGE`], else [`DEFAULT_MAX_AGE`]) it is fetched again in the
//!   background while the old keys keep answering.
//! - An unknown `kid` is how a provider's key rotation first shows: the set is fetched again
//!   at once, but at most once per [`MIN_REFETCH`], so that tokens with made-up `kid`s cannot
//!   make the server hammer the provider. A set that could never be read is tried again at
//!   most once per [`MIN_RETRY`].
//! - One fetch runs at a time; a fetch is bounded in time ([`FETCH_TIMEOUT`]) and size
//!   ([`MAX_JWKS_BYTES`]). A failed fetch keeps the keys already known.
//! - Keys the server cannot verify with (not RS256 or ES256 on P-256, or not for signing) are
//!   left out of the set.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::RwLock;

/// How long a fetched key set is used before it is fetched again, when the answer says
/// nothing.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Bounds on a provider's `max-age`.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Least time between two reads caused by unknown `kid`s.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Least time between two reads otherwise (a set never read, or an old one).
pub const MIN_RETRY: Duration = Duration::from_secs(5);
/// Longest wait for the provider's answer.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set or discovery document read.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    /// The key set's URL (`jwks_uri`).
    Url(String),
    /// The provider's discovery document (`{issuer}/.well-known/openid-configuration`),
    /// which names the key set's URL.
    Discover(String),
}

impl JwksSource {
    /// `http(s)://...` is a URL, anything else a file path; `None` discovers from `issuer`.
    pub fn parse(jwks: Option<&str>, issuer: &str) -> JwksSource {
        match jwks {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                JwksSource::Url(u.to_owned())
            }
            Some(path) => JwksSource::File(PathBuf::from(path)),
            None => JwksSource::Discover(format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            )),
        }
    }
}

/// One verification key.
pub struct Key {
    pub algorithm: Algorithm,
    pub decoding: DecodingKey,
}

/// Why no key could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the token's signing key {0:?} is not in the identity provider's key set")]
    UnknownKid(String),
    #[error("the identity provider's keys cannot be read now: {0}")]
    Unavailable(String),
}

struct Known {
    keys: HashMap<String, Arc<Key>>,
    /// When the set was last read, and for how long it holds.
    read_at: Option<Instant>,
    max_age: Duration,
    /// When a read was last tried, whatever came of it.
    tried_at: Option<Instant>,
    /// When a key missing from a read set last caused a read.
    rotated_at: Option<Instant>,
    /// What went wrong the last time, while no key is known.
    error: Option<String>,
}

impl Known {
    fn lookup(&self, kid: &str) -> Option<Arc<Key>> {
        self.keys.get(kid).cloned().or_else(|| {
            (kid.is_empty() && self.keys.len() == 1)
                .then(|| self.keys.values().next().cloned())
                .flatten()
        })
    }
}

/// The keys, and how to read them again.
pub struct KeySet {
    source: JwksSource,
    known: RwLock<Known>,
    /// Held while a fetch runs: one at a time.
    fetching: tokio::sync::Mutex<()>,
    /// Bumped whenever the set changes, so that tokens verified with a key no longer in it
    /// are verified again.
    generation: std::sync::atomic::AtomicU64,
    client: Client,
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

impl KeySet {
    /// A key set read from `source` on first use (or by [`KeySet::refresh`]).
    pub fn new(source: JwksSource) -> Result<KeySet, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot read the system's TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(KeySet {
            source,
            known: RwLock::new(Known {
                keys: HashMap::new(),
                read_at: None,
                max_age: DEFAULT_MAX_AGE,
                tried_at: None,
                rotated_at: None,
                error: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            generation: Default::default(),
            client,
        })
    }

    pub fn source(&self) -> &JwksSource {
        &self.source
    }

    /// Changes whenever the set of keys does.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// How many keys are known.
    pub fn len(&self) -> usize {
        self.known.read().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key named `kid` (`""` for a token without one, which the set's only key, if it
    /// has only one, answers).
    pub async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<Key>, KeyError> {
        let asked = Instant::now();
        let (found, may_fetch) = {
            let k = self.known.read();
            let found = k.lookup(kid);
            let retry = k.tried_at.is_none_or(|at| at.elapsed() >= MIN_RETRY);
            let may_fetch = match (&found, k.read_at) {
                // Never read (the provider was down): try again now and then.
                (_, None) => retry,
                // Known: read again once the set is old.
                (Some(_), Some(at)) => at.elapsed() > k.max_age && retry,
                // Unknown in a set that was read: the provider may have rotated.
                (None, Some(_)) => k.rotated_at.is_none_or(|at| at.elapsed() >= MIN_REFETCH),
            };
            (found, may_fetch)
        };
        if let Some(key) = found {
            if may_fetch {
                // Renewed behind the answer: the old keys hold meanwhile.
                let this = self.clone();
                tokio::spawn(async move { this.fetch_once(asked, false).await });
            }
            return Ok(key);
        }
        if may_fetch {
            self.fetch_once(asked, true).await;
        }
        let k = self.known.read();
        if let Some(key) = k.lookup(kid) {
            return Ok(key);
        }
        match &k.error {
            Some(e) if k.keys.is_empty() => Err(KeyError::Unavailable(e.clone())),
            _ => Err(KeyError::UnknownKid(kid.to_owned())),
        }
    }

    /// Reads the set unless a read began after `asked` (while this one waited for its
    /// turn); `unknown_kid` marks a read caused by a key the set lacked.
    async fn fetch_once(&self, asked: Instant, unknown_kid: bool) {
        let _one = self.fetching.lock().await;
        let recent = self.known.read().tried_at.is_some_and(|at| at > asked);
        if !recent {
            if unknown_kid && self.known.read().read_at.is_some() {
                self.known.write().rotated_at = Some(Instant::now());
            }
            let _ = self.refresh_locked().await;
        }
    }

    /// Reads the set now; the keys stay as they were when it fails.
    pub async fn refresh(&self) -> Result<usize, String> {
        let _one = self.fetching.lock().await;
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<usize, String> {
        self.known.write().tried_at = Some(Instant::now());
        match self.read_source().await {
            Ok((text, max_age)) => match parse_set(&text) {
                Ok(keys) if !keys.is_empty() => {
                    let n = keys.len();
                    let mut k = self.known.write();
                    let changed = k.keys.len() != keys.len()
                        || keys.keys().any(|kid| !k.keys.contains_key(kid));
                    if changed {
                        self.generation
                            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    }
                    k.keys = keys;
                    k.read_at = Some(Instant::now());
                    k.max_age = max_age;
                    k.error = None;
                    Ok(n)
                }
                Ok(_) => Err(self.failed("it holds no RS256 or ES256 signing key".into())),
                Err(e) => Err(self.failed(e)),
            },
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, error: String) -> String {
        let error = format!("{}: {error}", self.describe());
        tracing::warn!("identity provider keys not read: {error}");
        self.known.write().error = Some(error.clone());
        error
    }

    fn describe(&self) -> String {
        match &self.source {
            JwksSource::File(p) => format!("key set file {}", p.display()),
            JwksSource::Url(u) => format!("key set {u}"),
            JwksSource::Discover(u) => format!("discovery document {u}"),
        }
    }

    /// The key set's text and how long it holds.
    async fn read_source(&self) -> Result<(String, Duration), String> {
        match &self.source {
            JwksSource::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| e.to_string())?;
                if bytes.len() > MAX_JWKS_BYTES {
                    return Err(format!("it is larger than {MAX_JWKS_BYTES} bytes"));
                }
                let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_owned())?;
                Ok((text, DEFAULT_MAX_AGE))
            }
            JwksSource::Url(url) => self.get(url).await,
            JwksSource::Discover(url) => {
                let (doc, _) = self.get(url).await?;
                let doc: serde_json::Value =
                    serde_json::from_str(&doc).map_err(|e| format!("it is not JSON: {e}"))?;
                let Some(jwks_uri) = doc.get("jwks_uri").and_then(|u| u.as_str()) else {
                    return Err("it has no jwks_uri".into());
                };
                self.get(jwks_uri)
                    .await
                    .map_err(|e| format!("its jwks_uri {jwks_uri}: {e}"))
            }
        }
    }

    /// GET `url`: its body (bounded) and its `max-age`.
    async fn get(&self, url: &str) -> Result<(String, Duration), String> {
        use http_body_util::BodyExt;
        let uri: axum::http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let request = axum::http::Request::get(uri)
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("urbantile/", env!("CARGO_PKG_VERSION")),
            )
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let fetch = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| crate::model::error_chain(&e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("it answered {status}"));
            }
            let max_age = response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .and_then(max_age)
                .map_or(DEFAULT_MAX_AGE, |a| a.clamp(MIN_MAX_AGE, MAX_MAX_AGE));
            let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    format!(
                        "its answer could not be read whole (at most {MAX_JWKS_BYTES} bytes): {e}"
                    )
                })?
                .to_bytes();
            let text =
                String::from_utf8(body.to_vec()).map_err(|_| "it is not UTF-8".to_owned())?;
            Ok((text, max_age))
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
    }
}

/// `max-age=N` of a Cache-Control value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("max-age"))
            .then(|| v.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// The usable keys of a JWKS document, by `kid` (`""` for a key without one).
pub fn parse_set(text: &str) -> Result<HashMap<String, Arc<Key>>, String> {
    crate::limits::check_json_depth("the key set", text.as_bytes(), 16)
        .map_err(|e| e.to_string())?;
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("it is not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let algorithm = match (&jwk.algorithm, &jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        keys.insert(
            kid,
            Arc::new(Key {
                algorithm,
                decoding,
            }),
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=x"), None);
    }

    #[test]
    fn sources_are_urls_files_or_discovery() {
        assert_eq!(
            JwksSource::parse(None, "https://id.city.example/realms/city/"),
            JwksSource::Discover(
                "https://id.city.example/realms/city/.well-known/openid-configuration".into()
            )
        );
        assert!(matches!(
            JwksSource::parse(Some("http://127.0.0.1:1/jwks"), "x"),
            JwksSource::Url(_)
        ));
        assert!(matches!(
            JwksSource::parse(Some("keys/jwks.json"), "x"),
            JwksSource::File(_)
        ));
    }

    #[test]
    fn only_signing_keys_of_the_two_algorithms_are_kept() {
        let text = r#"{"keys":[
            {"kty":"EC","crv":"P-256","kid":"ec","use":"sig",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"}
        ]}"#;
        let keys = parse_set(text).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["ec"].algorithm, Algorithm::ES256);
        assert!(parse_set("[]").is_err());
        assert!(parse_set(&"[".repeat(100)).is_err());
    }
}
