//! Storage: Kamailio's database schema (`subscriber`, `location`, `htable`, `uacreg`, `version`)
//! behind one small async trait, with an embedded SQLite backend (the default) and PostgreSQL.
//!
//! Modules get typed rows in and out and never write SQL. Every call is async and bounded by the
//! configured timeout; from a SIP worker (a KSR function, GIL held) use [`Db::wait`], which runs the
//! call with the GIL released so other workers keep routing while this one waits for the database.

pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod time;
pub mod url;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

pub use schema::{SchemaReport, TableState};
pub use url::DbUrl;

/// Errors of the storage layer. KSR functions map them to their negative return code.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No `db_url` in the configuration.
    #[error("no database configured (set db_url)")]
    NotConfigured,
    /// The database cannot be reached (connection refused or lost, file cannot be opened).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// No connection became free, or the call did not finish, within the configured timeout.
    #[error("database call timed out after {0:?}")]
    Timeout(Duration),
    /// The table does not exist.
    #[error("table {0} does not exist (create the schema with `ksrd db init`)")]
    MissingTable(String),
    /// A unique key (e.g. subscriber's username+domain, location's ruid) is already taken.
    #[error("duplicate entry: {0}")]
    Duplicate(String),
    /// A table or column name that is not a plain SQL identifier.
    #[error("not a valid table or column name: {0:?}")]
    BadIdentifier(String),
    /// A stored value that ksrd cannot read (e.g. a malformed timestamp).
    #[error("bad value in column {column}: {msg}")]
    BadValue {
        /// Column name.
        column: String,
        /// What is wrong.
        msg: String,
    },
    /// A row given to [`Storage::rows_replace`] whose width differs from the column list.
    #[error("row {row} has {got} values for {want} columns")]
    RowWidth {
        /// Index of the row.
        row: usize,
        /// Values in that row.
        got: usize,
        /// Number of columns.
        want: usize,
    },
    /// Any other error reported by the database.
    #[error("database error: {0}")]
    Query(String),
    /// [`Db::wait`] was called on a thread of the async runtime, where it would block the runtime.
    #[error("blocking database call on an async runtime thread (use .await there)")]
    WouldBlock,
}

impl DbError {
    /// True when the database is down or overloaded (as opposed to a bad request).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_) | DbError::Timeout(_))
    }
}

/// Which backend a [`Storage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A `subscriber` row (Kamailio auth_db): one user's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscriber {
    /// User part (`username` column).
    pub username: String,
    /// Domain, which kamctl also uses as the digest realm (`domain` column).
    pub domain: String,
    /// Plaintext password: empty unless `[db] store_plaintext_password` (or another tool) stored it.
    pub password: String,
    /// `MD5(username:domain:password)`.
    pub ha1: String,
    /// `MD5(username@domain:domain:password)`, for clients that send `user@domain` as username.
    pub ha1b: String,
}

impl Subscriber {
    /// A subscriber with `ha1`/`ha1b` computed as kamctl does (realm = domain); the plaintext is kept
    /// only when `store_plaintext` (kamctl's `STORE_PLAINTEXT_PW`).
    pub fn with_password(
        username: &str,
        domain: &str,
        password: &str,
        store_plaintext: bool,
    ) -> Subscriber {
        Subscriber {
            username: username.to_string(),
            domain: domain.to_string(),
            password: if store_plaintext {
                password.to_string()
            } else {
                String::new()
            },
            ha1: md5_hex(&format!("{username}:{domain}:{password}")),
            ha1b: md5_hex(&format!("{username}@{domain}:{domain}:{password}")),
        }
    }
}

