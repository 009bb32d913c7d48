//! Hierarchical hashed timing wheel for transaction timers (RFC 3261 §17 timers A–K,
//! `fr_timer`, registration expiry).
//!
//! One [`TimerWheel`] holds any number of timers with no task and no allocation per timer:
//! timers live in a slab (`Vec`) that only grows, linked into per-slot intrusive lists.
//! Insert and cancel are O(1); [`TimerWheel::advance`] costs O(timers fired + slots visited).
//!
//! Layout: 6 levels of 64 slots. Level `l` slots span `64^l` ticks, so the wheel covers
//! `2^36` ticks (about 21 years at the default 10 ms tick) before the top level wraps;
//! deadlines further out still work, they are just re-filed when their top-level slot comes
//! round. A timer is filed at the lowest level whose slot range separates its deadline tick
//! from the current tick, and moves down a level ("cascades") each time its slot comes due.
//! Timers in the current tick wait in a short `near` list and are checked against their exact
//! deadline, so a timer fires on the first [`TimerWheel::advance`] whose `now` reaches its
//! deadline: never early, and never later than that call.
//!
//! The wheel itself is not thread-safe and does not read the clock: callers pass `Instant`s,
//! which keeps it deterministic and testable. [`SharedWheel`] adds a mutex and a single tokio
//! driver task for the server.

use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Default tick: 10 ms, fine enough for T1 = 500 ms retransmissions.
pub const DEFAULT_TICK: Duration = Duration::from_millis(10);

/// log2 of the slots per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Mask selecting a slot index from a shifted tick.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Number of levels; 64^6 = 2^36 ticks before the top level wraps.
const LEVELS: usize = 6;
/// List id of the `near` list (timers whose deadline tick is at or before the current tick).
const NEAR: u16 = (LEVELS * SLOTS) as u16;
/// Number of intrusive lists: every wheel slot plus `near`.
const LISTS: usize = LEVELS * SLOTS + 1;
/// List id marking a free slab entry.
const FREE: u16 = u16::MAX;
/// Null link in the intrusive lists and the free list.
const NIL: u32 = u32::MAX;

/// Identifies one armed timer; cancelling with a handle whose timer has fired or been cancelled
/// is a harmless no-op, because the slab entry's generation has moved on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    /// Slab index of the entry.
    index: u32,
    /// Generation of the entry when the timer was armed.
    generation: u32,
}

/// One slab entry: a live timer, or a free cell when `list == FREE`.
struct Entry<T> {
    /// The caller's payload; `None` only while the entry is free.
    payload: Option<T>,
    /// Deadline in nanoseconds since the wheel's start.
    deadline: u64,
    /// Bumped on every release so stale handles stop matching.
    generation: u32,
    /// Previous entry in the same list, or `NIL`.
    prev: u32,
    /// Next entry in the same list (or in the free list), or `NIL`.
    next: u32,
    /// Which list the entry is on: `level * 64 + slot`, `NEAR`, or `FREE`.
    list: u16,
}

/// A hierarchical timing wheel of `Copy` payloads, driven by explicit `Instant`s.
pub struct TimerWheel<T> {
    /// Slab of timers; grows to the peak number of live timers and is reused after that.
    entries: Vec<Entry<T>>,
    /// Head of the free list through `Entry::next`.
    free: u32,
    /// Head of each intrusive list, indexed by list id.
    heads: Vec<u32>,
    /// Per level, bit `s` set when slot `s` is non-empty.
    occupied: [u64; LEVELS],
    /// Time origin: tick 0 and deadline 0 ns.
    start: Instant,
    /// Tick length in nanoseconds, at least 1.
    tick_ns: u64,
    /// Current tick: every wheel slot up to and including it has been processed.
    elapsed: u64,
    /// Latest `now` seen by `advance`, in nanoseconds since `start`.
    now_ns: u64,
    /// Number of live timers.
    len: usize,
    /// Scratch for one `advance` call's fired timers, kept to avoid reallocating.
    fired: Vec<(u64, T)>,
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.len)
            .field("tick_ns", &self.tick_ns)
            .field("elapsed_ticks", &self.elapsed)
            .field("capacity", &self.entries.len())
            .finish()
    }
}

