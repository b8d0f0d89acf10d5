//! Residents' and staff's bearer tokens: JWTs from the city's OpenID Connect provider,
//! verified against its key set ([`super::jwks`]).
//!
//! A token is accepted when its signature verifies with the key its header names (RS256 or
//! ES256: the key decides the algorithm, so `alg: none` and an HS256 token "signed" with a
//! public key are refused), its `iss` is the provider, its `aud` holds one of the server's
//! audiences, and `exp` and `nbf` hold within a small clock skew. It must have a `sub`.
//!
//! A verified token is remembered (by its SHA-256) until it expires, so that a resident's
//! stream of tile requests pays for one signature check; the memory is bounded and is
//! dropped whenever the provider's key set changes.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind as JwtKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::jwks::{JwksSource, Key, KeyError, KeySet};

/// Default clock skew allowed on `exp` and `nbf`.
pub const DEFAULT_LEEWAY_S: u64 = 30;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Most verified tokens remembered.
pub const MAX_REMEMBERED: usize = 50_000;

/// What the server asks of tokens (`serve --oidc-*`).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    pub leeway_s: u64,
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `sub` as the provider gives it.
    pub subject: String,
    /// The owner recorded on the features they create: see [`owner_of`].
    pub owner: String,
    /// Every claim of the token, for the layers' `[access]` rules.
    pub claims: Value,
    /// `exp`, in seconds since 1970.
    pub expires: i64,
}

/// The owner recorded for `sub` from `issuer`: the SHA-256 of both, in hex. The features
/// table is read by other city systems (QGIS, ETL jobs, a shared PostGIS), and a `sub` is
/// personal data; ownership only needs equality, which the hash keeps. The issuer is part of
/// it so that two providers' subjects never collide.
pub fn owner_of(issuer: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    h.update(issuer.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    super::hex(&h.finalize())
}

/// Why a token was refused (401), or could not be checked (503).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0} is not accepted (RS256 or ES256, as its key says)")]
    Algorithm(String),
    #[error("{0}")]
    Key(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is for another audience (aud)")]
    Audience,
    #[error("the token is from another issuer (iss)")]
    Issuer,
    #[error("the token lacks the claim {0:?}")]
    Missing(String),
    #[error("{0}")]
    Unavailable(String),
    /// The server is too busy to check it now.
    #[error("the token cannot be checked now: {0}")]
    Busy(String),
}

impl TokenError {
    /// True when the fault is the server's (its provider cannot be reached), not the token's.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::Unavailable(_) | TokenError::Busy(_))
    }
}

/// Verifies tokens, and remembers the ones it verified.
pub struct Verifier {
    config: OidcConfig,
    keys: Arc<KeySet>,
    remembered: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    generation: u64,
    users: HashMap<[u8; 32], Arc<User>>,
}

