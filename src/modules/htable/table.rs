//! One hash table: a fixed array of slots, each behind its own lock, holding int or string items
//! with an optional expire time. Semantics follow Kamailio's ht_api.c (`ht_set_cell_core`,
//! `ht_cell_value_add`, `ht_cell_pkg_copy`, `ht_set_cell_expire`, `ht_timer`).
//!
//! Locking: one re-entrant lock per slot, as Kamailio's `ht_slot_lock`, so `sht_lock` can hold a
//! slot across KSR calls while the same worker keeps using it. No lock covers the whole table.
//! Memory: the slot count is fixed by `size`; the number of items is unbounded, as in Kamailio.

use std::cell::RefCell;
use std::hash::BuildHasher;

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

use super::spec::TableSpec;
use crate::modules::pv::PvVal;

/// A value to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetVal<'a> {
    /// Integer.
    Int(i64),
    /// String.
    Str(&'a str),
}

impl<'a> From<&'a PvVal> for SetVal<'a> {
    fn from(v: &'a PvVal) -> SetVal<'a> {
        match v {
            PvVal::Int(i) => SetVal::Int(*i),
            PvVal::Str(s) => SetVal::Str(s),
            // Non-UTF-8 bytes cannot be a str item; PV writes of bodies store the lossy text.
            PvVal::Bytes(_) => SetVal::Str(""),
        }
    }
}

/// One item. Key and string value share one allocation to keep a small item small.
pub struct Item {
    /// The key followed by the string value (empty for an int).
    data: Box<str>,
    /// The value of an int item.
    int: i64,
    /// High bits of the key's hash, compared before the key.
    tag: u32,
    key_len: u32,
    /// Unix seconds after which the item is gone; 0: never.
    expire: u32,
    is_str: bool,
}

impl Item {
    fn new(key: &str, tag: u32, v: SetVal<'_>, expire: u32) -> Item {
        let mut it = Item {
            data: Box::from(key),
            int: 0,
            tag,
            key_len: key.len() as u32,
            expire,
            is_str: false,
        };
        it.set_value(v);
        it
    }
    /// The key.
    pub fn key(&self) -> &str {
        &self.data[..self.key_len as usize]
    }
    /// The string value, None for an int item.
    pub fn str_value(&self) -> Option<&str> {
        self.is_str.then(|| &self.data[self.key_len as usize..])
    }
    /// The int value, None for a string item.
    pub fn int_value(&self) -> Option<i64> {
        (!self.is_str).then_some(self.int)
    }
    /// The value as a PV value.
    pub fn value(&self) -> PvVal {
        match self.str_value() {
            Some(s) => PvVal::Str(s.to_string()),
            None => PvVal::Int(self.int),
        }
    }
    /// Unix seconds after which the item is gone; 0: never.
    pub fn expire(&self) -> u32 {
        self.expire
    }
    fn set_value(&mut self, v: SetVal<'_>) {
        match v {
            SetVal::Int(i) => {
                if self.is_str {
                    self.data = Box::from(self.key());
                }
                self.is_str = false;
                self.int = i;
            }
            SetVal::Str(s) => {
                if self.str_value() != Some(s) {
                    let mut d = String::with_capacity(self.key_len as usize + s.len());
                    d.push_str(self.key());
                    d.push_str(s);
                    self.data = d.into_boxed_str();
                }
                self.is_str = true;
                self.int = 0;
            }
        }
    }
    fn matches(&self, tag: u32, key: &str) -> bool {
        self.tag == tag && self.key() == key
    }
}

/// A snapshot of one item (RPC, iterators, persistence).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemView {
    /// Key.
    pub key: String,
    /// Value.
    pub value: PvVal,
    /// Unix seconds after which the item is gone; 0: never.
    pub expire: u32,
}

impl From<&Item> for ItemView {
    fn from(it: &Item) -> ItemView {
        ItemView {
            key: it.key().to_string(),
            value: it.value(),
            expire: it.expire,
        }
    }
}

/// Where an iterator stands: the item it shows and its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Slot index.
    pub slot: usize,
    /// Position in the slot when it was read.
    pub idx: usize,
    /// The item as it was read.
    pub item: ItemView,
}

type Slot = ReentrantMutex<RefCell<Vec<Item>>>;
type Guard<'a> = ReentrantMutexGuard<'a, RefCell<Vec<Item>>>;

/// Current wall-clock second (coarse clock: a second's resolution is all expiry needs).
pub fn unix_now() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    ts.tv_sec.clamp(0, u32::MAX as libc::time_t) as u32
}

