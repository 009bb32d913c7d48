//! Pseudo-variable names (`$ru`, `$hdr(X)`, `$(avp(a)[1])`), parsed once and cached.

use std::collections::HashMap;
use std::sync::Arc as Rc;

use crate::modules::htable::pv::{parse_name as sht_name, ShtName, ShtPv};
use crate::modules::registrar::fetch::{parse_name as ulc_name, UlcName};
pub use crate::modules::sqlops::result::DbrName;

/// A parsed pseudo-variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pv {
    Ru,
    RUser,
    RDomain,
    RPort,
    RScheme,
    RTransport,
    OrigRu,
    OrigRUser,
    OrigRDomain,
    Du,
    Method,
    SrcIp,
    SrcPort,
    SrcUri,
    RcvIp,
    RcvPort,
    Proto,
    FromUri,
    FromUser,
    FromDomain,
    FromName,
    FromTag,
    ToUri,
    ToUser,
    ToDomain,
    ToName,
    ToTag,
    CallId,
    Contact,
    CSeqNum,
    CSeqHdr,
    UserAgent,
    Server,
    Status,
    Reason,
    Body,
    BodyLen,
    Msg,
    MsgLen,
    Ts,
    TsNow,
    BranchIdx,
    /// `$T_reply_code`.
    TReplyCode,
    /// `$Au`: auth user@realm, else From user@host.
    AcctUsername,
    /// `$AU`: auth user, else From user.
    AcctUser,
    /// `$T_reply_reason`.
    TReplyReason,
    Flags,
    BFlags,
    MsgId,
    AuthUser,
    AuthRealm,
    /// `$adu`: the digest uri.
    AuthUri,
    AuthDomain,
    /// `$aU`: the whole username of the credentials (user@domain).
    AuthUsername,
    Hdr(String),
    HdrCount(String),
    Var(String),
    Avp(String, Option<usize>),
    Def(String),
    /// `$null`.
    Null,
    /// `$sht(t=>k)` and friends (htable): what to do, table and key.
    Sht(ShtPv, Box<ShtName>),
    /// `$shtitkey(it)` (true) / `$shtitval(it)` (false): the item of an htable iterator.
    ShtIt(bool, String),
    /// `$ulc(profile=>attr)` (registrar reg_fetch_contacts) with the contact index.
    Ulc(Box<UlcName>, Option<usize>),
    /// `$xavp(name[idx]=>key[kidx])`.
    Xavp(Box<XavpName>),
    /// `$dbr(res=>...)` (sqlops result containers).
    Dbr(Box<DbrName>),
    /// `$gip2(container=>key)` (geoip2 match results).
    Gip2(Box<crate::modules::geoip2::Gip2Name>),
}

/// `$xavp(name[idx]=>key[kidx])`: item `idx` (0 = newest) of `name`, and optionally the
/// `kidx`-th field `key` of that row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XavpName {
    /// xavp name.
    pub name: String,
    /// Item index (0 = newest).
    pub idx: usize,
    /// Field name of a row.
    pub key: Option<String>,
    /// Index among the fields called `key`.
    pub kidx: usize,
}

/// `name` or `name[i]`.
fn indexed(s: &str) -> Option<(String, usize)> {
    let s = s.trim();
    let (n, i) = match s.find('[') {
        Some(b) if s.ends_with(']') => (&s[..b], s[b + 1..s.len() - 1].trim().parse().ok()?),
        Some(_) => return None,
        None => (s, 0),
    };
    let n = n.trim();
    let ok = !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    ok.then(|| (n.to_string(), i))
}

/// Parse the inside of `$xavp(...)`.
pub fn parse_xavp_name(s: &str) -> Option<XavpName> {
    let (n, k) = match s.split_once("=>") {
        Some((n, k)) => (n, Some(indexed(k)?)),
        None => (s, None),
    };
    let (name, idx) = indexed(n)?;
    let (key, kidx) = match k {
        Some((k, i)) => (Some(k), i),
        None => (None, 0),
    };
    Some(XavpName {
        name,
        idx,
        key,
        kidx,
    })
}

/// Why a name did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid pseudo-variable {0:?}")]
pub struct PvNameError(pub String);

