//! Matching of item names and string values: the operators of `sht_match_name`,
//! `sht_rm_name`/`sht_rm_value` and the patterns of `sht_cn` / `$shtcn` (Kamailio ht_api.c
//! `ht_match_cell_op_str`, `ht_rm_cell_op`, `ht_rm_cell_re`, `ht_count_cells_re`).

use regex::Regex;

use super::table::Item;

/// A comparison against a name or a string value.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal.
    Eq(String),
    /// Not equal.
    Ne(String),
    /// Starts with.
    Sw(String),
    /// Ends with.
    Ew(String),
    /// Contains.
    In(String),
    /// Regular expression (POSIX extended, case-insensitive, as Kamailio's `regcomp` flags).
    Re(Regex),
}

/// Why an operator could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Not one of the operators this function takes.
    #[error("unsupported match operator: {0}")]
    Unknown(String),
    /// An empty match value (Kamailio rejects it).
    #[error("empty match value")]
    Empty,
    /// The regular expression does not compile.
    #[error("bad re {0}")]
    Regex(String),
}

/// What a matcher looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The item name.
    Name,
    /// The string value (int items never match).
    Value,
}

/// Compile a regex with Kamailio's flags (REG_EXTENDED | REG_ICASE | REG_NEWLINE).
pub fn regex(s: &str) -> Result<Regex, OpError> {
    regex::RegexBuilder::new(s)
        .case_insensitive(true)
        .multi_line(true)
        .build()
        .map_err(|_| OpError::Regex(s.to_string()))
}

impl Matcher {
    /// `sht_match_name` / `sht_match_str_value` operators: eq, ne, re, sw.
    pub fn for_match(op: &str, v: &str) -> Result<Matcher, OpError> {
        if v.is_empty() {
            return Err(OpError::Empty);
        }
        Ok(match op {
            "eq" => Matcher::Eq(v.into()),
            "ne" => Matcher::Ne(v.into()),
            "sw" => Matcher::Sw(v.into()),
            "re" => Matcher::Re(regex(v)?),
            _ => return Err(OpError::Unknown(op.into())),
        })
    }

    /// `sht_rm_name` / `sht_rm_value` operators: re, sw, ew, in.
    pub fn for_rm(op: &str, v: &str) -> Result<Matcher, OpError> {
        if v.is_empty() {
            return Err(OpError::Empty);
        }
        Ok(match op {
            "re" => Matcher::Re(regex(v)?),
            "sw" => Matcher::Sw(v.into()),
            "ew" => Matcher::Ew(v.into()),
            "in" => Matcher::In(v.into()),
            _ => return Err(OpError::Unknown(op.into())),
        })
    }

    /// Whether `s` matches.
    pub fn test(&self, s: &str) -> bool {
        match self {
            Matcher::Eq(v) => s == v,
            Matcher::Ne(v) => s != v,
            Matcher::Sw(v) => s.starts_with(v.as_str()),
            Matcher::Ew(v) => s.ends_with(v.as_str()),
            Matcher::In(v) => s.contains(v.as_str()),
            Matcher::Re(r) => r.is_match(s),
        }
    }

    /// Whether the item's name or string value matches.
    pub fn test_item(&self, it: &Item, t: Target) -> bool {
        match t {
            Target::Name => self.test(it.key()),
            Target::Value => it.str_value().is_some_and(|s| self.test(s)),
        }
    }
}

/// A counting pattern (`sht_cn`, `$shtcn`, `$shtcv`).
#[derive(Debug, Clone)]
pub enum Count {
    /// `**`: every item.
    All,
    /// `eq<n>`: int values equal to n (values only).
    IntEq(i64),
    /// Names or string values that match.
    Match(Matcher),
    /// Counts nothing (an empty pattern, a bad regex, `eq` on names).
    Nothing,
}

impl Count {
    /// Parse a pattern with its two-character operator prefix, as `ht_count_cells_re`:
    /// `~~re` regex, `~%s` ends with, `%~s` starts with, `==s` equal, `eqN` int equal, `**` all;
    /// without a known prefix the whole text is a regex.
    pub fn parse(pat: &str, t: Target) -> Count {
        if pat.is_empty() {
            return Count::Nothing;
        }
        let (op, rest) = match pat.get(..2) {
            Some(p @ ("~~" | "~%" | "%~" | "==" | "eq" | "**")) => (p, &pat[2..]),
            _ => ("", pat),
        };
        if op == "**" {
            return Count::All;
        }
        if !op.is_empty() && rest.is_empty() {
            return Count::Nothing;
        }
        match op {
            "~%" => Count::Match(Matcher::Ew(rest.into())),
            "%~" => Count::Match(Matcher::Sw(rest.into())),
            "==" => Count::Match(Matcher::Eq(rest.into())),
            "eq" if t == Target::Name => Count::Nothing,
            // str2sint: a bad number counts items equal to 0.
            "eq" => Count::IntEq(rest.trim().parse().unwrap_or(0)),
            _ => regex(rest).map_or(Count::Nothing, |r| Count::Match(Matcher::Re(r))),
        }
    }