/// Block on a slot lock with the GIL released when this thread holds it. Workers call KSR
/// functions with the GIL held; a slot may be held by another worker through `sht_lock` while it
/// runs Python, so waiting with the GIL would deadlock both.
fn without_gil<R>(f: impl FnOnce() -> R) -> R {
    use pyo3::ffi;
    // SAFETY: the GIL is released only around `f`, which touches no Python object, and is
    // re-acquired with the same thread state before returning.
    unsafe {
        if ffi::Py_IsInitialized() != 0 && ffi::PyGILState_Check() == 1 {
            let ts = ffi::PyEval_SaveThread();
            let r = f();
            ffi::PyEval_RestoreThread(ts);
            return r;
        }
    }
    f()
}

/// One hash table.
pub struct Table {
    /// The definition.
    pub spec: TableSpec,
    slots: Box<[Slot]>,
    hasher: foldhash::quality::RandomState,
    clock: fn() -> u32,
}

impl Table {
    /// An empty table for `spec`.
    pub fn new(spec: TableSpec) -> Table {
        Self::with_clock(spec, unix_now)
    }

    /// An empty table reading time from `clock` (tests).
    pub fn with_clock(spec: TableSpec, clock: fn() -> u32) -> Table {
        let n = spec.slots.max(1).next_power_of_two();
        Table {
            slots: (0..n).map(|_| Slot::default()).collect(),
            spec,
            hasher: Default::default(),
            clock,
        }
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// "Now" as the expiry logic sees it: 0 when the table has no autoexpire (Kamailio reads the
    /// clock only when `htexpire > 0`, so per-item expires only work on autoexpire tables).
    fn now(&self) -> u32 {
        if self.spec.autoexpire > 0 {
            (self.clock)()
        } else {
            0
        }
    }

    fn expired(&self, it: &Item, now: u32) -> bool {
        self.spec.autoexpire > 0 && it.expire != 0 && it.expire < now
    }

    /// Expire of a fresh write: `now + autoexpire` (0 without autoexpire).
    fn fresh(&self, now: u32) -> u32 {
        if now == 0 {
            0
        } else {
            now.saturating_add(self.spec.autoexpire)
        }
    }

    /// Expire `secs` from now (0 when the table has no autoexpire: never checked there).
    fn after(&self, now: u32, secs: i64) -> u32 {
        if now == 0 {
            0
        } else {
            (now as i64 + secs).clamp(1, u32::MAX as i64) as u32
        }
    }

    fn locate(&self, key: &str) -> (usize, u32) {
        let h = self.hasher.hash_one(key);
        ((h as usize) & (self.slots.len() - 1), (h >> 32) as u32)
    }

    /// The slot a key lives in.
    pub fn slot_of(&self, key: &str) -> usize {
        self.locate(key).0
    }

    fn lock(&self, idx: usize) -> Guard<'_> {
        let m = &self.slots[idx];
        match m.try_lock() {
            Some(g) => g,
            None => without_gil(|| m.lock()),
        }
    }

    /// Run `f` on the live item of `key`, if any.
    pub fn with_item<R>(&self, key: &str, f: impl FnOnce(&Item) -> R) -> Option<R> {
        let (idx, tag) = self.locate(key);
        let now = self.now();
        let g = self.lock(idx);
        let items = g.borrow();
        let it = items.iter().find(|it| it.matches(tag, key))?;
        (!self.expired(it, now)).then(|| f(it))
    }

    /// The value of `key`; None when missing or expired (`ht_cell_pkg_copy`).
    pub fn get(&self, key: &str) -> Option<PvVal> {
        self.with_item(key, Item::value)
    }

    /// Whether `key` has a live item (`ht_cell_exists`).
    pub fn exists(&self, key: &str) -> bool {
        self.with_item(key, |_| ()).is_some()
    }

    /// Set `key` (`ht_set_cell_core`): `exv > 0` sets the item's expire to `exv` seconds from now;
    /// otherwise a new item gets `autoexpire` and an existing one is refreshed when
    /// `updateexpire` is on or it had already expired.
    pub fn set(&self, key: &str, v: SetVal<'_>, exv: i64) {
        let (idx, tag) = self.locate(key);
        let now = self.now();
        let g = self.lock(idx);
        let mut items = g.borrow_mut();
        match items.iter_mut().find(|it| it.matches(tag, key)) {
            Some(it) => {
                it.set_value(v);
                if exv > 0 {
                    it.expire = self.after(now, exv);
                } else if self.spec.updateexpire || (now != 0 && it.expire != 0 && it.expire < now)
                {
                    it.expire = self.fresh(now);
                }
            }
            None => {
                let exp = if exv > 0 {
                    self.after(now, exv)
                } else {
                    self.fresh(now)
                };
                items.push(Item::new(key, tag, v, exp));
            }
        }
    }

