//! usrloc's database modes (Kamailio usrloc `db_mode`, usrloc/ucontact.c and udomain.c): how the
//! `location` table follows the bindings held in memory.
//!
//! - 0 memory only; 1 write-through: every change is written before save() answers; 2
//!   write-back: changes are queued and written by the timer and at shutdown; 3 DB only: nothing
//!   is kept in memory; 4 read-only: loaded at start, never written.
//!
//! All calls block the calling thread through [`Db::wait`] (which releases the GIL), so they
//! must come from SIP workers, timer threads or blocking RPC handlers, never from async tasks.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::Contact;
use crate::db::{Db, DbError, Location};

/// Kamailio's `db_mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbMode {
    /// 0: no database.
    NoDb,
    /// 1: write every change at once.
    WriteThrough,
    /// 2: queue changes, write them on the timer.
    WriteBack,
    /// 3: the database is the only store.
    DbOnly,
    /// 4: load at start, never write.
    ReadOnly,
}

impl DbMode {
    /// From the `db_mode` parameter; `None` for a value Kamailio does not have.
    pub fn from_param(v: i64) -> Option<DbMode> {
        Some(match v {
            0 => DbMode::NoDb,
            1 => DbMode::WriteThrough,
            2 => DbMode::WriteBack,
            3 => DbMode::DbOnly,
            4 => DbMode::ReadOnly,
            _ => return None,
        })
    }

    /// True when the bindings are loaded from the table when a domain is first used.
    pub fn loads(self) -> bool {
        matches!(
            self,
            DbMode::WriteThrough | DbMode::WriteBack | DbMode::ReadOnly
        )
    }
}

/// Why a usrloc operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UlError {
    /// The `location` table could not be read or written.
    #[error("usrloc database: {0}")]
    Db(#[from] DbError),
}

/// The database side of usrloc: the handle, the mode, and how AoRs map to rows.
pub struct Persist {
    db: Db,
    /// The configured mode (never [`DbMode::NoDb`]).
    pub mode: DbMode,
    rows: Rows,
}

/// How bindings map to `location` rows (usrloc `use_domain`: the AoR is `user@domain`, split
/// into the `username` and `domain` columns).
#[derive(Debug, Clone, Copy)]
pub struct Rows {
    /// usrloc's `use_domain`.
    pub use_domain: bool,
}

/// Changes waiting for the write-back timer, per table: ruid → the row to write, or `None` to
/// delete it. A later change of the same binding replaces the earlier one.
pub(super) type Pending = Mutex<HashMap<String, Option<Location>>>;

impl Persist {
    /// usrloc over `db` in `mode`; `use_domain` as usrloc's parameter.
    pub fn new(db: Db, mode: DbMode, use_domain: bool) -> Persist {
        Persist {
            db,
            mode,
            rows: Rows { use_domain },
        }
    }

    /// Every live binding of `table`, grouped by AoR (start-up load, DB-only dumps). Permanent
    /// rows (`expires` = 0) are kept as Kamailio does.
    pub fn load(&self, table: &str, now: i64) -> Result<HashMap<String, Vec<Contact>>, UlError> {
        let rows = self.db.wait(self.db.location_load(table))?;
        let mut out: HashMap<String, Vec<Contact>> = HashMap::new();
        for row in rows {
            let (aor, c) = self.rows.from_row(row);
            if c.expires == 0 || c.expires > now {
                out.entry(aor).or_default().push(c);
            }
        }
        Ok(out)
    }

    /// The bindings of one AoR from the table (DB-only mode).
    pub fn fetch(&self, table: &str, aor: &str) -> Result<Vec<Contact>, UlError> {
        let (user, domain) = self.rows.columns(aor);
        let rows = self.db.wait(self.db.location_get(table, user, domain))?;
        Ok(rows.into_iter().map(|r| self.rows.from_row(r).1).collect())
    }

