//! Reading CQL2: a tokenizer and recursive-descent parser for `cql2-text`, and a walker for
//! `cql2-json`, both into one neutral tree ([`Node`]) that [`super`] checks against a layer.
//! Errors say where (the character of the text) and what was expected.

use super::{FilterError, fail};
use crate::limits::MAX_FILTER_DEPTH as MAX_DEPTH;

// ---------------------------------------------------------------------------------------
// cql2-text: a tokenizer and a recursive-descent parser into a neutral tree
// ---------------------------------------------------------------------------------------

/// The neutral tree both encodings parse into, before it is checked against a layer.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Op(String, Vec<Node>),
    Prop(String),
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Timestamp(String),
    Date(String),
    Interval(Box<Node>, Box<Node>),
    Wkt(String),
    Bbox(Vec<f64>),
    GeoJson(serde_json::Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i] as char;
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match s[i..].find('\'') {
                    None => {
                        return fail(format!(
                            "unterminated string starting at character {}",
                            start + 1
                        ));
                    }
                    Some(j) => {
                        text.push_str(&s[i..i + j]);
                        i += j + 1;
                        if b.get(i) == Some(&b'\'') {
                            text.push('\'');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push((start, Tok::Str(text)));
        } else if c == '"' {
            let Some(j) = s[i + 1..].find('"') else {
                return fail(format!(
                    "unterminated quoted name at character {}",
                    start + 1
                ));
            };
            out.push((start, Tok::Quoted(s[i + 1..i + 1 + j].to_owned())));
            i += j + 2;
        } else if c.is_ascii_digit()
            || (c == '-' || c == '.' || c == '+')
                && b.get(i + 1)
                    .is_some_and(|d| d.is_ascii_digit() || *d == b'.')
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || b[i] == b'.'
                    || b[i] == b'e'
                    || b[i] == b'E'
                    || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            let n: f64 = s[start..i].parse().map_err(|_| {
                FilterError(format!(
                    "{:?} at character {} is not a number",
                    &s[start..i],
                    start + 1
                ))
            })?;
            out.push((start, Tok::Num(n)));
        } else if c.is_alphabetic() || c == '_' {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push((start, Tok::Ident(s[start..i].to_owned())));
        } else {
            let sym = ["<>", "<=", ">=", "=", "<", ">", "(", ")", ","]
                .into_iter()
                .find(|p| s[i..].starts_with(p))
                .ok_or_else(|| FilterError(format!("unexpected {c:?} at character {}", i + 1)))?;
            out.push((start, Tok::Sym(sym)));
            i += sym.len();
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    /// How many nested groups (parentheses, NOT, INTERVAL) the parser is inside: each is
    /// a recursive call, so the depth is bounded before the stack is.
    depth: usize,
}

const GEOMETRY_WORDS: &[&str] = &[
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
];

impl<'a> Parser<'a> {
    /// Enters one nesting level; an error past [`MAX_DEPTH`]. Errors end the parse, so
    /// only successful returns call [`Parser::leave`].
    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return fail(format!(
                "nests deeper than the limit of {MAX_DEPTH} levels at {}",
                self.at()
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> String {
        match self.toks.get(self.pos) {
            Some((i, _)) => format!("character {}", i + 1),
            None => "the end".into(),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.keyword(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), FilterError> {
        if self.peek() == Some(&Tok::Sym(sym)) {
            self.pos += 1;
            Ok(())
        } else {
            fail(format!("expected {sym:?} at {}", self.at()))
        }
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut items = vec![self.and()?];
        while self.eat_keyword("OR") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Node::Bool(true))
        } else {
            Node::Op("or".into(), items)
        })
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut items = vec![self.not()?];
        while self.eat_keyword("AND") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Node::Bool(true))
        } else {
            Node::Op("and".into(), items)
        })
    }

    fn not(&mut self) -> Result<Node, FilterError> {
        if self.eat_keyword("NOT") {
            self.enter()?;
            let inner = self.not()?;
            self.leave();
            return Ok(Node::Op("not".into(), vec![inner]));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Node, FilterError> {
        if self.peek() == Some(&Tok::Sym("(")) {
            self.pos += 1;
            self.enter()?;
            let inner = self.or()?;
            self.leave();
            self.expect(")")?;
            return Ok(inner);
        }
        // Function-style predicates: S_*, T_*.
        if let Some(Tok::Ident(name)) = self.peek().cloned() {
            let lower = name.to_ascii_lowercase();
            if (lower.starts_with("s_") || lower.starts_with("t_"))
                && self.toks.get(self.pos + 1).map(|t| &t.1) == Some(&Tok::Sym("("))
            {
                self.pos += 2;
                let a = self.operand()?;
                self.expect(",")?;
                let b = self.operand()?;
                self.expect(")")?;
                return Ok(Node::Op(lower, vec![a, b]));
            }
        }
        let left = self.operand()?;
        let negated = self.eat_keyword("NOT");
        let node = if self.eat_keyword("LIKE") {
            Node::Op("like".into(), vec![left, self.operand()?])
        } else if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return fail(format!("expected AND in BETWEEN at {}", self.at()));
            }
            Node::Op("between".into(), vec![left, low, self.operand()?])
        } else if self.eat_keyword("IN") {
            self.expect("(")?;
            let mut list = vec![self.operand()?];
            while self.peek() == Some(&Tok::Sym(",")) {
                self.pos += 1;
                list.push(self.operand()?);
            }
            self.expect(")")?;
            Node::Op("in".into(), vec![left, Node::Op("list".into(), list)])
        } else if !negated && self.eat_keyword("IS") {
            let not = self.eat_keyword("NOT");
            if !self.eat_keyword("NULL") {
                return fail(format!("expected NULL at {}", self.at()));
            }
            let n = Node::Op("isNull".into(), vec![left]);
            return Ok(if not {
                Node::Op("not".into(), vec![n])
            } else {
                n
            });
        } else if negated {
            return fail(format!(
                "expected LIKE, BETWEEN or IN after NOT at {}",
                self.at()
            ));
        } else {
            match self.peek() {
                Some(Tok::Sym(op @ ("=" | "<>" | "<" | "<=" | ">" | ">="))) => {
                    let op = op.to_string();
                    self.pos += 1;
                    return Ok(Node::Op(op, vec![left, self.operand()?]));
                }
                Some(_) => {
                    return fail(format!(
                        "expected a comparison, LIKE, BETWEEN, IN or IS at {}",
                        self.at()
                    ));
                }
                None => match left {
                    Node::Bool(_) => return Ok(left),
                    _ => return fail("the filter ends where a comparison was expected"),
                },
            }
        };
        Ok(if negated {
            Node::Op("not".into(), vec![node])
        } else {
            node
        })
    }

    fn operand(&mut self) -> Result<Node, FilterError> {
        let Some((start, tok)) = self.toks.get(self.pos).cloned() else {
            return fail("the filter ends where a value was expected");
        };
        self.pos += 1;
        Ok(match tok {
            Tok::Str(s) => Node::Str(s),
            Tok::Num(n) => Node::Num(n),
            Tok::Quoted(q) => Node::Prop(q),
            Tok::Sym(s) => return fail(format!("unexpected {s:?} at character {}", start + 1)),
            Tok::Ident(word) => {
                let upper = word.to_ascii_uppercase();
                match upper.as_str() {
                    "TRUE" => Node::Bool(true),
                    "FALSE" => Node::Bool(false),
                    "NULL" => Node::Null,
                    "TIMESTAMP" | "DATE" => {
                        self.expect("(")?;
                        let Some((_, Tok::Str(s))) = self.toks.get(self.pos).cloned() else {
                            return fail(format!("{upper} needs a quoted value at {}", self.at()));
                        };
                        self.pos += 1;
                        self.expect(")")?;
                        if upper == "DATE" {
                            Node::Date(s)
                        } else {
                            Node::Timestamp(s)
                        }
                    }
                    "INTERVAL" => {
                        self.expect("(")?;
                        self.enter()?;
                        let a = self.operand()?;
                        self.expect(",")?;
                        let b = self.operand()?;
                        self.leave();
                        self.expect(")")?;
                        Node::Interval(Box::new(a), Box::new(b))
                    }
                    "BBOX" => {
                        self.expect("(")?;
                        let mut nums = Vec::new();
                        loop {
                            match self.toks.get(self.pos).cloned() {
                                Some((_, Tok::Num(n))) => nums.push(n),
                                _ => return fail(format!("BBOX needs numbers at {}", self.at())),
                            }
                            self.pos += 1;
                            if self.peek() == Some(&Tok::Sym(",")) {
                                self.pos += 1;
                            } else {
                                break;
                            }
                        }
                        self.expect(")")?;
                        Node::Bbox(nums)
                    }
                    w if GEOMETRY_WORDS.contains(&w) => {
                        // Hand the balanced text of the geometry to the WKT reader.
                        if self.peek() != Some(&Tok::Sym("(")) {
                            return fail(format!(
                                "{w} needs coordinates in parentheses at {}",
                                self.at()
                            ));
                        }
                        let mut depth = 0;
                        let mut end = self.text.len();
                        while let Some((i, t)) = self.toks.get(self.pos) {
                            match t {
                                Tok::Sym("(") => depth += 1,
                                Tok::Sym(")") => depth -= 1,
                                _ => {}
                            }
                            self.pos += 1;
                            if depth == 0 {
                                end = i + 1;
                                break;
                            }
                        }
                        if depth != 0 {
                            return fail(format!(
                                "unbalanced parentheses in the {w} at character {}",
                                start + 1
                            ));
                        }
                        Node::Wkt(self.text[start..end].to_owned())
                    }
                    _ => Node::Prop(word),
                }
            }
        })
    }
}