    /// Set the expire of an existing item (`ht_set_cell_expire`): `secs > 0` from now, else
    /// never. Nothing happens on a table without autoexpire or for a missing key.
    pub fn set_expire(&self, key: &str, secs: i64) {
        let now = self.now();
        if now == 0 {
            return;
        }
        let (idx, tag) = self.locate(key);
        let g = self.lock(idx);
        let mut items = g.borrow_mut();
        if let Some(it) = items.iter_mut().find(|it| it.matches(tag, key)) {
            it.expire = if secs > 0 { self.after(now, secs) } else { 0 };
        }
    }

    /// Seconds until `key` expires (`$shtex`); 0 when missing, never expiring, already expired,
    /// or the table has no autoexpire. (Kamailio returns a wrapped-around number for the last
    /// cases: `(unsigned)(expire - now)`.)
    pub fn expire_left(&self, key: &str) -> u32 {
        let now = self.now();
        if now == 0 {
            return 0;
        }
        self.with_item(key, |it| it.expire.saturating_sub(now))
            .unwrap_or(0)
    }

    /// Add `delta` to an int item and return the new value (`ht_cell_value_add`). A missing or
    /// expired key starts from `initval`; without `initval`, or for a string item, None.
    /// Kamailio resurrects an expired item with its old value when there is no initval (the
    /// call fails but the item reappears with a fresh expire); ksrd drops it instead.
    pub fn add(&self, key: &str, delta: i64) -> Option<i64> {
        let (idx, tag) = self.locate(key);
        let now = self.now();
        let g = self.lock(idx);
        let mut items = g.borrow_mut();
        if let Some(pos) = items.iter().position(|it| it.matches(tag, key)) {
            if self.expired(&items[pos], now) {
                let Some(iv) = self.spec.initval else {
                    items.remove(pos);
                    return None;
                };
                items[pos].set_value(SetVal::Int(iv));
                items[pos].expire = self.fresh(now);
            }
            let it = &mut items[pos];
            if it.is_str {
                return None;
            }
            it.int = it.int.wrapping_add(delta);
            if self.spec.updateexpire {
                it.expire = self.fresh(now);
            }
            return Some(it.int);
        }
        let v = self.spec.initval?.wrapping_add(delta);
        items.push(Item::new(key, tag, SetVal::Int(v), self.fresh(now)));
        Some(v)
    }

    /// Remove `key`; true when it was there (`ht_del_cell_confirm`).
    pub fn remove(&self, key: &str) -> bool {
        let (idx, tag) = self.locate(key);
        let g = self.lock(idx);
        let mut items = g.borrow_mut();
        match items.iter().position(|it| it.matches(tag, key)) {
            Some(p) => {
                // Order-preserving, so a running iterator neither skips nor repeats an item.
                items.remove(p);
                true
            }
            None => false,
        }
    }

    /// Remove every item `f` accepts; the number removed.
    pub fn remove_where(&self, f: impl Fn(&Item) -> bool) -> usize {
        let mut n = 0;
        for i in 0..self.slots.len() {
            let g = self.lock(i);
            let mut items = g.borrow_mut();
            let before = items.len();
            items.retain(|it| !f(it));
            n += before - items.len();
        }
        n
    }

    /// Whether any live item is accepted by `f`.
    pub fn any(&self, f: impl Fn(&Item) -> bool) -> bool {
        let now = self.now();
        (0..self.slots.len()).any(|i| {
            let g = self.lock(i);
            let items = g.borrow();
            items.iter().any(|it| !self.expired(it, now) && f(it))
        })
    }

    /// Number of live items accepted by `f`.
    pub fn count(&self, f: impl Fn(&Item) -> bool) -> usize {
        let now = self.now();
        (0..self.slots.len())
            .map(|i| {
                let g = self.lock(i);
                let items = g.borrow();
                items
                    .iter()
                    .filter(|it| !self.expired(it, now) && f(it))
                    .count()
            })
            .sum()
    }

    /// Remove everything (`ht_reset_content`).
    pub fn reset(&self) {
        for i in 0..self.slots.len() {
            let g = self.lock(i);
            *g.borrow_mut() = Vec::new();
        }
    }

