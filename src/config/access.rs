//! Who may do what to a layer, for the residents and staff who sign in with the city's
//! identity provider (OpenID Connect tokens, see [`crate::auth::token`]). API keys keep their
//! own scopes; this table adds rules over a token's claims.
//!
//! ```toml
//! [access]
//! read   = ["claim:roles=city-planner"]        # a private layer: who may read it
//! create = ["signed-in"]                       # any signed-in resident may report
//! update = ["owner", "claim:roles=city-inspector"]
//! delete = ["owner"]
//! owner_property = "reported_by"               # optional: publish the owner in this property
//! ```
//!
//! A rule is one of:
//! - `signed-in`: any valid token;
//! - `owner`: (update and delete only) the feature was created with the same identity;
//! - `claim:PATH=VALUE`: the claim at `PATH` (dotted for nested objects, as in Keycloak's
//!   `realm_access.roles`) equals `VALUE`, or is a list holding it. Numbers and booleans
//!   compare as their JSON text (`claim:email_verified=true`).
//!
//! Without an `[access]` table a token gives nothing a key-less request does not have.

use serde::Deserialize;
use serde_json::Value;

use crate::model::schema::PropertyType;

/// `[access]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    create: Vec<String>,
    #[serde(default)]
    update: Vec<String>,
    #[serde(default)]
    delete: Vec<String>,
    #[serde(default)]
    owner_property: Option<String>,
}

/// One rule over a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    SignedIn,
    Owner,
    Claim { path: Vec<String>, value: String },
}

impl Rule {
    fn parse(text: &str, owner_allowed: bool) -> Result<Rule, String> {
        match text {
            "signed-in" => return Ok(Rule::SignedIn),
            "owner" if owner_allowed => return Ok(Rule::Owner),
            "owner" => return Err("\"owner\" applies to update and delete only".into()),
            _ => {}
        }
        let Some(claim) = text.strip_prefix("claim:") else {
            return Err(format!(
                "{text:?} is not a rule; the rules are \"signed-in\", \"owner\" and \"claim:PATH=VALUE\""
            ));
        };
        let Some((path, value)) = claim.split_once('=') else {
            return Err(format!("{text:?} needs a value: claim:PATH=VALUE"));
        };
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        if path.iter().any(|p| p.is_empty()) || value.is_empty() {
            return Err(format!(
                "{text:?}: the claim path and the value must not be empty"
            ));
        }
        Ok(Rule::Claim {
            path,
            value: value.to_owned(),
        })
    }

    /// True when the claims satisfy this rule (`Owner` is decided per feature, not here).
    pub fn admits(&self, claims: &Value) -> bool {
        match self {
            Rule::SignedIn => true,
            Rule::Owner => false,
            Rule::Claim { path, value } => {
                let mut at = claims;
                for key in path {
                    match at.get(key) {
                        Some(v) => at = v,
                        None => return false,
                    }
                }
                let equal = |v: &Value| match v {
                    Value::String(s) => s == value,
                    Value::Number(_) | Value::Bool(_) => {
                        value.parse::<Value>().is_ok_and(|written| written == *v)
                    }
                    _ => false,
                };
                match at {
                    Value::Array(items) => items.iter().any(equal),
                    v => equal(v),
                }
            }
        }
    }
}

/// What a signed-in person may do to a layer's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    None,
    /// Only the features they created.
    Own,
    Any,
}

/// A layer's `[access]` rules, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub read: Vec<Rule>,
    pub create: Vec<Rule>,
    pub update: Vec<Rule>,
    pub delete: Vec<Rule>,
    /// Index into the layer's `properties` of the property that publishes a feature's
    /// owner; without it the owner is kept apart from the properties and never served.
    pub owner_property: Option<usize>,
}

impl Access {
    /// May these claims read the layer (when it is private)?
    pub fn may_read(&self, claims: &Value) -> bool {
        self.read.iter().any(|r| r.admits(claims))
    }

