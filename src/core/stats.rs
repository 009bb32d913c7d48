//! Counters with Kamailio's statistic names (`stats.get_statistics`).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! stats {
    ($($id:ident => $name:literal),* $(,)?) => {
        /// A statistic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Stat { $(#[doc = $name] $id),* }
        const NAMES: &[&str] = &[$($name),*];
    };
}

stats! {
    RcvRequests => "core:rcv_requests",
    RcvReplies => "core:rcv_replies",
    FwdRequests => "core:fwd_requests",
    FwdReplies => "core:fwd_replies",
    DropRequests => "core:drop_requests",
    DropReplies => "core:drop_replies",
    ErrRequests => "core:err_requests",
    ErrReplies => "core:err_replies",
    BadMsgHdr => "core:bad_msg_hdr",
    BadUrisRcvd => "core:bad_URIs_rcvd",
    UnsupportedMethods => "core:unsupported_methods",
    ScriptErrors => "app_python:exceptions",
    ScriptReloads => "app_python:reloads",
    SlSentReplies => "sl:sent_replies",
    SlSentErrReplies => "sl:sent_err_replies",
    SlReceivedAcks => "sl:received_ACKs",
    SlRetransmissions => "sl:retransmissions",
    SlFailures => "sl:failures",
    Sl1xx => "sl:1xx_replies",
    Sl2xx => "sl:2xx_replies",
    Sl3xx => "sl:3xx_replies",
    Sl4xx => "sl:4xx_replies",
    Sl5xx => "sl:5xx_replies",
    Sl6xx => "sl:6xx_replies",
    Sl200 => "sl:200_replies",
    Sl202 => "sl:202_replies",
    Sl400 => "sl:400_replies",
    Sl401 => "sl:401_replies",
    Sl403 => "sl:403_replies",
    Sl404 => "sl:404_replies",
    Sl407 => "sl:407_replies",
    Sl408 => "sl:408_replies",
    Sl483 => "sl:483_replies",
    Sl500 => "sl:500_replies",
    TmUasTransactions => "tmx:UAS_transactions",
    TmUacTransactions => "tmx:UAC_transactions",
    TmRplReceived => "tmx:rpl_received",
    TmRplRelayed => "tmx:rpl_relayed",
    TmRplAbsorbed => "tmx:rpl_absorbed",
    TmRplGenerated => "tmx:rpl_generated",
    TmLocalReplies => "tmx:local_replies",
    TmRetransmissions => "tm:absorbed_request_retransmissions",
    TmAckAbsorbed => "tm:absorbed_acks",
}

/// All counters.
pub struct Stats {
    v: Vec<AtomicU64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            v: NAMES.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Stats {
    /// Add one.
    #[inline]
    pub fn inc(&self, s: Stat) {
        self.v[s as usize].fetch_add(1, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self, s: Stat) -> u64 {
        self.v[s as usize].load(Ordering::Relaxed)
    }
    /// Count a locally sent reply under the sl counters.
    pub fn sl_reply(&self, code: u16) {
        self.inc(Stat::SlSentReplies);
        if code >= 300 {
            self.inc(Stat::SlSentErrReplies);
        }
        let class = match code / 100 {
            1 => Stat::Sl1xx,
            2 => Stat::Sl2xx,
            3 => Stat::Sl3xx,
            4 => Stat::Sl4xx,
            5 => Stat::Sl5xx,
            _ => Stat::Sl6xx,
        };
        self.inc(class);
        let exact = match code {
            200 => Some(Stat::Sl200),
            202 => Some(Stat::Sl202),
            400 => Some(Stat::Sl400),
            401 => Some(Stat::Sl401),
            403 => Some(Stat::Sl403),
            404 => Some(Stat::Sl404),
            407 => Some(Stat::Sl407),
            408 => Some(Stat::Sl408),
            483 => Some(Stat::Sl483),
            500 => Some(Stat::Sl500),
            _ => None,
        };
        if let Some(e) = exact {
            self.inc(e);
        }
    }
    /// `(name, value)` for every counter.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        NAMES
            .iter()
            .zip(&self.v)
            .map(|(n, v)| (*n, v.load(Ordering::Relaxed)))
    }
}
