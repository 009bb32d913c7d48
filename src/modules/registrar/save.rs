//! `save()`: process a REGISTER (RFC 3261 §10.3) into usrloc and answer it (Kamailio
//! registrar/save.c).

use std::fmt::Write as _;

use super::params::RegParams;
use super::{aor_of, reg_reply};
use crate::modules::usrloc::{now, Contact};
use crate::script::ctx::RouteCtx;
use crate::sip::{Contacts, HdrName, Method, SipMsg};

/// What save() did (Kamailio's positive return codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Did {
    Inserted = 1,
    Updated = 2,
    Deleted = 3,
    Fetched = 4,
}

/// A registrar error: reply code, reason and the P-Registrar-Error text (registrar/reply.c).
struct RegError {
    code: u16,
    reason: &'static str,
    info: &'static str,
    extra: String,
}

fn bad(info: &'static str) -> RegError {
    RegError {
        code: 400,
        reason: "Bad Request",
        info,
        extra: String::new(),
    }
}

/// `KSR.registrar.save(table, flags)` / `save_uri(table, flags, uri)`.
pub fn save(ctx: &mut RouteCtx, table: &str, flags: i64, uri: Option<&str>) -> i64 {
    let p = RegParams::get(ctx);
    let Some(m) = ctx.request() else { return -1 };
    if m.method() != Method::Register {
        tracing::error!("registrar.save: not a REGISTER");
        return -1;
    }
    let aor = match aor_of(m, uri, &p, true) {
        Ok(a) => a,
        Err(info) => return fail(ctx, flags, bad(info)),
    };
    // One clock reading per REGISTER (Kamailio's act_time): the expiry stored and the expires
    // the 200 reports come from the same second.
    let t = now();
    let outcome = process(ctx, table, flags, &aor, &p, t);
    match outcome {
        Ok((did, contacts)) => {
            if flags & 0x02 == 0 {
                let mut extra = String::new();
                if !contacts.is_empty() {
                    extra.push_str("Contact: ");
                    for (i, c) in contacts.iter().enumerate() {
                        if i > 0 {
                            extra.push_str(", ");
                        }
                        let _ = write!(extra, "<{}>", c.uri);
                        if c.q >= 0 {
                            let _ = write!(extra, ";q={}", q_str(c.q));
                        }
                        let _ = write!(extra, ";expires={}", c.left(t));
                        if let (Some(r), false) = (&c.received, p.received_param.is_empty()) {
                            let _ = write!(extra, ";{}=\"{r}\"", p.received_param);
                        }
                        if let Some(i) = &c.instance {
                            let _ = write!(extra, ";+sip.instance={i}");
                        }
                        if c.reg_id > 0 {
                            let _ = write!(extra, ";reg-id={}", c.reg_id);
                        }
                    }
                    extra.push_str("\r\n");
                }
                if p.use_path {
                    if let Some(path) = path_of(ctx.request()) {
                        let _ = write!(extra, "Path: {path}\r\n");
                    }
                }
                reg_reply(ctx, 200, "OK", &extra);
            }
            did as i64
        }
        Err(e) => fail(ctx, flags, e),
    }
}

fn fail(ctx: &mut RouteCtx, flags: i64, e: RegError) -> i64 {
    tracing::info!(code = e.code, error = e.info, "registrar: REGISTER refused");
    if flags & 0x02 == 0 {
        let extra = format!("{}P-Registrar-Error: {}\r\n", e.extra, e.info);
        reg_reply(ctx, e.code, e.reason, &extra);
    }
    if e.code == 503 {
        -2
    } else {
        -1
    }
}

