//! htable (`KSR.htable.*`, Kamailio src/modules/htable): named hash tables in memory shared by
//! every worker, defined with `[modparam.htable] htable = ["ipban=>size=8;autoexpire=300"]`.
//!
//! Return codes and oddities follow htable.c (`sr_kemi_htable_exports`); where ksrd differs the
//! function's comment says so.

pub mod dbstore;
pub mod iter;
pub mod ops;
pub mod pv;
pub mod rpc;
pub mod spec;
pub mod store;
pub mod table;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crate::modules::modparam::{ModParams, ModuleParams, ParamKind as P};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

pub use dbstore::DbStore;
pub use iter::HtCtx;
pub use store::HtableStore;
pub use table::{SetVal, Table};

use ops::{Count, Matcher, Target};
use store::{Columns, StoreError};

/// `sht_inc`/`sht_dec` failure value (`KSR_HT_KEMI_NOINTVAL`).
pub const NOINTVAL: i64 = -255;

/// Kamailio's htable parameters (`params[]` in htable.c). DMQ and event-route ones are accepted
/// and ignored.
pub const PARAMS: ModuleParams = ModuleParams {
    module: "htable",
    params: &[
        ("htable", P::StrList),
        ("db_url", P::Str),
        ("key_name_column", P::Str),
        ("key_type_column", P::Str),
        ("value_type_column", P::Str),
        ("key_value_column", P::Str),
        ("expires_column", P::Str),
        ("array_size_suffix", P::Str),
        ("fetch_rows", P::Int),
        ("timer_interval", P::Int),
        ("db_expires", P::Int),
        ("enable_dmq", P::Int),
        ("dmq_init_sync", P::Int),
        ("timer_procs", P::Int),
        ("event_callback", P::Str),
        ("event_callback_mode", P::Int),
        ("dmq_peer_id", P::Str),
    ],
};

/// Check the `htable` definitions at config load: `(key, message)` for the first bad one.
pub fn validate(p: &ModParams) -> Result<(), (String, String)> {
    spec::parse_all(&p.get_list("htable", "htable"))
        .map(|_| ())
        .map_err(|(i, e)| (format!("modparam.htable.htable[{i}]"), e.to_string()))
}

/// Every table of the server, shared by all workers (held in `Core`).
pub struct Htables {
    tables: Vec<Arc<Table>>,
    columns: Columns,
    timer_interval: Duration,
    store: OnceLock<Arc<dyn HtableStore>>,
    /// Per table (same index): its `dbtable` rows were loaded (Kamailio's `ht->dbload`). Only
    /// such tables are saved at shutdown, so a failed load cannot end in wiping the rows.
    loaded: Vec<AtomicBool>,
}