    /// Whether the item counts.
    pub fn test_item(&self, it: &Item, t: Target) -> bool {
        match self {
            Count::All => true,
            Count::IntEq(n) => it.int_value() == Some(*n),
            Count::Match(m) => m.test_item(it, t),
            Count::Nothing => false,
        }
    }

    /// `sht_cn(tbl, op, pattern)`: the operator is given apart (empty: regex).
    pub fn from_op(op: &str, pattern: &str, t: Target) -> Option<Count> {
        match op.len() {
            0 => Some(Count::parse(&format!("~~{pattern}"), t)),
            2 => Some(Count::parse(&format!("{op}{pattern}"), t)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::htable::spec::parse;
    use crate::modules::htable::table::{SetVal, Table};

    fn table() -> Table {
        let t = Table::new(parse("t=>size=4").unwrap());
        t.set("alice@example.com", SetVal::Str("secret"), 0);
        t.set("bob@example.org", SetVal::Str("Hunter2"), 0);
        t.set("carol@example.com", SetVal::Int(5), 0);
        t
    }

    #[test]
    fn match_ops() {
        let t = table();
        let any = |op: &str, v: &str, tg| {
            let m = Matcher::for_match(op, v).unwrap();
            t.any(|it| m.test_item(it, tg))
        };
        assert!(any("eq", "bob@example.org", Target::Name));
        assert!(!any("eq", "bob", Target::Name));
        assert!(any("ne", "bob@example.org", Target::Name));
        assert!(any("sw", "car", Target::Name));
        assert!(!any("sw", "example", Target::Name));
        assert!(
            any("re", "^ALICE@.*\\.com$", Target::Name),
            "case-insensitive"
        );
        assert!(any("eq", "secret", Target::Value));
        assert!(!any("eq", "5", Target::Value), "int values are not strings");
        assert!(any("re", "hunter[0-9]", Target::Value));
        assert!(matches!(
            Matcher::for_match("ew", "x"),
            Err(OpError::Unknown(_))
        ));
        assert!(matches!(Matcher::for_match("eq", ""), Err(OpError::Empty)));
        assert!(matches!(
            Matcher::for_match("re", "("),
            Err(OpError::Regex(_))
        ));
    }

    #[test]
    fn rm_ops() {
        let rm = |op: &str, v: &str, tg| {
            let t = table();
            let m = Matcher::for_rm(op, v).unwrap();
            t.remove_where(|it| m.test_item(it, tg))
        };
        assert_eq!(rm("sw", "alice", Target::Name), 1);
        assert_eq!(rm("ew", ".com", Target::Name), 2);
        assert_eq!(rm("in", "@example.", Target::Name), 3);
        assert_eq!(rm("re", "^(alice|bob)", Target::Name), 2);
        assert_eq!(rm("in", "cre", Target::Value), 1);
        assert_eq!(rm("ew", "2", Target::Value), 1);
        assert!(Matcher::for_rm("eq", "x").is_err());
    }

    #[test]
    fn count_patterns() {
        let t = table();
        let cn = |p: &str, tg| {
            let c = Count::parse(p, tg);
            t.count(|it| c.test_item(it, tg))
        };
        assert_eq!(cn("**", Target::Name), 3);
        assert_eq!(cn("~~example\\.com$", Target::Name), 2);
        assert_eq!(cn("example", Target::Name), 3, "no prefix: regex");
        assert_eq!(cn("~%.org", Target::Name), 1);
        assert_eq!(cn("%~bob", Target::Name), 1);
        assert_eq!(cn("==bob@example.org", Target::Name), 1);
        assert_eq!(cn("eq5", Target::Name), 0, "int match only on values");
        assert_eq!(cn("eq5", Target::Value), 1);
        assert_eq!(cn("==secret", Target::Value), 1);
        assert_eq!(cn("~~", Target::Name), 0);
        assert_eq!(cn("", Target::Name), 0);
        assert!(Count::from_op("xyz", "a", Target::Name).is_none());
        let c = Count::from_op("", "^bob", Target::Name).unwrap();
        assert_eq!(t.count(|it| c.test_item(it, Target::Name)), 1);
    }
}
