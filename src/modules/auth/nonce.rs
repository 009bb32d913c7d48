//! Stateless nonces: the issue time, an index and an HMAC-SHA-256 of both under a server secret,
//! so any worker can check a nonce without a shared table (Kamailio auth/nonce.c keeps the same
//! idea: timestamp + MAC). Nonce-count replay protection keeps the highest `nc` seen per nonce
//! index in a fixed ring (Kamailio's nc array): memory is bounded whatever the load, and a nonce
//! whose ring slot was taken over by a newer one counts as stale, so the client simply retries.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in a nonce (96 bits).
const MAC_LEN: usize = 12;

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh; `index` identifies it for nonce-count tracking.
    Valid {
        /// Nonce index.
        index: u32,
    },
    /// Ours but too old: challenge again with `stale=true`.
    Stale,
    /// Not ours (forged, damaged, from before a restart without a fixed secret).
    Invalid,
}

/// Nonce issuing and checking, shared by all workers.
pub struct Nonces {
    key: Vec<u8>,
    counter: AtomicU32,
    /// Per ring slot: nonce index (high 32 bits) and highest nc seen (low 32 bits).
    nc: Box<[AtomicU64]>,
    /// Lifetime in seconds (`nonce_expire`).
    pub expire: u32,
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Nonces {
    /// Nonces under `secret` (random when empty), valid `expire` seconds, with a nonce-count ring
    /// of `nc_slots` entries (rounded up to a power of two).
    pub fn new(secret: &str, expire: u32, nc_slots: usize) -> Nonces {
        let key = if secret.is_empty() {
            (0..32).map(|_| fastrand::u8(..)).collect()
        } else {
            secret.as_bytes().to_vec()
        };
        let slots = nc_slots.max(1024).next_power_of_two();
        Nonces {
            key,
            counter: AtomicU32::new(fastrand::u32(..)),
            nc: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            expire,
        }
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(b"ksrd").expect("key"));
        m.update(body);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A fresh nonce (hex: issue time, index, MAC).
    pub fn issue(&self) -> String {
        self.issue_at(now_secs())
    }

    /// A nonce as if issued at Unix time `t` (tests of expiry).
    pub fn issue_at(&self, t: u32) -> String {
        let index = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut body = [0u8; 8];
        body[..4].copy_from_slice(&t.to_be_bytes());
        body[4..].copy_from_slice(&index.to_be_bytes());
        let mac = self.mac(&body);
        // A new index takes its ring slot over with nc 0.
        let slot = &self.nc[index as usize & (self.nc.len() - 1)];
        slot.store((index as u64) << 32, Ordering::Relaxed);
        let mut s = super::digest::hex(&body);
        s.push_str(&super::digest::hex(&mac));
        s
    }

    /// Check a nonce we may have issued.
    pub fn check(&self, nonce: &str) -> NonceCheck {
        self.check_at(nonce, now_secs())
    }

    fn check_at(&self, nonce: &str, now: u32) -> NonceCheck {
        let Some(raw) = unhex(nonce) else {
            return NonceCheck::Invalid;
        };
        if raw.len() != 8 + MAC_LEN {
            return NonceCheck::Invalid;
        }
        let mac = self.mac(&raw[..8]);
        // Constant-time compare: the MAC must not leak byte by byte.
        if raw[8..]
            .iter()
            .zip(mac.iter())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
        {
            return NonceCheck::Invalid;
        }
        let t = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let index = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        if now.saturating_sub(t) > self.expire || t > now.saturating_add(60) {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid { index }
    }

    /// Record nonce-count `nc` for nonce `index`: true if it is higher than any seen before
    /// (a replay or an old, evicted nonce gives false).
    pub fn use_nc(&self, index: u32, nc: u32) -> NcCheck {
        let slot = &self.nc[index as usize & (self.nc.len() - 1)];
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let (owner, seen) = ((cur >> 32) as u32, cur as u32);
            if owner != index {
                return NcCheck::Evicted;
            }
            if nc <= seen {
                return NcCheck::Replayed;
            }
            let new = ((index as u64) << 32) | nc as u64;
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return NcCheck::Fresh,
                Err(x) => cur = x,
            }
        }
    }
}

/// Result of `use_nc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcCheck {
    /// Higher than before: accepted.
    Fresh,
    /// Not higher: a replay.
    Replayed,
    /// The nonce's slot now belongs to a newer nonce: treat the nonce as stale.
    Evicted,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let v = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks(2)
        .map(|p| Some(v(p[0])? << 4 | v(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_nonce_checks_valid_and_expires() {
        let n = Nonces::new("s3cret", 30, 1024);
        let x = n.issue_at(1000);
        assert!(matches!(n.check_at(&x, 1010), NonceCheck::Valid { .. }));
        assert_eq!(n.check_at(&x, 1031), NonceCheck::Stale);
    }

    #[test]
    fn forged_or_foreign_nonces_are_invalid() {
        let n = Nonces::new("s3cret", 30, 1024);
        let other = Nonces::new("other", 30, 1024);
        let x = n.issue_at(1000);
        assert_eq!(other.check_at(&x, 1000), NonceCheck::Invalid);
        let mut y = x.clone().into_bytes();
        let last = y.len() - 1;
        y[last] = if y[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            n.check_at(std::str::from_utf8(&y).unwrap(), 1000),
            NonceCheck::Invalid
        );
        assert_eq!(n.check_at("zz", 1000), NonceCheck::Invalid);
        assert_eq!(n.check_at("", 1000), NonceCheck::Invalid);
    }

    #[test]
    fn nonce_count_must_grow_and_evicted_slots_are_stale() {
        let n = Nonces::new("k", 30, 1024);
        let x = n.issue_at(1000);
        let NonceCheck::Valid { index } = n.check_at(&x, 1000) else {
            panic!()
        };
        assert_eq!(n.use_nc(index, 1), NcCheck::Fresh);
        assert_eq!(n.use_nc(index, 1), NcCheck::Replayed);
        assert_eq!(n.use_nc(index, 3), NcCheck::Fresh);
        assert_eq!(n.use_nc(index, 2), NcCheck::Replayed);
        // 1024 newer nonces later the slot is someone else's.
        for _ in 0..1024 {
            n.issue_at(1000);
        }
        assert_eq!(n.use_nc(index, 9), NcCheck::Evicted);
    }
}
