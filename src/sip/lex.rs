//! Byte-level helpers shared by the typed header parsers.

/// A generic `name[=value]` parameter list as written on the wire.
pub type Params = Vec<(String, Option<String>)>;

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Linear white space inside a header value; CR/LF only occur there as folds.
#[inline]
pub(crate) fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

#[inline]
pub(crate) fn skip_lws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_lws(b[i]) {
        i += 1;
    }
    i
}

/// Offsets `(start, end)` of `b` with surrounding LWS removed.
pub(crate) fn trim_lws(b: &[u8]) -> (usize, usize) {
    let s = skip_lws(b, 0);
    let mut e = b.len();
    while e > s && is_lws(b[e - 1]) {
        e -= 1;
    }
    (s, e)
}

pub(crate) fn trimmed(b: &[u8]) -> &[u8] {
    let (s, e) = trim_lws(b);
    &b[s..e]
}

#[inline]
pub(crate) fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_token(b[i]) {
        i += 1;
    }
    i
}

/// Index just past the closing quote of the quoted-string opening at `i`.
pub(crate) fn quoted_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Calls `f(start, end)` for each part of a header value split on top-level commas (not inside
/// quotes or `<...>`); ranges are untrimmed. Unbalanced quotes run to the end.
pub(crate) fn for_each_comma<E>(
    b: &[u8],
    mut f: impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    // No comma at all: one part whatever the quoting (the usual single Via / Contact).
    if memchr::memchr(b',', b).is_none() {
        return f(0, b.len());
    }
    let mut start = 0;
    let mut i = 0;
    let mut angle = false;
    while i < b.len() {
        match b[i] {
            b'"' => match quoted_end(b, i) {
                Some(e) => {
                    i = e;
                    continue;
                }
                None => break,
            },
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => {
                f(start, i)?;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    f(start, b.len())
}

/// Owned text of `b`; invalid UTF-8 is replaced. Valid input (the usual, ASCII case) is copied once.
#[inline]
pub(crate) fn lossy(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Decimal digits only (no sign, no blanks), without overflow.
pub(crate) fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u32)?;
    }
    Some(n)
}

pub(crate) fn parse_port(b: &[u8]) -> Option<u16> {
    parse_u32(b).and_then(|n| u16::try_from(n).ok())
}

/// Case-insensitive lookup in a parameter list.
pub(crate) fn find_param<'a>(
    params: &'a [(String, Option<String>)],
    name: &str,
) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// One header parameter as offsets into the scanned bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParamAt {
    pub name_start: usize,
    pub name_end: usize,
    /// Value `(start, end)`; quoted values keep their quotes.
    pub value: Option<(usize, usize)>,
    /// Where the parameter (its value, or its name when valueless) ends.
    pub end: usize,
}

/// Scans `*( LWS ";" LWS name [ LWS "=" LWS value ] )` starting at `i` without allocating,
/// calling `f` for each parameter. Returns where it stopped; the caller decides whether
/// trailing bytes are an error.
pub(crate) fn scan_params(
    b: &[u8],
    mut i: usize,
    mut f: impl FnMut(ParamAt),
) -> Result<usize, &'static str> {
    loop {
        let j = skip_lws(b, i);
        if j >= b.len() || b[j] != b';' {
            return Ok(i);
        }
        let ns = skip_lws(b, j + 1);
        let ne = token_end(b, ns);
        if ne == ns {
            return Err("empty parameter");
        }
        let k = skip_lws(b, ne);
        let (value, end) = if k < b.len() && b[k] == b'=' {
            let vs = skip_lws(b, k + 1);
            let ve = if vs < b.len() && b[vs] == b'"' {
                quoted_end(b, vs).ok_or("unterminated quoted parameter value")?
            } else {
                let mut e = vs;
                while e < b.len()
                    && !matches!(b[e], b';' | b',' | b'"' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    e += 1;
                }
                e
            };
            if ve == vs {
                return Err("empty parameter value");
            }
            (Some((vs, ve)), ve)
        } else {
            (None, ne)
        };
        f(ParamAt {
            name_start: ns,
            name_end: ne,
            value,
            end,
        });
        i = end;
    }
}

/// Owned `(name, value)` of a scanned parameter.
#[inline]
pub(crate) fn owned_param(b: &[u8], p: &ParamAt) -> (String, Option<String>) {
    (
        lossy(&b[p.name_start..p.name_end]),
        p.value.map(|(s, e)| lossy(&b[s..e])),
    )
}

/// Like `scan_params`, collecting owned parameters into `out`.
pub(crate) fn parse_params(b: &[u8], i: usize, out: &mut Params) -> Result<usize, &'static str> {
    scan_params(b, i, |p| out.push(owned_param(b, &p)))
}
