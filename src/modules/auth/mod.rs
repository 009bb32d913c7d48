//! auth: digest authentication (`KSR.auth.*`, Kamailio src/modules/auth/auth_mod.c): stateless
//! HMAC nonces, MD5 and SHA-256 (RFC 7616), qop=auth/auth-int, nonce-count replay protection,
//! 401/407 challenges with `stale=true` after an expired nonce (kamailio-defects.md).

pub mod check;
pub mod digest;
pub mod nonce;

use std::sync::atomic::{AtomicU8, Ordering};

use crate::modules::modparam::ModParams;
use crate::modules::pv::PvVal;
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::Method;
use check::{authenticate, code, find_credentials, HfType};
use digest::Alg;

/// Shared auth state: the nonce secret and settings (`[modparam.auth]`).
pub struct AuthState {
    /// Nonce issuing/checking.
    pub nonces: nonce::Nonces,
    /// Track nonce-counts (`nonce_count`; on by default in ksrd, off in Kamailio).
    pub nonce_count: bool,
    /// Algorithm named in challenges (`algorithm`, `KSR.auth.auth_algorithm`): 0 none (MD5
    /// implied), 1 MD5, 2 SHA-256.
    alg: AtomicU8,
}

impl AuthState {
    /// Read `[modparam.auth]`.
    pub fn from_modparams(p: &ModParams) -> AuthState {
        let expire = p
            .get_int("auth", "nonce_expire")
            .filter(|v| *v > 0)
            .unwrap_or(300) as u32;
        let slots = p
            .get_int("auth", "nc_array_size")
            .filter(|v| *v > 0)
            .unwrap_or(1 << 18) as usize;
        let st = AuthState {
            nonces: nonce::Nonces::new(p.get_str("auth", "secret").unwrap_or(""), expire, slots),
            nonce_count: p.get_int("auth", "nonce_count").unwrap_or(1) != 0,
            alg: AtomicU8::new(0),
        };
        if let Some(a) = p.get_str("auth", "algorithm").filter(|a| !a.is_empty()) {
            if !st.set_algorithm(a) {
                tracing::error!(algorithm = a, "auth: unsupported algorithm; using MD5");
            }
        }
        st
    }

    /// Set the challenge algorithm by name; false when unsupported.
    pub fn set_algorithm(&self, name: &str) -> bool {
        let v = match Alg::parse(name) {
            Some(Alg::Md5) => 1,
            Some(Alg::Sha256) => 2,
            _ => return false,
        };
        self.alg.store(v, Ordering::Relaxed);
        true
    }

    fn algorithm(&self) -> Option<Alg> {
        match self.alg.load(Ordering::Relaxed) {
            1 => Some(Alg::Md5),
            2 => Some(Alg::Sha256),
            _ => None,
        }
    }
}

/// The challenge header line (Kamailio auth/challenge.c `get_challenge_hf` format):
/// `WWW-Authenticate: Digest realm="r", nonce="n"[, qop="auth"][, stale=true][, algorithm=A]`.
pub fn challenge_header(ctx: &RouteCtx, realm: &str, flags: i64, hf: HfType) -> String {
    let st = &ctx.core.auth;
    let name = match hf {
        HfType::Www => "WWW-Authenticate",
        HfType::Proxy => "Proxy-Authenticate",
    };
    let mut h = format!(
        "{name}: Digest realm=\"{realm}\", nonce=\"{}\"",
        st.nonces.issue()
    );
    if flags & 2 != 0 {
        h.push_str(", qop=\"auth-int\"");
    } else if flags & 1 != 0 {
        h.push_str(", qop=\"auth\"");
    }
    if flags & 16 != 0 || ctx.auth.stale {
        h.push_str(", stale=true");
    }
    if let Some(a) = st.algorithm() {
        h.push_str(", algorithm=");
        h.push_str(a.name());
    }
    h.push_str("\r\n");
    h
}

/// Send a 401/407 challenge (stateful when the request has a transaction).
fn challenge(ctx: &mut RouteCtx, realm: &str, flags: i64, hf: HfType) -> i64 {
    let Some(m) = ctx.request() else { return -1 };
    let realm = check::effective_realm(m, realm);
    let h = challenge_header(ctx, &realm, flags, hf);
    let (code, reason) = match hf {
        HfType::Www => (401, "Unauthorized"),
        HfType::Proxy => (407, "Proxy Authentication Required"),
    };
    if crate::modules::sl::send_reply_with(ctx, code, reason, h.as_bytes()) > 0 {
        1
    } else {
        if flags & 4 == 0 {
            crate::modules::sl::send_reply_with(ctx, 500, "Internal Server Error", b"");
        }
        -3
    }
}

fn auth_challenge(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(hf) = ctx.request().map(HfType::for_method) else {
        return Val::Int(-1);
    };
    Val::Int(challenge(ctx, a.str(0), a.int(1), hf))
}
fn www_challenge(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(challenge(ctx, a.str(0), a.int(1), HfType::Www))
}
fn proxy_challenge(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(challenge(ctx, a.str(0), a.int(1), HfType::Proxy))
}