/// Parse `"$fU"`, `"$hdr(User-Agent)"`, `"$(avp(x)[2])"`.
pub fn parse(name: &str) -> Result<Pv, PvNameError> {
    let bad = || PvNameError(name.to_string());
    let s = name.trim().strip_prefix('$').ok_or_else(bad)?;
    // $(name(inner)[idx]) form.
    let (s, idx) = if let Some(inner) = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        match inner.rfind('[') {
            Some(b) if inner.ends_with(']') => {
                let i: usize = inner[b + 1..inner.len() - 1]
                    .trim()
                    .parse()
                    .map_err(|_| bad())?;
                (&inner[..b], Some(i))
            }
            _ => (inner, None),
        }
    } else {
        (s, None)
    };
    let (base, arg) = match s.find('(') {
        Some(p) if s.ends_with(')') => (&s[..p], Some(s[p + 1..s.len() - 1].trim().to_string())),
        Some(_) => return Err(bad()),
        None => (s, None),
    };
    let pv = match (base, arg) {
        ("ru", None) => Pv::Ru,
        ("rU", None) => Pv::RUser,
        ("rd", None) => Pv::RDomain,
        ("rp", None) => Pv::RPort,
        ("rz", None) => Pv::RScheme,
        ("rP", None) => Pv::RTransport,
        ("ou", None) => Pv::OrigRu,
        ("oU", None) => Pv::OrigRUser,
        ("od", None) => Pv::OrigRDomain,
        ("du", None) => Pv::Du,
        ("rm", None) => Pv::Method,
        ("si", None) => Pv::SrcIp,
        ("sp", None) => Pv::SrcPort,
        ("su", None) => Pv::SrcUri,
        ("Ri", None) => Pv::RcvIp,
        ("Rp", None) => Pv::RcvPort,
        ("pr" | "proto", None) => Pv::Proto,
        ("fu" | "from", None) => Pv::FromUri,
        ("fU", None) => Pv::FromUser,
        ("fd", None) => Pv::FromDomain,
        ("fn", None) => Pv::FromName,
        ("ft", None) => Pv::FromTag,
        ("tu" | "to", None) => Pv::ToUri,
        ("tU", None) => Pv::ToUser,
        ("td", None) => Pv::ToDomain,
        ("tn", None) => Pv::ToName,
        ("tt", None) => Pv::ToTag,
        ("ci", None) => Pv::CallId,
        ("ct", None) => Pv::Contact,
        ("cs", None) => Pv::CSeqNum,
        ("csb", None) => Pv::CSeqHdr,
        ("ua", None) => Pv::UserAgent,
        ("sv" | "server", None) => Pv::Server,
        ("rs", None) => Pv::Status,
        ("rr", None) => Pv::Reason,
        ("rb", None) => Pv::Body,
        ("cl", None) => Pv::BodyLen,
        ("mb", None) => Pv::Msg,
        ("ml", None) => Pv::MsgLen,
        ("mi", None) => Pv::MsgId,
        ("Ts", None) => Pv::Ts,
        ("TS", None) => Pv::TsNow,
        ("T_branch_idx", None) => Pv::BranchIdx,
        ("T_reply_code", None) => Pv::TReplyCode,
        ("T_reply_reason", None) => Pv::TReplyReason,
        ("mf" | "flags", None) => Pv::Flags,
        ("bf", None) => Pv::BFlags,
        ("au", None) => Pv::AuthUser,
        ("ar", None) => Pv::AuthRealm,
        // pv.c: $aU is the whole username, $adu the digest uri.
        ("aU", None) => Pv::AuthUsername,
        ("adu", None) => Pv::AuthUri,
        ("ad", None) => Pv::AuthDomain,
        // pv_core.c pv_get_acc_username / pv_get_acc_user: credentials, else the From URI.
        ("Au", None) => Pv::AcctUsername,
        ("AU", None) => Pv::AcctUser,
        ("null", None) => Pv::Null,
        ("hdr", Some(a)) if !a.is_empty() => Pv::Hdr(a),
        ("hdrc", Some(a)) if !a.is_empty() => Pv::HdrCount(a),
        ("var", Some(a)) if !a.is_empty() => Pv::Var(a),
        ("avp", Some(a)) if !a.is_empty() => Pv::Avp(a.trim_start_matches("s:").to_string(), idx),
        ("def", Some(a)) if !a.is_empty() => Pv::Def(a),
        ("sht", Some(a)) => Pv::Sht(ShtPv::Val, Box::new(sht_name(&a).ok_or_else(bad)?)),
        ("shtex", Some(a)) => Pv::Sht(ShtPv::Expire, Box::new(sht_name(&a).ok_or_else(bad)?)),
        ("shtinc", Some(a)) => Pv::Sht(ShtPv::Inc, Box::new(sht_name(&a).ok_or_else(bad)?)),
        ("shtdec", Some(a)) => Pv::Sht(ShtPv::Dec, Box::new(sht_name(&a).ok_or_else(bad)?)),
        ("shtcn", Some(a)) => Pv::Sht(ShtPv::CountName, Box::new(sht_name(&a).ok_or_else(bad)?)),
        ("shtcv", Some(a)) => Pv::Sht(ShtPv::CountValue, Box::new(sht_name(&a).ok_or_else(bad)?)),
        ("shtitkey", Some(a)) if !a.is_empty() => Pv::ShtIt(true, a),
        ("shtitval", Some(a)) if !a.is_empty() => Pv::ShtIt(false, a),
        ("ulc", Some(a)) => Pv::Ulc(Box::new(ulc_name(&a).ok_or_else(bad)?), idx),
        ("xavp", Some(a)) => {
            let mut x = parse_xavp_name(&a).ok_or_else(bad)?;
            // $(xavp(n)[i]) is $xavp(n[i]).
            if let Some(i) = idx {
                if x.key.is_some() || x.idx != 0 {
                    return Err(bad());
                }
                x.idx = i;
            }
            return Ok(Pv::Xavp(Box::new(x)));
        }
        ("dbr", Some(a)) => Pv::Dbr(Box::new(DbrName::parse(&a).ok_or_else(bad)?)),
        ("gip2", Some(a)) => Pv::Gip2(Box::new(
            crate::modules::geoip2::Gip2Name::parse(&a).ok_or_else(bad)?,
        )),
        _ => return Err(bad()),
    };
    if idx.is_some() && !matches!(pv, Pv::Avp(..) | Pv::Ulc(..)) {
        return Err(bad());
    }
    Ok(pv)
}