    /// Drop expired items (`ht_timer`); slots another thread holds are left for the next sweep.
    /// Returns the number removed.
    pub fn sweep(&self) -> usize {
        let now = self.now();
        if now == 0 {
            return 0;
        }
        let mut n = 0;
        for m in self.slots.iter() {
            let Some(g) = m.try_lock() else { continue };
            let Ok(mut items) = g.try_borrow_mut() else {
                continue;
            };
            let before = items.len();
            items.retain(|it| !self.expired(it, now));
            n += before - items.len();
            // Give memory back after a burst (the slot count bounds the number of vectors).
            if items.capacity() > 4 * items.len() + 4 {
                items.shrink_to_fit();
            }
        }
        n
    }

    /// The live item of `key` (RPC `htable.get`).
    pub fn view(&self, key: &str) -> Option<ItemView> {
        self.with_item(key, |it| ItemView::from(it))
    }

    /// Live items by slot, non-empty slots only (RPC `htable.dump`).
    pub fn dump(&self) -> Vec<(usize, Vec<ItemView>)> {
        let now = self.now();
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let g = self.lock(i);
            let items = g.borrow();
            let v: Vec<ItemView> = items
                .iter()
                .filter(|it| !self.expired(it, now))
                .map(ItemView::from)
                .collect();
            if !v.is_empty() {
                out.push((i, v));
            }
        }
        out
    }

    /// Every live item (persistence).
    pub fn snapshot(&self) -> Vec<ItemView> {
        self.dump().into_iter().flat_map(|(_, v)| v).collect()
    }

    /// (all, min, max) items per slot, expired ones not yet swept included (RPC `htable.stats`).
    pub fn stats(&self) -> (usize, usize, usize) {
        let (mut all, mut min, mut max) = (0, usize::MAX, 0);
        for i in 0..self.slots.len() {
            let n = self.lock(i).borrow().len();
            all += n;
            min = min.min(n);
            max = max.max(n);
        }
        (all, min, max)
    }

    /// Replace the whole content (reload): each slot is swapped under its own lock.
    pub fn replace_all(&self, items: Vec<ItemView>) {
        let mut fresh: Vec<Vec<Item>> = (0..self.slots.len()).map(|_| Vec::new()).collect();
        for v in items {
            let (idx, tag) = self.locate(&v.key);
            let list = &mut fresh[idx];
            let item = Item::new(&v.key, tag, SetVal::from(&v.value), v.expire);
            match list.iter_mut().find(|it| it.matches(tag, &v.key)) {
                Some(old) => *old = item,
                None => list.push(item),
            }
        }
        for (i, new) in fresh.into_iter().enumerate() {
            let g = self.lock(i);
            *g.borrow_mut() = new;
        }
    }

    // ---- iteration (no lock is held between calls; see iter.rs) ------------------------------

    /// The first live item at or after position `idx` of `slot`.
    pub fn scan_from(&self, mut slot: usize, mut idx: usize) -> Option<Cursor> {
        let now = self.now();
        while slot < self.slots.len() {
            let g = self.lock(slot);
            let items = g.borrow();
            while idx < items.len() {
                if !self.expired(&items[idx], now) {
                    return Some(Cursor {
                        slot,
                        idx,
                        item: ItemView::from(&items[idx]),
                    });
                }
                idx += 1;
            }
            slot += 1;
            idx = 0;
        }
        None
    }

    /// Where the cursor's item is now in its slot (items may have moved), or None if gone.
    fn find_cursor(&self, items: &[Item], c: &Cursor) -> Option<usize> {
        let key = c.item.key.as_str();
        if items.get(c.idx).is_some_and(|it| it.key() == key) {
            return Some(c.idx);
        }
        items.iter().position(|it| it.key() == key)
    }

    /// The item after the cursor's.
    pub fn next_after(&self, c: &Cursor) -> Option<Cursor> {
        let start = {
            let g = self.lock(c.slot);
            let items = g.borrow();
            // Gone: whatever now stands at its place comes next.
            self.find_cursor(&items, c).map_or(c.idx, |p| p + 1)
        };
        self.scan_from(c.slot, start)
    }

    /// Remove the cursor's item and return the next one (`ht_iterator_rm`).
    pub fn remove_at(&self, c: &Cursor) -> Option<Cursor> {
        let start = {
            let g = self.lock(c.slot);
            let mut items = g.borrow_mut();
            match self.find_cursor(&items, c) {
                Some(p) => {
                    // Keep order: the iterator continues from the same position.
                    items.remove(p);
                    p
                }
                None => c.idx,
            }
        };
        self.scan_from(c.slot, start)
    }

    /// Change the cursor's item (`ht_iterator_sets`/`seti`/`setex`): a value (refreshing the
    /// expire when `updateexpire` is on) or, with `value` None, an expire `secs` from now.
    /// Returns the updated view, None when the item is gone.
    pub fn update_at(&self, c: &Cursor, value: Option<SetVal<'_>>, secs: i64) -> Option<ItemView> {
        let now = self.now();
        let g = self.lock(c.slot);
        let mut items = g.borrow_mut();
        let p = self.find_cursor(&items, c)?;
        let it = &mut items[p];
        match value {
            Some(v) => {
                it.set_value(v);
                if self.spec.updateexpire {
                    it.expire = self.fresh(now);
                }
            }
            None => it.expire = self.after(now, secs),
        }
        Some(ItemView::from(&*it))
    }

    // ---- script locks (sht_lock / sht_unlock) ------------------------------------------------

    /// Take the lock of `slot` and keep it after returning (re-entrant for this thread).
    pub fn hold_slot(&self, slot: usize) {
        std::mem::forget(self.lock(slot));
    }

    /// Give back one [`hold_slot`](Self::hold_slot).
    ///
    /// # Safety
    /// This thread must have called `hold_slot(slot)` before and not released it yet.
    pub unsafe fn release_slot(&self, slot: usize) {
        // SAFETY: per the contract, this thread logically owns a guard that was forgotten.
        unsafe { self.slots[slot].force_unlock() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::htable::spec::parse;
    use std::cell::Cell;

    thread_local! {
        static NOW: Cell<u32> = const { Cell::new(1_000_000) };
    }
    fn fake_now() -> u32 {
        NOW.with(|c| c.get())
    }
    fn advance(s: u32) {
        NOW.with(|c| c.set(c.get() + s));
    }
    fn table(spec: &str) -> Table {
        Table::with_clock(parse(spec).unwrap(), fake_now)
    }

    #[test]
    fn set_get_overwrite_types() {
        let t = table("t=>size=2");
        assert_eq!(t.slot_count(), 4);
        assert_eq!(t.get("a"), None);
        t.set("a", SetVal::Str("x"), 0);
        assert_eq!(t.get("a"), Some(PvVal::Str("x".into())));
        t.set("a", SetVal::Int(5), 0);
        assert_eq!(t.get("a"), Some(PvVal::Int(5)));
        t.set("a", SetVal::Str("longer value"), 0);
        assert_eq!(t.get("a"), Some(PvVal::Str("longer value".into())));
        t.set("a", SetVal::Str(""), 0);
        assert_eq!(t.get("a"), Some(PvVal::Str(String::new())));
        for i in 0..100 {
            t.set(&format!("k{i}"), SetVal::Int(i), 0);
        }
        assert_eq!(t.get("k42"), Some(PvVal::Int(42)));
        assert_eq!(t.stats().0, 101);
        assert!(t.remove("k42"));
        assert!(!t.remove("k42"));
        assert_eq!(t.get("k42"), None);
        t.reset();
        assert_eq!(t.stats(), (0, 0, 0));
    }

    #[test]
    fn autoexpire_and_updateexpire() {
        let t = table("t=>autoexpire=10");
        t.set("a", SetVal::Int(1), 0);
        assert_eq!(t.expire_left("a"), 10);
        advance(6);
        // updateexpire=1 (default): a write refreshes the expire.
        t.set("a", SetVal::Int(2), 0);
        advance(6);
        assert_eq!(t.get("a"), Some(PvVal::Int(2)));
        advance(5);
        // expire < now: gone for readers, still counted until swept.
        assert_eq!(t.get("a"), None);
        assert!(!t.exists("a"));
        // Matching and counting skip it too (Kamailio's ht_match_cell_op_str does not).
        assert!(!t.any(|_| true));
        assert_eq!(t.count(|_| true), 0);
        assert_eq!(t.stats().0, 1);
        assert_eq!(t.sweep(), 1);
        assert_eq!(t.stats().0, 0);

        let t = table("t=>autoexpire=10;updateexpire=0");
        t.set("a", SetVal::Int(1), 0);
        advance(6);
        t.set("a", SetVal::Int(2), 0);
        advance(5);
        assert_eq!(t.get("a"), None, "updateexpire=0 keeps the first expire");
        // Writing an expired item gives it a fresh expire even without updateexpire.
        t.set("a", SetVal::Int(3), 0);
        assert_eq!(t.get("a"), Some(PvVal::Int(3)));
        assert_eq!(t.expire_left("a"), 10);
    }

    #[test]
    fn per_item_expire() {
        let t = table("t=>autoexpire=100");
        t.set("a", SetVal::Str("v"), 3);
        assert_eq!(t.expire_left("a"), 3);
        t.set_expire("a", 50);
        assert_eq!(t.expire_left("a"), 50);
        t.set_expire("a", 0);
        assert_eq!(t.expire_left("a"), 0, "0 means never");
        advance(1000);
        assert_eq!(t.get("a"), Some(PvVal::Str("v".into())));
        t.set_expire("missing", 5);
        assert!(!t.exists("missing"));
        // Without autoexpire Kamailio never looks at item expires.
        let t = table("t=>size=2");
        t.set("a", SetVal::Int(1), 1);
        advance(10);
        assert_eq!(t.get("a"), Some(PvVal::Int(1)));
        assert_eq!(t.expire_left("a"), 0);
    }

    #[test]
    fn inc_dec_initval() {
        let t = table("t=>size=2");
        assert_eq!(
            t.add("n", 1),
            None,
            "no initval: missing key is not created"
        );
        assert!(!t.exists("n"));
        t.set("n", SetVal::Int(41), 0);
        assert_eq!(t.add("n", 1), Some(42));
        assert_eq!(t.add("n", -1), Some(41));
        t.set("s", SetVal::Str("x"), 0);
        assert_eq!(t.add("s", 1), None, "string items cannot be incremented");
        assert_eq!(t.get("s"), Some(PvVal::Str("x".into())));

        let t = table("t=>initval=10;autoexpire=5");
        assert_eq!(t.add("n", 1), Some(11));
        assert_eq!(t.add("n", -3), Some(8));
        advance(6);
        assert_eq!(
            t.add("n", 1),
            Some(11),
            "an expired item restarts from initval"
        );
        let t = table("t=>autoexpire=5");
        t.set("n", SetVal::Int(7), 0);
        advance(6);
        assert_eq!(t.add("n", 1), None);
        assert_eq!(t.get("n"), None, "not resurrected");
        assert_eq!(t.stats().0, 0);
    }

    #[test]
    fn iteration_visits_every_live_item_once() {
        let t = table("t=>size=3;autoexpire=10");
        for i in 0..50 {
            t.set(&format!("k{i}"), SetVal::Int(i), 0);
        }
        t.set("old", SetVal::Int(-1), 1);
        advance(2);
        let mut seen = Vec::new();
        let mut c = t.scan_from(0, 0);
        while let Some(cur) = c {
            seen.push(cur.item.key.clone());
            c = t.next_after(&cur);
        }
        seen.sort();
        let mut want: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        want.sort();
        assert_eq!(seen, want);

        // Remove the even ones while iterating.
        let mut c = t.scan_from(0, 0);
        while let Some(cur) = c {
            let n = cur.item.value.clone();
            c = if matches!(n, PvVal::Int(i) if i % 2 == 0) {
                t.remove_at(&cur)
            } else {
                let v = t.update_at(&cur, Some(SetVal::Str("odd")), 0).unwrap();
                assert_eq!(v.value, PvVal::Str("odd".into()));
                t.next_after(&cur)
            };
        }
        assert_eq!(t.count(|_| true), 25);
        assert_eq!(t.get("k3"), Some(PvVal::Str("odd".into())));
        assert_eq!(t.get("k4"), None);
    }

    #[test]
    fn script_lock_is_reentrant_and_excludes_others() {
        let t = std::sync::Arc::new(table("t=>size=2"));
        let s = t.slot_of("k");
        t.hold_slot(s);
        t.set("k", SetVal::Int(1), 0);
        assert_eq!(t.add("k", 1), Some(2), "the holder keeps using its slot");
        let t2 = t.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            t2.set("k", SetVal::Int(100), 0);
            tx.send(()).unwrap();
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err());
        assert_eq!(t.get("k"), Some(PvVal::Int(2)));
        unsafe { t.release_slot(s) };
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        h.join().unwrap();
        assert_eq!(t.get("k"), Some(PvVal::Int(100)));
    }

    #[test]
    fn item_is_small() {
        assert!(std::mem::size_of::<Item>() <= 40);
    }
}
