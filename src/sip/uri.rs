use std::fmt;

use super::error::ParseError;
use super::lex::{find_param, lossy, parse_port, Params};
use super::via::host_end;

/// URI scheme.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

/// A parsed URI; sip/sips are split into parts, other schemes keep an opaque remainder.
#[derive(Clone, Debug, PartialEq)]
pub struct Uri {
    pub scheme: Scheme,
    /// User part as written (escapes are not decoded).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host as written; IPv6 keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// Everything after '?', as written.
    pub headers: Option<String>,
    /// The whole part after "scheme:" for non-sip schemes.
    pub opaque: Option<String>,
}

fn err(why: &'static str) -> ParseError {
    ParseError::Uri(why)
}

/// Bytes that can never appear in a URI on the wire (RFC 4475 ltgtruri, lwsruri).
#[inline]
fn forbidden(c: u8) -> bool {
    c <= b' ' || c == 0x7f || matches!(c, b'<' | b'>' | b'"')
}

fn split_params(s: &[u8], out: &mut Params) {
    for p in s.split(|&c| c == b';') {
        if p.is_empty() {
            continue;
        }
        match p.iter().position(|&c| c == b'=') {
            Some(eq) => out.push((lossy(&p[..eq]), Some(lossy(&p[eq + 1..])))),
            None => out.push((lossy(p), None)),
        }
    }
}

/// Scheme of a scanned URI (borrowing `Other`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawScheme<'a> {
    Sip,
    Sips,
    Tel,
    Other(&'a [u8]),
}

/// A syntax-checked URI that borrows its parts; `build` makes the `Uri`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawUri<'a> {
    pub scheme: RawScheme<'a>,
    pub user: Option<&'a [u8]>,
    pub password: Option<&'a [u8]>,
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// `;`-separated parameters (split when building).
    pub params: &'a [u8],
    pub headers: Option<&'a [u8]>,
    pub opaque: Option<&'a [u8]>,
}

impl RawUri<'_> {
    /// Builds the owned URI.
    pub(crate) fn build(&self) -> Uri {
        let mut params = Vec::new();
        split_params(self.params, &mut params);
        Uri {
            scheme: match self.scheme {
                RawScheme::Sip => Scheme::Sip,
                RawScheme::Sips => Scheme::Sips,
                RawScheme::Tel => Scheme::Tel,
                RawScheme::Other(s) => Scheme::Other(lossy(s)),
            },
            user: self.user.map(lossy),
            password: self.password.map(lossy),
            host: match self.host {
                [] => String::new(),
                h => lossy(h),
            },
            port: self.port,
            params,
            headers: self.headers.map(lossy),
            opaque: self.opaque.map(lossy),
        }
    }
}

impl Uri {
    /// Parses a URI; unknown schemes are accepted as opaque (RFC 4475 unkscm, novelsc).
    pub fn parse(s: &[u8]) -> Result<Uri, ParseError> {
        Uri::scan(s).map(|r| r.build())
    }

    /// Checks a URI's syntax exactly as `parse` does, without allocating.
    pub(crate) fn scan(s: &[u8]) -> Result<RawUri<'_>, ParseError> {
        let colon = s
            .iter()
            .position(|&c| c == b':')
            .ok_or_else(|| err("missing scheme"))?;
        let sch = &s[..colon];
        let valid_scheme = sch.first().is_some_and(u8::is_ascii_alphabetic)
            && sch
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(err("bad scheme"));
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(err("empty URI"));
        }
        // Non-short-circuiting so it vectorises; URIs are short and almost always clean.
        if rest.iter().fold(false, |bad, &c| bad | forbidden(c)) {
            return Err(err("forbidden character"));
        }
        let scheme = if sch.eq_ignore_ascii_case(b"sip") {
            RawScheme::Sip
        } else if sch.eq_ignore_ascii_case(b"sips") {
            RawScheme::Sips
        } else if sch.eq_ignore_ascii_case(b"tel") {
            RawScheme::Tel
        } else {
            RawScheme::Other(sch)
        };
        if !matches!(scheme, RawScheme::Sip | RawScheme::Sips) {
            let mut params: &[u8] = &[];
            if matches!(scheme, RawScheme::Tel) {
                if let Some(sc) = rest.iter().position(|&c| c == b';') {
                    params = &rest[sc + 1..];
                }
            }
            return Ok(RawUri {
                scheme,
                user: None,
                password: None,
                host: &[],
                port: None,
                params,
                headers: None,
                opaque: Some(rest),
            });
        }
        // '@' is not allowed unescaped after the host, so the first one ends the userinfo
        // (the user part may itself contain ';', '?', '/' — RFC 4475 semiuri, intmeth).
        let (user, password, hp) = match memchr::memchr(b'@', rest) {
            Some(at) => {
                let ui = &rest[..at];
                let (u, p) = match ui.iter().position(|&c| c == b':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(err("empty user"));
                }
                (Some(u), p, &rest[at + 1..])
            }
            None => (None, None, rest),
        };
        let he = host_end(hp, 0).map_err(err)?;
        let host = &hp[..he];
        let mut i = he;
        let mut port = None;
        if hp.get(i) == Some(&b':') {
            let ps = i + 1;
            let mut pe = ps;
            while pe < hp.len() && hp[pe].is_ascii_digit() {
                pe += 1;
            }
            // "sip:2001:db8::10" lands here with a non-numeric "port" (RFC 5118 ipv6-bad).
            port = Some(parse_port(&hp[ps..pe]).ok_or_else(|| err("bad port"))?);
            i = pe;
        }
        let mut params: &[u8] = &[];
        let mut headers = None;
        match hp.get(i) {
            None => {}
            Some(b';') | Some(b'?') => {
                let tail = &hp[i..];
                let q = tail.iter().position(|&c| c == b'?').unwrap_or(tail.len());
                params = &tail[..q];
                if q < tail.len() {
                    headers = Some(&tail[q + 1..]);
                }
            }
            Some(_) => return Err(err("bad host")),
        }
        Ok(RawUri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
            opaque: None,
        })
    }

    /// URI parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The transport parameter value.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// Set (or add) a parameter, replacing any with the same case-insensitive name.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        let v = value.map(str::to_string);
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = v,
            None => self.params.push((name.to_string(), v)),
        }
    }

    /// "host" or "host:port".
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scheme {
            Scheme::Sip => f.write_str("sip:")?,
            Scheme::Sips => f.write_str("sips:")?,
            Scheme::Tel => f.write_str("tel:")?,
            Scheme::Other(s) => write!(f, "{s}:")?,
        }
        if let Some(o) = &self.opaque {
            return f.write_str(o);
        }
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}