/// Why a reload or store failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The table has no `dbtable`.
    #[error("no database htable configured for [{0}]")]
    NoDbTable(String),
    /// No database is configured.
    #[error("no htable database (set db_url)")]
    NoStore,
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Htables {
    /// The tables of `modparam.htable.htable` (definitions were checked by [`validate`]; a bad one
    /// here is logged and skipped).
    pub fn from_params(p: &ModParams) -> Htables {
        let mut tables = Vec::new();
        for s in p.get_list("htable", "htable") {
            match spec::parse(&s) {
                Ok(t) if tables.iter().any(|x: &Arc<Table>| x.name() == t.name) => {
                    tracing::error!("modparam htable: {:?} is defined twice", t.name)
                }
                Ok(t) => tables.push(Arc::new(Table::new(t))),
                Err(e) => tracing::error!("modparam htable: {e}"),
            }
        }
        // Kamailio's default timer_interval is 20 s; expired items are invisible before that.
        let secs = p
            .get_int("htable", "timer_interval")
            .filter(|s| *s > 0)
            .unwrap_or(20);
        Htables {
            loaded: tables.iter().map(|_| AtomicBool::new(false)).collect(),
            tables,
            columns: Columns::from_params(p),
            timer_interval: Duration::from_secs(secs as u64),
            store: OnceLock::new(),
        }
    }

    /// The table called `name`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Arc<Table>> {
        // A handful of tables: a scan beats hashing the name.
        self.tables.iter().find(|t| t.spec.name == name)
    }

    /// All tables, in definition order.
    pub fn tables(&self) -> &[Arc<Table>] {
        &self.tables
    }

    /// Attach the storage layer (once); false if one was already attached.
    pub fn set_store(&self, s: Arc<dyn HtableStore>) -> bool {
        self.store.set(s).is_ok()
    }

    /// Load every table with `dbtable`, whatever its `dbmode` (startup, `ht_db_load_tables`).
    /// Without a database each such table logs one warning. A failed load is logged and leaves the
    /// table empty (Kamailio refuses to start instead); `htable.reload` can retry it.
    pub fn load_all(&self) {
        for t in self.tables.iter().filter(|t| t.spec.dbtable.is_some()) {
            let dbtable = t.spec.dbtable.as_deref().unwrap_or("");
            if self.store.get().is_none() {
                tracing::warn!(
                    table = t.name(),
                    dbtable,
                    "htable: dbtable is set but no database is configured (db_url); the table starts empty and is not saved"
                );
                continue;
            }
            match self.reload(t) {
                Ok(n) => tracing::info!(
                    table = t.name(),
                    dbtable,
                    items = n,
                    "htable: loaded from the database"
                ),
                Err(e) => tracing::error!(
                    table = t.name(),
                    dbtable,
                    "htable: loading from the database failed, the table starts empty and is not saved at shutdown unless htable.reload succeeds: {e}"
                ),
            }
        }
    }

    /// Save tables with `dbmode` != 0 that were loaded (shutdown, `ht_db_sync_tables`).
    pub fn save_all(&self) {
        let Some(s) = self.store.get() else { return };
        for (t, loaded) in self.tables.iter().zip(&self.loaded) {
            let Some(dbtable) = t.spec.dbtable.as_deref() else {
                continue;
            };
            if t.spec.dbmode == 0 || !t.spec.cols.is_empty() {
                continue;
            }
            if !loaded.load(Ordering::Acquire) {
                tracing::warn!(
                    table = t.name(),
                    dbtable,
                    "htable: not saved to the database: its rows were never loaded, saving would replace them"
                );
                continue;
            }
            let items = t.snapshot();
            let n = items.len();
            match store::save(&**s, &t.spec, &self.columns, items) {
                Ok(()) => tracing::info!(
                    table = t.name(),
                    dbtable,
                    items = n,
                    "htable: saved to the database"
                ),
                Err(e) => tracing::error!(
                    table = t.name(),
                    dbtable,
                    "htable: saving to the database failed: {e}"
                ),
            }
        }
    }

    /// Replace a table's content with its `dbtable` rows (`ht_reload_table`); the number of
    /// items loaded. On failure the table keeps its content.
    pub fn reload(&self, t: &Table) -> Result<usize, PersistError> {
        if t.spec.dbtable.is_none() {
            return Err(PersistError::NoDbTable(t.name().into()));
        }
        let s = self.store.get().ok_or(PersistError::NoStore)?;
        let items = store::load(&**s, &t.spec, &self.columns, table::unix_now())?;
        let n = items.len();
        t.replace_all(items);
        if let Some(i) = self.tables.iter().position(|x| std::ptr::eq(&**x, t)) {
            self.loaded[i].store(true, Ordering::Release);
        }
        Ok(n)
    }

    /// Write a table to its `dbtable` now (RPC `htable.store`).
    pub fn store_now(&self, t: &Table) -> Result<(), PersistError> {
        let s = self.store.get().ok_or(PersistError::NoStore)?;
        if t.spec.dbtable.is_none() {
            return Err(PersistError::NoDbTable(t.name().into()));
        }
        Ok(store::save(&**s, &t.spec, &self.columns, t.snapshot())?)
    }

    /// Start the thread that drops expired items every `timer_interval` seconds (`ht_timer`).
    /// It ends when the tables are dropped.
    pub fn start_timer(&self) -> std::io::Result<()> {
        let tables: Vec<Weak<Table>> = self
            .tables
            .iter()
            .filter(|t| t.spec.autoexpire > 0)
            .map(Arc::downgrade)
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        let every = self.timer_interval;
        std::thread::Builder::new()
            .name("ksrd-htable".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let mut alive = false;
                for t in tables.iter().filter_map(Weak::upgrade) {
                    alive = true;
                    let n = t.sweep();
                    if n > 0 {
                        tracing::debug!(table = t.name(), removed = n, "htable: expired items");
                    }
                }
                if !alive {
                    return;
                }
            })
            .map(|_| ())
    }
}

