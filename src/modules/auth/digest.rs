//! Digest credentials (RFC 7616 §3.4, RFC 2617): parsing an Authorization / Proxy-Authorization
//! value and computing the expected response with MD5 or SHA-256 (and their `-sess` forms).

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Hash algorithm of a digest exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// MD5 (the default when `algorithm` is absent).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256.
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

impl Alg {
    /// Parse an `algorithm` value (case-insensitive).
    pub fn parse(s: &str) -> Option<Alg> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Alg::Md5),
            "MD5-SESS" => Some(Alg::Md5Sess),
            "SHA-256" => Some(Alg::Sha256),
            "SHA-256-SESS" => Some(Alg::Sha256Sess),
            _ => None,
        }
    }

    /// The name used in challenges.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Md5Sess => "MD5-sess",
            Alg::Sha256 => "SHA-256",
            Alg::Sha256Sess => "SHA-256-sess",
        }
    }

    /// True for the `-sess` variants.
    pub fn sess(self) -> bool {
        matches!(self, Alg::Md5Sess | Alg::Sha256Sess)
    }

    /// Length of a hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            Alg::Md5 | Alg::Md5Sess => 32,
            Alg::Sha256 | Alg::Sha256Sess => 64,
        }
    }

    /// Lower-case hex digest of the parts joined by ':'.
    pub fn hash(self, parts: &[&[u8]]) -> String {
        fn run<D: md5::Digest>(mut d: D, parts: &[&[u8]]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Alg::Md5 | Alg::Md5Sess => run(Md5::new(), parts),
            Alg::Sha256 | Alg::Sha256Sess => run(Sha256::new(), parts),
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// Parsed Digest credentials; values are unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`.
    pub uri: String,
    /// `response`.
    pub response: String,
    /// `algorithm` as written, if present.
    pub algorithm: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `opaque`.
    pub opaque: Option<String>,
    /// `qop`.
    pub qop: Option<String>,
    /// `nc` (8 hex digits).
    pub nc: Option<String>,
}

impl Credentials {
    /// Parse a header value `Digest k=v, k="v", ...`; None if it is not Digest or lacks a
    /// required parameter (username, realm, nonce, uri, response).
    pub fn parse(v: &str) -> Option<Credentials> {
        let v = v.trim_start();
        let (scheme, rest) = v.split_at(v.find(|c: char| c.is_ascii_whitespace())?);
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut c = Credentials::default();
        let (mut have_user, mut have_realm, mut have_nonce, mut have_uri, mut have_resp) =
            (false, false, false, false, false);
        for (k, val) in params(rest)? {
            match k.to_ascii_lowercase().as_str() {
                "username" => {
                    c.username = val;
                    have_user = true;
                }
                "realm" => {
                    c.realm = val;
                    have_realm = true;
                }
                "nonce" => {
                    c.nonce = val;
                    have_nonce = true;
                }
                "uri" => {
                    c.uri = val;
                    have_uri = true;
                }
                "response" => {
                    c.response = val;
                    have_resp = true;
                }
                "algorithm" => c.algorithm = Some(val),
                "cnonce" => c.cnonce = Some(val),
                "opaque" => c.opaque = Some(val),
                "qop" => c.qop = Some(val),
                "nc" => c.nc = Some(val),
                _ => {}
            }
        }
        (have_user && have_realm && have_nonce && have_uri && have_resp).then_some(c)
    }

    /// The algorithm (MD5 when absent); None when unsupported.
    pub fn alg(&self) -> Option<Alg> {
        match &self.algorithm {
            None => Some(Alg::Md5),
            Some(a) => Alg::parse(a),
        }
    }

    /// The response a client knowing `ha1` computes for `method` (and `body` for auth-int).
    pub fn expected_response(&self, alg: Alg, ha1: &str, method: &str, body: &[u8]) -> String {
        let ha1 = if alg.sess() {
            alg.hash(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                self.cnonce.as_deref().unwrap_or("").as_bytes(),
            ])
        } else {
            ha1.to_string()
        };
        let qop = self.qop.as_deref().unwrap_or("");
        let ha2 = if qop.eq_ignore_ascii_case("auth-int") {
            let hb = alg.hash(&[body]);
            alg.hash(&[method.as_bytes(), self.uri.as_bytes(), hb.as_bytes()])
        } else {
            alg.hash(&[method.as_bytes(), self.uri.as_bytes()])
        };
        if qop.is_empty() {
            alg.hash(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()])
        } else {
            alg.hash(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                self.nc.as_deref().unwrap_or("").as_bytes(),
                self.cnonce.as_deref().unwrap_or("").as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ])
        }
    }
}

/// HA1 = H(username:realm:password).
pub fn ha1(alg: Alg, user: &str, realm: &str, password: &str) -> String {
    alg.hash(&[user.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// Split `k=v, k="v"` (quoted strings may hold commas and backslash escapes).
fn params(s: &str) -> Option<Vec<(String, String)>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s.get(ks..i)?.to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            // A bare token without value: ignore it.
            out.push((key, String::new()));
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut closed = false;
            let start = i;
            let mut raw = Vec::new();
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        raw.push(b[i + 1]);
                        i += 2;
                    }
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        raw.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return None;
            }
            let _ = start;
            val = String::from_utf8(raw).ok()?;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            val.push_str(s.get(vs..i)?);
        }
        out.push((key, val));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5: Mufasa / Circle Of Life.
        let c = Credentials::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let h = ha1(Alg::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(c.expected_response(Alg::Md5, &h, "GET", b""), c.response);
    }

    #[test]
    fn rfc7616_sha256_example_response() {
        // RFC 7616 §3.9.1 (SHA-256): Mufasa / Circle of Life.
        let c = Credentials::parse(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let alg = c.alg().unwrap();
        assert_eq!(alg, Alg::Sha256);
        let h = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(c.expected_response(alg, &h, "GET", b""), c.response);
    }

    #[test]
    fn quoted_commas_escapes_and_missing_fields() {
        let c = Credentials::parse(
            r#"Digest username="a\"b", realm="r,1", nonce="n", uri="sip:x;a=1,b", response="00""#,
        )
        .unwrap();
        assert_eq!(c.username, "a\"b");
        assert_eq!(c.realm, "r,1");
        assert_eq!(c.uri, "sip:x;a=1,b");
        assert!(Credentials::parse(r#"Digest username="a", realm="r""#).is_none());
        assert!(Credentials::parse(r#"Basic dXNlcjpwYXNz"#).is_none());
        assert!(Credentials::parse(r#"Digest username="unterminated"#).is_none());
        assert_eq!(
            Credentials::parse(r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=SHA-512"#)
                .unwrap()
                .alg(),
            None
        );
    }
}
