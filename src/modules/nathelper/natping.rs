//! NAT keepalive (nathelper.c nh_timer, sip_pinger.h): every `natping_interval` seconds each
//! registered UDP contact gets a SIP OPTIONS (contacts with `sipping_bflag`, or all when
//! `ping_nated_only` is 0) or a 4-byte UDP packet, so the phone's NAT binding stays open.
//! Replies to the OPTIONS are absorbed here; with `keepalive_timeout` a contact that has not
//! answered for that long is expired, as Kamailio's usrloc does for nathelper.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::core::Core;
use crate::modules::modparam::ModParams;
use crate::modules::usrloc::{now, Contact};
use crate::sip::{SipMsg, Uri};
use crate::transport::Proto;

/// natping settings (`[modparam.nathelper]`, Kamailio names).
#[derive(Debug, Clone)]
pub struct PingCfg {
    /// `natping_interval` seconds (0: no pings).
    pub interval: u64,
    /// `ping_nated_only`: only contacts saved with usrloc's `nat_bflag`.
    pub nated_only: bool,
    /// usrloc `nat_bflag` as a mask (0 when unset).
    pub nat_mask: u64,
    /// `sipping_bflag` as a mask (0 when unset).
    pub sip_mask: u64,
    /// `natping_disable_bflag` as a mask (0 when unset).
    pub disable_mask: u64,
    /// `sipping_from`.
    pub from: String,
    /// `sipping_method` (OPTIONS).
    pub method: String,
    /// `keepalive_timeout` seconds (0: never expire for lack of replies).
    pub keepalive_timeout: i64,
    /// `ignore_path`: ping the contact itself even when it registered through a Path.
    pub ignore_path: bool,
}

fn mask(p: &ModParams, module: &str, name: &str) -> u64 {
    match p.get_int(module, name) {
        Some(b) if (0..64).contains(&b) => 1u64 << b,
        _ => 0,
    }
}

impl PingCfg {
    /// Read the parameters.
    pub fn from_modparams(p: &ModParams) -> PingCfg {
        PingCfg {
            interval: p
                .get_int("nathelper", "natping_interval")
                .unwrap_or(0)
                .max(0) as u64,
            nated_only: p.get_int("nathelper", "ping_nated_only").unwrap_or(0) != 0,
            nat_mask: mask(p, "usrloc", "nat_bflag"),
            sip_mask: mask(p, "nathelper", "sipping_bflag"),
            disable_mask: mask(p, "nathelper", "natping_disable_bflag"),
            from: p
                .get_str("nathelper", "sipping_from")
                .unwrap_or("")
                .to_string(),
            method: p
                .get_str("nathelper", "sipping_method")
                .unwrap_or("OPTIONS")
                .to_string(),
            keepalive_timeout: p
                .get_int("nathelper", "keepalive_timeout")
                .unwrap_or(0)
                .max(0),
            ignore_path: p.get_int("nathelper", "ignore_path").unwrap_or(0) != 0,
        }
    }

    /// A contact gets OPTIONS rather than 4 bytes (nh_timer's send_sip_ping).
    fn sip_ping(&self, cflags: u64) -> bool {
        !self.from.is_empty()
            && ((cflags & self.sip_mask) != 0 || (!self.nated_only && self.sip_mask != 0))
    }
}

/// The pinger's running state.
pub struct Pinger {
    /// Settings.
    pub cfg: PingCfg,
    /// `nathelper.enable_ping` switch.
    pub enabled: AtomicBool,
    /// Fixed part of our ping Call-IDs (replies are recognised by it).
    callid: String,
    counter: AtomicU32,
    /// Last reply (or registration) per contact ruid, for `keepalive_timeout`.
    last_seen: Mutex<HashMap<String, i64>>,
    /// Pings sent and replies absorbed (for tests and statistics).
    pub sent: AtomicU32,
    /// Replies to our SIP pings.
    pub replies: AtomicU32,
}