// ---- KEMI exports ---------------------------------------------------------------------------

fn table<'a>(ctx: &'a RouteCtx, name: &str) -> Option<&'a Arc<Table>> {
    ctx.core.htable.get(name)
}

fn int(v: i64) -> Val {
    Val::Int(v)
}

/// `ki_ht_get_mode`: the value; a missing item reads as `initval` when the table has one.
fn get_mode(ctx: &mut RouteCtx, a: &Args, null: Val) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("No such htable: {}", a.str(0));
        return null;
    };
    match t.get(a.str(1)) {
        Some(v) => v.into(),
        None => t.spec.initval.map_or(null, Val::Int),
    }
}
fn sht_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    get_mode(ctx, a, Val::None)
}
fn sht_gete(ctx: &mut RouteCtx, a: &Args) -> Val {
    get_mode(ctx, a, Val::Str(String::new()))
}
fn sht_getw(ctx: &mut RouteCtx, a: &Args) -> Val {
    get_mode(ctx, a, Val::Str("<null>".into()))
}

fn set_with(ctx: &mut RouteCtx, a: &Args, v: SetVal<'_>, exv: i64) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("No such htable: {}", a.str(0));
        return int(-1);
    };
    t.set(a.str(1), v, exv);
    int(1)
}
fn sht_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_with(ctx, a, SetVal::Str(a.str(2)), 0)
}
fn sht_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_with(ctx, a, SetVal::Int(a.int(2)), 0)
}
fn sht_setxs(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_with(ctx, a, SetVal::Str(a.str(2)), a.int(3))
}
fn sht_setxi(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_with(ctx, a, SetVal::Int(a.int(2)), a.int(3))
}
fn sht_setex(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("No such htable: {}", a.str(0));
        return int(-1);
    };
    t.set_expire(a.str(1), a.int(2));
    int(1)
}

fn add_op(ctx: &mut RouteCtx, a: &Args, d: i64) -> Val {
    // ki_ht_add_op: every failure (no table, no initval, string value) is -255.
    int(table(ctx, a.str(0))
        .and_then(|t| t.add(a.str(1), d))
        .unwrap_or(NOINTVAL))
}
fn sht_inc(ctx: &mut RouteCtx, a: &Args) -> Val {
    add_op(ctx, a, 1)
}
fn sht_dec(ctx: &mut RouteCtx, a: &Args) -> Val {
    add_op(ctx, a, -1)
}

fn sht_is_null(ctx: &mut RouteCtx, a: &Args) -> Val {
    // ki_ht_is_null: 2 unknown table, -2 table with initval (never null), -1 present, 1 missing.
    int(match table(ctx, a.str(0)) {
        None => 2,
        Some(t) if t.spec.initval.is_some() => -2,
        Some(t) if t.exists(a.str(1)) => -1,
        Some(_) => 1,
    })
}

fn sht_rm(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("cannot get hash table [{}]", a.str(0));
        return int(-1);
    };
    t.remove(a.str(1));
    int(1)
}

fn rm_re(ctx: &mut RouteCtx, a: &Args, tg: Target) -> Val {
    // ki_ht_rm_name_re: an unknown table is not an error here.
    let Some(t) = table(ctx, a.str(0)) else {
        return int(1);
    };
    match Matcher::for_rm("re", a.str(1)) {
        Ok(m) => {
            t.remove_where(|it| m.test_item(it, tg));
            int(1)
        }
        Err(e) => {
            tracing::error!("{e}");
            int(-1)
        }
    }
}
fn sht_rm_name_re(ctx: &mut RouteCtx, a: &Args) -> Val {
    rm_re(ctx, a, Target::Name)
}
fn sht_rm_value_re(ctx: &mut RouteCtx, a: &Args) -> Val {
    rm_re(ctx, a, Target::Value)
}

fn rm_op(ctx: &mut RouteCtx, a: &Args, tg: Target) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("cannot get hash table [{}]", a.str(0));
        return int(-1);
    };
    match Matcher::for_rm(a.str(1), a.str(2)) {
        Ok(m) => {
            t.remove_where(|it| m.test_item(it, tg));
            int(1)
        }
        Err(e) => {
            tracing::warn!("{e}");
            int(-1)
        }
    }
}
fn sht_rm_name(ctx: &mut RouteCtx, a: &Args) -> Val {
    rm_op(ctx, a, Target::Name)
}
fn sht_rm_value(ctx: &mut RouteCtx, a: &Args) -> Val {
    rm_op(ctx, a, Target::Value)
}

