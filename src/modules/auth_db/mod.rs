//! auth_db: digest authentication against the `subscriber` table (`KSR.auth_db.*`, Kamailio
//! src/modules/auth_db): ha1 (or ha1b for `user@domain` usernames, or the plaintext password with
//! `calculate_ha1`), `load_credentials` into AVPs, Kamailio's return codes. The query runs with
//! the GIL released (`Db::wait`), so other workers keep routing meanwhile.

use crate::core::Core;
use crate::modules::auth::check::{authenticate, code, Ha1Source, HfType};
use crate::modules::pv::PvVal;
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::{Method, Uri};

/// auth_db settings (`[modparam.auth_db]`, Kamailio names and defaults), read once at start-up.
pub struct Params {
    user_column: String,
    domain_column: String,
    password_column: String,
    password_column_2: String,
    calculate_ha1: bool,
    use_domain: bool,
    /// `(avp name, column)` pairs of `load_credentials`.
    credentials: Vec<(String, String)>,
}

impl Params {
    /// Read `[modparam.auth_db]`.
    pub fn from_modparams(p: &crate::modules::modparam::ModParams) -> Params {
        let s = |n: &str, d: &str| p.get_str("auth_db", n).unwrap_or(d).to_string();
        // `yes`/`no`, 1/0 or a TOML boolean, as kamailio.cfg writes it.
        let calculate_ha1 = p.get_int("auth_db", "calculate_ha1").unwrap_or(0) != 0;
        Params {
            user_column: s("user_column", "username"),
            domain_column: s("domain_column", "domain"),
            password_column: s(
                "password_column",
                if calculate_ha1 { "password" } else { "ha1" },
            ),
            password_column_2: s("password_column_2", "ha1b"),
            calculate_ha1,
            use_domain: p.get_int("auth_db", "use_domain").unwrap_or(0) != 0,
            credentials: parse_credentials(p.get_str("auth_db", "load_credentials").unwrap_or("")),
        }
    }
}

/// `"$avp(pass)=password;rpid"` → `[("pass","password"), ("rpid","rpid")]`.
fn parse_credentials(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|item| {
            let (avp, col) = item.split_once('=').unwrap_or((item, item));
            let avp = avp
                .trim()
                .strip_prefix("$avp(")
                .and_then(|a| a.strip_suffix(')'))
                .unwrap_or(avp.trim());
            (
                avp.trim_start_matches("s:").to_string(),
                col.trim().to_string(),
            )
        })
        .collect()
}

/// The subscriber's secret and credential columns for the digest username.
fn fetch(
    core: &Core,
    p: &Params,
    table: &str,
    username: &str,
    realm: &str,
) -> Result<(Ha1Source, Vec<Option<String>>), i64> {
    let db = match core.db() {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, "auth_db: no database (set db_url)");
            return Err(code::ERROR);
        }
    };
    // A username written user@domain uses ha1b (kamctl stores both), as auth_db does.
    let (user, domain) = match username.split_once('@') {
        Some((u, d)) if p.use_domain => (u.to_string(), Some(d.to_string())),
        _ => (
            username.to_string(),
            p.use_domain.then(|| realm.to_string()),
        ),
    };
    let secret_col = if username.contains('@') && !p.calculate_ha1 {
        p.password_column_2.clone()
    } else {
        p.password_column.clone()
    };
    let mut cols: Vec<&str> = vec![&secret_col];
    cols.extend(p.credentials.iter().map(|(_, c)| c.as_str()));
    let mut filter: Vec<(&str, &str)> = vec![(&p.user_column, &user)];
    if let Some(d) = &domain {
        filter.push((&p.domain_column, d));
    }
    let rows = db.wait(db.select_strings(table, &cols, &filter));
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, table, "auth_db: credentials query failed");
            return Err(code::ERROR);
        }
    };
    let Some(mut row) = rows.into_iter().next() else {
        return Err(code::USER_UNKNOWN);
    };
    let secret = row.remove(0).unwrap_or_default();
    let src = if p.calculate_ha1 {
        Ha1Source::Password(secret)
    } else {
        Ha1Source::Ha1(secret)
    };
    Ok((src, row))
}