impl Pinger {
    /// A pinger for these settings.
    pub fn new(cfg: PingCfg) -> Pinger {
        Pinger {
            cfg,
            enabled: AtomicBool::new(true),
            callid: format!("{:08x}", fastrand::u32(..)),
            counter: AtomicU32::new(fastrand::u32(..)),
            last_seen: Mutex::new(HashMap::new()),
            sent: AtomicU32::new(0),
            replies: AtomicU32::new(0),
        }
    }

    /// Start the timer thread (nothing when `natping_interval` is 0).
    pub fn start(core: &Arc<Core>) {
        let every = core.nathelper.ping.cfg.interval;
        if every == 0 {
            return;
        }
        let weak = Arc::downgrade(core);
        let spawned = std::thread::Builder::new()
            .name("ksrd-natping".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(every));
                let Some(core) = weak.upgrade() else { return };
                if core.nathelper.ping.enabled.load(Ordering::Relaxed) {
                    core.nathelper.ping.round(&core);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("nathelper: cannot start the natping timer: {e}");
        }
    }

    /// One round over every registered contact.
    pub fn round(&self, core: &Core) {
        let t = now();
        let mut seen = HashMap::new();
        for d in core.ul.domains() {
            let all = match d.all() {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(table = %d.name, "natping: cannot read contacts: {e}");
                    continue;
                }
            };
            for (aor, contacts) in all {
                for c in contacts {
                    if self.cfg.nated_only && c.cflags & self.cfg.nat_mask != self.cfg.nat_mask {
                        continue;
                    }
                    if c.cflags & self.cfg.disable_mask != 0 {
                        continue;
                    }
                    let last = self
                        .last_seen
                        .lock()
                        .get(&c.ruid)
                        .copied()
                        .unwrap_or(0)
                        .max(c.last_modified);
                    // Kamailio also expires contacts it pings with 4 bytes, which can never
                    // answer; only a contact that gets OPTIONS can prove it is alive.
                    if self.cfg.keepalive_timeout > 0
                        && self.cfg.sip_ping(c.cflags)
                        && c.socket.starts_with("udp:")
                        && last + self.cfg.keepalive_timeout < t
                    {
                        expire_soon(&d, &aor, &c.ruid, t);
                        continue;
                    }
                    seen.insert(c.ruid.clone(), last);
                    if let Err(e) = self.ping(core, &aor, &c) {
                        tracing::debug!(contact = %c.uri, "natping: {e}");
                    }
                }
            }
        }
        *self.last_seen.lock() = seen;
    }

    fn ping(&self, core: &Core, aor: &str, c: &Contact) -> Result<(), String> {
        let path_hop = c
            .path
            .as_deref()
            .filter(|_| !self.cfg.ignore_path && self.cfg.sip_ping(c.cflags))
            .and_then(first_path_uri);
        let target = path_hop
            .clone()
            .or_else(|| c.received.clone())
            .unwrap_or_else(|| c.uri.clone());
        let u = Uri::parse(target.as_bytes()).map_err(|e| format!("bad URI {target}: {e}"))?;
        if u.transport()
            .is_some_and(|t| !t.eq_ignore_ascii_case("udp"))
        {
            return Ok(());
        }
        let dest = crate::core::forward::resolve_host(&u.host, u.port.unwrap_or(5060))
            .map_err(|e| e.to_string())?;
        let local = c
            .socket
            .strip_prefix("udp:")
            .and_then(|s| s.parse::<SocketAddr>().ok());
        let data = if self.cfg.sip_ping(c.cflags) {
            let local_addr = local
                .or_else(|| core.sender.local_for(Proto::Udp, dest))
                .ok_or("no UDP socket to ping from")?;
            let route = path_hop.as_ref().and(c.path.as_deref());
            self.options(core, aor, c, local_addr, route).into_bytes()
        } else {
            vec![0u8; 4]
        };
        core.sender
            .send(Proto::Udp, dest, local, &data)
            .map_err(|e| e.to_string())?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The OPTIONS (sip_pinger.h build_sipping): From tag `ruid-aorhash-counter` so the reply
    /// names the contact.
    fn options(
        &self,
        core: &Core,
        aor: &str,
        c: &Contact,
        local: SocketAddr,
        path: Option<&str>,
    ) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let host = crate::modules::nathelper::contact::uri_host(local.ip());
        let aorhash = core.hash(&[aor.as_bytes()]) as u32;
        let route = path.map(|p| format!("Route: {p}\r\n")).unwrap_or_default();
        format!(
            "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{br:08x}\r\n{route}\
             From: {from};tag={ruid}-{aorhash:x}-{n:x}\r\nTo: {uri}\r\n\
             Call-ID: {cid}-{n:08x}@{host}\r\nCSeq: 1 {m}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            m = self.cfg.method,
            uri = c.uri,
            port = local.port(),
            br = fastrand::u32(..),
            from = self.cfg.from,
            ruid = c.ruid,
            cid = self.callid,
        )
    }

    /// A reply to one of our pings: absorbed (true), and with `keepalive_timeout` it marks the
    /// contact alive (nathelper.c sipping_rpl_filter and nh_sip_reply_received).
    pub fn absorb(&self, m: &SipMsg) -> bool {
        if self.cfg.interval == 0 || self.cfg.from.is_empty() {
            return false;
        }
        let ours = m
            .call_id()
            .and_then(|c| c.strip_prefix(self.callid.as_str()))
            .is_some_and(|rest| rest.starts_with('-'));
        if !ours || m.vias().map(|v| v.len()).unwrap_or(0) != 1 {
            return false;
        }
        if !m
            .cseq()
            .is_ok_and(|c| c.method_str.eq_ignore_ascii_case(&self.cfg.method))
        {
            return false;
        }
        self.replies.fetch_add(1, Ordering::Relaxed);
        if self.cfg.keepalive_timeout > 0 {
            if let Some(ruid) = m
                .from_hdr()
                .ok()
                .and_then(|f| f.tag())
                .and_then(ruid_of_tag)
            {
                self.last_seen.lock().insert(ruid.to_string(), now());
            }
        }
        true
    }
}

