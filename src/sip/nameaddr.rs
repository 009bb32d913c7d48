use super::error::ParseError;
use super::lex::{find_param, is_lws, lossy, parse_params, quoted_end, skip_lws, trimmed, Params};
use super::uri::Uri;

/// From/To/Contact-style value: optional display name, URI, header parameters.
#[derive(Clone, Debug)]
pub struct NameAddr {
    /// Display name without the surrounding quotes (quoted-pairs kept as written).
    pub display: Option<String>,
    pub uri: Uri,
    /// The URI as written.
    pub uri_text: String,
    /// Header parameters (after '>', or after a bare addr-spec: RFC 3261 §20.10).
    pub params: Params,
}

/// Contact header set.
#[derive(Clone, Debug)]
pub enum Contacts {
    Star,
    List(Vec<NameAddr>),
}

fn err(why: &'static str) -> ParseError {
    ParseError::BadValue("name-addr", why)
}

impl NameAddr {
    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// Header parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Parses one name-addr or addr-spec with header parameters.
    pub fn parse(v: &[u8]) -> Result<NameAddr, ParseError> {
        let v = trimmed(v);
        if v.is_empty() {
            return Err(err("empty value"));
        }
        let (display, uri_bytes, after) = if v[0] == b'"' {
            let qe = quoted_end(v, 0).ok_or(err("unterminated quoted display name"))?;
            let lt = skip_lws(v, qe);
            if v.get(lt) != Some(&b'<') {
                return Err(err("missing '<' after display name"));
            }
            let gt = v[lt..]
                .iter()
                .position(|&c| c == b'>')
                .ok_or(err("missing '>'"))?
                + lt;
            (Some(lossy(&v[1..qe - 1])), &v[lt + 1..gt], gt + 1)
        } else if let Some(lt) = v.iter().position(|&c| c == b'<') {
            let gt = v[lt..]
                .iter()
                .position(|&c| c == b'>')
                .ok_or(err("missing '>'"))?
                + lt;
            // Unquoted display names with non-token characters (RFC 4475 baddn) are accepted as written.
            let d = trimmed(&v[..lt]);
            let display = if d.is_empty() { None } else { Some(lossy(d)) };
            (display, &v[lt + 1..gt], gt + 1)
        } else {
            // Bare addr-spec: any ';' starts header params (RFC 4475 cparam01).
            let e = v
                .iter()
                .position(|&c| c == b';' || is_lws(c))
                .unwrap_or(v.len());
            (None, &v[..e], e)
        };
        // Blanks just inside <> are tolerated (RFC 4475 badaspec).
        let uri_bytes = trimmed(uri_bytes);
        let uri = Uri::parse(uri_bytes)?;
        let mut params = Vec::new();
        let end = parse_params(v, after, &mut params, None).map_err(err)?;
        if skip_lws(v, end) != v.len() {
            return Err(err("unexpected characters"));
        }
        Ok(NameAddr {
            display,
            uri,
            uri_text: lossy(uri_bytes),
            params,
        })
    }
}
