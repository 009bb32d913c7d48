use super::error::ParseError;
use super::lex::{skip_lws, token_end, trimmed};
use super::method::Method;

/// CSeq header: sequence number and method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub num: u32,
    pub method: Method,
    pub method_str: String,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; numbers beyond u32 are errors (RFC 4475 scalar02/scalarlg).
    pub fn parse(v: &[u8]) -> Result<CSeq, ParseError> {
        let (num, m) = CSeq::scan(v)?;
        Ok(CSeq {
            num,
            method: Method::from_bytes(m),
            // token chars are ASCII, so this is exact.
            method_str: String::from_utf8_lossy(m).into_owned(),
        })
    }

    /// Checks a value exactly as `parse` does, without allocating: `(number, method text)`.
    pub(crate) fn scan(v: &[u8]) -> Result<(u32, &[u8]), ParseError> {
        let v = trimmed(v);
        let mut i = 0;
        let mut num: u32 = 0;
        while i < v.len() && v[i].is_ascii_digit() {
            num = num
                .checked_mul(10)
                .and_then(|n| n.checked_add((v[i] - b'0') as u32))
                .ok_or(ParseError::BadValue("CSeq", "number too large"))?;
            i += 1;
        }
        if i == 0 {
            return Err(ParseError::BadValue("CSeq", "missing number"));
        }
        let ms = skip_lws(v, i);
        if ms == i {
            return Err(ParseError::BadValue("CSeq", "missing method"));
        }
        let me = token_end(v, ms);
        if me == ms || me != v.len() {
            return Err(ParseError::BadValue("CSeq", "bad method"));
        }
        Ok((num, &v[ms..me]))
    }
}
