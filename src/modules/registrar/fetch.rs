//! `reg_fetch_contacts` / `reg_free_contacts` and `$ulc(profile=>attr)` (Kamailio
//! registrar/regpv.c): a named copy of an AoR's bindings that the script reads attribute by
//! attribute, e.g. `$(ulc(callee=>addr)[1])`.
//!
//! Profiles belong to the SIP worker, as they belong to the process in Kamailio: a profile
//! fetched while handling one message stays readable until it is fetched again or freed.

use std::cell::RefCell;
use std::collections::HashMap;

use super::aor_of;
use super::params::RegParams;
use crate::modules::pv::PvVal;
use crate::modules::usrloc::Contact;
use crate::script::ctx::RouteCtx;

/// One fetched AoR.
#[derive(Debug, Default)]
struct Profile {
    aor: String,
    domain: String,
    contacts: Vec<Contact>,
}

thread_local! {
    static PROFILES: RefCell<HashMap<String, Profile>> = RefCell::new(HashMap::new());
}

/// A contact attribute of `$ulc` (regpv.c `pv_parse_ulc_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Aor,
    Domain,
    AorHash,
    Addr,
    Path,
    Received,
    Expires,
    CallId,
    Q,
    CSeq,
    Flags,
    CFlags,
    UserAgent,
    Socket,
    Modified,
    Methods,
    Count,
    Ruid,
    RegId,
    Instance,
    ConId,
    ServerId,
}

impl Attr {
    /// The attribute of this name.
    pub fn parse(s: &str) -> Option<Attr> {
        Some(match s {
            "aor" => Attr::Aor,
            "domain" => Attr::Domain,
            "aorhash" => Attr::AorHash,
            "addr" => Attr::Addr,
            "path" => Attr::Path,
            "received" => Attr::Received,
            "expires" => Attr::Expires,
            "callid" => Attr::CallId,
            "q" => Attr::Q,
            "cseq" => Attr::CSeq,
            "flags" => Attr::Flags,
            "cflags" => Attr::CFlags,
            "user_agent" => Attr::UserAgent,
            "socket" => Attr::Socket,
            "modified" => Attr::Modified,
            "methods" => Attr::Methods,
            "count" => Attr::Count,
            "ruid" => Attr::Ruid,
            "regid" => Attr::RegId,
            "instance" => Attr::Instance,
            "conid" => Attr::ConId,
            "server_id" => Attr::ServerId,
            _ => return None,
        })
    }
}

/// `$ulc(profile=>attr)`: the profile name and the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UlcName {
    /// Profile name.
    pub profile: String,
    /// Attribute.
    pub attr: Attr,
}

/// Parse the inside of `$ulc(...)`: `profile=>attr`.
pub fn parse_name(s: &str) -> Option<UlcName> {
    let (p, a) = s.split_once("=>")?;
    let profile = p.trim();
    if profile.is_empty() {
        return None;
    }
    Some(UlcName {
        profile: profile.to_string(),
        attr: Attr::parse(a.trim())?,
    })
}

/// `reg_fetch_contacts(table, uri, profile)`: 1 when the AoR has bindings, -1 otherwise (the
/// profile is then set with no contacts).
pub fn fetch(ctx: &mut RouteCtx, table: &str, uri: &str, profile: &str) -> i64 {
    let p = RegParams::get(ctx);
    let Some(m) = ctx.request() else { return -1 };
    let Ok(aor) = aor_of(m, Some(uri), &p, false) else {
        tracing::error!(
            uri,
            "reg_fetch_contacts: failed to extract Address Of Record"
        );
        return -1;
    };
    let contacts = match ctx.core.ul.find(table).map(|d| d.get(&aor)) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            tracing::error!("reg_fetch_contacts: {e}");
            Vec::new()
        }
        None => Vec::new(),
    };
    let found = !contacts.is_empty();
    PROFILES.with(|ps| {
        ps.borrow_mut().insert(
            profile.to_string(),
            Profile {
                aor,
                domain: table.to_string(),
                contacts,
            },
        )
    });
    if found {
        1
    } else {
        -1
    }
}

/// `reg_free_contacts(profile)`: always 1 (Kamailio creates an unknown profile to free it).
pub fn free(profile: &str) -> i64 {
    PROFILES.with(|ps| ps.borrow_mut().remove(profile));
    1
}