/// Check against a password (or HA1 with flags & 1) given by the script.
fn pv_check(
    ctx: &mut RouteCtx,
    realm: &str,
    passwd: &str,
    flags: i64,
    checks: i64,
    hf: HfType,
    method: Option<&str>,
) -> i64 {
    let passwd = passwd.to_string();
    let r = authenticate(ctx, realm, hf, method, checks, |_| {
        Ok(if flags & 1 != 0 {
            check::Ha1Source::Ha1(passwd)
        } else {
            check::Ha1Source::Password(passwd)
        })
    });
    if r < 0 && flags & 14 != 0 {
        // Flags 2/4/8: keep a challenge for the script in $avp(digest_challenge).
        let q = if flags & 8 != 0 {
            2
        } else if flags & 4 != 0 {
            1
        } else {
            0
        };
        let h = challenge_header(ctx, &check::effective_realm_of(ctx, realm), q, hf);
        let v = h
            .split_once(": ")
            .map(|(_, v)| v.trim_end().to_string())
            .unwrap_or_default();
        ctx.avps
            .entry("digest_challenge".into())
            .or_default()
            .push(PvVal::Str(v));
    }
    r
}

fn pv_auth_check(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(hf) = ctx.request().map(HfType::for_method) else {
        return Val::Int(code::ERROR);
    };
    Val::Int(pv_check(
        ctx,
        a.str(0),
        a.str(1),
        a.int(2),
        a.int(3),
        hf,
        None,
    ))
}
fn pv_www_authenticate(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(pv_check(
        ctx,
        a.str(0),
        a.str(1),
        a.int(2),
        0,
        HfType::Www,
        None,
    ))
}
fn pv_www_authenticate_method(ctx: &mut RouteCtx, a: &Args) -> Val {
    let method = a.str(3).to_string();
    Val::Int(pv_check(
        ctx,
        a.str(0),
        a.str(1),
        a.int(2),
        0,
        HfType::Www,
        Some(&method),
    ))
}
fn pv_proxy_authenticate(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(pv_check(
        ctx,
        a.str(0),
        a.str(1),
        a.int(2),
        0,
        HfType::Proxy,
        None,
    ))
}

fn consume_credentials(ctx: &mut RouteCtx, _: &Args) -> Val {
    let Some(m) = ctx.request() else {
        return Val::Int(-1);
    };
    if matches!(m.method(), Method::Ack | Method::Cancel | Method::Prack) {
        return Val::Int(-1);
    }
    match ctx.auth.used {
        Some(span) => {
            ctx.edits.delete(span);
            Val::Int(1)
        }
        None => {
            tracing::error!("consume_credentials: no authorized credentials (error in the script)");
            Val::Int(-1)
        }
    }
}

fn has_credentials(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.request() else {
        return Val::Int(-1);
    };
    let found = find_credentials(m, a.str(0), HfType::Proxy).is_some()
        || find_credentials(m, a.str(0), HfType::Www).is_some();
    Val::Int(if found { 1 } else { -1 })
}

fn auth_get_www_authenticate(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.request() else {
        return Val::Int(-1);
    };
    let realm = check::effective_realm(m, a.str(0));
    let h = challenge_header(ctx, &realm, a.int(1), HfType::Www);
    let dest = a.str(2).to_string();
    match crate::modules::pv::do_set(ctx, &dest, Some(PvVal::Str(h.trim_end().to_string()))) {
        Val::Bool(true) => Val::Int(1),
        _ => Val::Int(-1),
    }
}

fn auth_algorithm(ctx: &mut RouteCtx, a: &Args) -> Val {
    if ctx.core.auth.set_algorithm(a.str(0)) {
        Val::Int(1)
    } else {
        tracing::error!(
            algorithm = a.str(0),
            "auth_algorithm: unsupported (MD5 or SHA-256)"
        );
        Val::Int(-1)
    }
}

/// `KSR.auth.*` exports.
pub static EXPORTS: &[Export] = &[
    ex("auth", "auth_challenge", &[("realm", Str), ("flags", Int)], Int, "Send 401 (REGISTER) or 407 with a digest challenge; flags 1 qop=auth, 2 qop=auth-int, 4 no 500 on error, 16 stale=true", auth_challenge),
    ex("auth", "www_challenge", &[("realm", Str), ("flags", Int)], Int, "Send 401 with a digest challenge", www_challenge),
    ex("auth", "proxy_challenge", &[("realm", Str), ("flags", Int)], Int, "Send 407 with a digest challenge", proxy_challenge),
    ex("auth", "pv_auth_check", &[("srealm", Str), ("spasswd", Str), ("vflags", Int), ("vchecks", Int)], Int, "Check credentials against a password (flags & 1: an HA1); checks & 1: auth user must be the From/To user; 1 ok, -1 error, -2 bad password, -4 stale, -5 no credentials, -6 nonce reused, -8 user mismatch", pv_auth_check),
    ex("auth", "pv_www_authenticate", &[("realm", Str), ("passwd", Str), ("flags", Int)], Int, "Check Authorization credentials against a password", pv_www_authenticate),
    ex("auth", "pv_www_authenticate_method", &[("realm", Str), ("passwd", Str), ("flags", Int), ("method", Str)], Int, "pv_www_authenticate for another method", pv_www_authenticate_method),
    ex("auth", "pv_proxy_authenticate", &[("realm", Str), ("passwd", Str), ("flags", Int)], Int, "Check Proxy-Authorization credentials against a password", pv_proxy_authenticate),
    ex("auth", "consume_credentials", &[], Int, "Remove the credentials header that authenticated the request", consume_credentials),
    ex("auth", "has_credentials", &[("srealm", Str)], Int, "1 if the request has credentials for the realm, else -1", has_credentials),
    ex("auth", "auth_get_www_authenticate", &[("realm", Str), ("flags", Int), ("pvdst", Str)], Int, "Build a WWW-Authenticate header into a pseudo-variable", auth_get_www_authenticate),
    ex("auth", "auth_algorithm", &[("alg", Str)], Int, "Algorithm for challenges: MD5 or SHA-256", auth_algorithm),
];
