//! The transaction table: server key → transaction and id → transaction, in lock shards.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::key::ServerKey;
use super::TxCell;

const SHARDS: usize = 16;

/// Live transactions.
pub struct Table {
    by_key: Vec<Mutex<HashMap<ServerKey, Arc<TxCell>>>>,
    by_id: Vec<Mutex<HashMap<u64, Arc<TxCell>>>>,
    next_id: AtomicU64,
    live: AtomicUsize,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table {
            by_key: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            by_id: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_id: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            hasher: Default::default(),
        }
    }

    fn shard_of<K: Hash>(&self, k: &K) -> usize {
        (self.hasher.hash_one(k) as usize) % SHARDS
    }

    /// A fresh transaction id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The transaction filed under `key`.
    pub fn get(&self, key: &ServerKey) -> Option<Arc<TxCell>> {
        self.by_key[self.shard_of(key)].lock().get(key).cloned()
    }

    /// The transaction with this id.
    pub fn by_id(&self, id: u64) -> Option<Arc<TxCell>> {
        self.by_id[(id as usize) % SHARDS].lock().get(&id).cloned()
    }

    /// File a new transaction, unless one with the same key exists: then that one is returned
    /// as `Err` (a retransmission raced us).
    pub fn insert(&self, key: ServerKey, id: u64, tx: Arc<TxCell>) -> Result<(), Arc<TxCell>> {
        {
            let mut m = self.by_key[self.shard_of(&key)].lock();
            if let Some(old) = m.get(&key) {
                return Err(old.clone());
            }
            m.insert(key, tx.clone());
        }
        self.by_id[(id as usize) % SHARDS].lock().insert(id, tx);
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Forget a transaction (the caller holds its lock).
    pub fn remove(&self, key: &ServerKey, id: u64) {
        let a = self.by_key[self.shard_of(key)].lock().remove(key);
        let b = self.by_id[(id as usize) % SHARDS].lock().remove(&id);
        if a.is_some() || b.is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