    /// Write the difference between `before` and `after` (one AoR's bindings) at once.
    pub fn write(
        &self,
        table: &str,
        aor: &str,
        before: &[Contact],
        after: &[Contact],
    ) -> Result<(), UlError> {
        let (upserts, removed) = diff(before, after);
        if !upserts.is_empty() {
            let rows: Vec<Location> = upserts.iter().map(|c| self.rows.to_row(aor, c)).collect();
            self.db.wait(self.db.location_upsert(table, &rows))?;
        }
        if !removed.is_empty() {
            self.db.wait(self.db.location_remove(table, &removed))?;
        }
        Ok(())
    }

    /// Queue the difference for the write-back timer.
    pub(super) fn queue(
        &self,
        pending: &Pending,
        aor: &str,
        before: &[Contact],
        after: &[Contact],
    ) {
        let (upserts, removed) = diff(before, after);
        if upserts.is_empty() && removed.is_empty() {
            return;
        }
        let mut p = pending.lock();
        for c in upserts {
            p.insert(c.ruid.clone(), Some(self.rows.to_row(aor, c)));
        }
        for r in removed {
            p.insert(r, None);
        }
    }

    /// Write the queued changes of `table` (write-back timer and shutdown). Changes that fail
    /// stay queued for the next round unless a newer change of the same binding came meanwhile.
    pub(super) fn flush(&self, table: &str, pending: &Pending) -> Result<usize, UlError> {
        let batch: HashMap<String, Option<Location>> = std::mem::take(&mut *pending.lock());
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        let mut rows = Vec::new();
        let mut gone = Vec::new();
        for (ruid, op) in &batch {
            match op {
                Some(l) => rows.push(l.clone()),
                None => gone.push(ruid.clone()),
            }
        }
        let r = (|| {
            if !rows.is_empty() {
                self.db.wait(self.db.location_upsert(table, &rows))?;
            }
            if !gone.is_empty() {
                self.db.wait(self.db.location_remove(table, &gone))?;
            }
            Ok::<_, UlError>(())
        })();
        if let Err(e) = r {
            let mut p = pending.lock();
            for (ruid, op) in batch {
                p.entry(ruid).or_insert(op);
            }
            return Err(e);
        }
        Ok(n)
    }

    /// Delete the rows that expired (the timer; `expires` = 0 rows are permanent).
    pub fn remove_expired(&self, table: &str, now: i64) -> Result<u64, UlError> {
        Ok(self.db.wait(self.db.location_remove_expired(table, now))?)
    }

    /// Delete every row of an AoR (DB-only `ul.rm`).
    pub fn remove_aor(&self, table: &str, aor: &str) -> Result<u64, UlError> {
        let (user, domain) = self.rows.columns(aor);
        Ok(self
            .db
            .wait(self.db.location_remove_aor(table, user, domain))?)
    }
}

