//! Per-worker htable state: named iterators (`sht_iterator_*`, `$shtitkey`, `$shtitval`) and the
//! slot locks a script holds with `sht_lock` (Kamailio ht_api.c `ht_iterator_*`, htable.c
//! `ki_ht_slot_xlock`).
//!
//! Kamailio keeps a slot locked from one `sht_iterator_next` to the next, and a `sht_lock` until
//! the matching `sht_unlock`. ksrd iterators hold no lock between calls (a Python exception or a
//! forgotten `sht_iterator_end` would otherwise block that slot for every worker): each step
//! locks the slot briefly, and items other workers add or remove meanwhile may or may not be
//! seen. Slot locks taken with `sht_lock` and still held when the route returns are released
//! then, with a warning.

use std::sync::Arc;

use super::table::{Cursor, ItemView, SetVal, Table};

/// At most this many iterators per worker (Kamailio `HT_ITERATOR_SIZE`).
pub const MAX_ITERATORS: usize = 4;
/// Iterator names must be shorter than this (Kamailio `HT_ITERATOR_NAME_SIZE`).
pub const MAX_NAME: usize = 32;

/// Why an iterator call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IterError {
    /// All iterators are in use.
    #[error("no iterator available - max number is {MAX_ITERATORS}")]
    Full,
    /// The name is too long.
    #[error("iterator name is too big [{0}] (max {MAX_NAME})")]
    NameTooLong(String),
    /// No iterator with that name.
    #[error("iterator not found [{0}]")]
    NotFound(String),
    /// The iterator is not on an item.
    #[error("iterator not used [{0}]")]
    NotUsed(String),
    /// The current item was removed by someone else.
    #[error("iterator item is gone [{0}]")]
    Gone(String),
}

struct Iter {
    name: String,
    table: Arc<Table>,
    cur: Option<Cursor>,
}

/// One worker's iterators and held slot locks (lives in the worker's route context).
#[derive(Default)]
pub struct HtCtx {
    iters: Vec<Iter>,
    held: Vec<(Arc<Table>, usize)>,
}

impl HtCtx {
    fn find(&mut self, name: &str) -> Result<&mut Iter, IterError> {
        self.iters
            .iter_mut()
            .find(|i| i.name == name)
            .ok_or_else(|| IterError::NotFound(name.into()))
    }

    /// Start (or restart) iterator `name` over `table`.
    pub fn start(&mut self, name: &str, table: Arc<Table>) -> Result<(), IterError> {
        if let Ok(it) = self.find(name) {
            it.table = table;
            it.cur = None;
            return Ok(());
        }
        if self.iters.len() >= MAX_ITERATORS {
            return Err(IterError::Full);
        }
        if name.len() >= MAX_NAME {
            return Err(IterError::NameTooLong(name.into()));
        }
        self.iters.push(Iter {
            name: name.into(),
            table,
            cur: None,
        });
        Ok(())
    }

    /// Move to the next item; false at the end (the next call starts over, as in Kamailio).
    pub fn next(&mut self, name: &str) -> Result<bool, IterError> {
        let it = self.find(name)?;
        it.cur = match &it.cur {
            None => it.table.scan_from(0, 0),
            Some(c) => it.table.next_after(c),
        };
        Ok(it.cur.is_some())
    }