/// Lower-case hex MD5 of `s`.
pub fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    let mut out = String::with_capacity(32);
    for b in d {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A `location` row (Kamailio usrloc): one contact binding. Times are Unix seconds; the backends
/// convert them to the column types Kamailio uses (see [`time`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Unique record id (`ruid`); upserts and deletes match on it.
    pub ruid: String,
    /// AoR user part (or the whole AoR when usrloc's `use_domain` is off).
    pub username: String,
    /// AoR domain (NULL when usrloc's `use_domain` is off).
    pub domain: Option<String>,
    /// Contact URI.
    pub contact: String,
    /// Source address of the REGISTER (`received`), for NAT.
    pub received: Option<String>,
    /// Path header value (RFC 3327).
    pub path: Option<String>,
    /// When the binding expires (Unix time; 0 = permanent).
    pub expires: i64,
    /// q-value as stored by Kamailio (0.0..=1.0; -1 when none was given).
    pub q: f32,
    /// Call-ID of the REGISTER.
    pub callid: String,
    /// CSeq number of the REGISTER.
    pub cseq: i32,
    /// Last update (Unix time).
    pub last_modified: i64,
    /// usrloc flags.
    pub flags: i32,
    /// Branch flags saved with the contact.
    pub cflags: i32,
    /// User-Agent header.
    pub user_agent: String,
    /// Local socket the REGISTER came in on (`proto:ip:port`).
    pub socket: Option<String>,
    /// Allowed methods bitmask.
    pub methods: Option<i32>,
    /// `+sip.instance` (RFC 5626).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: i32,
    /// Server id (multi-server setups).
    pub server_id: i32,
    /// TCP connection id.
    pub connection_id: i32,
    /// Keepalive flag.
    pub keepalive: i32,
    /// Partition (usrloc `db_partition`).
    pub partition: i32,
}

impl Default for Location {
    /// Kamailio's column defaults.
    fn default() -> Self {
        Location {
            ruid: String::new(),
            username: String::new(),
            domain: None,
            contact: String::new(),
            received: None,
            path: None,
            expires: 0,
            q: 1.0,
            callid: "Default-Call-ID".into(),
            cseq: 1,
            last_modified: 0,
            flags: 0,
            cflags: 0,
            user_agent: String::new(),
            socket: None,
            methods: None,
            instance: None,
            reg_id: 0,
            server_id: 0,
            connection_id: 0,
            keepalive: 0,
            partition: 0,
        }
    }
}

/// A column value of the generic row calls ([`Storage::rows_select`], [`Storage::rows_replace`])
/// and of arbitrary queries ([`Storage::raw_query`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (read from integer columns; written as a 64-bit integer).
    Int(i64),
    /// A string (read from text columns, and blobs decoded lossily; written as text).
    Str(String),
    /// A floating-point number (only [`Storage::raw_query`] reads them; the table calls of the
    /// modules never use one).
    Double(f64),
}

/// What an arbitrary statement ([`Storage::raw_query`]) returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawResult {
    /// Column names; empty when the statement returns no result set (INSERT, UPDATE, DDL…).
    pub columns: Vec<String>,
    /// The rows, one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Rows changed by a statement without a result set (0 otherwise).
    pub affected: u64,
}

/// A `uacreg` row (Kamailio uac remote registrations, schema version 5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UacReg {
    /// Local unique id.
    pub l_uuid: String,
    /// Local user.
    pub l_username: String,
    /// Local domain.
    pub l_domain: String,
    /// Remote user.
    pub r_username: String,
    /// Remote domain.
    pub r_domain: String,
    /// Auth realm.
    pub realm: String,
    /// Auth user.
    pub auth_username: String,
    /// Auth password (plaintext).
    pub auth_password: String,
    /// Auth HA1 (instead of the password).
    pub auth_ha1: String,
    /// Outbound proxy.
    pub auth_proxy: String,
    /// Registration expiry (s).
    pub expires: i32,
    /// Flags.
    pub flags: i32,
    /// Delay before the first REGISTER (s).
    pub reg_delay: i32,
    /// Contact address.
    pub contact_addr: String,
    /// Local socket.
    pub socket: String,
}

