//! Kamailio-style modules: each owns its state and declares its KEMI exports and parameters once.

pub mod corex;
pub mod hdr;
pub mod htable;
pub mod kx;
pub mod maxfwd;
pub mod modparam;
pub mod pv;
pub mod pvx;
pub mod sanity;
pub mod siputils;
pub mod sl;
pub mod xlog;

use crate::script::exports::Export;
use modparam::{ModuleParams, ParamKind::*};

/// Every export table, in `app_python.api_list` order.
pub static EXPORT_TABLES: &[&[Export]] = &[
    crate::core::kemi::EXPORTS,
    pv::EXPORTS,
    hdr::EXPORTS,
    sl::EXPORTS,
    corex::EXPORTS,
    maxfwd::EXPORTS,
    sanity::EXPORTS,
    siputils::EXPORTS,
    kx::EXPORTS,
    pvx::EXPORTS,
    xlog::EXPORTS,
    crate::tm::kemi::EXPORTS,
    crate::tm::tmx::EXPORTS,
    crate::rr::EXPORTS,
    htable::EXPORTS,
];

/// Parameters of the modules ksrd has (Kamailio names and types).
pub static MODULE_PARAMS: &[ModuleParams] = &[
    ModuleParams {
        module: "maxfwd",
        params: &[("max_limit", Int)],
    },
    ModuleParams {
        module: "sanity",
        params: &[
            ("default_checks", Int),
            ("uri_checks", Int),
            ("autodrop", Int),
            ("noreply", Int),
            ("proxy_requires", Str),
        ],
    },
    ModuleParams {
        module: "sl",
        params: &[
            ("default_code", Int),
            ("default_reason", Str),
            ("bind_tm", Int),
        ],
    },
    ModuleParams {
        module: "app_python3",
        params: &[
            ("load", Str),
            ("script_name", Str),
            ("mod_init_function", Str),
            ("child_init_method", Str),
            ("threads_mode", Int),
        ],
    },
    ModuleParams {
        module: "pv",
        params: &[
            ("shvset", StrList),
            ("varset", StrList),
            ("avp_aliases", Str),
        ],
    },
    ModuleParams {
        module: "siputils",
        params: &[("options_accept", Str), ("options_support", Str)],
    },
    ModuleParams {
        module: "corex",
        params: &[("alias_subdomains", StrList)],
    },
    crate::rr::PARAMS,
    htable::PARAMS,
    ModuleParams {
        module: "tm",
        params: &[
            ("fr_timer", Int),
            ("fr_inv_timer", Int),
            ("retr_timer1", Int),
            ("retr_timer2", Int),
            ("retr_timer4", Int),
            ("wt_timer", Int),
            ("delete_timer", Int),
            ("max_inv_lifetime", Int),
            ("max_noninv_lifetime", Int),
            ("auto_inv_100", Int),
            ("auto_inv_100_reason", Str),
            ("restart_fr_on_each_reply", Int),
            ("disable_6xx_block", Int),
            ("contacts_avp", Str),
            ("contact_flows_avp", Str),
            ("failure_reply_mode", Int),
            ("cancel_b_method", Int),
            ("e2e_cancel_reason", Int),
            ("noisy_ctimer", Int),
            ("unix_tx_timeout", Int),
            ("aggregate_challenges", Int),
            ("reparse_on_dns_failover", Int),
            ("on_sl_reply", Str),
            ("fr_inv_timer_next", Int),
            ("pass_provisional_replies", Int),
            ("blst_503", Int),
            ("local_ack_mode", Int),
            ("failure_exec_mode", Int),
            ("dns_reuse_rcv_socket", Int),
            ("xavp_contact", Str),
            ("event_callback", Str),
            ("evcb_reply", Str),
            ("reply_relay_mode", Int),
        ],
    },
    ModuleParams {
        module: "tmx",
        params: &[("precheck_trans", Int)],
    },
    ModuleParams {
        module: "kemix",
        params: &[],
    },
    // Accepted for kamailio.cfg parity; ksrd's log output does not use them (level, text and
    // target "ksr" only).
    ModuleParams {
        module: "xlog",
        params: &[
            ("buf_size", Int),
            ("force_color", Int),
            ("long_format", Int),
            ("prefix", Str),
            ("log_facility", Str),
            ("log_colors", StrList),
            ("methods_filter", Int),
            ("prefix_mode", Int),
            ("auto_newline", Int),
        ],
    },
];
