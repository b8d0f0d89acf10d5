//! What one request may ask of the server: the size and depth bounds of every parser of
//! client input, in one place. Every request is anonymous until proven otherwise, so each
//! bound is checked before the work it protects, and a request past one gets a 400 that
//! names the limit (see [`LimitError`]).
//!
//! Time and concurrency bounds (deadlines, the CPU pool's queue) are
//! [`crate::compute`]'s; the body size limit is a server flag (`--max-body-mb`).

/// Longest URI path, in bytes. Layer lists are the longest paths: every layer id of a city
/// fits many times over.
pub const MAX_PATH_BYTES: usize = 4 * 1024;
/// Longest query string, in bytes (a CQL2 filter with a district's polygon fits).
pub const MAX_QUERY_BYTES: usize = 32 * 1024;
/// Most query parameters in one request.
pub const MAX_PARAMS: usize = 64;
/// Longest CQL2 filter (text or JSON), in bytes, after URL decoding.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;
/// Deepest nesting of a CQL2 filter: parentheses, `NOT`, `INTERVAL`, JSON arrays and
/// objects. Real filters nest a handful of levels.
pub const MAX_FILTER_DEPTH: usize = 64;
/// Deepest nesting of a JSON request body (GeoJSON, merge patches): a FeatureCollection of
/// MultiPolygons nests 8 levels.
pub const MAX_JSON_DEPTH: usize = 32;
/// Longest `LIKE` pattern, in characters.
pub const MAX_LIKE_PATTERN: usize = 1024;

/// A request past one of the bounds above.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} is over the limit of {limit} {unit}")]
pub struct LimitError {
    /// What was too large or too deep, e.g. "the query string".
    pub what: String,
    pub limit: usize,
    /// "bytes", "levels", "parameters", ...
    pub unit: &'static str,
}

impl LimitError {
    pub fn new(what: impl Into<String>, limit: usize, unit: &'static str) -> LimitError {
        LimitError {
            what: what.into(),
            limit,
            unit,
        }
    }
}

/// How deeply JSON text nests arrays and objects, read without parsing it: one pass, no
/// recursion, so it is safe on any input and runs before a recursive parser does. Brackets
/// inside strings do not count. Malformed JSON gets some depth; the parser then rejects it.
///
/// ```
/// use urbantile::limits::json_depth;
/// assert_eq!(json_depth(br#"{"a": [1, {"b": "[[["}]}"#), 3);
/// assert_eq!(json_depth(b"42"), 0);
/// ```
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Checks that JSON text nests at most `limit` levels.
pub fn check_json_depth(what: &str, text: &[u8], limit: usize) -> Result<(), LimitError> {
    if json_depth(text) > limit {
        return Err(LimitError::new(
            format!("the nesting of {what}"),
            limit,
            "levels",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert_eq!(json_depth(b"[[[]]]"), 3);
        assert_eq!(json_depth(br#"["\"[[", {"x": {}}]"#), 3);
        assert_eq!(json_depth(br#""\\" [ ]"#), 1);
        let deep = "[".repeat(100_000);
        assert_eq!(json_depth(deep.as_bytes()), 100_000);
        assert!(check_json_depth("the body", deep.as_bytes(), MAX_JSON_DEPTH).is_err());
        let e = check_json_depth("the body", b"[[1]]", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the nesting of the body is over the limit of 1 levels"
        );
    }
}