/// What the modules need from a database. Every table name is a parameter (Kamailio lets scripts
/// and modparams choose them); names must be plain identifiers (`[A-Za-z_][A-Za-z0-9_]*`).
#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Create the tables of [`schema::TABLES`] that are missing (when `create`) with their
    /// `version` rows, and check the ones that exist. Idempotent.
    async fn init_schema(&self, create: bool) -> Result<SchemaReport, DbError>;

    /// `table_version` of `table` in the `version` table.
    async fn table_version(&self, table: &str) -> Result<Option<i32>, DbError>;

    /// The subscriber `username`@`domain` (any domain when `None`, auth_db's `use_domain=0`).
    async fn subscriber_get(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Option<Subscriber>, DbError>;

    /// Add a subscriber; [`DbError::Duplicate`] if username+domain exists.
    async fn subscriber_add(&self, table: &str, s: &Subscriber) -> Result<(), DbError>;

    /// Set password, ha1 and ha1b of the subscriber with `s.username`/`s.domain`; false if none.
    async fn subscriber_update(&self, table: &str, s: &Subscriber) -> Result<bool, DbError>;

    /// Remove a subscriber; false if there was none.
    async fn subscriber_remove(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<bool, DbError>;

    /// All subscribers, ordered by domain then username.
    async fn subscriber_list(&self, table: &str) -> Result<Vec<Subscriber>, DbError>;

    /// `columns` (as text, NULL as `None`) of the rows where every `(column, value)` of `filter`
    /// matches: for auth_db's `load_credentials` and htable's `cols`, whose columns are configured.
    async fn select_strings(
        &self,
        table: &str,
        columns: &[&str],
        filter: &[(&str, &str)],
    ) -> Result<Vec<Vec<Option<String>>>, DbError>;

    /// Every row of a location table (usrloc preload / `db_mode` 1 and 2 start-up).
    async fn location_load(&self, table: &str) -> Result<Vec<Location>, DbError>;

    /// The bindings of one AoR (usrloc `db_mode` 3).
    async fn location_get(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<Location>, DbError>;

    /// Insert or update (by `ruid`) bindings, all in one transaction.
    async fn location_upsert(&self, table: &str, rows: &[Location]) -> Result<(), DbError>;

    /// Delete bindings by `ruid`, in one transaction; the number deleted.
    async fn location_remove(&self, table: &str, ruids: &[String]) -> Result<u64, DbError>;

    /// Delete every binding of an AoR; the number deleted.
    async fn location_remove_aor(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<u64, DbError>;

    /// Delete bindings that expired before `now` (Unix time), keeping permanent ones
    /// (`expires` = 0), as usrloc's timer does; the number deleted.
    async fn location_remove_expired(&self, table: &str, now: i64) -> Result<u64, DbError>;

    /// `SELECT columns FROM table ORDER BY columns[0]` (Kamailio's `ht_db_load_table` order):
    /// integer columns as [`Value::Int`], text as [`Value::Str`], NULL as [`Value::Null`].
    async fn rows_select(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<Value>>, DbError>;

    /// Replace every row of `table` with `rows` (values in `columns` order): DELETE then batched
    /// INSERTs in one transaction, so a failure leaves the old rows in place.
    async fn rows_replace(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<(), DbError>;

    /// Every row of a uacreg table.
    async fn uacreg_load(&self, table: &str) -> Result<Vec<UacReg>, DbError>;

    /// Run one statement written by the operator (sqlops), with `params` bound by the driver to
    /// its `?` or `$N` placeholders (see [`placeholders`]): never spliced into the text. A
    /// statement with a result set gives its columns and rows, any other the affected count.
    async fn raw_query(&self, sql: &str, params: &[Value]) -> Result<RawResult, DbError>;
}

/// Placeholder style of a backend, for [`placeholders`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlaceholderStyle {
    /// SQLite: `?` and `?N`.
    Question,
    /// PostgreSQL: `$N`.
    Dollar,
}

/// Rewrite the placeholders of `sql` to the backend's style, so that one parameterised query
/// works on both stores: `?` becomes `$1`, `$2`… on PostgreSQL and `$N` becomes `?N` on SQLite.
/// Quoted strings, quoted identifiers, dollar-quoted bodies and comments are left alone, so a `?`
/// inside a literal is not a placeholder.
pub(crate) fn placeholders(sql: &str, style: PlaceholderStyle) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1usize;
    let mut i = 0usize;
    // The index just past `end` searched from `from` (the end of the text when it is missing).
    let past = |from: usize, end: &str| {
        sql[from..]
            .find(end)
            .map_or(sql.len(), |p| from + p + end.len())
    };
    while i < b.len() {
        let skip_to = match b[i] {
            b'\'' => Some(past(i + 1, "'")),
            b'"' => Some(past(i + 1, "\"")),
            b'-' if b.get(i + 1) == Some(&b'-') => Some(past(i, "\n")),
            b'/' if b.get(i + 1) == Some(&b'*') => Some(past(i + 2, "*/")),
            b'$' if style == PlaceholderStyle::Dollar => {
                // A dollar-quoted body ($$...$$ or $tag$...$tag$) is copied whole.
                let e = sql[i + 1..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map_or(sql.len(), |p| i + 1 + p);
                let digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
                if e < b.len() && b[e] == b'$' && !digit {
                    Some(past(e + 1, &sql[i..=e]))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(j) = skip_to {
            out.push_str(&sql[i..j]);
            i = j;
            continue;
        }
        match b[i] {
            b'?' if style == PlaceholderStyle::Dollar => {
                out.push_str(&format!("${next}"));
                next += 1;
                i += 1;
            }
            b'$' if style == PlaceholderStyle::Question
                && b.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                out.push('?');
                i += 1;
            }
            _ => {
                // Multi-byte characters are copied whole.
                let len = sql[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&sql[i..i + len]);
                i += len;
            }
        }
    }
    out
}

/// `db_url` and `[db]` of the configuration.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Where the database is; `None` runs without one.
    pub url: Option<DbUrl>,
    /// Keep the plaintext password in `subscriber.password` (kamctl's `STORE_PLAINTEXT_PW`).
    pub store_plaintext_password: bool,
    /// Maximum number of connections.
    pub pool_size: usize,
    /// Bound on waiting for a connection and on each call.
    pub timeout: Duration,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            url: None,
            store_plaintext_password: false,
            pool_size: 8,
            timeout: Duration::from_millis(3000),
        }
    }
}

/// The shared database handle: a backend plus the runtime its I/O runs on. Cheap to clone; it
/// dereferences to [`Storage`], so `db.subscriber_get(..).await` works directly in async code.
#[derive(Clone)]
pub struct Db {
    storage: Arc<dyn Storage>,
    rt: tokio::runtime::Handle,
    url: String,
}

impl std::ops::Deref for Db {
    type Target = dyn Storage;
    fn deref(&self) -> &(dyn Storage + 'static) {
        &*self.storage
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.url)
    }
}

thread_local! {
    /// Set while [`Db::wait`] drives a call on this (non-runtime) thread: blocking work such as a
    /// SQLite query may then run right here instead of being handed to another thread.
    static INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True when the current call runs inside [`Db::wait`] (backends may block instead of offloading).
pub(crate) fn inline_allowed() -> bool {
    INLINE.with(|c| c.get())
}

impl Db {
    /// Open the database of `cfg` on the current tokio runtime (pools connect lazily: a PostgreSQL
    /// server that is down now only makes calls fail until it is up).
    pub async fn open(cfg: &DbConfig) -> Result<Db, DbError> {
        let url = cfg.url.as_ref().ok_or(DbError::NotConfigured)?;
        let rt = tokio::runtime::Handle::current();
        let storage: Arc<dyn Storage> = match url {
            DbUrl::Sqlite(path) => Arc::new(sqlite::SqliteStorage::open(path, cfg).await?),
            DbUrl::Postgres(pg) => Arc::new(postgres::PgStorage::new(pg, cfg)?),
        };
        Ok(Db {
            storage,
            rt,
            url: url.to_string(),
        })
    }

    /// What start-up does: SQLite gets the missing tables created (the embedded default works
    /// out of the box); PostgreSQL is only checked (its schema is made with `ksrd db init`).
    pub async fn prepare(&self) -> Result<SchemaReport, DbError> {
        self.storage
            .init_schema(self.backend() == Backend::Sqlite)
            .await
    }

    /// The URL with any password hidden, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The runtime the database I/O runs on (to spawn write-behind tasks).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// Run a call to completion from a thread outside the async runtime, such as a SIP worker in
    /// a KSR function. The GIL is released while waiting (if this thread holds it), so other
    /// workers run Python meanwhile. On a runtime thread this returns [`DbError::WouldBlock`]
    /// instead of stalling the runtime.
    pub fn wait<T: Send>(
        &self,
        fut: impl Future<Output = Result<T, DbError>> + Send,
    ) -> Result<T, DbError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(DbError::WouldBlock);
        }
        let run = || {
            struct Reset;
            impl Drop for Reset {
                fn drop(&mut self) {
                    INLINE.with(|c| c.set(false));
                }
            }
            INLINE.with(|c| c.set(true));
            let _reset = Reset;
            // On a runtime of this thread's own, the call and the connection it uses (PostgreSQL's
            // per-worker connection) are both driven right here, without waking a runtime
            // thread to send the query and another to hand the answer back.
            WORKER_RT.with(|rt| match rt {
                Some(rt) => rt.block_on(fut),
                None => self.rt.block_on(fut),
            })
        };
        if holds_gil() {
            pyo3::Python::attach(|py| py.detach(run))
        } else {
            run()
        }
    }
}

thread_local! {
    /// The runtime a thread drives its own database calls on (see [`Db::wait`]).
    static WORKER_RT: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| tracing::warn!("no per-thread database runtime: {e}"))
        .ok();
}