pub(super) fn parse_text(text: &str) -> Result<Node, FilterError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return fail("is empty");
    }
    let mut p = Parser {
        text,
        toks,
        pos: 0,
        depth: 0,
    };
    let node = p.or()?;
    if p.pos < p.toks.len() {
        return fail(format!("unexpected text at {}", p.at()));
    }
    Ok(node)
}

// ---------------------------------------------------------------------------------------
// cql2-json
// ---------------------------------------------------------------------------------------

/// Reads a parsed `cql2-json` value. The caller has bounded its nesting (see
/// [`crate::model::json_depth`]), and with it this recursion.
pub(super) fn parse_json(v: &serde_json::Value) -> Result<Node, FilterError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Node::Null,
        J::Bool(b) => Node::Bool(*b),
        J::Number(n) => Node::Num(n.as_f64().unwrap_or(f64::NAN)),
        J::String(s) => Node::Str(s.clone()),
        J::Array(_) => return fail(format!("a bare array {v} is not an expression")),
        J::Object(o) => {
            if let Some(p) = o.get("property") {
                Node::Prop(
                    p.as_str()
                        .ok_or_else(|| FilterError("property must be a string".into()))?
                        .to_owned(),
                )
            } else if let Some(t) = o.get("timestamp") {
                Node::Timestamp(t.as_str().unwrap_or_default().to_owned())
            } else if let Some(d) = o.get("date") {
                Node::Date(d.as_str().unwrap_or_default().to_owned())
            } else if let Some(i) = o.get("interval") {
                match i.as_array().map(|a| a.as_slice()) {
                    Some([a, b]) => {
                        Node::Interval(Box::new(parse_json(a)?), Box::new(parse_json(b)?))
                    }
                    _ => return fail("interval needs two values"),
                }
            } else if let Some(b) = o.get("bbox") {
                Node::Bbox(
                    b.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|n| n.as_f64())
                        .collect(),
                )
            } else if o.contains_key("type") && o.contains_key("coordinates") {
                Node::GeoJson(v.clone())
            } else if let Some(op) = o.get("op").and_then(|o| o.as_str()) {
                let args = o
                    .get("args")
                    .and_then(|a| a.as_array())
                    .ok_or_else(|| FilterError(format!("operation {op:?} needs an args array")))?;
                let mut parsed = Vec::with_capacity(args.len());
                for a in args {
                    parsed.push(match a {
                        J::Array(list) if op == "in" => Node::Op(
                            "list".into(),
                            list.iter().map(parse_json).collect::<Result<_, _>>()?,
                        ),
                        other => parse_json(other)?,
                    });
                }
                Node::Op(op.to_ascii_lowercase().replace("isnull", "isNull"), parsed)
            } else {
                return fail(format!("{v} is not a CQL2 expression"));
            }
        }
    })
}