/// `ruid-aorhash-counter` → ruid (the ruid itself may contain `-`).
fn ruid_of_tag(tag: &str) -> Option<&str> {
    let (rest, _counter) = tag.rsplit_once('-')?;
    let (ruid, _hash) = rest.rsplit_once('-')?;
    (!ruid.is_empty()).then_some(ruid)
}

/// The first URI of a Path value.
fn first_path_uri(path: &str) -> Option<String> {
    let first = path.split(',').next()?.trim();
    let u = first.trim_start_matches('<');
    let u = u.split('>').next().unwrap_or(u);
    (!u.is_empty()).then(|| u.to_string())
}

/// A contact that stopped answering expires in 10 s (usrloc dlist.c get_all_ucontacts).
fn expire_soon(d: &crate::modules::usrloc::Domain, aor: &str, ruid: &str, t: i64) {
    let r = d.update(aor, |l| {
        for c in l.iter_mut().filter(|c| c.ruid == ruid) {
            if c.expires == 0 || c.expires > t + 10 {
                c.expires = t + 10;
            }
        }
    });
    match r {
        Ok(()) => tracing::info!(
            aor,
            ruid,
            "natping: contact stopped answering keepalives, expiring it"
        ),
        Err(e) => tracing::error!(aor, "natping: cannot expire a dead contact: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruid_comes_back_from_the_from_tag() {
        assert_eq!(ruid_of_tag("uloc-5f1-a2-1f3-9"), Some("uloc-5f1-a2"));
        assert_eq!(ruid_of_tag("abc-1-2"), Some("abc"));
        assert_eq!(ruid_of_tag("abc-1"), None);
        assert_eq!(ruid_of_tag("-1-2"), None);
    }
}