/// True when this thread holds the GIL (so it must be released before blocking).
pub(crate) fn holds_gil() -> bool {
    // SAFETY: both calls are valid at any time, from any thread, initialised interpreter or not
    // (Py_IsInitialized is checked first because PyGILState_Check needs a runtime).
    unsafe { pyo3::ffi::Py_IsInitialized() != 0 && pyo3::ffi::PyGILState_Check() == 1 }
}

/// Tracks whether a database is reachable, so that an outage gives one clear log line (and a
/// reminder every 10 s while it lasts) instead of one per failed call, and its end is logged too.
pub(crate) struct Health {
    what: String,
    down: AtomicBool,
    failed: AtomicU64,
    last_log_ms: AtomicU64,
    epoch: Instant,
}

impl Health {
    /// Health of the database described by `what` (a redacted URL).
    pub(crate) fn new(what: String) -> Health {
        Health {
            what,
            down: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            last_log_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Account for the result of one call.
    pub(crate) fn record<T>(&self, r: &Result<T, DbError>) {
        match r {
            Ok(_) => {
                if self.down.swap(false, Ordering::AcqRel) {
                    let n = self.failed.swap(0, Ordering::AcqRel);
                    tracing::info!(db = %self.what, failed_calls = n, "database is reachable again");
                }
            }
            Err(e) if e.is_unavailable() => {
                let n = self.failed.fetch_add(1, Ordering::AcqRel) + 1;
                let now = self.epoch.elapsed().as_millis() as u64;
                if !self.down.swap(true, Ordering::AcqRel) {
                    self.last_log_ms.store(now, Ordering::Release);
                    tracing::error!(db = %self.what, error = %e, "database unavailable: calls fail until it is back; connections are retried on each call");
                } else {
                    let last = self.last_log_ms.load(Ordering::Acquire);
                    if now.saturating_sub(last) >= 10_000
                        && self
                            .last_log_ms
                            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    {
                        tracing::error!(db = %self.what, error = %e, failed_calls = n, "database still unavailable");
                    }
                }
            }
            Err(_) => {}
        }
    }
}

/// Check that `name` is a plain SQL identifier, so it can be put into a statement unquoted.
pub(crate) fn ident(name: &str) -> Result<&str, DbError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if ok {
        Ok(name)
    } else {
        Err(DbError::BadIdentifier(name.to_string()))
    }
}

/// The checked column list of a generic row call (at least one column).
pub(crate) fn idents<'a>(columns: &[&'a str]) -> Result<Vec<&'a str>, DbError> {
    if columns.is_empty() {
        return Err(DbError::BadIdentifier(String::new()));
    }
    columns.iter().map(|c| ident(c)).collect()
}

