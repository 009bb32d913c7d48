use super::error::ParseError;
use super::lex::{
    find_param, is_lws, lossy, parse_params, quoted_end, scan_params, skip_lws, trimmed, Params,
};
use super::uri::{RawUri, Uri};

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
        NameAddr::scan(v).map(|r| r.build())
    }

    /// Checks a value's syntax exactly as `parse` does, without allocating.
    pub(crate) fn scan(v: &[u8]) -> Result<RawNameAddr<'_>, ParseError> {
        let v = trimmed(v);
        if v.is_empty() {
            return Err(err("empty value"));
        }
        let (display, uri_bytes, after) = if v[0] == b'"' {
            let qe = quoted_end(v, 0).ok_or_else(|| err("unterminated quoted display name"))?;
            let lt = skip_lws(v, qe);
            if v.get(lt) != Some(&b'<') {
                return Err(err("missing '<' after display name"));
            }
            let gt = memchr::memchr(b'>', &v[lt..]).ok_or_else(|| err("missing '>'"))? + lt;
            (Some(&v[1..qe - 1]), &v[lt + 1..gt], gt + 1)
        } else if let Some(lt) = memchr::memchr(b'<', v) {
            let gt = memchr::memchr(b'>', &v[lt..]).ok_or_else(|| err("missing '>'"))? + lt;
            // Unquoted display names with non-token characters (RFC 4475 baddn) are accepted as written.
            let d = trimmed(&v[..lt]);
            let display = if d.is_empty() { None } else { Some(d) };
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
        let uri = Uri::scan(uri_bytes)?;
        let mut tag = None;
        let mut seen_tag = false;
        let end = scan_params(v, after, |p| {
            if !seen_tag && v[p.name_start..p.name_end].eq_ignore_ascii_case(b"tag") {
                seen_tag = true;
                tag = p.value.map(|(s, e)| &v[s..e]);
            }
        })
        .map_err(err)?;
        if skip_lws(v, end) != v.len() {
            return Err(err("unexpected characters"));
        }
        Ok(RawNameAddr {
            display,
            uri,
            uri_bytes,
            v,
            after,
            tag,
        })
    }
}

/// A syntax-checked name-addr that borrows its parts; `build` makes the `NameAddr`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawNameAddr<'a> {
    display: Option<&'a [u8]>,
    uri: RawUri<'a>,
    uri_bytes: &'a [u8],
    /// The trimmed value and where its header parameters start.
    v: &'a [u8],
    after: usize,
    /// Value of the first `tag` parameter (None when absent or valueless), as `NameAddr::tag`.
    pub tag: Option<&'a [u8]>,
}

impl RawNameAddr<'_> {
    pub(crate) fn build(&self) -> NameAddr {
        let mut params = Vec::new();
        // Already checked by `scan`, so this cannot fail.
        let _ = parse_params(self.v, self.after, &mut params);
        NameAddr {
            display: self.display.map(lossy),
            uri: self.uri.build(),
            uri_text: lossy(self.uri_bytes),
            params,
        }
    }
}
