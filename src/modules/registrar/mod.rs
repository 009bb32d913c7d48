//! registrar (`KSR.registrar.*`, Kamailio src/modules/registrar): REGISTER processing into
//! usrloc, and lookups that turn an AoR into the Request-URI and branches.

pub mod fetch;
pub mod lookup;
pub mod params;
pub mod save;

use params::RegParams;

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::{SipMsg, Uri};

/// The AoR of a REGISTER (To URI, or `uri`) or of a lookup (R-URI, or `uri`): `user` or
/// `user@host` with usrloc `use_domain`, lower-cased unless `case_sensitive`.
pub fn aor_of(
    m: &SipMsg,
    uri: Option<&str>,
    p: &RegParams,
    register: bool,
) -> Result<String, &'static str> {
    let parsed;
    let u: &Uri = match uri {
        Some(s) => {
            parsed = Uri::parse(s.as_bytes()).map_err(|_| "Error while parsing AOR")?;
            &parsed
        }
        None if register => &m.to_hdr().map_err(|_| "To header not found")?.uri,
        None => m.ruri().map_err(|_| "Error while parsing AOR")?,
    };
    let user = u.user.as_deref().unwrap_or("");
    if user.is_empty() && !p.use_domain {
        return Err("No username in To URI");
    }
    let aor = if p.use_domain {
        if user.is_empty() {
            u.host.clone()
        } else {
            format!("{user}@{}", u.host)
        }
    } else {
        user.to_string()
    };
    Ok(if p.case_sensitive {
        aor
    } else {
        aor.to_ascii_lowercase()
    })
}

/// Answer the REGISTER (statefully when it has a transaction).
pub fn reg_reply(ctx: &mut RouteCtx, code: u16, reason: &str, extra: &str) -> i64 {
    crate::modules::sl::send_reply_with(ctx, code as i64, reason, extra.as_bytes())
}

fn save(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(save::save(ctx, a.str(0), a.int(1), None))
}
fn save_uri(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(save::save(ctx, a.str(0), a.int(1), Some(a.str(2))))
}
fn lookup(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(lookup::lookup(ctx, a.str(0), None, false))
}
fn lookup_uri(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(lookup::lookup(ctx, a.str(0), Some(a.str(1)), false))
}
fn lookup_to_dset(ctx: &mut RouteCtx, a: &Args) -> Val {
    let uri = a.str(1);
    let uri = (!uri.is_empty()).then_some(uri);
    Val::Int(lookup::lookup(ctx, a.str(0), uri, true))
}
fn lookup_branches(ctx: &mut RouteCtx, a: &Args) -> Val {
    // The R-URI first, then every branch of the destination set (Kamailio lookup_branches).
    let table = a.str(0).to_string();
    let branches = std::mem::take(&mut ctx.tm.branches);
    let mut r = lookup::lookup(ctx, &table, None, false);
    for b in branches {
        let before = ctx.tm.branches.len();
        let rb = lookup::lookup(ctx, &table, Some(&b.uri), true);
        if rb < 0 || ctx.tm.branches.len() == before {
            // Not registered here: the branch stays as it was.
            ctx.tm.branches.push(b);
        } else if r < 0 {
            r = rb;
        }
    }
    Val::Int(r)
}
fn registered_impl(ctx: &mut RouteCtx, table: &str, uri: Option<&str>) -> i64 {
    let p = RegParams::get(ctx);
    let Some(m) = ctx.request() else { return -1 };
    let ruri_owned;
    let uri = match uri {
        Some(u) => Some(u),
        None => {
            ruri_owned = ctx.ruri().map(|c| c.into_owned());
            ruri_owned.as_deref()
        }
    };
    let Ok(aor) = aor_of(m, uri, &p, false) else {
        return -1;
    };
    let found = ctx
        .core
        .ul
        .find(table)
        .is_some_and(|d| d.get(&aor).is_ok_and(|c| !c.is_empty()));
    if found {
        1
    } else {
        -1
    }
}
fn registered(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(registered_impl(ctx, a.str(0), None))
}
fn registered_uri(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(registered_impl(ctx, a.str(0), Some(a.str(1))))
}
fn unregister_impl(ctx: &mut RouteCtx, table: &str, uri: &str, ruid: Option<&str>) -> i64 {
    let p = RegParams::get(ctx);
    let Some(m) = ctx.request() else { return -1 };
    let Ok(aor) = aor_of(m, Some(uri), &p, false) else {
        return -1;
    };
    let Some(d) = ctx.core.ul.find(table) else {
        return -1;
    };
    match ruid {
        None => match d.remove(&aor) {
            Ok(_) => 1,
            Err(e) => {
                tracing::error!("registrar.unregister: {e}");
                -1
            }
        },
        Some(r) => {
            let gone = d.update(&aor, |l| {
                let n = l.len();
                l.retain(|c| c.ruid != r);
                n != l.len()
            });
            if gone.unwrap_or(false) {
                1
            } else {
                -1
            }
        }
    }
}
fn unregister(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(unregister_impl(ctx, a.str(0), a.str(1), None))
}
fn unregister_ruid(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(unregister_impl(ctx, a.str(0), a.str(1), Some(a.str(2))))
}