    pub fn may_create(&self, claims: &Value) -> bool {
        self.create.iter().any(|r| r.admits(claims))
    }

    /// What these claims allow by `update` (`delete == false`) or `delete` rules.
    pub fn change_right(&self, claims: &Value, delete: bool) -> Right {
        let rules = if delete { &self.delete } else { &self.update };
        if rules.iter().any(|r| r.admits(claims)) {
            Right::Any
        } else if rules.contains(&Rule::Owner) {
            Right::Own
        } else {
            Right::None
        }
    }

    /// True when a token can do anything at all here.
    pub fn grants_anything(&self) -> bool {
        !(self.read.is_empty()
            && self.create.is_empty()
            && self.update.is_empty()
            && self.delete.is_empty())
    }
}

/// Checks `[access]` against the layer's properties; errors name the key.
pub(super) fn access(
    raw: RawAccess,
    properties: &[String],
    types: &Option<Vec<PropertyType>>,
) -> Result<Access, (&'static str, String)> {
    let rules = |key: &'static str, list: &[String], owner: bool| {
        list.iter()
            .map(|t| Rule::parse(t, owner).map_err(|m| (key, m)))
            .collect::<Result<Vec<_>, _>>()
    };
    let owner_property = match raw.owner_property {
        None => None,
        Some(name) => {
            let i = properties.iter().position(|p| *p == name).ok_or_else(|| {
                (
                    "access.owner_property",
                    format!("{name:?} is not one of the layer's properties"),
                )
            })?;
            if let Some(t) = types.as_ref().map(|t| t[i])
                && t != PropertyType::String
            {
                return Err((
                    "access.owner_property",
                    format!("{name:?} is declared {t}; the owner is a string"),
                ));
            }
            Some(i)
        }
    };
    Ok(Access {
        read: rules("access.read", &raw.read, false)?,
        create: rules("access.create", &raw.create, false)?,
        update: rules("access.update", &raw.update, true)?,
        delete: rules("access.delete", &raw.delete, true)?,
        owner_property,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_match_values_lists_and_nested_paths() {
        let claims = json!({
            "sub": "a",
            "roles": ["resident", "city-planner"],
            "realm_access": { "roles": ["city-inspector"] },
            "email_verified": true,
            "level": 3
        });
        let rule = |t: &str| Rule::parse(t, true).unwrap();
        assert!(rule("claim:roles=city-planner").admits(&claims));
        assert!(!rule("claim:roles=city").admits(&claims));
        assert!(rule("claim:realm_access.roles=city-inspector").admits(&claims));
        assert!(!rule("claim:realm_access.groups=city-inspector").admits(&claims));
        assert!(rule("claim:email_verified=true").admits(&claims));
        assert!(rule("claim:level=3").admits(&claims));
        assert!(!rule("claim:sub=b").admits(&claims));
        assert!(rule("signed-in").admits(&json!({})));
        assert!(!rule("owner").admits(&claims));
    }

    #[test]
    fn bad_rules_say_what_is_allowed() {
        assert!(Rule::parse("owner", false).unwrap_err().contains("update"));
        assert!(
            Rule::parse("everyone", true)
                .unwrap_err()
                .contains("claim:PATH=VALUE")
        );
        assert!(Rule::parse("claim:roles", true).is_err());
        assert!(Rule::parse("claim:=x", true).is_err());
        assert!(Rule::parse("claim:a..b=x", true).is_err());
    }

    #[test]
    fn owner_rules_give_own_rights_unless_a_claim_gives_all() {
        let access = Access {
            update: vec![
                Rule::Owner,
                Rule::parse("claim:roles=inspector", true).unwrap(),
            ],
            ..Access::default()
        };
        assert_eq!(access.change_right(&json!({}), false), Right::Own);
        assert_eq!(
            access.change_right(&json!({"roles": "inspector"}), false),
            Right::Any
        );
        assert_eq!(access.change_right(&json!({}), true), Right::None);
    }
}
