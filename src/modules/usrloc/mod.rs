//! usrloc: where registered users are (Kamailio src/modules/usrloc). Domains (tables such as
//! `location`) map an AoR to its contacts; records live in lock shards so workers registering
//! different users never contend. Expired contacts are invisible at once and removed by a
//! periodic sweep. `db_mode` (src/modules/usrloc/db.rs) says how the `location` table follows.

pub mod db;
pub mod rpc;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, MutexGuard, RwLock};

pub use db::{DbMode, Persist, UlError};

use crate::modules::modparam::ModParams;

/// Lock shards per domain.
const SHARDS: usize = 64;

/// Check `[modparam.usrloc]` values ksrd interprets: (key, message) on error.
pub fn validate(p: &ModParams, have_db: bool) -> Result<(), (String, String)> {
    let key = "modparam.usrloc.db_mode".to_string();
    let v = p.get_int("usrloc", "db_mode").unwrap_or(0);
    match DbMode::from_param(v) {
        None => Err((key, format!("must be 0, 1, 2, 3 or 4, got {v}"))),
        Some(m) if m != DbMode::NoDb && !have_db => {
            Err((key, format!("db_mode = {v} needs a database: set db_url")))
        }
        Some(_) => Ok(()),
    }
}

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
    persist: Option<Arc<Persist>>,
    pending: db::Pending,
}

/// Lock a shard. A SIP worker holding the GIL releases it while it waits, because the holder
/// may be waiting for the database with the GIL released and need it back afterwards.
fn lock<T: Send>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    if let Some(g) = m.try_lock() {
        return g;
    }
    if crate::db::holds_gil() {
        pyo3::Python::attach(|py| py.detach(|| m.lock()))
    } else {
        m.lock()
    }
}