fn reg_fetch_contacts(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(fetch::fetch(ctx, a.str(0), a.str(1), a.str(2)))
}
fn reg_free_contacts(_ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(fetch::free(a.str(0)))
}
fn reg_ulc_rget(_ctx: &mut RouteCtx, a: &Args) -> Val {
    fetch::rget(a.str(0), a.str(1)).into()
}
fn reg_ulc_cget(_ctx: &mut RouteCtx, a: &Args) -> Val {
    fetch::cget(a.str(0), a.str(1), a.int(2)).into()
}

/// `KSR.registrar.*` exports.
pub static EXPORTS: &[Export] = &[
    ex("registrar", "save", &[("table", Str), ("flags", Int)], Int, "Store the REGISTER's contacts and answer it; 1 inserted, 2 updated, 3 deleted, 4 returned, -1 error, -2 too many contacts", save),
    ex("registrar", "save_uri", &[("table", Str), ("flags", Int), ("uri", Str)], Int, "save() with this URI as the AoR", save_uri),
    ex("registrar", "lookup", &[("table", Str)], Int, "R-URI := the AoR's best contact, the others branches; 1 found, -1 not found, -2 method not allowed, -3 error", lookup),
    ex("registrar", "lookup_uri", &[("table", Str), ("uri", Str)], Int, "lookup() of another URI", lookup_uri),
    ex("registrar", "lookup_to_dset", &[("table", Str), ("uri", Str)], Int, "Add the AoR's contacts as branches without changing the R-URI", lookup_to_dset),
    ex("registrar", "lookup_branches", &[("table", Str)], Int, "lookup() of the R-URI and of every branch", lookup_branches),
    ex("registrar", "registered", &[("table", Str)], Int, "1 if the R-URI's AoR has contacts, else -1", registered),
    ex("registrar", "registered_uri", &[("table", Str), ("uri", Str)], Int, "1 if the URI's AoR has contacts, else -1", registered_uri),
    ex("registrar", "unregister", &[("table", Str), ("uri", Str)], Int, "Remove every contact of the AoR", unregister),
    ex("registrar", "reg_fetch_contacts", &[("table", Str), ("uri", Str), ("profile", Str)], Int, "Copy the URI's bindings into a $ulc profile; 1 found, -1 not", reg_fetch_contacts),
    ex("registrar", "reg_free_contacts", &[("profile", Str)], Int, "Drop a $ulc profile; 1", reg_free_contacts),
    ex("registrar", "reg_ulc_rget", &[("profile", Str), ("attr", Str)], Xval, "A profile's `count` or `aor` (0 if unknown)", reg_ulc_rget),
    ex("registrar", "reg_ulc_cget", &[("profile", Str), ("attr", Str), ("idx", Int)], Xval, "`addr` or `socket` of the profile's idx-th contact (0 if unknown)", reg_ulc_cget),
    ex("registrar", "unregister_ruid", &[("table", Str), ("uri", Str), ("ruid", Str)], Int, "Remove one contact by its ruid", unregister_ruid),
];
