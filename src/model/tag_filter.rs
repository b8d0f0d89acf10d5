//! The OpenStreetMap tag filter of layer files (`source.osm`): which elements of an OSM
//! extract a layer takes. Plain data and its syntax; reading OSM files is
//! [`crate::ingest::osm`]'s job.

use std::fmt;
use std::str::FromStr;

/// A parsed tag filter from a layer file.
///
/// Syntax: alternatives separated by `;`, each a list of conditions joined by `&` that must
/// all hold. A condition is `key` or `key=*` (key present), `key=v1|v2` (value is one of),
/// `key!=v1|v2` (key absent or value none of) or `key!=*` (key absent).
///
/// # Examples
/// ```
/// use urbantile::ingest::osm::TagFilter;
/// let f: TagFilter = "highway=*&highway!=footway|steps".parse().unwrap();
/// let tags = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
/// assert!(f.matches(&tags("highway", "primary")));
/// assert!(!f.matches(&tags("highway", "steps")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    alternatives: Vec<Vec<Condition>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Present(String),
    Absent(String),
    OneOf(String, Vec<String>),
    NoneOf(String, Vec<String>),
}

impl Condition {
    fn holds(&self, tags: &[(String, String)]) -> bool {
        let value_of = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        match self {
            Condition::Present(key) => value_of(key).is_some(),
            Condition::Absent(key) => value_of(key).is_none(),
            Condition::OneOf(key, values) => {
                value_of(key).is_some_and(|v| values.iter().any(|x| x == v))
            }
            Condition::NoneOf(key, values) => {
                value_of(key).is_none_or(|v| values.iter().all(|x| x != v))
            }
        }
    }

    fn is_positive(&self) -> bool {
        matches!(self, Condition::Present(_) | Condition::OneOf(..))
    }
}

impl TagFilter {
    /// Parses a filter; the error says which part is wrong.
    pub fn parse(s: &str) -> Result<TagFilter, String> {
        let mut alternatives = Vec::new();
        for alternative in s.split(';') {
            let alternative = alternative.trim();
            if alternative.is_empty() {
                return Err(format!(
                    "tag filter {s:?} has an empty alternative (check the ';')"
                ));
            }
            let conditions = alternative
                .split('&')
                .map(|c| parse_condition(c.trim()).map_err(|e| format!("tag filter {s:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            // A pure negation would select every tagged element of the file, which is never
            // what a layer wants; most likely a positive condition was forgotten.
            if !conditions.iter().any(Condition::is_positive) {
                return Err(format!(
                    "tag filter {s:?}: alternative {alternative:?} only excludes; add a condition such as key=* that selects"
                ));
            }
            alternatives.push(conditions);
        }
        Ok(TagFilter { alternatives })
    }

    /// True when any alternative has all its conditions hold for `tags`.
    pub fn matches(&self, tags: &[(String, String)]) -> bool {
        self.alternatives
            .iter()
            .any(|conditions| conditions.iter().all(|c| c.holds(tags)))
    }
}

fn parse_condition(c: &str) -> Result<Condition, String> {
    if c.is_empty() {
        return Err("empty condition (check the '&')".to_owned());
    }
    let (key, values, negated) = if let Some((k, v)) = c.split_once("!=") {
        (k.trim(), Some(v.trim()), true)
    } else if let Some((k, v)) = c.split_once('=') {
        (k.trim(), Some(v.trim()), false)
    } else {
        (c, None, false)
    };
    if key.is_empty() || key.contains(['|', '*', '=', '!']) {
        return Err(format!("condition {c:?} has no valid key"));
    }
    let key = key.to_owned();
    let Some(values) = values else {
        return Ok(Condition::Present(key));
    };
    if values == "*" {
        return Ok(if negated {
            Condition::Absent(key)
        } else {
            Condition::Present(key)
        });
    }
    let values: Vec<String> = values.split('|').map(|v| v.trim().to_owned()).collect();
    if values.iter().any(|v| v.is_empty() || v == "*") {
        return Err(format!(
            "condition {c:?} has an empty value or a '*' among several values"
        ));
    }
    Ok(if negated {
        Condition::NoneOf(key, values)
    } else {
        Condition::OneOf(key, values)
    })
}

impl FromStr for TagFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TagFilter::parse(s)
    }
}

/// Writes the filter back in its canonical syntax (e.g. for logs and error messages).
impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alternative) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            for (j, c) in alternative.iter().enumerate() {
                if j > 0 {
                    f.write_str("&")?;
                }
                match c {
                    Condition::Present(k) => write!(f, "{k}=*")?,
                    Condition::Absent(k) => write!(f, "{k}!=*")?,
                    Condition::OneOf(k, v) => write!(f, "{k}={}", v.join("|"))?,
                    Condition::NoneOf(k, v) => write!(f, "{k}!={}", v.join("|"))?,
                }
            }
        }
        Ok(())
    }
}