fn match_op(ctx: &mut RouteCtx, a: &Args, tg: Target) -> Val {
    // ht_match_cell_op_str; unlike Kamailio, expired items (not yet swept) do not match.
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("cannot get hash table [{}]", a.str(0));
        return int(-1);
    };
    if tg == Target::Name && a.str(1) == "eq" {
        // An exact name is a hash lookup, not a scan of the table (Kamailio scans every slot,
        // which makes the seed's `sht_match_name("auth", "eq", $Au)` cache check O(table)).
        return int(if t.exists(a.str(2)) { 1 } else { -1 });
    }
    match Matcher::for_match(a.str(1), a.str(2)) {
        Ok(m) => int(if t.any(|it| m.test_item(it, tg)) {
            1
        } else {
            -1
        }),
        Err(e) => {
            tracing::warn!("{e}");
            int(-1)
        }
    }
}
fn sht_match_name(ctx: &mut RouteCtx, a: &Args) -> Val {
    match_op(ctx, a, Target::Name)
}
fn sht_match_str_value(ctx: &mut RouteCtx, a: &Args) -> Val {
    match_op(ctx, a, Target::Value)
}

fn sht_cn(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("cannot get hash table [{}]", a.str(0));
        return int(-1);
    };
    let Some(c) = Count::from_op(a.str(1), a.str(2), Target::Name) else {
        tracing::error!("invalid operator [{}]", a.str(1));
        return int(-1);
    };
    int(t.count(|it| c.test_item(it, Target::Name)) as i64)
}

fn sht_reset(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(t) = table(ctx, a.str(0)) else {
        tracing::error!("cannot get hash table [{}]", a.str(0));
        return int(-1);
    };
    t.reset();
    // ki_ht_reset_by_name returns ht_reset_by_name()'s 0 on success.
    int(0)
}

fn slot_lock(ctx: &mut RouteCtx, a: &Args, lock: bool) -> Val {
    let Some(t) = table(ctx, a.str(0)).cloned() else {
        tracing::error!("cannot get hash table by name [{}]", a.str(0));
        return int(-1);
    };
    let slot = t.slot_of(a.str(1));
    if lock {
        ctx.htable.hold(&t, slot);
    } else if !ctx.htable.release(&t, slot) {
        // Kamailio would unlock a lock it does not hold; ksrd refuses and says so.
        tracing::warn!(
            table = t.name(),
            key = a.str(1),
            "sht_unlock: the slot is not locked by this worker"
        );
    }
    int(1)
}
fn sht_lock(ctx: &mut RouteCtx, a: &Args) -> Val {
    slot_lock(ctx, a, true)
}
fn sht_unlock(ctx: &mut RouteCtx, a: &Args) -> Val {
    slot_lock(ctx, a, false)
}

fn iter_rc(r: Result<(), iter::IterError>) -> Val {
    match r {
        Ok(()) => int(1),
        Err(e) => {
            tracing::error!("{e}");
            int(-1)
        }
    }
}
fn sht_iterator_start(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (iname, hname) = (a.str(0), a.str(1));
    if iname.is_empty() || hname.is_empty() {
        tracing::error!("invalid parameters");
        return int(-1);
    }
    let Some(t) = table(ctx, hname).cloned() else {
        tracing::error!("cannot get hash table [{hname}]");
        return int(-1);
    };
    iter_rc(ctx.htable.start(iname, t))
}
fn sht_iterator_next(ctx: &mut RouteCtx, a: &Args) -> Val {
    match ctx.htable.next(a.str(0)) {
        Ok(true) => int(1),
        Ok(false) => int(-1),
        Err(e) => iter_rc(Err(e)),
    }
}
fn sht_iterator_end(ctx: &mut RouteCtx, a: &Args) -> Val {
    iter_rc(ctx.htable.end(a.str(0)))
}
fn sht_iterator_rm(ctx: &mut RouteCtx, a: &Args) -> Val {
    // ht_iterator_rm: 1 on the next item, -2 when the removed one was the last.
    match ctx.htable.remove(a.str(0)) {
        Ok(true) => int(1),
        Ok(false) => int(-2),
        Err(e) => iter_rc(Err(e)),
    }
}
fn sht_iterator_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    iter_rc(ctx.htable.update(a.str(0), Some(SetVal::Str(a.str(1))), 0))
}
fn sht_iterator_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    iter_rc(ctx.htable.update(a.str(0), Some(SetVal::Int(a.int(1))), 0))
}
fn sht_iterator_setex(ctx: &mut RouteCtx, a: &Args) -> Val {
    iter_rc(ctx.htable.update(a.str(0), None, a.int(1)))
}

