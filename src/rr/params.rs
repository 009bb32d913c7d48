//! Parameters of our own Route URI: `check_route_param` and `is_direction` (rr/loose.c
//! check_route_param, get_route_param, is_direction).

use std::cell::RefCell;
use std::collections::HashMap;

use super::route::RouteSet;
use super::RrState;
use crate::sip::{SipMsg, Uri};

/// Which way an in-dialog request flows, seen from the dialog's caller (`RR_FLOW_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the caller towards the callee.
    Downstream,
    /// From the callee back to the caller.
    Upstream,
}

impl Direction {
    /// `"downstream"` / `"upstream"`, any case, as `is_direction()` takes them.
    pub fn parse(s: &str) -> Option<Direction> {
        if s.eq_ignore_ascii_case("downstream") {
            Some(Direction::Downstream)
        } else if s.eq_ignore_ascii_case("upstream") {
            Some(Direction::Upstream)
        } else {
            None
        }
    }
}

/// The parameters (without the leading `;`) of our Route for this request: the ones
/// `loose_route()` consumed, else those of the top Route when it is ours (redo_route_params).
/// None when the request has no Route or the top one is not ours.
pub fn routed_params(
    state: Option<&RrState>,
    msg: &SipMsg,
    is_me: &dyn Fn(&Uri) -> bool,
) -> Option<String> {
    if !msg.is_request() {
        return None;
    }
    let routes = RouteSet::parse(msg).ok()?;
    let first = routes.entries.first()?;
    if let Some(p) = state
        .and_then(|s| s.routed_params.as_deref())
        .filter(|p| !p.is_empty())
    {
        return Some(p.to_string());
    }
    is_me(&first.uri).then(|| first.params_raw().to_string())
}

/// Value of the Route parameter `name` (compared exactly, as Kamailio does); `Some("")` when
/// it has no value. Quotes around a value are removed.
pub fn param_value<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    let mut quoted = false;
    let mut start = 0;
    // A ';' sentinel at the end closes the last parameter, even inside an unbalanced quote.
    let end = std::iter::once((params.len(), ';'));
    for (i, c) in params.char_indices().chain(end) {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted || i == params.len() => {
                let part = &params[start..i];
                start = i + 1;
                let (n, v) = match part.split_once('=') {
                    Some((n, v)) => (n.trim(), v.trim()),
                    None => (part.trim(), ""),
                };
                if n == name {
                    let unquoted = v.strip_prefix('"').and_then(|x| x.strip_suffix('"'));
                    return Some(unquoted.unwrap_or(v));
                }
            }
            _ => {}
        }
    }
    None
}

/// The flow direction: upstream when our Route's `ftag` differs from the From tag; downstream
/// when they match or either is missing (loose.c is_direction).
pub fn direction(routed_params: Option<&str>, from_tag: Option<&str>) -> Direction {
    let ftag = routed_params.and_then(|p| param_value(p, "ftag"));
    match (ftag, from_tag) {
        (Some(f), Some(t)) if !f.is_empty() && !t.is_empty() && f != t => Direction::Upstream,
        _ => Direction::Downstream,
    }
}

thread_local! {
    /// Compiled `check_route_param` expressions: scripts pass the same few literals every time.
    static REGEXES: RefCell<HashMap<String, regex::Regex>> = RefCell::new(HashMap::new());
}

/// Bound on cached expressions per worker (a script building them dynamically must not grow it).
const REGEX_CACHE_MAX: usize = 64;

/// Whether `;params` matches `re`, POSIX-extended style as Kamailio compiles it
/// (REG_EXTENDED | REG_ICASE | REG_NEWLINE: case-insensitive, `^`/`$` per line).
pub fn params_match(re: &str, params: &str) -> Result<bool, regex::Error> {
    let text = format!(";{params}");
    REGEXES.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(r) = c.get(re) {
            return Ok(r.is_match(&text));
        }
        let r = regex::RegexBuilder::new(re)
            .case_insensitive(true)
            .multi_line(true)
            .build()?;
        let m = r.is_match(&text);
        if c.len() >= REGEX_CACHE_MAX {
            c.clear();
        }
        c.insert(re.to_string(), r);
        Ok(m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_values() {
        let p = "lr;ftag=abc;x = \"a;b\";flag";
        assert_eq!(param_value(p, "ftag"), Some("abc"));
        assert_eq!(param_value(p, "x"), Some("a;b"));
        assert_eq!(param_value(p, "flag"), Some(""));
        assert_eq!(param_value(p, "lr"), Some(""));
        assert_eq!(param_value(p, "nope"), None);
        assert_eq!(
            param_value(p, "FTAG"),
            None,
            "names compare exactly, as in Kamailio"
        );
    }

    #[test]
    fn direction_by_ftag() {
        assert_eq!(
            direction(Some("lr;ftag=A"), Some("A")),
            Direction::Downstream
        );
        assert_eq!(direction(Some("lr;ftag=A"), Some("B")), Direction::Upstream);
        assert_eq!(direction(Some("lr"), Some("B")), Direction::Downstream);
        assert_eq!(direction(None, Some("B")), Direction::Downstream);
        assert_eq!(direction(Some("lr;ftag=A"), None), Direction::Downstream);
    }

    #[test]
    fn regex_on_params_with_leading_semicolon() {
        assert!(params_match(";lr", "lr;ftag=x").unwrap());
        assert!(
            params_match("^;LR", "lr;ftag=x").unwrap(),
            "case-insensitive"
        );
        assert!(params_match("ftag=x$", "lr;ftag=x").unwrap());
        assert!(!params_match("foo=bar", "lr;ftag=x").unwrap());
        assert!(params_match("(", "lr").is_err());
    }
}
