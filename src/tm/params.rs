//! tm module parameters (Kamailio names, `[modparam.tm]`), read once at startup.

use std::time::Duration;

use crate::modules::modparam::ModParams;

/// Timer and behaviour settings of the transaction layer.
#[derive(Debug, Clone)]
pub struct TmParams {
    /// Final-response timer for non-INVITE branches and INVITE branches without a provisional
    /// reply (`fr_timer`, ms; timers B and F).
    pub fr_timer: Duration,
    /// Final-response timer for INVITE branches after a provisional reply (`fr_inv_timer`, ms).
    pub fr_inv_timer: Duration,
    /// RFC 3261 T1 (`retr_timer1`, ms): first retransmission interval.
    pub t1: Duration,
    /// RFC 3261 T2 (`retr_timer2`, ms): retransmission interval cap.
    pub t2: Duration,
    /// RFC 3261 T4 (`retr_timer4`, ms, a ksrd extension): how long a completed UDP transaction
    /// absorbs retransmissions (timers I and K).
    pub t4: Duration,
    /// How long a finished transaction lingers (`wt_timer`, ms; timers D and J).
    pub wt_timer: Duration,
    /// Send `100 Trying` when an INVITE transaction is created (`auto_inv_100`).
    pub auto_inv_100: bool,
    /// Reason phrase of that 100 (`auto_inv_100_reason`).
    pub auto_inv_100_reason: String,
    /// Restart the final-response timer on every provisional reply (`restart_fr_on_each_reply`).
    pub restart_fr_on_each_reply: bool,
    /// A 6xx reply does not cancel the other branches (`disable_6xx_block`).
    pub disable_6xx_block: bool,
    /// XAVP that `t_load_contacts` fills (`contacts_avp`).
    pub contacts_avp: Option<String>,
    /// XAVP that `t_next_contact_flow` uses (`contact_flows_avp`).
    pub contact_flows_avp: Option<String>,
    /// Longest life of an INVITE transaction (`max_inv_lifetime`, ms).
    pub max_inv_lifetime: Duration,
    /// Longest life of a non-INVITE transaction (`max_noninv_lifetime`, ms).
    pub max_noninv_lifetime: Duration,
}

impl Default for TmParams {
    fn default() -> Self {
        // Kamailio tm defaults (src/modules/tm/config.c).
        TmParams {
            fr_timer: Duration::from_millis(30_000),
            fr_inv_timer: Duration::from_millis(120_000),
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4_000),
            t4: Duration::from_millis(5_000),
            wt_timer: Duration::from_millis(5_000),
            auto_inv_100: true,
            auto_inv_100_reason: "trying -- your call is important to us".into(),
            restart_fr_on_each_reply: true,
            disable_6xx_block: false,
            contacts_avp: None,
            contact_flows_avp: None,
            max_inv_lifetime: Duration::from_millis(180_000),
            max_noninv_lifetime: Duration::from_millis(32_000),
        }
    }
}

impl TmParams {
    /// Read `[modparam.tm]`; values were type-checked when the config was loaded.
    pub fn from_modparams(p: &ModParams) -> Self {
        let mut t = TmParams::default();
        let ms = |name: &str, d: &mut Duration| {
            if let Some(v) = p.get_int("tm", name).filter(|v| *v > 0) {
                *d = Duration::from_millis(v as u64);
            }
        };
        ms("fr_timer", &mut t.fr_timer);
        ms("fr_inv_timer", &mut t.fr_inv_timer);
        ms("retr_timer1", &mut t.t1);
        ms("retr_timer2", &mut t.t2);
        ms("retr_timer4", &mut t.t4);
        ms("wt_timer", &mut t.wt_timer);
        ms("max_inv_lifetime", &mut t.max_inv_lifetime);
        ms("max_noninv_lifetime", &mut t.max_noninv_lifetime);
        if let Some(v) = p.get_int("tm", "auto_inv_100") {
            t.auto_inv_100 = v != 0;
        }
        if let Some(v) = p.get_str("tm", "auto_inv_100_reason") {
            t.auto_inv_100_reason = v.to_string();
        }
        if let Some(v) = p.get_int("tm", "restart_fr_on_each_reply") {
            t.restart_fr_on_each_reply = v != 0;
        }
        if let Some(v) = p.get_int("tm", "disable_6xx_block") {
            t.disable_6xx_block = v != 0;
        }
        t.contacts_avp = p.get_str("tm", "contacts_avp").map(str::to_string);
        t.contact_flows_avp = p.get_str("tm", "contact_flows_avp").map(str::to_string);
        t
    }
}
