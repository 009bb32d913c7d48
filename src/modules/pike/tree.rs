//! pike's address tree (Kamailio src/modules/pike/ip_tree.c, pike_funcs.c): a prefix tree over
//! the bytes of IPv4 and IPv6 addresses. A prefix grows a longer prefix only when it gets hot
//! (a quarter of the allowed density), so only busy sources get a node of their own; a full
//! address whose own hits exceed the density is RED (blocked) until a sampling window passes
//! with it below the limit. Nodes nobody hits expire after `remove_latency`.
//!
//! Unlike Kamailio, the number of nodes has a hard cap: a flood with random spoofed sources
//! cannot eat the memory. At the cap no prefix grows any more; hits still count on the longest
//! prefix there is, and addresses that already have a node are still detected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Hard cap on nodes (about 100 bytes each with the map: ~25 MB at the cap).
pub const MAX_NODES: usize = 1 << 18;

/// A prefix: address family, length in bytes, and the bytes (big-endian in a u128).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    v6: bool,
    len: u8,
    bits: u128,
}

impl Key {
    fn of(bytes: &[u8], len: usize, v6: bool) -> Key {
        let mut b = [0u8; 16];
        b[..len].copy_from_slice(&bytes[..len]);
        Key {
            v6,
            len: len as u8,
            bits: u128::from_be_bytes(b),
        }
    }
}

#[derive(Default, Debug, Clone)]
struct Node {
    /// Hits on this prefix [previous window, current window].
    hits: [u32; 2],
    /// Hits on the full address [previous, current] (IP leaves only).
    leaf_hits: [u32; 2],
    /// Hit as a full address (Kamailio NODE_IPLEAF_FLAG).
    ip_leaf: bool,
    /// Blocked (NODE_ISRED_FLAG).
    red: bool,
    /// Longer prefixes below this one.
    kids: u16,
    /// When it goes (seconds on the pike clock); 0 for inner nodes, which never expire.
    expires: u64,
}

/// What pike_check_req answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not flooding (1).
    Ok,
    /// Was already blocked (-1).
    Red,
    /// Blocked by this request (-2).
    NewRed,
}

/// Node status as `pike.top` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Neither.
    Ok,
    /// A quarter of the density.
    Warm,
    /// Over the density.
    Hot,
}

impl Status {
    /// Kamailio's name ("" for OK).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "",
            Status::Warm => "WARM",
            Status::Hot => "HOT",
        }
    }
}

/// One address in `pike.top`.
#[derive(Debug, Clone)]
pub struct TopEntry {
    /// The address.
    pub ip: IpAddr,
    /// Its hits in the previous and the current window.
    pub leaf_hits: [u32; 2],
    /// Seconds until it expires.
    pub expires: i64,
    /// HOT, WARM or OK.
    pub status: Status,
}

/// The tree, one lock per first byte (as Kamailio's branch locks).
pub struct Tree {
    branches: Vec<Mutex<HashMap<Key, Node>>>,
    max_hits: u32,
    timeout: u64,
    nodes: AtomicUsize,
    cap: usize,
}

fn bytes(ip: IpAddr) -> ([u8; 16], usize, bool) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            b[..4].copy_from_slice(&v4.octets());
            (b, 4, false)
        }
        IpAddr::V6(v6) => {
            // An IPv4-mapped IPv6 source is the IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                b[..4].copy_from_slice(&v4.octets());
                return (b, 4, false);
            }
            b.copy_from_slice(&v6.octets());
            (b, 16, true)
        }
    }
}

impl Tree {
    /// `reqs_density_per_unit` hits allowed per window; nodes go `remove_latency` s after their
    /// last hit.
    pub fn new(max_hits: u32, remove_latency: u64) -> Tree {
        Self::with_cap(max_hits, remove_latency, MAX_NODES)
    }

    /// With another node cap (tests).
    pub fn with_cap(max_hits: u32, remove_latency: u64, cap: usize) -> Tree {
        Tree {
            branches: (0..256).map(|_| Mutex::new(HashMap::new())).collect(),
            max_hits: max_hits.max(1),
            timeout: remove_latency,
            nodes: AtomicUsize::new(0),
            cap,
        }
    }

    /// `reqs_density_per_unit`.
    pub fn max_hits(&self) -> u32 {
        self.max_hits
    }