/// Check that every row of a [`Storage::rows_replace`] call has one value per column.
pub(crate) fn check_widths(rows: &[Vec<Value>], want: usize) -> Result<(), DbError> {
    match rows.iter().position(|r| r.len() != want) {
        Some(row) => Err(DbError::RowWidth {
            row,
            got: rows[row].len(),
            want,
        }),
        None => Ok(()),
    }
}

/// `INSERT INTO table (columns) VALUES (..), (..)` for a batch of rows, and the values to bind in
/// placeholder order. `ph(n, v)` renders the placeholder of the n-th bound value (1-based), or
/// None to write a literal NULL instead (PostgreSQL: an untyped NULL fits any column type).
pub(crate) fn insert_sql<'a>(
    table: &str,
    columns: &[&str],
    rows: &'a [Vec<Value>],
    ph: impl Fn(usize, &Value) -> Option<String>,
) -> (String, Vec<&'a Value>) {
    let mut bound = Vec::with_capacity(rows.len() * columns.len());
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for (i, row) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            match ph(bound.len() + 1, v) {
                Some(p) => {
                    sql.push_str(&p);
                    bound.push(v);
                }
                None => sql.push_str("NULL"),
            }
        }
        sql.push(')');
    }
    (sql, bound)
}

/// Rows per multi-row INSERT: a few hundred, fewer for wide rows so that a statement stays under
/// `max_params` bound values.
pub(crate) fn batch_rows(columns: usize, max_params: usize) -> usize {
    (max_params / columns.max(1)).clamp(1, 500)
}