/// `$ulc(profile=>attr)` with the contact index (negative counts as 0): `None` ($null) when
/// the profile has no contacts or the index is past the last one.
pub fn get(n: &UlcName, idx: usize) -> Option<PvVal> {
    PROFILES.with(|ps| {
        let ps = ps.borrow();
        let p = ps.get(&n.profile)?;
        let c = p.contacts.get(idx)?;
        let s = |v: &str| Some(PvVal::Str(v.to_string()));
        let opt = |v: &Option<String>| Some(PvVal::Str(v.clone().unwrap_or_default()));
        match n.attr {
            Attr::Aor => s(&p.aor),
            Attr::Domain => s(&p.domain),
            Attr::AorHash => Some(PvVal::Int(
                crate::modules::usrloc::rpc::hash_id(&p.aor) as i64
            )),
            Attr::Addr => s(&c.uri),
            Attr::Path => opt(&c.path),
            Attr::Received => opt(&c.received),
            Attr::Expires => Some(PvVal::Int(c.expires)),
            Attr::CallId => s(&c.callid),
            Attr::Q => Some(PvVal::Int(c.q as i64)),
            Attr::CSeq => Some(PvVal::Int(c.cseq as i64)),
            Attr::Flags => Some(PvVal::Int(c.flags as i64)),
            Attr::CFlags => Some(PvVal::Int(c.cflags as u32 as i64)),
            Attr::UserAgent => s(&c.user_agent),
            Attr::Socket => (!c.socket.is_empty()).then(|| PvVal::Str(c.socket.clone())),
            Attr::Modified => Some(PvVal::Int(c.last_modified)),
            Attr::Methods => Some(PvVal::Int(c.methods as u32 as i64)),
            Attr::Count => Some(PvVal::Int(p.contacts.len() as i64)),
            Attr::Ruid => s(&c.ruid),
            Attr::RegId => Some(PvVal::Int(c.reg_id as i64)),
            Attr::Instance => c.instance.clone().map(PvVal::Str),
            // No TCP connection ids are kept with bindings yet.
            Attr::ConId => None,
            Attr::ServerId => Some(PvVal::Int(0)),
        }
    })
}

/// `reg_ulc_rget(profile, attr)`: the record's `count` or `aor`; 0 for anything else.
pub fn rget(profile: &str, attr: &str) -> PvVal {
    PROFILES.with(|ps| {
        let ps = ps.borrow();
        let Some(p) = ps.get(profile) else {
            tracing::warn!(profile, "result is not defined - return value 0");
            return PvVal::Int(0);
        };
        match attr {
            "count" => PvVal::Int(p.contacts.len() as i64),
            "aor" => PvVal::Str(p.aor.clone()),
            _ => {
                tracing::warn!(attr, "attribute is not defined - return value 0");
                PvVal::Int(0)
            }
        }
    })
}

/// `reg_ulc_cget(profile, attr, idx)`: `addr` or `socket` of the idx-th contact; 0 otherwise
/// (an unset socket is "").
pub fn cget(profile: &str, attr: &str, idx: i64) -> PvVal {
    PROFILES.with(|ps| {
        let ps = ps.borrow();
        let Some(p) = ps.get(profile) else {
            tracing::warn!(profile, "result is not defined - return value 0");
            return PvVal::Int(0);
        };
        let Some(c) = p.contacts.get(idx.max(0) as usize) else {
            tracing::warn!(idx, "contact at index is not found - return value 0");
            return PvVal::Int(0);
        };
        match attr {
            "addr" => PvVal::Str(c.uri.clone()),
            "socket" => PvVal::Str(c.socket.clone()),
            _ => {
                tracing::warn!(attr, "attribute is not defined - return value 0");
                PvVal::Int(0)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_kamailio_does() {
        assert_eq!(
            parse_name("caller=>addr"),
            Some(UlcName {
                profile: "caller".into(),
                attr: Attr::Addr
            })
        );
        assert_eq!(
            parse_name(" c => user_agent ").map(|n| n.attr),
            Some(Attr::UserAgent)
        );
        assert_eq!(parse_name("=>addr"), None);
        assert_eq!(parse_name("c=>nope"), None);
        assert_eq!(parse_name("c"), None);
    }

    #[test]
    fn unknown_profiles_read_as_null_and_zero() {
        let n = parse_name("never=>addr").unwrap();
        assert_eq!(get(&n, 0), None);
        assert_eq!(rget("never", "count"), PvVal::Int(0));
        assert_eq!(cget("never", "addr", 0), PvVal::Int(0));
        assert_eq!(free("never"), 1);
    }
}