impl Verifier {
    pub fn new(config: OidcConfig) -> Result<Verifier, String> {
        let keys = Arc::new(KeySet::new(config.jwks.clone())?);
        Ok(Verifier {
            config,
            keys,
            remembered: Mutex::new(Remembered::default()),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// The person a token names, or why not, all on the calling task (the server runs the
    /// signature check on its compute pool instead: see [`Verifier::verify_on`]).
    pub async fn verify(&self, token: &str) -> Result<Arc<User>, TokenError> {
        self.verify_on(token, |check| async move { check() }).await
    }

    /// Like [`Verifier::verify`], with the signature and claims check (the CPU-heavy part:
    /// 0.1 to 0.5 ms) handed to `run`, so that a flood of forged tokens queues where other
    /// costly work does rather than on the threads that answer cached tiles.
    pub async fn verify_on<R, F>(&self, token: &str, run: R) -> Result<Arc<User>, TokenError>
    where
        R: FnOnce(Box<dyn FnOnce() -> Result<User, TokenError> + Send>) -> F,
        F: std::future::Future<Output = Result<User, TokenError>>,
    {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed(format!(
                "it is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_s();
        let generation = self.keys.generation();
        {
            let mut r = self.remembered.lock();
            if r.generation != generation {
                r.users.clear();
                r.generation = generation;
            }
            if let Some(user) = r.users.get(&digest) {
                if user.expires + self.config.leeway_s as i64 >= now {
                    return Ok(user.clone());
                }
                r.users.remove(&digest);
            }
        }
        let (algorithm, key) = self.key_for(token).await?;
        let validation = self.validation(algorithm);
        let token = token.to_owned();
        let user = Arc::new(run(Box::new(move || signed(&token, &key, &validation))).await?);
        let mut r = self.remembered.lock();
        if r.users.len() >= MAX_REMEMBERED {
            let leeway = self.config.leeway_s as i64;
            r.users.retain(|_, u| u.expires + leeway >= now);
            if r.users.len() >= MAX_REMEMBERED {
                r.users.clear();
            }
        }
        if r.generation == generation {
            r.users.insert(digest, user.clone());
        }
        Ok(user)
    }

    /// The full check, without memory.
    pub async fn check(&self, token: &str) -> Result<User, TokenError> {
        let (algorithm, key) = self.key_for(token).await?;
        signed(token, &key, &self.validation(algorithm))
    }

    /// The key the token's header names, and the algorithm both agree on.
    async fn key_for(&self, token: &str) -> Result<(Algorithm, Arc<Key>), TokenError> {
        let header = decode_header(token).map_err(|e| match algorithm_named(token) {
            // A header that names an algorithm the library does not know (`none`).
            Some(alg) if alg.parse::<Algorithm>().is_err() => TokenError::Algorithm(alg),
            _ => TokenError::Malformed(e.to_string()),
        })?;
        let kid = header.kid.unwrap_or_default();
        let key = self.keys.key(&kid).await.map_err(|e| match e {
            KeyError::UnknownKid(_) => TokenError::Key(e.to_string()),
            KeyError::Unavailable(_) => TokenError::Unavailable(e.to_string()),
        })?;
        if header.alg != key.algorithm {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        Ok((key.algorithm, key))
    }

    fn validation(&self, algorithm: Algorithm) -> (Validation, String) {
        let mut v = Validation::new(algorithm);
        v.leeway = self.config.leeway_s;
        v.validate_nbf = true;
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&self.config.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        (v, self.config.issuer.clone())
    }
}

/// The signature and the claims of `token`, checked with `key` against `validation` (and
/// the issuer the owner is hashed with).
fn signed(token: &str, key: &Key, validation: &(Validation, String)) -> Result<User, TokenError> {
    let (v, issuer) = validation;
    let data = decode::<Value>(token, &key.decoding, v).map_err(|e| match e.kind() {
        JwtKind::InvalidSignature => TokenError::Signature,
        JwtKind::ExpiredSignature => TokenError::Expired,
        JwtKind::ImmatureSignature => TokenError::NotYetValid,
        JwtKind::InvalidAudience => TokenError::Audience,
        JwtKind::InvalidIssuer => TokenError::Issuer,
        JwtKind::MissingRequiredClaim(c) => TokenError::Missing(c.clone()),
        JwtKind::InvalidAlgorithm => TokenError::Algorithm(format!("{:?}", key.algorithm)),
        _ => TokenError::Malformed(e.to_string()),
    })?;
    let claims = data.claims;
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenError::Missing("sub".into())),
    };
    let expires = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or_else(|| TokenError::Missing("exp".into()))? as i64;
    Ok(User {
        owner: owner_of(issuer, &subject),
        subject,
        claims,
        expires,
    })
}

/// The `alg` a token's header names, for the error of one the library does not know
/// (`none`, say).
fn algorithm_named(token: &str) -> Option<String> {
    use base64::Engine as _;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// True when a bearer credential looks like a JWT (three base64url parts) rather than an
/// access key.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3 && !credential.starts_with("ut_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_hashes_of_issuer_and_subject() {
        let a = owner_of("https://id.example", "alice");
        assert_eq!(a.len(), 64);
        assert_eq!(a, owner_of("https://id.example", "alice"));
        assert_ne!(a, owner_of("https://id.example", "bob"));
        assert_ne!(a, owner_of("https://other.example", "alice"));
        // The separator keeps "ab" + "c" apart from "a" + "bc".
        assert_ne!(owner_of("ab", "c"), owner_of("a", "bc"));
    }

    #[test]
    fn the_algorithm_of_a_header_is_read_even_when_unknown() {
        // {"alg":"none","typ":"JWT"}
        assert_eq!(
            algorithm_named("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.").as_deref(),
            Some("none")
        );
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("ut_abc"));
    }
}
