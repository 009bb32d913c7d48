//! The digest check shared by `KSR.auth.pv_*` and `KSR.auth_db.*` (Kamailio auth/api.c
//! `pre_auth`/`post_auth` and auth_mod.c `pv_authenticate`), with Kamailio's return codes.

use super::digest::Credentials;
use super::nonce::{NcCheck, NonceCheck};
use crate::script::ctx::RouteCtx;
use crate::sip::{HdrName, Method, SipMsg, Span};

/// Kamailio's `auth_cfg_result_t`.
pub mod code {
    /// Auth user differs from the From/To user.
    pub const USER_MISMATCH: i64 = -8;
    /// Nonce (nonce-count) used before.
    pub const NONCE_REUSED: i64 = -6;
    /// No credentials for the realm.
    pub const NO_CREDENTIALS: i64 = -5;
    /// Nonce expired.
    pub const STALE_NONCE: i64 = -4;
    /// No such user.
    pub const USER_UNKNOWN: i64 = -3;
    /// Wrong password.
    pub const INVALID_PASSWORD: i64 = -2;
    /// Anything else.
    pub const ERROR: i64 = -1;
    /// Authenticated.
    pub const OK: i64 = 1;
}

/// Which header carries the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfType {
    /// `Authorization` (401 challenges: registrars).
    Www,
    /// `Proxy-Authorization` (407 challenges: proxies).
    Proxy,
}

impl HfType {
    /// REGISTER is challenged with 401, everything else with 407 (Kamailio `auth_challenge`).
    pub fn for_method(m: &SipMsg) -> HfType {
        if m.method() == Method::Register {
            HfType::Www
        } else {
            HfType::Proxy
        }
    }
    fn hdr(self) -> HdrName {
        match self {
            HfType::Www => HdrName::Authorization,
            HfType::Proxy => HdrName::ProxyAuthorization,
        }
    }
}

/// Per-message auth state in the routing context.
#[derive(Debug, Default, Clone)]
pub struct AuthCtx {
    /// The last check saw an expired nonce: the next challenge says `stale=true`.
    pub stale: bool,
    /// The credentials header that authenticated (for `consume_credentials`).
    pub used: Option<Span>,
}

/// The realm to use: the given one, or the host of To (REGISTER) / From (others) when empty.
pub fn effective_realm(m: &SipMsg, realm: &str) -> String {
    if !realm.is_empty() {
        return realm.to_string();
    }
    let na = if m.method() == Method::Register {
        m.to_hdr()
    } else {
        m.from_hdr()
    };
    na.ok().map(|n| n.uri.host.clone()).unwrap_or_default()
}

/// The first credentials of this type for `realm`, with the header's line span.
pub fn find_credentials(m: &SipMsg, realm: &str, hf: HfType) -> Option<(Credentials, Span)> {
    m.all(hf.hdr()).find_map(|h| {
        let v = std::str::from_utf8(m.value(h)).ok()?;
        let c = Credentials::parse(v)?;
        c.realm
            .eq_ignore_ascii_case(realm)
            .then_some((c, h.line_span))
    })
}

/// Where the HA1 comes from.
pub enum Ha1Source {
    /// Plaintext password (HA1 computed here for the credentials' algorithm).
    Password(String),
    /// A precomputed HA1 (must match the algorithm's digest length).
    Ha1(String),
}

/// Check the request's credentials for `realm`; `lookup` gives the secret of the credentials'
/// user (or an error code such as `USER_UNKNOWN`). `checks & 1`: the auth user must be the
/// From user (To user for REGISTER).
pub fn authenticate(
    ctx: &mut RouteCtx,
    realm: &str,
    hf: HfType,
    method: Option<&str>,
    checks: i64,
    lookup: impl FnOnce(&Credentials) -> Result<Ha1Source, i64>,
) -> i64 {
    let core = ctx.core.clone();
    let Some(m) = ctx.request() else {
        return code::ERROR;
    };
    // ACK and CANCEL cannot be challenged (RFC 3261 §22.1): Kamailio lets them through.
    if matches!(m.method(), Method::Ack | Method::Cancel) {
        return code::OK;
    }
    let realm = effective_realm(m, realm);
    let Some((cred, span)) = find_credentials(m, &realm, hf) else {
        return code::NO_CREDENTIALS;
    };
    let Some(alg) = cred.alg() else {
        tracing::info!(algorithm = ?cred.algorithm, "unsupported digest algorithm");
        return code::ERROR;
    };
    let index = match core.auth.nonces.check(&cred.nonce) {
        NonceCheck::Valid { index } => index,
        NonceCheck::Stale => {
            ctx.auth.stale = true;
            return code::STALE_NONCE;
        }
        NonceCheck::Invalid => return code::ERROR,
    };
    let method_str = method.unwrap_or(m.method_str()).to_string();
    let body = m.body().to_vec();
    if checks & 1 != 0 && !auth_user_matches(m, &cred) {
        return code::USER_MISMATCH;
    }
    let ha1 = match lookup(&cred) {
        Ok(Ha1Source::Password(p)) => super::digest::ha1(alg, &cred.username, &realm, &p),
        Ok(Ha1Source::Ha1(h)) => {
            if h.len() != alg.hex_len() {
                tracing::error!(
                    len = h.len(),
                    "HA1 value has the wrong length for {}",
                    alg.name()
                );
                return code::ERROR;
            }
            h.to_ascii_lowercase()
        }
        Err(c) => return c,
    };
    let expected = cred.expected_response(alg, &ha1, &method_str, &body);
    if !expected.eq_ignore_ascii_case(&cred.response) {
        return code::INVALID_PASSWORD;
    }
    // Nonce-count replay protection (qop present): only after the response proved the client.
    if core.auth.nonce_count && cred.qop.is_some() {
        let nc = cred
            .nc
            .as_deref()
            .and_then(|n| u32::from_str_radix(n, 16).ok())
            .unwrap_or(0);
        match core.auth.nonces.use_nc(index, nc) {
            NcCheck::Fresh => {}
            NcCheck::Replayed => return code::NONCE_REUSED,
            NcCheck::Evicted => {
                ctx.auth.stale = true;
                return code::STALE_NONCE;
            }
        }
    }
    ctx.auth.used = Some(span);
    code::OK
}

/// The credentials' user is the From user (To user for REGISTER) (Kamailio AUTH_CHECK_ID_F).
fn auth_user_matches(m: &SipMsg, cred: &Credentials) -> bool {
    let na = if m.method() == Method::Register {
        m.to_hdr()
    } else {
        m.from_hdr()
    };
    let user = na.ok().and_then(|n| n.uri.user.clone());
    let auser = cred.username.split('@').next().unwrap_or("");
    user.as_deref() == Some(auser)
}

/// `effective_realm` for the context's request (the realm as given without one).
pub fn effective_realm_of(ctx: &RouteCtx, realm: &str) -> String {
    ctx.request()
        .map(|m| effective_realm(m, realm))
        .unwrap_or_else(|| realm.to_string())
}
