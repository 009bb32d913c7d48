//! registrar and usrloc parameters (`[modparam.registrar]`, `[modparam.usrloc]`, Kamailio names).

use std::sync::Arc;

use crate::modules::modparam::ModParams;
use crate::script::ctx::RouteCtx;

/// Settings save() and lookup() need, read from the config.
#[derive(Debug, Clone)]
pub struct RegParams {
    /// `default_expires` (3600).
    pub default_expires: i64,
    /// `min_expires` (60).
    pub min_expires: i64,
    /// `min_expires_mode`: 1 answers 423 Interval Too Brief (ksrd's default, RFC 3261 §10.3
    /// step 7); 0 raises the value to min_expires (Kamailio's default).
    pub min_expires_mode: bool,
    /// `max_expires` (0: no limit).
    pub max_expires: i64,
    /// `max_contacts` (0: no limit).
    pub max_contacts: usize,
    /// `default_q` in thousandths (-1: unspecified).
    pub default_q: i32,
    /// `append_branches` (1): lookup adds the other contacts as branches.
    pub append_branches: bool,
    /// `received_param` ("received") in the 200's Contacts.
    pub received_param: String,
    /// AVP name from `received_avp` (`$avp(RECEIVED)` → `RECEIVED`).
    pub received_avp: Option<String>,
    /// `use_path`.
    pub use_path: bool,
    /// `method_filtering`.
    pub method_filtering: bool,
    /// usrloc `use_domain`: the AoR is user@host instead of user.
    pub use_domain: bool,
    /// `case_sensitive` (0: AoRs are lower-cased).
    pub case_sensitive: bool,
}

impl RegParams {
    /// The parameters of this context's config (read once at start-up, held by `Core`).
    pub fn get(ctx: &RouteCtx) -> Arc<RegParams> {
        ctx.core.registrar.clone()
    }

    /// Read `[modparam.registrar]` and `[modparam.usrloc]`.
    pub fn from_modparams(p: &ModParams) -> RegParams {
        let int = |m: &str, n: &str, d: i64| p.get_int(m, n).unwrap_or(d);
        RegParams {
            default_expires: int("registrar", "default_expires", 3600),
            min_expires: int("registrar", "min_expires", 60),
            min_expires_mode: int("registrar", "min_expires_mode", 1) != 0,
            max_expires: int("registrar", "max_expires", 0),
            max_contacts: int("registrar", "max_contacts", 0).max(0) as usize,
            default_q: int("registrar", "default_q", -1) as i32,
            append_branches: int("registrar", "append_branches", 1) != 0,
            received_param: p
                .get_str("registrar", "received_param")
                .unwrap_or("received")
                .to_string(),
            received_avp: p.get_str("registrar", "received_avp").map(avp_name),
            use_path: int("registrar", "use_path", 0) != 0,
            method_filtering: int("registrar", "method_filtering", 0) != 0,
            use_domain: int("usrloc", "use_domain", 0) != 0,
            case_sensitive: int("registrar", "case_sensitive", 0) != 0,
        }
    }
}

/// `$avp(s:name)` / `$avp(name)` → `name`.
pub fn avp_name(spec: &str) -> String {
    let s = spec.trim();
    let s = s
        .strip_prefix("$avp(")
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(s);
    s.trim_start_matches("s:").to_string()
}
