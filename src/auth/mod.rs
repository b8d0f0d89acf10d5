//! Access keys and what they allow: a key is a random secret shown once; the store keeps its
//! SHA-256 hash with two scopes, the layers it may read (private layers need this) and the
//! layers it may write. Anonymous readers see every public layer and nothing else.
//!
//! Residents and staff sign in with the city's identity provider instead: their bearer
//! token ([`token`]) is verified against the provider's keys ([`jwks`]), and the layers'
//! `[access]` rules ([`crate::config::Access`]) say what its claims allow.

pub mod jwks;
pub mod token;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{LayerDef, Right};
pub use token::User;

/// The layers a scope covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Layers(BTreeSet<String>),
}

impl Scope {
    /// Parses `*` or a comma list of layer ids, each of which must exist.
    pub fn parse(text: &str, layers: &[LayerDef]) -> Result<Scope, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Scope::All);
        }
        let mut set = BTreeSet::new();
        for id in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !layers.iter().any(|l| l.id.as_str() == id) {
                let known: Vec<&str> = layers.iter().map(|l| l.id.as_str()).collect();
                return Err(format!(
                    "unknown layer {id:?}; the layers are: {}",
                    known.join(", ")
                ));
            }
            set.insert(id.to_owned());
        }
        Ok(Scope::Layers(set))
    }

    /// A scope as the store keeps it (checked when it was made).
    pub fn from_stored(text: &str) -> Scope {
        if text == "*" {
            Scope::All
        } else if text == "-" {
            Scope::Layers(BTreeSet::new())
        } else {
            Scope::Layers(
                text.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        }
    }

    pub fn covers(&self, layer: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Layers(set) => set.contains(layer),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Layers(set) if set.is_empty() => f.write_str("-"),
            Scope::Layers(set) => f.write_str(&set.iter().cloned().collect::<Vec<_>>().join(",")),
        }
    }
}

/// A key as the store keeps it (without the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: String,
    pub read: Scope,
    pub write: Scope,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Who is asking: nobody (anonymous), the holder of a valid key, or a signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reader {
    /// Shared with the server's memory of confirmed keys: a keyed request copies nothing.
    pub key: Option<Arc<KeyInfo>>,
    pub user: Option<Arc<User>>,
}

/// A write to ask rights for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    /// PUT or PATCH.
    Update,
    Delete,
}

impl Reader {
    /// The layers of `layers` this reader may see, in their order.
    pub fn visible<'a>(&self, layers: &'a [LayerDef]) -> impl Iterator<Item = &'a LayerDef> {
        layers.iter().filter(move |d| self.can_read(d))
    }

    /// True when a key or a token came with the request.
    pub fn is_known(&self) -> bool {
        self.key.is_some() || self.user.is_some()
    }

    /// What this reader may do to the features of `def`: a key whose write scope names the
    /// layer may do anything; a signed-in person what the layer's `[access]` rules allow.
    pub fn right(&self, def: &LayerDef, action: Action) -> Right {
        if self
            .key
            .as_ref()
            .is_some_and(|k| k.write.covers(def.id.as_str()))
        {
            return Right::Any;
        }
        let Some(user) = &self.user else {
            return Right::None;
        };
        match action {
            Action::Create if def.access.may_create(&user.claims) => Right::Any,
            Action::Create => Right::None,
            Action::Update => def.access.change_right(&user.claims, false),
            Action::Delete => def.access.change_right(&user.claims, true),
        }
    }

    /// Writing anything at all to the layer.
    pub fn can_write(&self, def: &LayerDef) -> bool {
        [Action::Create, Action::Update, Action::Delete]
            .into_iter()
            .any(|a| self.right(def, a) != Right::None)
    }

    /// Public layers are readable by everyone; private ones need the read scope, or a token
    /// the layer's `access.read` admits. Whoever may write a layer may read it.
    pub fn can_read(&self, def: &LayerDef) -> bool {
        !def.private
            || self
                .key
                .as_ref()
                .is_some_and(|k| k.read.covers(def.id.as_str()) || k.write.covers(def.id.as_str()))
            || self
                .user
                .as_ref()
                .is_some_and(|u| def.access.may_read(&u.claims))
            || (self.user.is_some() && self.can_write(def))
    }
}

/// A new random key: `ut_` and 64 hex digits (256 bits from the operating system).
pub fn generate_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("ut_{}", hex(&bytes)))
}

/// The SHA-256 of a key, as stored and looked up.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lower-case hex digits of `bytes` (a keyed request hashes its key every time: one
/// allocation, not one a byte).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<LayerDef> {
        ["schools", "accidents"]
            .iter()
            .map(|id| {
                LayerDef::from_toml(
                    std::path::Path::new(&format!("{id}.toml")),
                    "title = \"T\"\ngeometry = \"point\"\nprivate = true\n",
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn keys_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (generate_key().unwrap(), generate_key().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("ut_") && a.len() == 67);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(hash_key(&a).len(), 64);
        // SHA-256 of "abc" (FIPS 180-2's example), in lower-case hex.
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scopes_name_existing_layers_or_all() {
        let l = layers();
        assert_eq!(Scope::parse("*", &l), Ok(Scope::All));
        let s = Scope::parse("schools", &l).unwrap();
        assert!(s.covers("schools") && !s.covers("accidents"));
        assert!(Scope::parse("castles", &l).unwrap_err().contains("castles"));
    }

    #[test]
    fn private_layers_need_a_key_with_their_scope() {
        let l = layers();
        assert!(!Reader::default().can_read(&l[0]));
        let key = |read: &str| Reader {
            user: None,
            key: Some(Arc::new(KeyInfo {
                name: "k".into(),
                read: Scope::parse(read, &l).unwrap(),
                write: Scope::Layers(BTreeSet::new()),
                created_at: 0,
                revoked_at: None,
            })),
        };
        assert!(key("schools").can_read(&l[0]));
        assert!(!key("schools").can_read(&l[1]));
        assert!(key("*").can_read(&l[1]));
    }
}