    /// Forget iterator `name`.
    pub fn end(&mut self, name: &str) -> Result<(), IterError> {
        let p = self
            .iters
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| IterError::NotFound(name.into()))?;
        self.iters.remove(p);
        Ok(())
    }

    /// Remove the current item and move to the next; false when there is none.
    pub fn remove(&mut self, name: &str) -> Result<bool, IterError> {
        let it = self.find(name)?;
        let c = it
            .cur
            .take()
            .ok_or_else(|| IterError::NotUsed(name.into()))?;
        it.cur = it.table.remove_at(&c);
        Ok(it.cur.is_some())
    }

    /// Set the current item's value (`Some`) or its expire to `secs` from now (`None`).
    pub fn update(
        &mut self,
        name: &str,
        v: Option<SetVal<'_>>,
        secs: i64,
    ) -> Result<(), IterError> {
        let it = self.find(name)?;
        let c = it
            .cur
            .as_mut()
            .ok_or_else(|| IterError::NotUsed(name.into()))?;
        let view = it
            .table
            .update_at(c, v, secs)
            .ok_or_else(|| IterError::Gone(name.into()))?;
        c.item = view;
        Ok(())
    }

    /// The item iterator `name` stands on.
    pub fn current(&self, name: &str) -> Option<&ItemView> {
        self.iters
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.cur.as_ref())
            .map(|c| &c.item)
    }

    /// Lock `slot` of `table` for this worker until [`release`](Self::release).
    pub fn hold(&mut self, table: &Arc<Table>, slot: usize) {
        table.hold_slot(slot);
        self.held.push((table.clone(), slot));
    }

    /// Release one hold of `slot`; false when this worker does not hold it.
    pub fn release(&mut self, table: &Table, slot: usize) -> bool {
        let Some(p) = self
            .held
            .iter()
            .rposition(|(t, s)| std::ptr::eq(&**t, table) && *s == slot)
        else {
            return false;
        };
        let (t, s) = self.held.remove(p);
        // SAFETY: `hold` took this lock on this thread (the context never changes threads while
        // it holds locks) and this record is removed, so it is released once.
        unsafe { t.release_slot(s) };
        true
    }

    /// Release every held slot (end of a route); the number released.
    pub fn release_all(&mut self) -> usize {
        let n = self.held.len();
        while let Some((t, s)) = self.held.pop() {
            tracing::warn!(
                table = t.name(),
                slot = s,
                "htable slot still locked at the end of the route (missing sht_unlock): released"
            );
            // SAFETY: as in `release`.
            unsafe { t.release_slot(s) };
        }
        n
    }
}

impl Drop for HtCtx {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::htable::spec::parse;
    use crate::modules::pv::PvVal;

    fn table(n: i64) -> Arc<Table> {
        let t = Arc::new(Table::new(parse("t=>size=2").unwrap()));
        for i in 0..n {
            t.set(&format!("k{i}"), SetVal::Int(i), 0);
        }
        t
    }

    #[test]
    fn iterate_and_modify() {
        let t = table(10);
        let mut h = HtCtx::default();
        assert_eq!(h.next("i"), Err(IterError::NotFound("i".into())));
        h.start("i", t.clone()).unwrap();
        assert_eq!(h.current("i"), None);
        let mut keys = Vec::new();
        while h.next("i").unwrap() {
            let cur = h.current("i").unwrap().clone();
            keys.push(cur.key.clone());
            if cur.key == "k3" {
                h.update("i", Some(SetVal::Str("three")), 0).unwrap();
                assert_eq!(h.current("i").unwrap().value, PvVal::Str("three".into()));
            }
        }
        assert_eq!(keys.len(), 10);
        assert_eq!(t.get("k3"), Some(PvVal::Str("three".into())));
        // After the end, next starts over (Kamailio).
        assert!(h.next("i").unwrap());
        h.end("i").unwrap();
        assert_eq!(h.end("i"), Err(IterError::NotFound("i".into())));
    }

    #[test]
    fn remove_all_through_iterator() {
        let t = table(7);
        let mut h = HtCtx::default();
        h.start("i", t.clone()).unwrap();
        assert_eq!(h.remove("i"), Err(IterError::NotUsed("i".into())));
        assert!(h.next("i").unwrap());
        let mut n = 1;
        while h.remove("i").unwrap() {
            n += 1;
        }
        assert_eq!(n, 7);
        assert_eq!(t.stats().0, 0);
    }

    #[test]
    fn at_most_four_and_short_names() {
        let t = table(1);
        let mut h = HtCtx::default();
        for i in 0..4 {
            h.start(&format!("i{i}"), t.clone()).unwrap();
        }
        assert_eq!(h.start("i4", t.clone()), Err(IterError::Full));
        h.start("i0", t.clone()).unwrap();
        h.end("i3").unwrap();
        let long = "x".repeat(MAX_NAME);
        assert!(matches!(
            h.start(&long, t.clone()),
            Err(IterError::NameTooLong(_))
        ));
    }

    #[test]
    fn holds_are_released() {
        let t = table(0);
        let mut h = HtCtx::default();
        let s = t.slot_of("x");
        assert!(!h.release(&t, s));
        h.hold(&t, s);
        h.hold(&t, s);
        assert!(h.release(&t, s));
        assert_eq!(h.release_all(), 1);
        // Free again: another thread can take it.
        let t2 = t.clone();
        std::thread::spawn(move || t2.set("x", SetVal::Int(1), 0))
            .join()
            .unwrap();
        assert_eq!(t.get("x"), Some(PvVal::Int(1)));
    }
}
