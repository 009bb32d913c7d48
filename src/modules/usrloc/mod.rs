//! usrloc: where registered users are (Kamailio src/modules/usrloc). Domains (tables such as
//! `location`) map an AoR to its contacts; records live in lock shards so workers registering
//! different users never contend. Expired contacts are invisible at once and removed by a
//! periodic sweep. `db_mode` 0 (memory only) for now.

pub mod rpc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

/// Lock shards per domain.
const SHARDS: usize = 64;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One registered contact (a binding), with Kamailio's `ucontact` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Contact URI as registered.
    pub uri: String,
    /// Absolute expiry (Unix seconds).
    pub expires: i64,
    /// q in thousandths (1000 = 1.0); -1 when unspecified.
    pub q: i32,
    /// Call-ID of the REGISTER.
    pub callid: String,
    /// CSeq number of the REGISTER.
    pub cseq: u32,
    /// Where the REGISTER really came from (NAT), `sip:ip:port;transport=x`.
    pub received: Option<String>,
    /// Path header value (RFC 3327).
    pub path: Option<String>,
    /// User-Agent of the registering phone.
    pub user_agent: String,
    /// Local socket the REGISTER came in on (`udp:ip:port`).
    pub socket: String,
    /// Branch flags saved with the contact (restored by lookup).
    pub cflags: u64,
    /// Contact flags.
    pub flags: u32,
    /// Allowed methods bitmask (-1: all).
    pub methods: i64,
    /// `+sip.instance` (RFC 5626).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: u32,
    /// Unique record id.
    pub ruid: String,
    /// Last change (Unix seconds).
    pub last_modified: i64,
}

impl Contact {
    /// Seconds left, 0 when expired.
    pub fn left(&self, now: i64) -> i64 {
        (self.expires - now).max(0)
    }
}

/// One table (`location`).
pub struct Domain {
    /// Table name.
    pub name: String,
    shards: Vec<Mutex<HashMap<String, Vec<Contact>>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Domain {
    fn new(name: &str) -> Domain {
        Domain {
            name: name.to_string(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, aor: &str) -> &Mutex<HashMap<String, Vec<Contact>>> {
        use std::hash::BuildHasher;
        &self.shards[(self.hasher.hash_one(aor) as usize) % SHARDS]
    }

    /// Run `f` on the AoR's live contacts (expired ones removed first); the record is dropped
    /// when `f` leaves it empty.
    pub fn update<R>(&self, aor: &str, f: impl FnOnce(&mut Vec<Contact>) -> R) -> R {
        let now = now();
        let mut m = self.shard(aor).lock();
        let list = m.entry(aor.to_string()).or_default();
        list.retain(|c| c.expires > now);
        let r = f(list);
        if list.is_empty() {
            m.remove(aor);
        } else if list.capacity() > list.len() {
            // Most AoRs have one or two phones: a Vec's default growth to 4 would double the
            // memory of a registration.
            list.shrink_to_fit();
        }
        r
    }

    /// The AoR's live contacts, highest q first (equal q: most recently registered first, as
    /// Kamailio orders them).
    pub fn get(&self, aor: &str) -> Vec<Contact> {
        let now = now();
        let m = self.shard(aor).lock();
        let mut v: Vec<Contact> = m
            .get(aor)
            .map(|l| l.iter().filter(|c| c.expires > now).cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.q.cmp(&a.q).then(b.last_modified.cmp(&a.last_modified)));
        v
    }

    /// Remove an AoR; true if it existed.
    pub fn remove(&self, aor: &str) -> bool {
        self.shard(aor).lock().remove(aor).is_some()
    }

    /// Every AoR with its live contacts (for ul.dump).
    pub fn all(&self) -> Vec<(String, Vec<Contact>)> {
        let now = now();
        let mut out = Vec::new();
        for s in &self.shards {
            for (aor, l) in s.lock().iter() {
                let live: Vec<Contact> = l.iter().filter(|c| c.expires > now).cloned().collect();
                if !live.is_empty() {
                    out.push((aor.clone(), live));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drop expired contacts and empty records; returns how many contacts went.
    pub fn sweep(&self) -> usize {
        let now = now();
        let mut gone = 0;
        for s in &self.shards {
            let mut m = s.lock();
            m.retain(|_, l| {
                let before = l.len();
                l.retain(|c| c.expires > now);
                gone += before - l.len();
                !l.is_empty()
            });
        }
        gone
    }

    /// Number of AoRs.
    pub fn records(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// All usrloc domains.
#[derive(Default)]
pub struct Usrloc {
    domains: RwLock<HashMap<String, Arc<Domain>>>,
}

impl Usrloc {
    /// The domain, created on first use (Kamailio needs `preload` under KEMI; ksrd does not).
    pub fn domain(&self, name: &str) -> Arc<Domain> {
        if let Some(d) = self.domains.read().get(name) {
            return d.clone();
        }
        self.domains
            .write()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Domain::new(name)))
            .clone()
    }

    /// The domain if it exists.
    pub fn find(&self, name: &str) -> Option<Arc<Domain>> {
        self.domains.read().get(name).cloned()
    }

    /// Every domain.
    pub fn domains(&self) -> Vec<Arc<Domain>> {
        let mut v: Vec<_> = self.domains.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Remove expired contacts everywhere.
    pub fn sweep(&self) -> usize {
        self.domains().iter().map(|d| d.sweep()).sum()
    }

    /// Start the expiry sweep (`timer_interval` seconds).
    pub fn start_timer(self: &Arc<Self>, every: std::time::Duration) {
        let ul = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("ksrd-usrloc".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                match ul.upgrade() {
                    Some(u) => {
                        let n = u.sweep();
                        if n > 0 {
                            tracing::debug!(removed = n, "usrloc: expired contacts removed");
                        }
                    }
                    None => return,
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(uri: &str, q: i32, left: i64, t: i64) -> Contact {
        Contact {
            uri: uri.into(),
            expires: now() + left,
            q,
            callid: "x".into(),
            cseq: 1,
            received: None,
            path: None,
            user_agent: String::new(),
            socket: String::new(),
            cflags: 0,
            flags: 0,
            methods: -1,
            instance: None,
            reg_id: 0,
            ruid: uri.into(),
            last_modified: t,
        }
    }

    #[test]
    fn contacts_come_back_by_q_and_expired_ones_vanish() {
        let ul = Usrloc::default();
        let d = ul.domain("location");
        d.update("alice", |l| {
            l.push(c("sip:a@1", 500, 60, 1));
            l.push(c("sip:a@2", 1000, 60, 2));
            l.push(c("sip:a@3", -1, 60, 3));
            l.push(c("sip:a@old", 1000, -1, 4));
        });
        let v: Vec<String> = d.get("alice").into_iter().map(|c| c.uri).collect();
        assert_eq!(v, ["sip:a@2", "sip:a@1", "sip:a@3"]);
        assert_eq!(d.sweep(), 1);
        d.update("alice", |l| l.clear());
        assert_eq!(d.records(), 0);
        assert!(d.get("alice").is_empty());
    }
}
