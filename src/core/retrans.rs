//! Remembers what was sent for a request so its retransmissions are answered without running Python.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::transport::Proto;

/// How long a request can be retransmitted (RFC 3261 Timer J/H: 64*T1).
pub const WINDOW: Duration = Duration::from_secs(32);

/// What to resend.
#[derive(Clone)]
pub struct Resend {
    /// Bytes sent the first time.
    pub data: Bytes,
    /// Transport.
    pub proto: Proto,
    /// Destination.
    pub dest: SocketAddr,
    /// Local socket it went out of.
    pub local: Option<SocketAddr>,
}

/// Bounded map of request key → last thing sent; the oldest entries go first.
pub struct RetransCache {
    map: HashMap<u64, (Resend, Instant)>,
    order: VecDeque<(u64, Instant)>,
    cap: usize,
}

impl RetransCache {
    /// Empty cache holding at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        RetransCache {
            map: HashMap::with_capacity(1024),
            order: VecDeque::with_capacity(1024),
            cap,
        }
    }

    /// Remember `r` for request `key` (replacing a provisional with a final, say).
    pub fn put(&mut self, key: u64, r: Resend, now: Instant) {
        self.expire(now);
        if self.map.len() >= self.cap {
            while let Some((k, t)) = self.order.pop_front() {
                if self.map.get(&k).is_some_and(|(_, t2)| *t2 == t) {
                    self.map.remove(&k);
                    break;
                }
            }
        }
        self.map.insert(key, (r, now));
        self.order.push_back((key, now));
    }

    /// What was sent for `key`, if still in the window.
    pub fn get(&self, key: u64, now: Instant) -> Option<&Resend> {
        self.map
            .get(&key)
            .filter(|(_, t)| now.duration_since(*t) < WINDOW)
            .map(|(r, _)| r)
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(k, t)) = self.order.front() {
            if now.duration_since(t) < WINDOW {
                break;
            }
            self.order.pop_front();
            if self.map.get(&k).is_some_and(|(_, t2)| *t2 == t) {
                self.map.remove(&k);
            }
        }
    }

    /// Number of remembered requests.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Resend {
        Resend {
            data: Bytes::from_static(b"x"),
            proto: Proto::Udp,
            dest: "127.0.0.1:1".parse().unwrap(),
            local: None,
        }
    }

    #[test]
    fn bounded_and_expiring() {
        let mut c = RetransCache::new(2);
        let t = Instant::now();
        c.put(1, r(), t);
        c.put(2, r(), t);
        c.put(3, r(), t);
        assert_eq!(c.len(), 2);
        assert!(c.get(1, t).is_none() && c.get(3, t).is_some());
        let later = t + WINDOW + Duration::from_secs(1);
        assert!(c.get(3, later).is_none());
        c.put(4, r(), later);
        assert_eq!(c.len(), 1);
    }
}
