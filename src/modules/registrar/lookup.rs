//! `lookup()` and friends: the registered contacts of an AoR become the Request-URI and branches
//! (Kamailio registrar/lookup.c).

use super::aor_of;
use super::params::RegParams;
use crate::modules::usrloc::Contact;
use crate::script::ctx::RouteCtx;
use crate::tm::relay::BranchSpec;

/// lookup's codes: 1 found, -1 not found, -2 found but the method is not allowed, -3 error.
pub fn lookup(ctx: &mut RouteCtx, table: &str, uri: Option<&str>, to_dset: bool) -> i64 {
    let p = RegParams::get(ctx);
    let Some(m) = ctx.request() else { return -3 };
    let uri_owned;
    let uri = match uri {
        Some(u) => Some(u),
        None => {
            uri_owned = ctx.ruri().map(|c| c.into_owned());
            uri_owned.as_deref()
        }
    };
    let Ok(aor) = aor_of(m, uri, &p, false) else {
        return -3;
    };
    let Some(d) = ctx.core.ul.find(table) else {
        return -1;
    };
    let method = m.method();
    let contacts = match d.get(&aor) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("registrar.lookup: {e}");
            return -3;
        }
    };
    if contacts.is_empty() {
        return -1;
    }
    let allowed: Vec<&Contact> = contacts
        .iter()
        .filter(|c| !p.method_filtering || c.methods < 0 || c.methods & method_bit(method) != 0)
        .collect();
    if allowed.is_empty() {
        return -2;
    }
    let mut it = allowed.into_iter();
    if !to_dset {
        let Some(first) = it.next() else { return -1 };
        ctx.new_ruri = Some(first.uri.clone());
        ctx.dst_uri = dst_of(first);
        ctx.bflags |= first.cflags;
        ctx.tm.ruri_q = (first.q >= 0).then_some(first.q);
        // A rewritten R-URI is usable for forking again (Kamailio ruri_mark_new).
        ctx.tm.consumed = None;
        if !p.append_branches {
            return 1;
        }
    }
    for c in it {
        ctx.tm.branches.push(BranchSpec {
            uri: c.uri.clone(),
            dst_uri: dst_of(c),
            bflags: c.cflags,
            q: (c.q >= 0).then_some(c.q),
            proto: None,
        });
    }
    1
}

/// Where to send: the received address (NAT) or the first Path hop, else the contact itself.
fn dst_of(c: &Contact) -> Option<String> {
    if let Some(path) = &c.path {
        let first = path.split(',').next().unwrap_or("").trim();
        let u = first.trim_start_matches('<');
        let u = u.split('>').next().unwrap_or(u);
        if !u.is_empty() {
            return Some(u.to_string());
        }
    }
    c.received.clone()
}

/// Kamailio's method bit (METHOD_* in parser/msg_parser.h).
fn method_bit(m: crate::sip::Method) -> i64 {
    use crate::sip::Method::*;
    match m {
        Invite => 1,
        Cancel => 2,
        Ack => 4,
        Bye => 8,
        Info => 16,
        Register => 32,
        Subscribe => 64,
        Notify => 128,
        Message => 256,
        Options => 512,
        Prack => 1024,
        Update => 2048,
        Refer => 4096,
        Publish => 8192,
        _ => 1 << 30,
    }
}