/// Authenticate against `table`; on success load the `load_credentials` columns into AVPs.
fn db_auth(
    ctx: &mut RouteCtx,
    realm: &str,
    table: &str,
    hf: HfType,
    method: Option<&str>,
    checks: i64,
) -> i64 {
    let core = ctx.core.clone();
    let p = core.auth_db.clone();
    let realm_eff = crate::modules::auth::check::effective_realm_of(ctx, realm);
    let mut extra: Vec<Option<String>> = Vec::new();
    let r = authenticate(ctx, realm, hf, method, checks, |cred| {
        let (src, cols) = fetch(&core, &p, table, &cred.username, &realm_eff)?;
        extra = cols;
        Ok(src)
    });
    if r == code::OK {
        for ((avp, _), v) in p.credentials.iter().zip(extra) {
            if let Some(v) = v {
                ctx.avps.entry(avp.clone()).or_default().push(PvVal::Str(v));
            }
        }
    }
    r
}

fn auth_check(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.request() else {
        return Val::Int(code::ERROR);
    };
    let hf = HfType::for_method(m);
    let flags = a.int(2);
    // flags & 2: no From/To user check for requests inside calls and MESSAGE (Kamailio
    // auth_db AUTH_CHECK_SKIPFWD_F).
    let skip = flags & 2 != 0
        && matches!(
            m.method(),
            Method::Invite | Method::Bye | Method::Prack | Method::Update | Method::Message
        );
    let checks = if flags & 1 != 0 && !skip { 1 } else { 0 };
    Val::Int(db_auth(ctx, a.str(0), a.str(1), hf, None, checks))
}
fn www_authenticate(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(db_auth(ctx, a.str(0), a.str(1), HfType::Www, None, 0))
}
fn www_authenticate_method(ctx: &mut RouteCtx, a: &Args) -> Val {
    let method = a.str(2).to_string();
    Val::Int(db_auth(
        ctx,
        a.str(0),
        a.str(1),
        HfType::Www,
        Some(&method),
        0,
    ))
}
fn proxy_authenticate(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(db_auth(ctx, a.str(0), a.str(1), HfType::Proxy, None, 0))
}
fn is_subscriber(ctx: &mut RouteCtx, a: &Args) -> Val {
    let core = ctx.core.clone();
    let p = core.auth_db.clone();
    let Ok(u) = Uri::parse(a.str(0).as_bytes()) else {
        return Val::Int(-1);
    };
    let user = u.user.clone().unwrap_or_default();
    let Ok(db) = core.db() else {
        return Val::Int(-1);
    };
    let mut filter: Vec<(&str, &str)> = vec![(&p.user_column, &user)];
    if p.use_domain {
        filter.push((&p.domain_column, &u.host));
    }
    match db.wait(db.select_strings(a.str(1), &[&p.user_column], &filter)) {
        Ok(rows) if !rows.is_empty() => Val::Int(1),
        Ok(_) => Val::Int(-1),
        Err(e) => {
            tracing::error!(error = %e, "auth_db: is_subscriber query failed");
            Val::Int(-1)
        }
    }
}

/// `KSR.auth_db.*` exports.
pub static EXPORTS: &[Export] = &[
    ex("auth_db", "auth_check", &[("srealm", Str), ("stable", Str), ("iflags", Int)], Int, "Digest check against the subscriber table (www for REGISTER, proxy otherwise); flags 1 auth user must match From/To, 2 skip that for INVITE/BYE/PRACK/UPDATE/MESSAGE; 1 ok, -1 error, -2 bad password, -3 unknown user, -4 stale, -5 no credentials, -6 nonce reused, -8 user mismatch", auth_check),
    ex("auth_db", "www_authenticate", &[("realm", Str), ("table", Str)], Int, "Check Authorization credentials against the table", www_authenticate),
    ex("auth_db", "www_authenticate_method", &[("realm", Str), ("table", Str), ("method", Str)], Int, "www_authenticate for another method", www_authenticate_method),
    ex("auth_db", "proxy_authenticate", &[("realm", Str), ("table", Str)], Int, "Check Proxy-Authorization credentials against the table", proxy_authenticate),
    ex("auth_db", "is_subscriber", &[("suri", Str), ("stable", Str), ("iflags", Int)], Int, "1 if the URI's user is in the table, else -1", is_subscriber),
];

#[cfg(test)]
mod tests {
    #[test]
    fn load_credentials_forms() {
        assert_eq!(
            super::parse_credentials("$avp(pass)=password; rpid ;s:x=col"),
            vec![
                ("pass".to_string(), "password".to_string()),
                ("rpid".to_string(), "rpid".to_string()),
                ("x".to_string(), "col".to_string())
            ]
        );
    }
}
