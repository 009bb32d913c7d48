//! `[modparam.rr]`: Kamailio's rr module parameters (src/modules/rr/rr_mod.c `params`).

use crate::modules::modparam::{ModParams, ModuleParams, ParamKind::*};

/// The parameters ksrd accepts under `[modparam.rr]`, with Kamailio's names and types.
pub const PARAMS: ModuleParams = ModuleParams {
    module: "rr",
    params: &[
        ("append_fromtag", Int),
        ("enable_double_rr", Int),
        ("enable_full_lr", Int),
        ("add_username", Int),
        ("enable_socket_mismatch_warning", Int),
        ("custom_user_avp", Str),
        ("force_send_socket", Int),
        ("ignore_sips", Int),
        ("sockname_mode", Int),
        ("loose_route_mode", Int),
    ],
};

/// The rr parameters that change behaviour; the others are accepted for kamailio.cfg parity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrConfig {
    /// `append_fromtag`: add `;ftag=` to our Record-Route (needed by `is_direction`).
    pub append_fromtag: bool,
    /// `enable_double_rr`: 0 never, 1 when the in and out sockets differ, 2 always.
    pub enable_double_rr: i64,
    /// `enable_full_lr`: write `;lr=on` instead of `;lr` for old loose routers.
    pub enable_full_lr: bool,
    /// `add_username`: put the R-URI user (or `custom_user_avp`) in the Record-Route URI.
    pub add_username: bool,
    /// `custom_user_avp`: name of the AVP holding the Record-Route user (`$avp(name)`).
    pub custom_user_avp: Option<String>,
    /// `ignore_sips`: always write `sip:` even when the R-URI is `sips:`.
    pub ignore_sips: bool,
}

impl Default for RrConfig {
    /// Kamailio's defaults (rr_mod.c).
    fn default() -> Self {
        RrConfig {
            append_fromtag: true,
            enable_double_rr: 1,
            enable_full_lr: false,
            add_username: false,
            custom_user_avp: None,
            ignore_sips: false,
        }
    }
}

impl RrConfig {
    /// Read `[modparam.rr]`; unset parameters keep Kamailio's defaults.
    pub fn from_params(p: &ModParams) -> RrConfig {
        let d = RrConfig::default();
        let flag = |name: &str, def: bool| p.get_int("rr", name).map_or(def, |v| v != 0);
        RrConfig {
            append_fromtag: flag("append_fromtag", d.append_fromtag),
            enable_double_rr: p
                .get_int("rr", "enable_double_rr")
                .unwrap_or(d.enable_double_rr),
            enable_full_lr: flag("enable_full_lr", d.enable_full_lr),
            add_username: flag("add_username", d.add_username),
            custom_user_avp: p
                .get_str("rr", "custom_user_avp")
                .map(avp_name)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            ignore_sips: flag("ignore_sips", d.ignore_sips),
        }
    }

    /// The `;lr` parameter as this configuration writes it.
    pub fn lr(&self) -> &'static str {
        if self.enable_full_lr {
            ";lr=on"
        } else {
            ";lr"
        }
    }
}

/// The AVP name of `$avp(name)` / `$avp(s:name)` (a bare name is taken as is).
fn avp_name(spec: &str) -> &str {
    let s = spec.trim();
    let inner = s
        .strip_prefix("$avp(")
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(s);
    inner.strip_prefix("s:").unwrap_or(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avp_spec_forms() {
        assert_eq!(avp_name("$avp(rr_user)"), "rr_user");
        assert_eq!(avp_name("$avp(s:rr_user)"), "rr_user");
        assert_eq!(avp_name("rr_user"), "rr_user");
    }
}