/// `KSR.htable.*`: the 29 exports of Kamailio's `sr_kemi_htable_exports`, in its order.
pub static EXPORTS: &[Export] = &[
    ex("htable", "sht_lock", &[("htname", Str), ("skey", Str)], Int,
        "Lock the slot of a key (re-entrant for this worker; released at the latest when the route returns); 1, -1 unknown table", sht_lock),
    ex("htable", "sht_unlock", &[("htname", Str), ("skey", Str)], Int,
        "Unlock the slot of a key locked with sht_lock; 1, -1 unknown table", sht_unlock),
    ex("htable", "sht_reset", &[("htname", Str)], Int,
        "Remove every item of a table; 0 (Kamailio's value), -1 unknown table", sht_reset),
    ex("htable", "sht_iterator_start", &[("iname", Str), ("hname", Str)], Int,
        "Start a named iterator over a table (at most 4 per worker); 1 or -1", sht_iterator_start),
    ex("htable", "sht_iterator_next", &[("iname", Str)], Int,
        "Move the iterator to the next item ($shtitkey/$shtitval); 1, or -1 at the end", sht_iterator_next),
    ex("htable", "sht_iterator_end", &[("iname", Str)], Int,
        "Release a named iterator; 1 or -1", sht_iterator_end),
    ex("htable", "sht_iterator_rm", &[("iname", Str)], Int,
        "Remove the iterator's item and move to the next; 1, -2 when none is left, -1 error", sht_iterator_rm),
    ex("htable", "sht_iterator_sets", &[("iname", Str), ("sval", Str)], Int,
        "Set the iterator's item to a string; 1 or -1", sht_iterator_sets),
    ex("htable", "sht_iterator_seti", &[("iname", Str), ("ival", Int)], Int,
        "Set the iterator's item to an integer; 1 or -1", sht_iterator_seti),
    ex("htable", "sht_iterator_setex", &[("iname", Str), ("exval", Int)], Int,
        "Set the expire of the iterator's item (seconds from now); 1 or -1", sht_iterator_setex),
    ex("htable", "sht_rm", &[("hname", Str), ("iname", Str)], Int,
        "Remove an item; 1 (even if it was missing), -1 unknown table", sht_rm),
    ex("htable", "sht_rm_name_re", &[("htname", Str), ("rexp", Str)], Int,
        "Remove items whose name matches a regex (case-insensitive); 1 (also for an unknown table), -1 bad regex", sht_rm_name_re),
    ex("htable", "sht_rm_value_re", &[("htname", Str), ("rexp", Str)], Int,
        "Remove items whose string value matches a regex; 1 (also for an unknown table), -1 bad regex", sht_rm_value_re),
    ex("htable", "sht_rm_name", &[("sname", Str), ("sop", Str), ("sval", Str)], Int,
        "Remove items whose name matches: op re, sw, ew or in; 1, -1 error", sht_rm_name),
    ex("htable", "sht_rm_value", &[("sname", Str), ("sop", Str), ("sval", Str)], Int,
        "Remove items whose string value matches: op re, sw, ew or in; 1, -1 error", sht_rm_value),
    ex("htable", "sht_match_name", &[("sname", Str), ("sop", Str), ("sval", Str)], Int,
        "1 if an item name matches (op eq, ne, re, sw), else -1", sht_match_name),
    ex("htable", "sht_match_str_value", &[("sname", Str), ("sop", Str), ("sval", Str)], Int,
        "1 if a string value matches (op eq, ne, re, sw), else -1", sht_match_str_value),
    ex("htable", "sht_get", &[("htname", Str), ("itname", Str)], Xval,
        "Item value (str or int); initval when missing and the table has one, else None", sht_get),
    ex("htable", "sht_gete", &[("htname", Str), ("itname", Str)], Xval,
        "Like sht_get, with \"\" instead of None", sht_gete),
    ex("htable", "sht_getw", &[("htname", Str), ("itname", Str)], Xval,
        "Like sht_get, with \"<null>\" instead of None", sht_getw),
    ex("htable", "sht_sets", &[("htname", Str), ("itname", Str), ("itval", Str)], Int,
        "Set an item to a string; 1, -1 unknown table", sht_sets),
    ex("htable", "sht_seti", &[("htname", Str), ("itname", Str), ("itval", Int)], Int,
        "Set an item to an integer; 1, -1 unknown table", sht_seti),
    ex("htable", "sht_setex", &[("htname", Str), ("itname", Str), ("itval", Int)], Int,
        "Set the expire of an item, seconds from now (0: never; autoexpire tables only); 1, -1 unknown table", sht_setex),
    ex("htable", "sht_setxi", &[("htname", Str), ("itname", Str), ("itval", Int), ("exval", Int)], Int,
        "Set an integer item and its expire (autoexpire tables only); 1, -1 unknown table", sht_setxi),
    ex("htable", "sht_setxs", &[("htname", Str), ("itname", Str), ("itval", Str), ("exval", Int)], Int,
        "Set a string item and its expire (autoexpire tables only); 1, -1 unknown table", sht_setxs),
    ex("htable", "sht_is_null", &[("htname", Str), ("itname", Str)], Int,
        "1 if the item is missing, -1 if present, -2 if the table has initval, 2 unknown table", sht_is_null),
    ex("htable", "sht_inc", &[("htname", Str), ("itname", Str)], Int,
        "Increment an int item and return the new value; a missing one starts from initval; -255 on failure", sht_inc),
    ex("htable", "sht_dec", &[("htname", Str), ("itname", Str)], Int,
        "Decrement an int item and return the new value; a missing one starts from initval; -255 on failure", sht_dec),
    ex("htable", "sht_cn", &[("htname", Str), ("op", Str), ("pattern", Str)], Int,
        "Number of items whose name matches (op \"\"/\"~~\" regex, \"%~\" prefix, \"~%\" suffix, \"==\" equal, \"**\" all); -1 error", sht_cn),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_match_kamailio() {
        // Names, order, parameter and return types of sr_kemi_htable_exports (htable.c).
        let want: &[(&str, &str, &str)] = &[
            ("sht_lock", "str, str", "int"),
            ("sht_unlock", "str, str", "int"),
            ("sht_reset", "str", "int"),
            ("sht_iterator_start", "str, str", "int"),
            ("sht_iterator_next", "str", "int"),
            ("sht_iterator_end", "str", "int"),
            ("sht_iterator_rm", "str", "int"),
            ("sht_iterator_sets", "str, str", "int"),
            ("sht_iterator_seti", "str, int", "int"),
            ("sht_iterator_setex", "str, int", "int"),
            ("sht_rm", "str, str", "int"),
            ("sht_rm_name_re", "str, str", "int"),
            ("sht_rm_value_re", "str, str", "int"),
            ("sht_rm_name", "str, str, str", "int"),
            ("sht_rm_value", "str, str, str", "int"),
            ("sht_match_name", "str, str, str", "int"),
            ("sht_match_str_value", "str, str, str", "int"),
            ("sht_get", "str, str", "xval"),
            ("sht_gete", "str, str", "xval"),
            ("sht_getw", "str, str", "xval"),
            ("sht_sets", "str, str, str", "int"),
            ("sht_seti", "str, str, int", "int"),
            ("sht_setex", "str, str, int", "int"),
            ("sht_setxi", "str, str, int, int", "int"),
            ("sht_setxs", "str, str, str, int", "int"),
            ("sht_is_null", "str, str", "int"),
            ("sht_inc", "str, str", "int"),
            ("sht_dec", "str, str", "int"),
            ("sht_cn", "str, str, str", "int"),
        ];
        assert_eq!(EXPORTS.len(), 29);
        for (e, (n, p, r)) in EXPORTS.iter().zip(want) {
            let params: Vec<&str> = e.params.iter().map(|(_, t)| t.api_name()).collect();
            assert_eq!(
                (e.name, params.join(", ").as_str(), e.ret.api_name()),
                (*n, *p, *r)
            );
            assert_eq!(e.module, "htable");
        }
    }
}
