//! A layer's tile size budget (`budget_kb`) and the order in which its features give way
//! when a tile is over it (`rank_by`): the parts of a layer file that
//! [`crate::index::thinning`] reads.
//!
//! ```toml
//! budget_kb = 200                      # this layer's part of any tile, before compression
//! rank_by = "road_load"                # a numeric property: higher values stay longest
//! rank_by = { property = "highway", order = ["motorway", "trunk", "primary"] }
//! ```
//! Without `rank_by` the order is the geometry's own: the biggest polygons and the longest
//! lines stay longest, and points thin where they are densest.

use serde::Deserialize;

use crate::model::schema::PropertyType;

/// The budget of a layer that does not declare one, unless the server says otherwise
/// (`serve --tile-budget-kb`): tippecanoe's default tile size limit.
pub const DEFAULT_BUDGET_KB: u32 = 500;

/// The largest `budget_kb` a layer may declare (64 MiB): past it a budget bounds nothing.
pub const MAX_BUDGET_KB: u32 = 65_536;

/// `rank_by` as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRankBy {
    Property(String),
    Ordered {
        property: String,
        order: Vec<String>,
    },
}

/// The order in which a layer's features give way, by a property rather than by geometry
/// (whose measure then only breaks ties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RankBy {
    /// A numeric property (index into the layer's `properties`): higher stays longer;
    /// features without it go first.
    Number(usize),
    /// A property whose listed values stay longest, in list order; other values, and
    /// features without the property, go first.
    Ordered { property: usize, order: Vec<String> },
}

impl RankBy {
    /// The property it reads (index into the layer's `properties`).
    pub fn property(&self) -> usize {
        match self {
            RankBy::Number(p) | RankBy::Ordered { property: p, .. } => *p,
        }
    }
}

/// Checks `rank_by` against the layer's properties and their declared types; errors say
/// what is wrong (the caller names the file and the key).
pub(super) fn rank_by(
    raw: RawRankBy,
    properties: &[String],
    types: &Option<Vec<PropertyType>>,
) -> Result<RankBy, String> {
    let find = |name: &str| {
        properties
            .iter()
            .position(|p| p == name)
            .ok_or_else(|| format!("{name:?} is not one of the layer's properties"))
    };
    match raw {
        RawRankBy::Property(name) => {
            let p = find(&name)?;
            match types.as_ref().map(|t| t[p]) {
                Some(PropertyType::Integer | PropertyType::Number) | None => Ok(RankBy::Number(p)),
                Some(other) => Err(format!(
                    "{name:?} is declared {other}; a property ranked by value must be a number \
                     (give {{ property = {name:?}, order = [...] }} to rank its values in a list)"
                )),
            }
        }
        RawRankBy::Ordered { property, order } => {
            let p = find(&property)?;
            if order.is_empty() {
                return Err("order lists no value".into());
            }
            for (i, v) in order.iter().enumerate() {
                if order[..i].contains(v) {
                    return Err(format!("order lists {v:?} twice"));
                }
            }
            Ok(RankBy::Ordered { property: p, order })
        }
    }
}

/// Checks `budget_kb`.
pub(super) fn budget_kb(kb: u32) -> Result<u32, String> {
    if kb > MAX_BUDGET_KB {
        return Err(format!(
            "{kb} is above {MAX_BUDGET_KB} (0 turns the budget off)"
        ));
    }
    Ok(kb)
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, LayerDef, RankBy};

    fn parse(extra: &str) -> Result<LayerDef, ConfigError> {
        LayerDef::from_toml(
            std::path::Path::new("roads.toml"),
            &format!(
                "title = \"Roads\"\ngeometry = \"line\"\n\
                 properties = {{ highway = \"string\", road_load = \"integer\" }}\n{extra}"
            ),
        )
    }

    fn refused(extra: &str) -> (String, String) {
        match parse(extra).unwrap_err() {
            ConfigError::BadValue { key, message, .. } => (key.to_string(), message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn budgets_and_rankings_are_read_and_checked_against_the_layer() {
        let def = parse("").unwrap();
        assert_eq!(def.budget_bytes(), Some(500 * 1024));
        assert_eq!(def.rank_by, None);
        let def = parse("budget_kb = 0\nrank_by = \"road_load\"\n").unwrap();
        assert_eq!(def.budget_bytes(), None);
        assert_eq!(def.rank_by, Some(RankBy::Number(1)));
        let def =
            parse("budget_kb = 64\nrank_by = { property = \"highway\", order = [\"motorway\", \"primary\"] }\n")
                .unwrap();
        assert_eq!(def.budget_bytes(), Some(64 * 1024));
        assert_eq!(def.rank_by.as_ref().map(RankBy::property), Some(0));

        let (key, m) = refused("budget_kb = 100000\n");
        assert_eq!(key, "budget_kb");
        assert!(m.contains("65536"), "{m}");
        let (key, m) = refused("rank_by = \"lanes\"\n");
        assert_eq!(key, "rank_by");
        assert!(
            m.contains("\"lanes\" is not one of the layer's properties"),
            "{m}"
        );
        let (_, m) = refused("rank_by = \"highway\"\n");
        assert!(
            m.contains("declared string") && m.contains("order = [...]"),
            "{m}"
        );
        let (_, m) = refused("rank_by = { property = \"highway\", order = [] }\n");
        assert!(m.contains("no value"), "{m}");
        let (_, m) = refused("rank_by = { property = \"highway\", order = [\"a\", \"a\"] }\n");
        assert!(m.contains("\"a\" twice"), "{m}");
        assert!(parse("budget_kb = -1\n").is_err());
    }
}