/// Bound a call by `timeout` and account for its outcome in `health`.
pub(crate) async fn guarded<T>(
    health: &Health,
    timeout: Duration,
    fut: impl Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    let r = match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(DbError::Timeout(timeout)),
    };
    health.record(&r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_as_kamctl() {
        // echo -n "alice:example.com:secret" | md5sum
        let s = Subscriber::with_password("alice", "example.com", "secret", false);
        assert_eq!(s.ha1, md5_hex("alice:example.com:secret"));
        assert_eq!(s.ha1b, md5_hex("alice@example.com:example.com:secret"));
        assert_eq!(s.password, "");
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        let s = Subscriber::with_password("alice", "example.com", "secret", true);
        assert_eq!(s.password, "secret");
    }

    #[test]
    fn placeholder_styles() {
        use PlaceholderStyle::*;
        let q = "SELECT '?', \"a?\", x FROM t WHERE a = ? AND b = ? -- ?\n AND c = '$1'";
        assert_eq!(
            placeholders(q, Dollar),
            "SELECT '?', \"a?\", x FROM t WHERE a = $1 AND b = $2 -- ?\n AND c = '$1'"
        );
        assert_eq!(
            placeholders("a = $1 OR b = $2 /* $3 */", Question),
            "a = ?1 OR b = ?2 /* $3 */"
        );
        assert_eq!(
            placeholders("SELECT $$ ? $$, ?", Dollar),
            "SELECT $$ ? $$, $1"
        );
        assert_eq!(
            placeholders("x = 'O''Brien' AND y = ?", Dollar),
            "x = 'O''Brien' AND y = $1"
        );
        assert_eq!(placeholders("é = ? '", Dollar), "é = $1 '");
    }

    #[test]
    fn identifiers() {
        assert!(ident("location").is_ok());
        assert!(ident("_loc_2").is_ok());
        assert!(ident("").is_err());
        assert!(ident("2x").is_err());
        assert!(ident("a;drop table x").is_err());
        assert!(ident("a\"b").is_err());
    }
}