impl<T: Copy> TimerWheel<T> {
    /// Creates an empty wheel whose time starts at `start`; a zero `tick` is treated as 1 ns.
    pub fn new(tick: Duration, start: Instant) -> Self {
        // Ticks longer than u64 nanoseconds (584 years) are meaningless; saturate rather than fail.
        let tick_ns = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX).max(1);
        TimerWheel {
            entries: Vec::new(),
            free: NIL,
            heads: vec![NIL; LISTS],
            occupied: [0; LEVELS],
            start,
            tick_ns,
            elapsed: 0,
            now_ns: 0,
            len: 0,
            fired: Vec::new(),
        }
    }

    /// Creates an empty wheel with [`DEFAULT_TICK`].
    pub fn with_default_tick(start: Instant) -> Self {
        Self::new(DEFAULT_TICK, start)
    }

    /// The tick length in use.
    pub fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick_ns)
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer that fires `payload` at the first `advance` whose `now >= deadline`.
    ///
    /// A deadline at or before the latest `advance` time fires on the next `advance`.
    /// Deadlines more than 584 years after `start` are clamped to that horizon.
    ///
    /// # Panics
    /// If more than `u32::MAX - 1` timers are live at once (over 100 GB of timers).
    pub fn insert(&mut self, deadline: Instant, payload: T) -> TimerHandle {
        let deadline = self.ns_since_start(deadline);
        let index = match self.free {
            NIL => {
                let index = self.entries.len();
                // NIL is reserved as the null link, so the last usable index is NIL - 1.
                assert!(index < NIL as usize, "timer wheel: too many live timers");
                self.entries.push(Entry {
                    payload: Some(payload),
                    deadline,
                    generation: 0,
                    prev: NIL,
                    next: NIL,
                    list: FREE,
                });
                index as u32
            }
            index => {
                let e = &mut self.entries[index as usize];
                self.free = e.next;
                e.payload = Some(payload);
                e.deadline = deadline;
                index
            }
        };
        self.len += 1;
        self.file(index);
        TimerHandle {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Disarms a timer and returns its payload, or `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let e = self.entries.get(handle.index as usize)?;
        if e.list == FREE || e.generation != handle.generation {
            return None;
        }
        self.unlink(handle.index);
        self.release(handle.index)
    }

    /// True while the timer behind `handle` is armed (not yet fired or cancelled).
    pub fn is_armed(&self, handle: TimerHandle) -> bool {
        self.entries
            .get(handle.index as usize)
            .is_some_and(|e| e.list != FREE && e.generation == handle.generation)
    }

    /// Fires every timer whose deadline is `<= now`, appending payloads to `out` in deadline
    /// order (equal deadlines in unspecified order); returns how many fired.
    ///
    /// `now` earlier than a previous call is treated as that previous time.
    pub fn advance(&mut self, now: Instant, out: &mut Vec<T>) -> usize {
        let now_ns = self.ns_since_start(now).max(self.now_ns);
        self.now_ns = now_ns;
        let target = now_ns / self.tick_ns;

        // Timers already in or before the current tick: fire the due ones, keep the rest.
        let mut index = self.heads[NEAR as usize];
        while index != NIL {
            let e = &self.entries[index as usize];
            let next = e.next;
            if e.deadline <= now_ns {
                self.unlink(index);
                self.fire(index);
            }
            index = next;
        }

        // Visit non-empty slots in tick order up to `target`, firing or cascading their timers.
        while let Some((level, slot, tick)) = self.next_expiration() {
            if tick > target {
                break;
            }
            self.elapsed = tick;
            self.process_slot(level, slot, now_ns);
        }
        self.elapsed = self.elapsed.max(target);

        // Slots are visited in tick order, so the batch is sorted to tick granularity already;
        // this orders timers within a tick by their exact deadline.
        self.fired.sort_unstable_by_key(|&(deadline, _)| deadline);
        let fired = self.fired.len();
        out.extend(self.fired.drain(..).map(|(_, payload)| payload));
        fired
    }

    /// When `advance` next has work to do: the earliest deadline if it lies in the current tick,
    /// otherwise a lower bound for it (the start of the next non-empty slot). `None` when empty.
    ///
    /// A driver that sleeps until this instant and then calls `advance` fires every timer at
    /// its exact deadline (give or take its own wake-up latency).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut index = self.heads[NEAR as usize];
        if index != NIL {
            let mut earliest = u64::MAX;
            while index != NIL {
                let e = &self.entries[index as usize];
                earliest = earliest.min(e.deadline);
                index = e.next;
            }
            return self.instant_at(earliest);
        }
        let (_, _, tick) = self.next_expiration()?;
        self.instant_at(tick.saturating_mul(self.tick_ns))
    }

    /// Converts an instant to nanoseconds since `start`, saturating at both ends.
    fn ns_since_start(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Converts nanoseconds since `start` back to an instant, `None` if not representable.
    fn instant_at(&self, ns: u64) -> Option<Instant> {
        self.start.checked_add(Duration::from_nanos(ns))
    }

    /// Puts a live, unlinked entry on the list its deadline belongs to, relative to `elapsed`.
    fn file(&mut self, index: u32) {
        let when = self.entries[index as usize].deadline / self.tick_ns;
        if when <= self.elapsed {
            self.push(NEAR, index);
            return;
        }
        // The highest bit where `when` differs from `elapsed` picks the level: every lower level
        // has already been passed over for that part of the tick space.
        let masked = (self.elapsed ^ when) | SLOT_MASK;
        let level = ((63 - masked.leading_zeros()) / SLOT_BITS).min(LEVELS as u32 - 1);
        let slot = (when >> (level * SLOT_BITS)) & SLOT_MASK;
        self.occupied[level as usize] |= 1 << slot;
        self.push((level as usize * SLOTS) as u16 + slot as u16, index);
    }

    /// Finds the non-empty slot with the earliest start tick: `(level, slot, start tick)`.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        // Lower levels only hold ticks inside the current slot of every higher level, so the
        // first non-empty level holds the earliest timers.
        (0..LEVELS).find_map(|level| {
            let occupied = self.occupied[level];
            if occupied == 0 {
                return None;
            }
            let shift = level as u32 * SLOT_BITS;
            let now_slot = (self.elapsed >> shift) & SLOT_MASK;
            let slot = (u64::from(occupied.rotate_right(now_slot as u32).trailing_zeros())
                + now_slot)
                & SLOT_MASK;
            let slot_range = 1u64 << shift;
            let level_range = slot_range << SLOT_BITS;
            let level_start = self.elapsed & !(level_range - 1);
            let mut tick = level_start.saturating_add(slot * slot_range);
            if tick <= self.elapsed {
                // Only the top level wraps: that slot's next turn is one revolution later.
                tick = tick.saturating_add(level_range);
            }
            Some((level, slot as usize, tick))
        })
    }

    /// Empties one wheel slot whose start tick is `elapsed`: fires due timers, re-files the rest.
    fn process_slot(&mut self, level: usize, slot: usize, now_ns: u64) {
        let list = level * SLOTS + slot;
        let mut index = std::mem::replace(&mut self.heads[list], NIL);
        self.occupied[level] &= !(1 << slot);
        while index != NIL {
            let e = &self.entries[index as usize];
            let next = e.next;
            if e.deadline <= now_ns {
                self.fire(index);
            } else {
                // Lands on a lower level (or `near` if it is in the current tick).
                self.file(index);
            }
            index = next;
        }
    }

    /// Moves an unlinked live entry's payload into the fired batch and frees the entry.
    fn fire(&mut self, index: u32) {
        let deadline = self.entries[index as usize].deadline;
        if let Some(payload) = self.release(index) {
            self.fired.push((deadline, payload));
        }
    }

    /// Pushes an entry at the head of a list.
    fn push(&mut self, list: u16, index: u32) {
        let head = self.heads[list as usize];
        let e = &mut self.entries[index as usize];
        e.list = list;
        e.prev = NIL;
        e.next = head;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[list as usize] = index;
    }

    /// Removes a live entry from its list, clearing the slot's occupied bit when it empties.
    fn unlink(&mut self, index: u32) {
        let e = &self.entries[index as usize];
        let (prev, next, list) = (e.prev, e.next, e.list);
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            self.heads[list as usize] = next;
            if next == NIL && list < NEAR {
                let (level, slot) = (list as usize / SLOTS, list as usize % SLOTS);
                self.occupied[level] &= !(1 << slot);
            }
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Returns an unlinked entry to the free list, invalidating its handles.
    fn release(&mut self, index: u32) -> Option<T> {
        let e = &mut self.entries[index as usize];
        e.generation = e.generation.wrapping_add(1);
        e.list = FREE;
        e.prev = NIL;
        e.next = self.free;
        self.free = index;
        self.len -= 1;
        e.payload.take()
    }
}

/// A [`TimerWheel`] behind a mutex, with a single tokio driver task ([`SharedWheel::run`]).
pub struct SharedWheel<T> {
    /// The wheel plus the instant the driver is sleeping until.
    inner: Mutex<SharedInner<T>>,
    /// Wakes the driver when a timer is armed before its planned wake-up.
    wake: Notify,
}

/// State guarded by the [`SharedWheel`] mutex.
struct SharedInner<T> {
    /// The timers.
    wheel: TimerWheel<T>,
    /// When the driver will next wake on its own; `None` means it waits for a notification.
    armed: Option<Instant>,
}

impl<T: Copy> SharedWheel<T> {
    /// Creates an empty shared wheel (see [`TimerWheel::new`]).
    pub fn new(tick: Duration, start: Instant) -> Self {
        SharedWheel {
            inner: Mutex::new(SharedInner {
                wheel: TimerWheel::new(tick, start),
                armed: None,
            }),
            wake: Notify::new(),
        }
    }

    /// Arms a timer (see [`TimerWheel::insert`]), waking the driver if it fires sooner than planned.
    pub fn insert(&self, deadline: Instant, payload: T) -> TimerHandle {
        let mut inner = self.inner.lock();
        let handle = inner.wheel.insert(deadline, payload);
        let sooner = inner.armed.is_none_or(|at| deadline < at);
        if sooner {
            // Record it so a burst of inserts notifies once, not once per timer.
            inner.armed = Some(deadline);
        }
        drop(inner);
        if sooner {
            // notify_one stores a permit if the driver is not waiting yet, so no wake-up is lost.
            self.wake.notify_one();
        }
        handle
    }

    /// Disarms a timer (see [`TimerWheel::cancel`]).
    pub fn cancel(&self, handle: TimerHandle) -> Option<T> {
        self.inner.lock().wheel.cancel(handle)
    }

    /// Fires due timers into `out` (see [`TimerWheel::advance`]); for drivers other than `run`.
    pub fn advance(&self, now: Instant, out: &mut Vec<T>) -> usize {
        self.inner.lock().wheel.advance(now, out)
    }

    /// Earliest instant `advance` has work (see [`TimerWheel::next_deadline`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.inner.lock().wheel.next_deadline()
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.inner.lock().wheel.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drives the wheel forever from one task, calling `on_fire` (outside the lock, so it may
    /// arm or cancel timers) for each expired payload. Sleeps until the next deadline; idle
    /// when there are no timers.
    pub async fn run<F: FnMut(T)>(&self, mut on_fire: F) {
        let mut fired = Vec::new();
        loop {
            let next = {
                let mut inner = self.inner.lock();
                inner.wheel.advance(Instant::now(), &mut fired);
                let next = inner.wheel.next_deadline();
                inner.armed = next;
                next
            };
            for payload in fired.drain(..) {
                on_fire(payload);
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::Arc;

    const MS: Duration = Duration::from_millis(1);

    fn wheel(start: Instant) -> TimerWheel<u64> {
        TimerWheel::new(10 * MS, start)
    }

    fn fire(w: &mut TimerWheel<u64>, now: Instant) -> Vec<u64> {
        let mut out = Vec::new();
        let n = w.advance(now, &mut out);
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn never_early_exact_deadlines() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let offsets = [
            Duration::from_nanos(1),
            MS,
            10 * MS,
            Duration::from_micros(10_001),
            15 * MS,
            500 * MS,
            640 * MS,
            641 * MS,
            32_000 * MS,
        ];
        for (i, d) in offsets.iter().enumerate() {
            w.insert(t0 + *d, i as u64);
        }
        for (i, d) in offsets.iter().enumerate() {
            let just_before = t0 + *d - Duration::from_nanos(1);
            assert!(
                fire(&mut w, just_before).is_empty(),
                "timer {i} fired early"
            );
            assert_eq!(
                fire(&mut w, t0 + *d),
                vec![i as u64],
                "timer {i} not fired on time"
            );
        }
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn cancel_before_and_after_fire() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let a = w.insert(t0 + 100 * MS, 1);
        let b = w.insert(t0 + 100 * MS, 2);
        assert!(w.is_armed(a));
        assert_eq!(w.cancel(a), Some(1));
        assert!(!w.is_armed(a));
        assert_eq!(w.cancel(a), None, "double cancel");
        assert_eq!(w.len(), 1);
        assert_eq!(fire(&mut w, t0 + 200 * MS), vec![2]);
        assert_eq!(w.cancel(b), None, "cancel after fire");
        assert!(w.is_empty());
    }

    #[test]
    fn stale_handle_does_not_cancel_reused_entry() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let old = w.insert(t0 + 10 * MS, 1);
        assert_eq!(fire(&mut w, t0 + 10 * MS), vec![1]);
        let new = w.insert(t0 + 50 * MS, 2);
        assert_eq!(old.index, new.index, "slab entry is reused");
        assert_ne!(old, new);
        assert_eq!(w.cancel(old), None);
        assert!(w.is_armed(new));
        let bogus = TimerHandle {
            index: 12345,
            generation: 0,
        };
        assert_eq!(w.cancel(bogus), None);
        assert_eq!(fire(&mut w, t0 + 50 * MS), vec![2]);
    }

    #[test]
    fn many_timers_in_one_slot() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        // All in the same 10 ms tick, some with identical deadlines.
        let handles: Vec<_> = (0..1000u64)
            .map(|i| w.insert(t0 + 70 * MS + Duration::from_micros(i % 7 * 1000), i))
            .collect();
        let mut expected: HashSet<u64> = (0..1000).collect();
        for i in (0..1000).step_by(3) {
            assert_eq!(w.cancel(handles[i as usize]), Some(i));
            expected.remove(&i);
        }
        assert!(fire(&mut w, t0 + 69 * MS).is_empty());
        let mut got = fire(&mut w, t0 + 80 * MS);
        let order: Vec<u64> = got.iter().map(|i| i % 7).collect();
        assert!(order.windows(2).all(|p| p[0] <= p[1]), "deadline order");
        got.sort_unstable();
        let mut want: Vec<u64> = expected.into_iter().collect();
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadlines_fire_on_next_advance() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let now = t0 + 1017 * MS;
        assert!(fire(&mut w, now).is_empty());
        w.insert(now, 3);
        w.insert(now - 5 * MS, 2);
        w.insert(t0, 1);
        w.insert(t0 - Duration::from_secs(5), 0); // before the wheel's start
        w.insert(now + Duration::from_nanos(1), 4);
        assert_eq!(w.next_deadline(), Some(t0));
        assert_eq!(
            fire(&mut w, now),
            vec![0, 1, 2, 3],
            "same now, in deadline order"
        );
        assert_eq!(w.next_deadline(), Some(now + Duration::from_nanos(1)));
        assert_eq!(fire(&mut w, now + Duration::from_nanos(1)), vec![4]);
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        assert!(fire(&mut w, t0 + 500 * MS).is_empty());
        w.insert(t0 + 400 * MS, 1);
        assert_eq!(fire(&mut w, t0 + 100 * MS), vec![1]);
    }

    #[test]
    fn wraparound_and_long_deadlines_across_levels() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let secs = |s: u64| Duration::from_secs(s);
        let offsets = [
            secs(32),                 // Timer B / F
            secs(3600),               // registration expiry
            secs(86_400),             // a day
            secs(30 * 86_400),        // a month (level 5)
            secs(25 * 365 * 86_400),  // beyond 2^36 ticks: top level wraps
            secs(200 * 365 * 86_400), // several wraps
            secs(64 * 64 * 64 / 100), // around a level boundary
            Duration::from_millis(64 * 64 * 10 + 5),
        ];
        for (i, d) in offsets.iter().enumerate() {
            w.insert(t0 + *d, i as u64);
        }
        // Spin the lowest level round many times in small steps first.
        let mut now = t0;
        for _ in 0..5000 {
            now += 7 * MS;
            for p in fire(&mut w, now) {
                assert!(t0 + offsets[p as usize] <= now);
            }
        }
        let mut sorted: Vec<(Duration, u64)> = offsets
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, i as u64))
            .collect();
        sorted.sort();
        for (d, i) in sorted {
            if t0 + d <= now {
                continue; // already checked above
            }
            assert!(
                fire(&mut w, t0 + d - Duration::from_nanos(1)).is_empty(),
                "{d:?} early"
            );
            assert_eq!(fire(&mut w, t0 + d), vec![i], "{d:?} late");
        }
        assert!(w.is_empty());
    }

    #[test]
    fn long_deadline_with_fine_tick_wraps_top_level() {
        // 1 µs tick: 2^36 ticks is about 19 hours, so a 3-day timer wraps the top level.
        let t0 = Instant::now();
        let mut w = TimerWheel::new(Duration::from_micros(1), t0);
        let d = t0 + Duration::from_secs(3 * 86_400) + Duration::from_nanos(1500);
        w.insert(d, 7);
        let mut steps = 0;
        let mut now = t0;
        while let Some(next) = w.next_deadline() {
            assert!(next <= d, "next_deadline must not pass the deadline");
            now = next;
            let got = fire(&mut w, now);
            if !got.is_empty() {
                assert_eq!(got, vec![7]);
                break;
            }
            steps += 1;
            assert!(steps < 1000, "driver loop does not converge");
        }
        assert_eq!(now, d);
        assert!(w.is_empty());
    }

    #[test]
    fn ordering_across_ticks_and_levels() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut deadlines: Vec<u64> = (0..5000).map(|_| rng.u64(0..100_000_000_000)).collect();
        deadlines.sort_unstable();
        deadlines.dedup();
        let mut shuffled: Vec<usize> = (0..deadlines.len()).collect();
        rng.shuffle(&mut shuffled);
        for &i in &shuffled {
            w.insert(t0 + Duration::from_nanos(deadlines[i]), i as u64);
        }
        let got = fire(&mut w, t0 + Duration::from_secs(200));
        let want: Vec<u64> = (0..deadlines.len() as u64).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn hundred_thousand_half_cancelled() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let mut rng = fastrand::Rng::with_seed(100_000);
        let n = 100_000u64;
        let deadlines: Vec<Duration> = (0..n)
            .map(|_| Duration::from_micros(rng.u64(0..64_000_000)))
            .collect();
        let handles: Vec<TimerHandle> = (0..n)
            .map(|i| w.insert(t0 + deadlines[i as usize], i))
            .collect();
        assert_eq!(w.len(), n as usize);
        let mut cancelled = 0;
        for i in (0..n).filter(|i| i % 2 == 1) {
            assert_eq!(w.cancel(handles[i as usize]), Some(i));
            cancelled += 1;
        }
        assert_eq!(w.len(), (n - cancelled) as usize);
        let mut seen = vec![false; n as usize];
        let mut count = 0;
        let mut now = t0;
        let mut out = Vec::new();
        while now <= t0 + Duration::from_secs(65) {
            out.clear();
            w.advance(now, &mut out);
            for &i in &out {
                assert_eq!(i % 2, 0, "cancelled timer fired");
                assert!(!seen[i as usize], "fired twice");
                seen[i as usize] = true;
                assert!(t0 + deadlines[i as usize] <= now, "fired early");
                assert!(t0 + deadlines[i as usize] + 10 * MS > now, "fired late");
                count += 1;
            }
            now += 10 * MS;
        }
        assert_eq!(count, n - cancelled);
        assert!(w.is_empty());
        assert_eq!(w.entries.len(), n as usize, "slab reused, not grown");
        // The slab is reused for the next round without growing.
        for i in 0..n {
            w.insert(now + MS, i);
        }
        assert_eq!(w.entries.len(), n as usize);
    }

    #[test]
    fn driver_loop_fires_exactly_at_deadlines() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        let mut rng = fastrand::Rng::with_seed(3);
        let deadlines: Vec<Duration> = (0..2000)
            .map(|_| Duration::from_nanos(rng.u64(0..3_600_000_000_000)))
            .collect();
        for (i, d) in deadlines.iter().enumerate() {
            w.insert(t0 + *d, i as u64);
        }
        let mut fired = 0;
        let mut wakeups = 0;
        while let Some(at) = w.next_deadline() {
            wakeups += 1;
            for i in fire(&mut w, at) {
                assert_eq!(
                    t0 + deadlines[i as usize],
                    at,
                    "fired at its exact deadline"
                );
                fired += 1;
            }
        }
        assert_eq!(fired, deadlines.len());
        assert!(wakeups < deadlines.len() * 4, "{wakeups} wake-ups");
    }

    #[test]
    fn zero_and_coarse_ticks() {
        let t0 = Instant::now();
        for tick in [
            Duration::ZERO,
            MS,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ] {
            let mut w = TimerWheel::new(tick, t0);
            assert!(w.tick() >= Duration::from_nanos(1));
            w.insert(t0 + Duration::from_millis(1500), 1);
            w.insert(t0 + Duration::from_secs(7200), 2);
            assert!(fire(&mut w, t0 + Duration::from_millis(1499)).is_empty());
            assert_eq!(fire(&mut w, t0 + Duration::from_millis(1500)), vec![1]);
            assert!(fire(&mut w, t0 + Duration::from_secs(7199)).is_empty());
            assert_eq!(fire(&mut w, t0 + Duration::from_secs(7200)), vec![2]);
        }
    }

    /// Randomised comparison against a BTreeMap model: same timers fire at the same advance,
    /// in deadline order; cancel results and lengths agree; next_deadline is a valid lower bound.
    #[test]
    fn randomized_against_btreemap_model() {
        for seed in 0..20u64 {
            let mut rng = fastrand::Rng::with_seed(0x5eed_0000 + seed);
            let t0 = Instant::now();
            let tick = [MS, 10 * MS, Duration::from_micros(1)][seed as usize % 3];
            let mut w = TimerWheel::new(tick, t0);
            let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
            let mut deadline_of: HashMap<u64, u64> = HashMap::new();
            let mut handles: Vec<(u64, TimerHandle)> = Vec::new();
            let mut now_ns = 0u64;
            let mut next_id = 0u64;
            for _ in 0..20_000 {
                match rng.u32(0..100) {
                    0..=49 => {
                        // Mostly near deadlines, some far, some in the past.
                        let span = [
                            1_000_000u64,
                            100_000_000,
                            40_000_000_000,
                            10_000_000_000_000,
                        ][rng.usize(0..4)];
                        let d = if rng.u32(0..20) == 0 {
                            now_ns.saturating_sub(rng.u64(0..span))
                        } else {
                            now_ns + rng.u64(0..span)
                        };
                        let id = next_id;
                        next_id += 1;
                        let h = w.insert(t0 + Duration::from_nanos(d), id);
                        model.insert((d, id), ());
                        deadline_of.insert(id, d);
                        handles.push((id, h));
                    }
                    50..=69 if !handles.is_empty() => {
                        let k = rng.usize(0..handles.len());
                        let (id, h) = handles[k];
                        let live = model.remove(&(deadline_of[&id], id)).is_some();
                        assert_eq!(w.cancel(h), live.then_some(id), "cancel result");
                        if rng.bool() {
                            handles.swap_remove(k);
                        }
                    }
                    _ => {
                        let step =
                            [0u64, 1_000, 3_000_000, 50_000_000, 5_000_000_000][rng.usize(0..5)];
                        now_ns += rng.u64(0..=step);
                        if let (Some(nd), Some((&(first, _), ()))) =
                            (w.next_deadline(), model.first_key_value())
                        {
                            assert!(nd <= t0 + Duration::from_nanos(first), "next_deadline late");
                        }
                        let got = fire(&mut w, t0 + Duration::from_nanos(now_ns));
                        let mut want = Vec::new();
                        while let Some(entry) = model.first_entry() {
                            if entry.key().0 > now_ns {
                                break;
                            }
                            want.push(entry.key().1);
                            entry.remove();
                        }
                        let got_deadlines: Vec<u64> = got.iter().map(|i| deadline_of[i]).collect();
                        assert!(got_deadlines.windows(2).all(|p| p[0] <= p[1]), "order");
                        let mut got_sorted = got.clone();
                        got_sorted.sort_unstable();
                        want.sort_unstable();
                        assert_eq!(got_sorted, want, "seed {seed}: fired set at {now_ns}");
                    }
                }
                assert_eq!(w.len(), model.len());
                assert_eq!(w.next_deadline().is_none(), model.is_empty());
            }
            // Drain: everything left fires eventually, nothing is lost.
            let got = fire(&mut w, t0 + Duration::from_secs(400 * 86_400));
            assert_eq!(got.len(), model.len(), "seed {seed}: drain");
            assert!(w.is_empty());
        }
    }

    #[test]
    fn shared_wheel_sync_api() {
        let t0 = Instant::now();
        let s = SharedWheel::new(10 * MS, t0);
        let a = s.insert(t0 + 20 * MS, 1u32);
        s.insert(t0 + 30 * MS, 2);
        assert_eq!(s.len(), 2);
        assert_eq!(s.next_deadline(), Some(t0 + 20 * MS));
        assert_eq!(s.cancel(a), Some(1));
        let mut out = Vec::new();
        assert_eq!(s.advance(t0 + 30 * MS, &mut out), 1);
        assert_eq!(out, vec![2]);
        assert!(s.is_empty());
    }

    /// The async driver against the real clock: waits on channel receipts (bounded by a generous
    /// timeout), never sleeps itself; timers are a few milliseconds out.
    #[tokio::test]
    async fn shared_wheel_driver_fires_and_wakes_for_sooner_timers() {
        let now = Instant::now();
        let s = Arc::new(SharedWheel::new(MS, now));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // A far timer first, so the driver is asleep on it when the sooner ones arrive.
        let far = s.insert(now + Duration::from_secs(3600), 99u32);
        let driver = {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.run(move |p| {
                    let _ = tx.send((p, Instant::now()));
                })
                .await;
            })
        };
        tokio::task::yield_now().await;
        let d1 = Instant::now() + 5 * MS;
        let d2 = Instant::now() + 2 * MS;
        s.insert(d1, 1);
        s.insert(d2, 2);
        let limit = Duration::from_secs(10);
        let (p, at) = tokio::time::timeout(limit, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p, 2);
        assert!(at >= d2);
        let (p, at) = tokio::time::timeout(limit, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p, 1);
        assert!(at >= d1);
        assert_eq!(s.cancel(far), Some(99));
        assert!(s.is_empty());
        driver.abort();
    }
}