    /// Nodes in the tree.
    pub fn len(&self) -> usize {
        self.nodes.load(Ordering::Relaxed)
    }

    /// True when no node exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hot_leaf(&self, n: &Node) -> bool {
        let m = self.max_hits;
        n.leaf_hits[0] >= m || n.leaf_hits[1] >= m || (n.leaf_hits[0] + n.leaf_hits[1]) / 2 >= m
    }

    fn hot_non_leaf(&self, n: &Node) -> bool {
        let q = self.max_hits >> 2;
        n.hits[0] >= q || n.hits[1] >= q || (n.hits[0] + n.hits[1]) / 2 >= q
    }

    fn warm(&self, n: &Node) -> bool {
        n.hits[1] >= self.max_hits >> 2
    }

    /// One request from `ip` at time `now` (seconds): Kamailio's mark_node + timer update.
    pub fn mark(&self, ip: IpAddr, now: u64) -> Verdict {
        let (b, len, v6) = bytes(ip);
        let mut br = self.branches[b[0] as usize].lock();
        // The longest prefix of the address that has a node.
        let mut found = 0;
        for l in 1..=len {
            if br.contains_key(&Key::of(&b, l, v6)) {
                found = l;
            } else {
                break;
            }
        }
        let expires = now + self.timeout;
        if found == 0 {
            if self.len() >= self.cap {
                return Verdict::Ok;
            }
            br.insert(
                Key::of(&b, 1, v6),
                Node {
                    hits: [0, 1],
                    expires,
                    ..Default::default()
                },
            );
            self.nodes.fetch_add(1, Ordering::Relaxed);
            return Verdict::Ok;
        }
        let key = Key::of(&b, found, v6);
        if found == len {
            let hot = {
                let Some(n) = br.get_mut(&key) else {
                    return Verdict::Ok;
                };
                n.ip_leaf = true;
                n.leaf_hits[1] = n.leaf_hits[1].saturating_add(1);
                n.expires = expires;
                if n.red {
                    return Verdict::Red;
                }
                let m = self.max_hits;
                n.leaf_hits[0] >= m
                    || n.leaf_hits[1] >= m
                    || (n.leaf_hits[0] + n.leaf_hits[1]) / 2 >= m
            };
            if hot {
                if let Some(n) = br.get_mut(&key) {
                    n.red = true;
                }
                return Verdict::NewRed;
            }
            return Verdict::Ok;
        }
        let Some(n) = br.get_mut(&key) else {
            return Verdict::Ok;
        };
        n.hits[1] = n.hits[1].saturating_add(1);
        let split = self.hot_non_leaf(n) && self.len() < self.cap;
        if split {
            // The prefix is hot: it gets a longer prefix below it, and stops expiring.
            n.kids = n.kids.saturating_add(1);
            if !n.ip_leaf {
                n.expires = 0;
            }
            br.insert(
                Key::of(&b, found + 1, v6),
                Node {
                    expires,
                    ..Default::default()
                },
            );
            self.nodes.fetch_add(1, Ordering::Relaxed);
        } else if self.warm(n) && n.kids == 0 {
            // Tree leaves with few hits are left to expire (Kamailio's NO_UPDATE).
            n.expires = expires;
        }
        Verdict::Ok
    }

    /// The sampling window ends (swap_routine): current hits become the previous ones; a red
    /// address that is no longer hot is unblocked.
    pub fn swap(&self) {
        for br in &self.branches {
            let mut br = br.lock();
            for n in br.values_mut() {
                n.hits = [n.hits[1], 0];
                n.leaf_hits = [n.leaf_hits[1], 0];
                if n.red && !self.hot_leaf(n) {
                    n.red = false;
                    tracing::info!("pike: unblocking a source that calmed down");
                }
            }
        }
    }

    /// Remove nodes whose time is up (clean_routine); a prefix whose last kid goes starts its
    /// own countdown.
    pub fn clean(&self, now: u64) {
        for br in &self.branches {
            let mut br = br.lock();
            if br.is_empty() {
                continue;
            }
            let expired: Vec<Key> = br
                .iter()
                .filter(|(_, n)| n.kids == 0 && n.expires != 0 && n.expires <= now)
                .map(|(k, _)| *k)
                .collect();
            for k in expired {
                br.remove(&k);
                self.nodes.fetch_sub(1, Ordering::Relaxed);
                if k.len > 1 {
                    let shift = 8 * (16 - (k.len as u32 - 1));
                    let dad = Key {
                        v6: k.v6,
                        len: k.len - 1,
                        bits: (k.bits >> shift) << shift,
                    };
                    if let Some(d) = br.get_mut(&dad) {
                        d.kids = d.kids.saturating_sub(1);
                        if d.kids == 0 && d.expires == 0 {
                            d.expires = now + self.timeout;
                        }
                    }
                }
            }
        }
    }

    /// The full addresses known, filtered like `pike.top` (None: all).
    pub fn top(&self, only: Option<Status>, now: u64) -> Vec<TopEntry> {
        let mut out = Vec::new();
        for br in &self.branches {
            for (k, n) in br.lock().iter() {
                if !n.ip_leaf {
                    continue;
                }
                let status = if self.hot_leaf(n) || n.red {
                    Status::Hot
                } else if self.warm(n) {
                    Status::Warm
                } else {
                    Status::Ok
                };
                if only.is_some_and(|s| s != status) {
                    continue;
                }
                let b = k.bits.to_be_bytes();
                let ip = if k.v6 {
                    IpAddr::from(b)
                } else {
                    IpAddr::from([b[0], b[1], b[2], b[3]])
                };
                out.push(TopEntry {
                    ip,
                    leaf_hits: n.leaf_hits,
                    expires: n.expires as i64 - now as i64,
                    status,
                });
            }
        }
        out.sort_by(|a, b| b.leaf_hits[1].cmp(&a.leaf_hits[1]).then(a.ip.cmp(&b.ip)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Hits until the verdict is not Ok; None if it never turns.
    fn hits_to_block(t: &Tree, a: IpAddr, limit: u32) -> Option<u32> {
        (1..=limit).find(|_| t.mark(a, 0) != Verdict::Ok)
    }

    #[test]
    fn a_busy_source_turns_red_once_then_stays_red_until_it_calms_down() {
        let t = Tree::new(30, 120);
        let a = ip("192.0.2.7");
        // The prefixes must get hot first (a quarter each), then the address itself.
        let n = hits_to_block(&t, a, 1000).expect("blocked");
        assert!((30..=60).contains(&n), "blocked after {n} hits");
        assert_eq!(t.mark(a, 0), Verdict::Red);
        // A quiet neighbour is fine.
        assert_eq!(t.mark(ip("192.0.2.8"), 0), Verdict::Ok);
        let top = t.top(Some(Status::Hot), 0);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].ip, a);
        // Two quiet windows: unblocked.
        t.swap();
        t.swap();
        assert_eq!(t.mark(a, 0), Verdict::Ok);
    }

    #[test]
    fn ipv6_sources_are_detected_too() {
        let t = Tree::new(10, 120);
        let a = ip("2001:db8::1");
        assert!(hits_to_block(&t, a, 1000).is_some());
        assert_eq!(t.top(Some(Status::Hot), 0)[0].ip, a);
    }

    #[test]
    fn quiet_nodes_expire_and_the_tree_empties() {
        let t = Tree::new(8, 5);
        for _ in 0..40 {
            t.mark(ip("198.51.100.1"), 0);
        }
        assert!(t.len() >= 4);
        // Leaves go first, then their prefixes, each after the latency.
        for now in [10, 20, 30, 40, 50] {
            t.clean(now);
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_spoofed_flood_cannot_grow_the_tree_past_the_cap_and_a_real_flooder_is_still_caught() {
        let cap = 50_000;
        let t = Tree::with_cap(30, 120, cap);
        let flooder = ip("203.0.113.9");
        let mut caught = false;
        let mut rng = fastrand::Rng::with_seed(7);
        for i in 0..2_000_000u32 {
            let spoofed = if i % 2 == 0 {
                IpAddr::from(rng.u32(..).to_be_bytes())
            } else {
                IpAddr::from(rng.u128(..).to_be_bytes())
            };
            t.mark(spoofed, 0);
            if i % 100 == 0 && t.mark(flooder, 0) != Verdict::Ok {
                caught = true;
            }
            assert!(t.len() <= cap, "{} nodes", t.len());
        }
        assert!(
            caught,
            "the real flooder was not caught under spoofed pressure"
        );
        assert!(
            t.len() > cap * 9 / 10,
            "the flood did not press the cap: {} nodes",
            t.len()
        );
    }
}
