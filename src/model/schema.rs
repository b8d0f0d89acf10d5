//! Declared property types: what a layer file promises about each property's values
//! (`properties = { name = "string", levels = "integer" }`). The declaration, not the data
//! loaded so far, is the contract for writes, queries, filters, queryables, TileJSON and
//! OpenAPI, so that every server reading the same layer files agrees on what is valid.

use std::fmt;

use serde_json::Value;

use crate::model::time::parse_rfc3339;

/// The type of one property's values. `null` (or absence) is allowed for every type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyType {
    /// Any JSON string.
    String,
    /// A JSON number without a fractional part, within +-2^53 (exact in every client).
    Integer,
    /// Any finite JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 date or date-time string (`2026-05-01`, `2026-05-01T10:00:00+03:00`).
    DateTime,
}

/// The largest integer a JSON client holds exactly in a double.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

impl PropertyType {
    /// The names a layer file uses.
    pub const NAMES: [&'static str; 5] = ["string", "integer", "number", "boolean", "datetime"];

    /// Reads a type name of a layer file.
    ///
    /// # Examples
    /// ```
    /// use urbantile::model::schema::PropertyType;
    /// assert_eq!(PropertyType::parse("integer"), Some(PropertyType::Integer));
    /// assert_eq!(PropertyType::parse("int"), None);
    /// ```
    pub fn parse(name: &str) -> Option<PropertyType> {
        Some(match name {
            "string" => PropertyType::String,
            "integer" => PropertyType::Integer,
            "number" => PropertyType::Number,
            "boolean" => PropertyType::Boolean,
            "datetime" => PropertyType::DateTime,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Integer => "integer",
            PropertyType::Number => "number",
            PropertyType::Boolean => "boolean",
            PropertyType::DateTime => "datetime",
        }
    }

    /// The JSON Schema `type` of the values (queryables, OpenAPI).
    pub fn json_schema_type(self) -> &'static str {
        match self {
            PropertyType::String | PropertyType::DateTime => "string",
            PropertyType::Integer => "integer",
            PropertyType::Number => "number",
            PropertyType::Boolean => "boolean",
        }
    }

    /// The type with an article, for messages: "must be an integer".
    pub fn described(self) -> &'static str {
        match self {
            PropertyType::String => "a string",
            PropertyType::Integer => "an integer",
            PropertyType::Number => "a number",
            PropertyType::Boolean => "a boolean",
            PropertyType::DateTime => "an RFC 3339 date or date-time string",
        }
    }

    /// Whether `value` is of this type as it stands (the rule for HTTP writes). `null`
    /// fits every type.
    ///
    /// # Examples
    /// ```
    /// use serde_json::json;
    /// use urbantile::model::schema::PropertyType;
    /// assert!(PropertyType::Integer.fits(&json!(3)));
    /// assert!(!PropertyType::Integer.fits(&json!(3.5)));
    /// assert!(!PropertyType::Integer.fits(&json!("3")));
    /// assert!(PropertyType::DateTime.fits(&json!("2026-05-01")));
    /// assert!(PropertyType::String.fits(&json!(null)));
    /// ```
    pub fn fits(self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) => true,
            (PropertyType::String, Value::String(_)) => true,
            (PropertyType::DateTime, Value::String(s)) => parse_rfc3339(s).is_ok(),
            (PropertyType::Number, Value::Number(_)) => true,
            (PropertyType::Integer, Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.unsigned_abs() <= MAX_SAFE_INTEGER as u64,
                (None, Some(u)) => u <= MAX_SAFE_INTEGER as u64,
                _ => n
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER),
            },
            (PropertyType::Boolean, Value::Bool(_)) => true,
            _ => false,
        }
    }

    /// `value` made of this type where that loses nothing (the rule for files, whose
    /// formats carry text only, such as CSV cells and OSM tags): `"3"` becomes `3` for an
    /// integer, `12` becomes `"12"` for a string, `3.0` becomes `3`. `Err` says why a
    /// value does not fit.
    ///
    /// # Examples
    /// ```
    /// use serde_json::json;
    /// use urbantile::model::schema::PropertyType;
    /// assert_eq!(PropertyType::Integer.coerce(json!(" 3 ")), Ok(json!(3)));
    /// assert_eq!(PropertyType::Number.coerce(json!("2.5")), Ok(json!(2.5)));
    /// assert_eq!(PropertyType::String.coerce(json!(12)), Ok(json!("12")));
    /// assert_eq!(PropertyType::Boolean.coerce(json!("yes")), Ok(json!(true)));
    /// assert_eq!(PropertyType::Boolean.coerce(json!(0)), Ok(json!(false)));
    /// assert!(PropertyType::Integer.coerce(json!("3;4")).is_err());
    /// ```
    pub fn coerce(self, value: Value) -> Result<Value, String> {
        if self.fits(&value) {
            if let (PropertyType::Integer, Value::Number(n)) = (self, &value)
                && !n.is_i64()
                && !n.is_u64()
                && let Some(f) = n.as_f64()
            {
                return Ok(Value::from(f as i64));
            }
            return Ok(value);
        }
        let refuse = |v: &Value| Err(format!("is {v}; it must be {}", self.described()));
        match (self, &value) {
            (PropertyType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
            (PropertyType::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (PropertyType::Integer, Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => Ok(Value::from(i)),
                _ => refuse(&value),
            },
            (PropertyType::Number, Value::String(s)) => {
                match s.trim().parse::<f64>().ok().filter(|f| f.is_finite()) {
                    Some(f) => {
                        Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
                    }
                    None => refuse(&value),
                }
            }
            (PropertyType::Boolean, Value::Number(n)) if n.as_u64() == Some(1) => {
                Ok(Value::Bool(true))
            }
            (PropertyType::Boolean, Value::Number(n)) if n.as_u64() == Some(0) => {
                Ok(Value::Bool(false))
            }
            (PropertyType::Boolean, Value::String(s)) => {
                match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Ok(Value::Bool(true)),
                    "false" | "no" | "0" => Ok(Value::Bool(false)),
                    _ => refuse(&value),
                }
            }
            _ => refuse(&value),
        }
    }
}

impl fmt::Display for PropertyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_reads_back() {
        for name in PropertyType::NAMES {
            assert_eq!(PropertyType::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn integers_are_whole_and_exact() {
        let t = PropertyType::Integer;
        assert!(t.fits(&json!(-7)));
        assert!(t.fits(&json!(4.0)));
        assert!(!t.fits(&json!(1e300)));
        assert!(!t.fits(&json!(9_007_199_254_740_993u64)));
        assert!(t.fits(&json!(-9_007_199_254_740_992i64)));
        assert!(!t.fits(&json!(true)));
        assert_eq!(t.coerce(json!(4.0)), Ok(json!(4)));
        assert!(t.coerce(json!("9007199254740993")).is_err());
        assert!(t.coerce(json!("2.5")).is_err());
    }

    #[test]
    fn what_cannot_be_coerced_says_what_it_is_and_what_it_must_be() {
        assert_eq!(
            PropertyType::DateTime.coerce(json!("yesterday")),
            Err("is \"yesterday\"; it must be an RFC 3339 date or date-time string".into())
        );
        assert_eq!(
            PropertyType::Number.coerce(json!({"a": 1})),
            Err("is {\"a\":1}; it must be a number".into())
        );
        assert!(PropertyType::Number.coerce(json!("NaN")).is_err());
        assert!(PropertyType::String.coerce(json!([1])).is_err());
    }
}