impl Domain {
    fn new(name: &str, persist: Option<Arc<Persist>>) -> Domain {
        Domain {
            name: name.to_string(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            persist,
            pending: Default::default(),
        }
    }

    fn shard(&self, aor: &str) -> &Mutex<HashMap<String, Vec<Contact>>> {
        use std::hash::BuildHasher;
        &self.shards[(self.hasher.hash_one(aor) as usize) % SHARDS]
    }

    fn db_only(&self) -> Option<&Persist> {
        self.persist.as_deref().filter(|p| p.mode == DbMode::DbOnly)
    }

    /// Run `f` on the AoR's live contacts (expired ones removed first); the record is dropped
    /// when `f` leaves it empty. The change reaches the database as `db_mode` says; with
    /// write-through a failed write undoes the change and returns the error (Kamailio answers
    /// the REGISTER with 500 then, too).
    pub fn update<R>(
        &self,
        aor: &str,
        f: impl FnOnce(&mut Vec<Contact>) -> R,
    ) -> Result<R, UlError> {
        let now = now();
        let mut m = lock(self.shard(aor));
        if let Some(p) = self.db_only() {
            // The shard lock only serialises changes of one AoR; nothing is kept in memory.
            let mut list = p.fetch(&self.name, aor)?;
            list.retain(|c| live(c, now));
            let before = list.clone();
            let r = f(&mut list);
            p.write(&self.name, aor, &before, &list)?;
            return Ok(r);
        }
        let list = m.entry(aor.to_string()).or_default();
        list.retain(|c| live(c, now));
        let before = self
            .persist
            .as_ref()
            .filter(|p| p.mode != DbMode::ReadOnly)
            .map(|_| list.clone());
        let r = f(list);
        if let (Some(p), Some(before)) = (&self.persist, before) {
            if p.mode == DbMode::WriteBack {
                p.queue(&self.pending, aor, &before, list);
            } else if let Err(e) = p.write(&self.name, aor, &before, list) {
                *list = before;
                if list.is_empty() {
                    m.remove(aor);
                }
                return Err(e);
            }
        }
        if list.is_empty() {
            m.remove(aor);
        } else if list.capacity() > list.len() {
            // Most AoRs have one or two phones: a Vec's default growth to 4 would double the
            // memory of a registration.
            list.shrink_to_fit();
        }
        Ok(r)
    }

    /// The AoR's live contacts, highest q first (equal q: most recently registered first, as
    /// Kamailio orders them).
    pub fn get(&self, aor: &str) -> Result<Vec<Contact>, UlError> {
        let now = now();
        let mut v: Vec<Contact> = match self.db_only() {
            Some(p) => {
                let mut l = p.fetch(&self.name, aor)?;
                l.retain(|c| live(c, now));
                l
            }
            None => lock(self.shard(aor))
                .get(aor)
                .map(|l| l.iter().filter(|c| live(c, now)).cloned().collect())
                .unwrap_or_default(),
        };
        v.sort_by(|a, b| b.q.cmp(&a.q).then(b.last_modified.cmp(&a.last_modified)));
        Ok(v)
    }

    /// Remove an AoR; true if it had contacts.
    pub fn remove(&self, aor: &str) -> Result<bool, UlError> {
        self.update(aor, |l| {
            let had = !l.is_empty();
            l.clear();
            had
        })
    }

    /// Every AoR with its live contacts (for ul.dump).
    pub fn all(&self) -> Result<Vec<(String, Vec<Contact>)>, UlError> {
        let now = now();
        let mut out = Vec::new();
        if let Some(p) = self.db_only() {
            out.extend(p.load(&self.name, now)?);
        } else {
            for s in &self.shards {
                for (aor, l) in lock(s).iter() {
                    let live: Vec<Contact> = l.iter().filter(|c| live(c, now)).cloned().collect();
                    if !live.is_empty() {
                        out.push((aor.clone(), live));
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Drop expired contacts and empty records (and expired rows of the table, and write the
    /// write-back queue); returns how many contacts went from memory.
    pub fn sweep(&self) -> usize {
        let now = now();
        let mut gone = 0;
        for s in &self.shards {
            let mut m = lock(s);
            m.retain(|_, l| {
                let before = l.len();
                l.retain(|c| live(c, now));
                gone += before - l.len();
                !l.is_empty()
            });
        }
        if let Some(p) = &self.persist {
            if p.mode == DbMode::WriteBack {
                if let Err(e) = p.flush(&self.name, &self.pending) {
                    tracing::error!(table = %self.name, "usrloc: write-back to the database failed: {e}");
                }
            }
            if p.mode != DbMode::ReadOnly {
                if let Err(e) = p.remove_expired(&self.name, now) {
                    tracing::error!(table = %self.name, "usrloc: removing expired rows failed: {e}");
                }
            }
        }
        gone
    }

    /// Write the write-back queue now (`ul.flush`, shutdown).
    pub fn flush(&self) -> Result<usize, UlError> {
        match &self.persist {
            Some(p) if p.mode == DbMode::WriteBack => p.flush(&self.name, &self.pending),
            _ => Ok(0),
        }
    }

    /// Number of AoRs held in memory.
    pub fn records(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Fill memory from the table (start-up / first use with `db_mode` 1, 2 or 4).
    fn load(&self, p: &Persist) -> Result<usize, UlError> {
        let rows = p.load(&self.name, now())?;
        let n = rows.len();
        for (aor, contacts) in rows {
            lock(self.shard(&aor)).insert(aor, contacts);
        }
        Ok(n)
    }
}

/// Not expired (`expires` = 0 is a permanent binding, e.g. one added by `ul.add` with 0).
fn live(c: &Contact, now: i64) -> bool {
    c.expires == 0 || c.expires > now
}

/// All usrloc domains.
#[derive(Default)]
pub struct Usrloc {
    domains: RwLock<HashMap<String, Arc<Domain>>>,
    persist: OnceLock<Arc<Persist>>,
}

impl Usrloc {
    /// Attach the database (`db_mode` other than 0), before any domain is used.
    pub fn attach(&self, p: Persist) -> bool {
        self.persist.set(Arc::new(p)).is_ok()
    }

    /// The database mode in effect.
    pub fn db_mode(&self) -> DbMode {
        self.persist.get().map(|p| p.mode).unwrap_or(DbMode::NoDb)
    }

    /// The domain, created on first use (Kamailio needs `preload` under KEMI; ksrd does not).
    /// With `db_mode` 1, 2 or 4 a new domain is filled from its table.
    pub fn domain(&self, name: &str) -> Arc<Domain> {
        if let Some(d) = self.domains.read().get(name) {
            return d.clone();
        }
        let persist = self.persist.get().cloned();
        let d = Arc::new(Domain::new(name, persist.clone()));
        if let Some(p) = persist.filter(|p| p.mode.loads()) {
            match d.load(&p) {
                Ok(n) => tracing::info!(
                    table = name,
                    records = n,
                    "usrloc: loaded from the database"
                ),
                Err(e) => tracing::error!(
                    table = name,
                    "usrloc: loading from the database failed, starting empty: {e}"
                ),
            }
        }
        self.domains
            .write()
            .entry(name.to_string())
            .or_insert(d)
            .clone()
    }

    /// The domain if it exists (with a database, every table may hold bindings: it is opened).
    pub fn find(&self, name: &str) -> Option<Arc<Domain>> {
        if let Some(d) = self.domains.read().get(name) {
            return Some(d.clone());
        }
        self.persist.get().is_some().then(|| self.domain(name))
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

    /// Write every write-back queue (shutdown); errors are logged.
    pub fn flush(&self) {
        for d in self.domains() {
            match d.flush() {
                Ok(n) if n > 0 => {
                    tracing::info!(table = %d.name, changes = n, "usrloc: written to the database")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(table = %d.name, "usrloc: write-back to the database failed: {e}")
                }
            }
        }
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
        })
        .unwrap();
        let v: Vec<String> = d.get("alice").unwrap().into_iter().map(|c| c.uri).collect();
        assert_eq!(v, ["sip:a@2", "sip:a@1", "sip:a@3"]);
        assert_eq!(d.sweep(), 1);
        d.update("alice", |l| l.clear()).unwrap();
        assert_eq!(d.records(), 0);
        assert!(d.get("alice").unwrap().is_empty());
    }
}