/// Kamailio's q printing: "0.5", "1", "0.123".
fn q_str(q: i32) -> String {
    if q >= 1000 {
        return "1".into();
    }
    let s = format!("0.{:03}", q.max(0));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn path_of(m: Option<&SipMsg>) -> Option<String> {
    let m = m?;
    let v: Vec<String> = m
        .all(HdrName::Path)
        .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
        .collect();
    (!v.is_empty()).then(|| v.join(","))
}

/// usrloc could not read or write the binding (database trouble): 500, as Kamailio answers.
fn ul_failed(e: crate::modules::usrloc::UlError) -> RegError {
    tracing::error!("registrar: {e}");
    RegError {
        code: 500,
        reason: "Server Internal Error",
        info: "Error while updating contact",
        extra: String::new(),
    }
}

/// Apply the REGISTER to the AoR; the bindings afterwards for the reply.
fn process(
    ctx: &mut RouteCtx,
    table: &str,
    flags: i64,
    aor: &str,
    p: &RegParams,
    t: i64,
) -> Result<(Did, Vec<Contact>), RegError> {
    let m = ctx.request().ok_or_else(|| bad("Message parse error"))?;
    let callid = m
        .call_id()
        .ok_or_else(|| bad("Call-ID header not found"))?
        .to_string();
    let cseq = m.cseq().map_err(|_| bad("CSeq header not found"))?.num;
    let contacts = m.contacts().map_err(|_| bad("Contact parse error"))?;
    let expires_hdr = match m.first(HdrName::Expires) {
        None => None,
        Some(h) => Some(
            std::str::from_utf8(m.value(h))
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| bad("Expires parse error"))?,
        ),
    };
    let domain = ctx.core.ul.domain(table);
    let list = match contacts {
        Contacts::Star => {
            // RFC 3261 §10.3 step 6: "*" only with Expires: 0.
            if expires_hdr != Some(0) {
                return Err(bad("Invalid expires for star contact"));
            }
            domain.update(aor, |l| l.clear()).map_err(ul_failed)?;
            return Ok((Did::Deleted, Vec::new()));
        }
        Contacts::List(l) if l.is_empty() => {
            return Ok((Did::Fetched, domain.get(aor).map_err(ul_failed)?))
        }
        Contacts::List(l) => l,
    };
    let user_agent = m
        .first(HdrName::UserAgent)
        .map(|h| String::from_utf8_lossy(m.value(h)).into_owned())
        .unwrap_or_default();
    let path = if p.use_path { path_of(Some(m)) } else { None };
    let socket = format!("{}:{}", ctx.ep.proto.as_str(), ctx.ep.local);
    let received = p.received_avp.as_ref().and_then(|name| {
        ctx.avps
            .get(name)
            .and_then(|v| v.last())
            .map(|v| v.to_string())
    });
    let cflags = ctx.bflags;
    // Validate every contact before changing anything.
    let mut parsed = Vec::with_capacity(list.len());
    // nathelper's fix_nated_contact / set_contact_alias rewrote the first Contact: Kamailio's
    // registrar saves the rewritten URI.
    let rewritten = ctx.nat.contact_uri.as_deref();
    for (i, na) in list.iter().enumerate() {
        let exp_param = na
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("expires"))
            .map(|(_, v)| v.as_deref().unwrap_or(""));
        let mut exp = match exp_param {
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("Invalid expires param in contact"))?,
            None => expires_hdr.unwrap_or(p.default_expires),
        };
        if exp < 0 {
            return Err(bad("Invalid expires param in contact"));
        }
        if exp != 0 {
            if exp < p.min_expires {
                if p.min_expires_mode {
                    return Err(RegError {
                        code: 423,
                        reason: "Interval Too Brief",
                        info: "Interval too brief",
                        extra: format!("Min-Expires: {}\r\n", p.min_expires),
                    });
                }
                exp = p.min_expires;
            }
            if p.max_expires > 0 && exp > p.max_expires {
                exp = p.max_expires;
            }
        }
        let q = match na
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.as_deref())
        {
            None => p.default_q,
            Some(v) => match v.trim().parse::<f32>() {
                Ok(x) if (0.0..=1.0).contains(&x) => (x * 1000.0).round() as i32,
                _ => return Err(bad("Invalid q param in contact")),
            },
        };
        let param = |name: &str| {
            na.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.clone())
        };
        parsed.push((
            match rewritten {
                Some(u) if i == 0 => u.to_string(),
                _ => na.uri_text.clone(),
            },
            exp,
            q,
            param("+sip.instance"),
            param("reg-id").and_then(|v| v.parse().ok()).unwrap_or(0),
        ));
    }
    let max_contacts = p.max_contacts;
    let result = domain.update(aor, |l| -> Result<Did, ()> {
        let backup = (max_contacts > 0).then(|| l.clone());
        let mut did = Did::Updated;
        let mut any_insert = false;
        let mut any_delete = false;
        for (uri, exp, q, instance, reg_id) in &parsed {
            let pos = l.iter().position(|c| {
                // RFC 5626: the same instance (and reg-id) replaces the old binding.
                c.uri == *uri
                    || (instance.is_some() && c.instance == *instance && c.reg_id == *reg_id)
            });
            if let Some(i) = pos {
                // RFC 3261 §10.3 step 7: an older (or repeated) REGISTER of this Call-ID changes nothing.
                if l[i].callid == callid && l[i].cseq >= cseq {
                    continue;
                }
                if *exp == 0 {
                    l.remove(i);
                    any_delete = true;
                    continue;
                }
                let c = &mut l[i];
                c.uri = uri.clone();
                c.expires = t + exp;
                c.q = *q;
                c.callid = callid.clone();
                c.cseq = cseq;
                c.received = received.clone();
                c.path = path.clone();
                c.user_agent = user_agent.clone();
                c.socket = socket.clone();
                c.cflags = cflags;
                c.instance = instance.clone();
                c.reg_id = *reg_id;
                c.last_modified = t;
            } else if *exp != 0 {
                l.push(Contact {
                    uri: uri.clone(),
                    expires: t + exp,
                    q: *q,
                    callid: callid.clone(),
                    cseq,
                    received: received.clone(),
                    path: path.clone(),
                    user_agent: user_agent.clone(),
                    socket: socket.clone(),
                    cflags,
                    flags: 0,
                    methods: -1,
                    instance: instance.clone(),
                    reg_id: *reg_id,
                    ruid: format!("uloc-{:x}-{:x}", t, fastrand::u64(..)),
                    last_modified: t,
                });
                any_insert = true;
            }
        }
        if flags & 0x04 != 0 && !parsed.is_empty() {
            // One contact per AoR: the newest binding replaces the others.
            let keep = parsed.last().map(|x| x.0.clone());
            l.retain(|c| Some(&c.uri) == keep.as_ref());
        }
        if let Some(b) = backup.filter(|_| l.len() > max_contacts) {
            // The binding set must not grow past the limit: this REGISTER changes nothing.
            *l = b;
            return Err(());
        }
        if any_insert {
            did = Did::Inserted;
        } else if any_delete {
            did = Did::Deleted;
        }
        Ok(did)
    });
    match result.map_err(ul_failed)? {
        Ok(did) => Ok((did, domain.get(aor).map_err(ul_failed)?)),
        Err(()) => Err(RegError {
            code: 503,
            reason: "Service Unavailable",
            info: "Too many registered contacts",
            extra: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn q_values_print_as_kamailio_does() {
        assert_eq!(super::q_str(1000), "1");
        assert_eq!(super::q_str(500), "0.5");
        assert_eq!(super::q_str(123), "0.123");
        assert_eq!(super::q_str(0), "0");
    }
}
