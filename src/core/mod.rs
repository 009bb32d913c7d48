//! Core services shared by every worker: config, sockets, "myself", statistics, local replies,
//! stateless forwarding and the retransmission cache.

pub mod forward;
pub mod kemi;
pub mod myself;
pub mod reply;
pub mod retrans;
pub mod rpc;
pub mod stats;

use std::time::SystemTime;

use std::hash::{BuildHasher, Hasher};

use parking_lot::Mutex;

use crate::config::Config;
use crate::sip::SipMsg;
use crate::transport::Sender;

/// Server-wide state; one per process, shared by `Arc`.
pub struct Core {
    /// The configuration.
    pub cfg: Config,
    /// Sends on any transport.
    pub sender: Sender,
    /// Counters.
    pub stats: stats::Stats,
    /// Local addresses and aliases.
    pub myself: myself::Myself,
    /// Start time (core.uptime).
    pub started: SystemTime,
    /// Replies (and forwards) to resend when a request is retransmitted.
    pub retrans: Mutex<retrans::RetransCache>,
    /// `$shv(name)` values shared by every worker (`KSR.pvx.shv_*`, `modparam.pv.shvset`).
    pub shv: crate::modules::pvx::ShvStore,
    /// htable tables shared by every worker (`KSR.htable.*`, `$sht`, `modparam.htable.htable`).
    pub htable: crate::modules::htable::Htables,
    /// The transaction layer (tm).
    pub tm: crate::tm::Tm,
    /// registrar/usrloc settings.
    pub registrar: std::sync::Arc<crate::modules::registrar::params::RegParams>,
    /// auth_db settings.
    pub auth_db: std::sync::Arc<crate::modules::auth_db::Params>,
    /// Registered contacts (usrloc).
    pub ul: std::sync::Arc<crate::modules::usrloc::Usrloc>,
    /// Digest authentication state (nonce secret, settings).
    pub auth: crate::modules::auth::AuthState,
    /// The GeoIP2 database (`modparam.geoip2.path`).
    pub geoip2: crate::modules::geoip2::Geoip2,
    /// pike's flood detection tree.
    pub pike: crate::modules::pike::Pike,
    /// nathelper settings and NAT keepalives.
    pub nathelper: std::sync::Arc<crate::modules::nathelper::NatHelper>,
    /// sqlops named connections (`modparam.sqlops.sqlcon`), opened at start-up.
    pub sqlops: crate::modules::sqlops::Sqlops,
    /// The database (`db_url`), set once at start-up; use [`Core::db`].
    pub db: std::sync::OnceLock<crate::db::Db>,
    /// Prefix of every to-tag we generate, so ACKs to our replies are recognised.
    tag_prefix: String,
    hasher: std::collections::hash_map::RandomState,
}

impl Core {
    /// Assemble the core.
    pub fn new(cfg: Config, sender: Sender, bound: &[std::net::SocketAddr]) -> Core {
        let myself = myself::Myself::new(&cfg, bound);
        let shv = crate::modules::pvx::ShvStore::from_params(&cfg.modparams);
        let tm = crate::tm::Tm::new(crate::tm::TmParams::from_modparams(&cfg.modparams));
        let auth = crate::modules::auth::AuthState::from_modparams(&cfg.modparams);
        let htable = crate::modules::htable::Htables::from_params(&cfg.modparams);
        Core {
            registrar: std::sync::Arc::new(
                crate::modules::registrar::params::RegParams::from_modparams(&cfg.modparams),
            ),
            auth_db: std::sync::Arc::new(crate::modules::auth_db::Params::from_modparams(
                &cfg.modparams,
            )),
            ul: Default::default(),
            pike: crate::modules::pike::Pike::from_modparams(&cfg.modparams),
            geoip2: crate::modules::geoip2::Geoip2::from_modparams(&cfg.modparams),
            nathelper: std::sync::Arc::new(crate::modules::nathelper::NatHelper::from_modparams(
                &cfg.modparams,
            )),
            auth,
            tm,
            db: std::sync::OnceLock::new(),
            sqlops: crate::modules::sqlops::Sqlops::from_params(&cfg.modparams),
            shv,
            htable,
            cfg,
            sender,
            stats: stats::Stats::default(),
            myself,
            started: SystemTime::now(),
            retrans: Mutex::new(retrans::RetransCache::new(65536)),
            tag_prefix: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            hasher: Default::default(),
        }
    }

    /// The database handle, or [`crate::db::DbError::NotConfigured`] when there is no `db_url`.
    pub fn db(&self) -> Result<&crate::db::Db, crate::db::DbError> {
        self.db.get().ok_or(crate::db::DbError::NotConfigured)
    }

    /// A keyed hash of some byte strings (stable within this process).
    pub fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for p in parts {
            h.write(p);
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// The to-tag for a local reply to `req`: the same for retransmissions (Kamailio sl).
    pub fn to_tag(&self, req: &SipMsg, key: Option<u64>) -> String {
        // The request key already identifies the transaction (and its retransmissions).
        if let Some(k) = key {
            return format!("{}.{:08x}", self.tag_prefix, (k ^ (k >> 32)) as u32);
        }
        let ftag = req.from_hdr().ok().and_then(|f| f.tag()).unwrap_or("");
        let branch = req
            .vias()
            .ok()
            .and_then(|v| v.first())
            .and_then(|v| v.branch())
            .unwrap_or("");
        let h = self.hash(&[
            req.call_id().unwrap_or("").as_bytes(),
            ftag.as_bytes(),
            branch.as_bytes(),
        ]);
        format!("{}.{:08x}", self.tag_prefix, h as u32)
    }

    /// True if this to-tag was generated by us.
    pub fn is_our_tag(&self, tag: &str) -> bool {
        tag.len() > self.tag_prefix.len() && tag.starts_with(&self.tag_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tcp::TcpHandle;

    #[test]
    fn request_hash_has_no_collisions_on_similar_branches() {
        let cfg = Config::from_str(
            crate::config::EMBEDDED_DEFAULT,
            "x",
            std::path::Path::new("."),
        )
        .unwrap();
        let core = Core::new(cfg, Sender::new(vec![], TcpHandle::disabled()), &[]);
        let mut set = std::collections::HashSet::new();
        for i in 0..100_000 {
            let b = format!("z9hG4bK-14652-{i}-0");
            set.insert(core.hash(&[b.as_bytes(), b"127.0.0.1", b"OPTIONS"]));
        }
        assert_eq!(set.len(), 100_000);
        // Part boundaries matter: ("ab","c") and ("a","bc") differ.
        assert_ne!(core.hash(&[b"ab", b"c"]), core.hash(&[b"a", b"bc"]));
    }
}