/// Parsed names by text; bounded so scripts that build names dynamically cannot grow it forever
/// (Kamailio leaks one spec per distinct name, kemi-spec §1.9 #5).
#[derive(Default)]
pub struct PvCache {
    map: HashMap<String, Rc<Pv>>,
}

const CACHE_MAX: usize = 8192;

impl PvCache {
    /// Parsed spec for `name` (cached).
    pub fn get(&mut self, name: &str) -> Result<Rc<Pv>, PvNameError> {
        if let Some(p) = self.map.get(name) {
            return Ok(p.clone());
        }
        let p = Rc::new(parse(name)?);
        if self.map.len() >= CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(name.to_string(), p.clone());
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse("$ru").unwrap(), Pv::Ru);
        assert_eq!(
            parse("$hdr(User-Agent)").unwrap(),
            Pv::Hdr("User-Agent".into())
        );
        assert_eq!(parse("$(avp(x)[2])").unwrap(), Pv::Avp("x".into(), Some(2)));
        assert_eq!(parse("$avp(s:x)").unwrap(), Pv::Avp("x".into(), None));
        assert!(parse("ru").is_err());
        assert!(parse("$nosuch").is_err());
        assert!(parse("$hdr(").is_err());
        let x = |name: &str, idx, key: Option<&str>, kidx| {
            Pv::Xavp(Box::new(XavpName {
                name: name.into(),
                idx,
                key: key.map(String::from),
                kidx,
            }))
        };
        assert_eq!(parse("$xavp(r)").unwrap(), x("r", 0, None, 0));
        assert_eq!(parse("$xavp(r[2]=>ip)").unwrap(), x("r", 2, Some("ip"), 0));
        assert_eq!(parse("$xavp(r=>ip[1])").unwrap(), x("r", 0, Some("ip"), 1));
        assert_eq!(parse("$(xavp(r)[3])").unwrap(), x("r", 3, None, 0));
        assert!(parse("$xavp(=>ip)").is_err());
        assert!(parse("$xavp(r=>)").is_err());
    }
}