impl Rows {
    /// Split an AoR into the `username` and `domain` columns.
    fn columns<'a>(&self, aor: &'a str) -> (&'a str, Option<&'a str>) {
        if self.use_domain {
            if let Some((u, d)) = aor.split_once('@') {
                return (u, Some(d));
            }
        }
        (aor, None)
    }

    /// The AoR a row belongs to.
    fn aor_of(&self, l: &Location) -> String {
        match (&l.domain, self.use_domain) {
            (Some(d), true) if !d.is_empty() => format!("{}@{d}", l.username),
            _ => l.username.clone(),
        }
    }

    /// A binding as a `location` row.
    pub fn to_row(&self, aor: &str, c: &Contact) -> Location {
        let (user, domain) = self.columns(aor);
        Location {
            ruid: c.ruid.clone(),
            username: user.to_string(),
            domain: domain.map(str::to_string),
            contact: c.uri.clone(),
            received: c.received.clone(),
            path: c.path.clone(),
            expires: c.expires,
            q: if c.q < 0 { -1.0 } else { c.q as f32 / 1000.0 },
            callid: c.callid.clone(),
            cseq: c.cseq as i32,
            last_modified: c.last_modified,
            flags: c.flags as i32,
            cflags: c.cflags as i32,
            user_agent: c.user_agent.clone(),
            socket: (!c.socket.is_empty()).then(|| c.socket.clone()),
            // Kamailio keeps "all methods" as 0xFFFFFFFF in an INT column, i.e. -1.
            methods: Some(c.methods as i32),
            instance: c.instance.clone(),
            reg_id: c.reg_id as i32,
            server_id: 0,
            connection_id: -1,
            keepalive: 0,
            partition: 0,
        }
    }

    /// A `location` row as (AoR, binding).
    pub fn from_row(&self, l: Location) -> (String, Contact) {
        let aor = self.aor_of(&l);
        let c = Contact {
            uri: l.contact,
            expires: l.expires,
            q: if l.q < 0.0 {
                -1
            } else {
                (l.q * 1000.0).round() as i32
            },
            callid: l.callid,
            cseq: l.cseq as u32,
            received: l.received.filter(|s| !s.is_empty()),
            path: l.path.filter(|s| !s.is_empty()),
            user_agent: l.user_agent,
            socket: l.socket.unwrap_or_default(),
            cflags: l.cflags as u32 as u64,
            flags: l.flags as u32,
            methods: match l.methods {
                None | Some(-1) => -1,
                Some(m) => m as u32 as i64,
            },
            instance: l.instance.filter(|s| !s.is_empty()),
            reg_id: l.reg_id.max(0) as u32,
            ruid: l.ruid,
            last_modified: l.last_modified,
        };
        (aor, c)
    }
}

/// Bindings that are new or changed in `after`, and the ruids that left.
fn diff<'a>(before: &[Contact], after: &'a [Contact]) -> (Vec<&'a Contact>, Vec<String>) {
    let upserts = after
        .iter()
        .filter(|c| !before.iter().any(|b| b == *c))
        .collect();
    let removed = before
        .iter()
        .filter(|b| !after.iter().any(|c| c.ruid == b.ruid))
        .map(|b| b.ruid.clone())
        .collect();
    (upserts, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(ruid: &str, uri: &str) -> Contact {
        Contact {
            uri: uri.into(),
            expires: 2_000_000_000,
            q: 500,
            callid: "c".into(),
            cseq: 7,
            received: Some("sip:192.0.2.1:5062".into()),
            path: None,
            user_agent: "ua".into(),
            socket: "udp:127.0.0.1:5060".into(),
            cflags: 0x40,
            flags: 0,
            methods: -1,
            instance: Some("<urn:uuid:1>".into()),
            reg_id: 1,
            ruid: ruid.into(),
            last_modified: 1_700_000_000,
        }
    }

    #[test]
    fn diff_finds_new_changed_and_removed_bindings() {
        let a = contact("a", "sip:a@1");
        let b = contact("b", "sip:b@1");
        let mut b2 = b.clone();
        b2.cseq = 8;
        let c = contact("c", "sip:c@1");
        let before = [a.clone(), b];
        let after = [b2.clone(), c.clone()];
        let (up, gone) = diff(&before, &after);
        assert_eq!(up, [&b2, &c]);
        assert_eq!(gone, ["a"]);
        let (up, gone) = diff(&after, &after);
        assert!(up.is_empty() && gone.is_empty());
    }

    #[test]
    fn domain_column_follows_use_domain() {
        let with = Rows { use_domain: true };
        let c = contact("r1", "sip:alice@192.0.2.1");
        let row = with.to_row("alice@example.com", &c);
        assert_eq!(
            (row.username.as_str(), row.domain.as_deref()),
            ("alice", Some("example.com"))
        );
        assert_eq!(row.methods, Some(-1));
        assert_eq!(row.q, 0.5);
        assert_eq!(
            with.from_row(row),
            ("alice@example.com".to_string(), c.clone())
        );
        let without = Rows { use_domain: false };
        let row = without.to_row("alice", &c);
        assert_eq!(
            (row.username.as_str(), row.domain.as_deref()),
            ("alice", None)
        );
        assert_eq!(without.from_row(row), ("alice".to_string(), c));
    }
}
