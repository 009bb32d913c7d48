//! The embedded backend: an SQLite file, a small pool of connections, queries on tokio's blocking
//! threads — or directly on the calling thread inside [`super::Db::wait`], where blocking is
//! allowed and a hand-off would only add two context switches to a query of a few microseconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, Row, TransactionBehavior};

use super::schema::{self, Dialect, SchemaReport, TableState};
use super::{
    batch_rows, check_widths, guarded, ident, idents, inline_allowed, insert_sql, placeholders,
    time, Backend, DbConfig, DbError, Health, Location, PlaceholderStyle, RawResult, Storage,
    Subscriber, UacReg, Value,
};

/// SQLite storage (see the module doc).
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
    timeout: Duration,
    health: Health,
}

impl SqliteStorage {
    /// Open (creating the file, and its directory, if missing) the database at `path`. One
    /// connection is opened now so that a bad path stops start-up with a clear error.
    pub async fn open(path: &Path, cfg: &DbConfig) -> Result<SqliteStorage, DbError> {
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(cfg.pool_size.max(1)),
            timeout: cfg.timeout,
            health: Health::new(format!("sqlite://{}", path.display())),
        });
        let i = inner.clone();
        let conn = tokio::task::spawn_blocking(move || {
            if let Some(dir) = i.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    DbError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let fresh = !i.path.exists();
            let c = i.connect()?;
            if fresh {
                // A file ksrd creates gets write-ahead logging, so that readers never wait for
                // a writer; files made by Kamailio keep their journal mode.
                c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
                    .map_err(|e| map_err(e, i.timeout))?;
            }
            Ok::<_, DbError>(c)
        })
        .await
        .map_err(|e| DbError::Query(format!("opening the database: {e}")))??;
        inner.idle.lock().push(conn);
        Ok(SqliteStorage { inner })
    }

    /// Run `f` with a connection from the pool, bounded by the timeout.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let inner = self.inner.clone();
        guarded(&self.inner.health, self.inner.timeout, async move {
            let _permit = inner
                .permits
                .acquire()
                .await
                .map_err(|_| DbError::Unavailable("connection pool closed".into()))?;
            if inline_allowed() {
                inner.run(f)
            } else {
                let i = inner.clone();
                tokio::task::spawn_blocking(move || i.run(f))
                    .await
                    .map_err(|e| DbError::Query(format!("database task failed: {e}")))?
            }
        })
        .await
    }
}

impl Inner {
    fn connect(&self) -> Result<Connection, DbError> {
        let c = Connection::open(&self.path).map_err(|e| {
            DbError::Unavailable(format!("cannot open {}: {e}", self.path.display()))
        })?;
        c.busy_timeout(self.timeout)
            .map_err(|e| map_err(e, self.timeout))?;
        Ok(c)
    }

    fn run<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let r = f(&mut conn);
        // A connection that hit an I/O problem is dropped; the next call opens a fresh one.
        if !matches!(r, Err(DbError::Unavailable(_))) {
            self.idle.lock().push(conn);
        }
        r
    }
}

fn map_err(e: rusqlite::Error, timeout: Duration) -> DbError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let m = msg.clone().unwrap_or_else(|| e.to_string());
        if let Some(t) = m.strip_prefix("no such table: ") {
            return DbError::MissingTable(t.to_string());
        }
        return match f.code {
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                DbError::Duplicate(m)
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DbError::Timeout(timeout),
            ErrorCode::CannotOpen
            | ErrorCode::NotADatabase
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::PermissionDenied
            | ErrorCode::DatabaseCorrupt => DbError::Unavailable(m),
            _ => DbError::Query(m),
        };
    }
    DbError::Query(e.to_string())
}

// ---- reading values whatever SQLite storage class they were written with

fn text(row: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

fn string(row: &Row, i: usize) -> rusqlite::Result<String> {
    Ok(text(row, i)?.unwrap_or_default())
}

fn int_opt(row: &Row, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

fn int(row: &Row, i: usize) -> rusqlite::Result<i64> {
    Ok(int_opt(row, i)?.unwrap_or(0))
}

fn int32(row: &Row, i: usize) -> rusqlite::Result<i32> {
    Ok(int(row, i)? as i32)
}

fn real(row: &Row, i: usize) -> rusqlite::Result<f64> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => 0.0,
        ValueRef::Integer(n) => n as f64,
        ValueRef::Real(f) => f,
        ValueRef::Text(t) | ValueRef::Blob(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0),
    })
}

/// A TIMESTAMP column: a Julian day number as db_sqlite writes it, or text in local time.
fn timestamp(row: &Row, i: usize, column: &str) -> Result<i64, DbError> {
    let bad = |msg: String| DbError::BadValue {
        column: column.to_string(),
        msg,
    };
    match row.get_ref(i).map_err(|e| bad(e.to_string()))? {
        ValueRef::Null => Ok(0),
        ValueRef::Integer(n) => Ok(time::from_julian(n as f64)),
        ValueRef::Real(f) => Ok(time::from_julian(f)),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let s = String::from_utf8_lossy(t);
            time::from_local_string(&s).ok_or_else(|| bad(format!("not a timestamp: {s:?}")))
        }
    }
}

const SUB_COLS: &str = "username, domain, password, ha1, ha1b";

fn subscriber(row: &Row) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        username: string(row, 0)?,
        domain: string(row, 1)?,
        password: string(row, 2)?,
        ha1: string(row, 3)?,
        ha1b: string(row, 4)?,
    })
}

/// Columns of `location` in the order [`location`] reads and [`upsert_sql`] writes them.
pub(crate) const LOC_COLS: &[&str] = &[
    "ruid",
    "username",
    "domain",
    "contact",
    "received",
    "path",
    "expires",
    "q",
    "callid",
    "cseq",
    "last_modified",
    "flags",
    "cflags",
    "user_agent",
    "socket",
    "methods",
    "instance",
    "reg_id",
    "server_id",
    "connection_id",
    "keepalive",
    "partition",
];

fn location(row: &Row) -> Result<Location, DbError> {
    let q = |e: rusqlite::Error| DbError::Query(e.to_string());
    Ok(Location {
        ruid: string(row, 0).map_err(q)?,
        username: string(row, 1).map_err(q)?,
        domain: text(row, 2).map_err(q)?,
        contact: string(row, 3).map_err(q)?,
        received: text(row, 4).map_err(q)?,
        path: text(row, 5).map_err(q)?,
        expires: timestamp(row, 6, "expires")?,
        q: real(row, 7).map_err(q)? as f32,
        callid: string(row, 8).map_err(q)?,
        cseq: int32(row, 9).map_err(q)?,
        last_modified: timestamp(row, 10, "last_modified")?,
        flags: int32(row, 11).map_err(q)?,
        cflags: int32(row, 12).map_err(q)?,
        user_agent: string(row, 13).map_err(q)?,
        socket: text(row, 14).map_err(q)?,
        methods: int_opt(row, 15).map_err(q)?.map(|m| m as i32),
        instance: text(row, 16).map_err(q)?,
        reg_id: int32(row, 17).map_err(q)?,
        server_id: int32(row, 18).map_err(q)?,
        connection_id: int32(row, 19).map_err(q)?,
        keepalive: int32(row, 20).map_err(q)?,
        partition: int32(row, 21).map_err(q)?,
    })
}

/// `INSERT .. ON CONFLICT (ruid) DO UPDATE` for a location table; `p(n)` renders parameter n.
pub(crate) fn upsert_sql(table: &str, p: impl Fn(usize, &str) -> String) -> String {
    let vals: Vec<String> = LOC_COLS
        .iter()
        .enumerate()
        .map(|(i, c)| p(i + 1, c))
        .collect();
    let sets: Vec<String> = LOC_COLS[1..]
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT (ruid) DO UPDATE SET {}",
        LOC_COLS.join(", "),
        vals.join(", "),
        sets.join(", ")
    )
}

/// A column as [`Value`]: SQLite keeps the storage class a value was written with, so integer
/// affinity columns (key_type, expires) read as Int and VARCHAR ones as Str whoever wrote them.
fn value(row: &Row, i: usize) -> rusqlite::Result<Value> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Str(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Str(String::from_utf8_lossy(t).into_owned())
        }
    })
}

/// A value of an arbitrary query: reals stay numbers.
fn raw_value(row: &Row, i: usize) -> rusqlite::Result<Value> {
    Ok(match row.get_ref(i)? {
        ValueRef::Real(f) => Value::Double(f),
        _ => value(row, i)?,
    })
}

/// [`Storage::raw_query`] on one connection.
fn raw_query(c: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<RawResult> {
    // rusqlite refuses a text with a second statement (MultipleStatement) instead of silently
    // running only the first one as db_sqlite does: the route learns about it.
    let mut st = c.prepare(sql)?;
    let columns: Vec<String> = st.column_names().into_iter().map(String::from).collect();
    if columns.is_empty() {
        let affected = st.execute(rusqlite::params_from_iter(params))? as u64;
        return Ok(RawResult {
            columns,
            rows: Vec::new(),
            affected,
        });
    }
    let n = columns.len();
    let rows = st
        .query_map(rusqlite::params_from_iter(params), |r| {
            (0..n).map(|i| raw_value(r, i)).collect()
        })?
        .collect::<rusqlite::Result<Vec<Vec<Value>>>>()?;
    Ok(RawResult {
        columns,
        rows,
        affected: 0,
    })
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => rusqlite::types::ToSqlOutput::from(rusqlite::types::Null),
            Value::Int(n) => rusqlite::types::ToSqlOutput::from(*n),
            Value::Str(s) => rusqlite::types::ToSqlOutput::from(s.as_str()),
            Value::Double(f) => rusqlite::types::ToSqlOutput::from(*f),
        })
    }
}

/// SQLite's default bound on parameters per statement before 3.32 (newer builds allow more).
const SQLITE_MAX_PARAMS: usize = 999;

pub(crate) const UAC_COLS: &str = "l_uuid, l_username, l_domain, r_username, r_domain, realm, \
     auth_username, auth_password, auth_ha1, auth_proxy, expires, flags, reg_delay, contact_addr, socket";

fn uacreg(row: &Row) -> rusqlite::Result<UacReg> {
    Ok(UacReg {
        l_uuid: string(row, 0)?,
        l_username: string(row, 1)?,
        l_domain: string(row, 2)?,
        r_username: string(row, 3)?,
        r_domain: string(row, 4)?,
        realm: string(row, 5)?,
        auth_username: string(row, 6)?,
        auth_password: string(row, 7)?,
        auth_ha1: string(row, 8)?,
        auth_proxy: string(row, 9)?,
        expires: int32(row, 10)?,
        flags: int32(row, 11)?,
        reg_delay: int32(row, 12)?,
        contact_addr: string(row, 13)?,
        socket: string(row, 14)?,
    })
}

fn columns_of(c: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT name FROM pragma_table_info(?1)")?;
    let rows = st.query_map([table], |r| r.get::<_, String>(0))?;
    rows.collect()
}

fn version_of(c: &Connection, table: &str) -> rusqlite::Result<Option<i32>> {
    let mut st = c.prepare_cached("SELECT table_version FROM version WHERE table_name = ?1")?;
    let mut rows = st.query([table])?;
    match rows.next()? {
        Some(r) => Ok(Some(int32(r, 0)?)),
        None => Ok(None),
    }
}

fn init_schema(c: &mut Connection, create: bool, to: Duration) -> Result<SchemaReport, DbError> {
    let e = |e| map_err(e, to);
    let mut tables = Vec::new();
    let mut have_version = !columns_of(c, "version").map_err(e)?.is_empty();
    for t in schema::TABLES {
        let cols = columns_of(c, t.name).map_err(e)?;
        let state = if cols.is_empty() {
            if create {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(e)?;
                for sql in t.create_sql(Dialect::Sqlite) {
                    tx.execute_batch(&sql).map_err(e)?;
                }
                tx.commit().map_err(e)?;
                if t.name == "version" {
                    have_version = true;
                }
                TableState::Created
            } else {
                TableState::Missing
            }
        } else {
            let v = if have_version {
                version_of(c, t.name).map_err(e)?
            } else {
                None
            };
            t.check(&cols, v)
        };
        tables.push((t.name, state));
    }
    Ok(SchemaReport { tables })
}

#[async_trait::async_trait]
impl Storage for SqliteStorage {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn init_schema(&self, create: bool) -> Result<SchemaReport, DbError> {
        let to = self.inner.timeout;
        self.with(move |c| init_schema(c, create, to)).await
    }

    async fn table_version(&self, table: &str) -> Result<Option<i32>, DbError> {
        let (t, to) = (table.to_string(), self.inner.timeout);
        self.with(move |c| version_of(c, &t).map_err(|e| map_err(e, to)))
            .await
    }

    async fn subscriber_get(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Option<Subscriber>, DbError> {
        let t = ident(table)?;
        let sql = match domain {
            Some(_) => {
                format!("SELECT {SUB_COLS} FROM {t} WHERE username = ?1 AND domain = ?2 LIMIT 1")
            }
            None => format!("SELECT {SUB_COLS} FROM {t} WHERE username = ?1 LIMIT 1"),
        };
        let (u, d, to) = (
            username.to_string(),
            domain.map(str::to_string),
            self.inner.timeout,
        );
        self.with(move |c| {
            let run = || -> rusqlite::Result<Option<Subscriber>> {
                let mut st = c.prepare_cached(&sql)?;
                let mut rows = match &d {
                    Some(d) => st.query(params![u, d])?,
                    None => st.query(params![u])?,
                };
                rows.next()?.map(subscriber).transpose()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn subscriber_add(&self, table: &str, s: &Subscriber) -> Result<(), DbError> {
        let t = ident(table)?;
        let sql = format!("INSERT INTO {t} ({SUB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)");
        let (s, to) = (s.clone(), self.inner.timeout);
        self.with(move |c| {
            c.prepare_cached(&sql)
                .and_then(|mut st| {
                    st.execute(params![s.username, s.domain, s.password, s.ha1, s.ha1b])
                })
                .map(|_| ())
                .map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn subscriber_update(&self, table: &str, s: &Subscriber) -> Result<bool, DbError> {
        let t = ident(table)?;
        let sql = format!(
            "UPDATE {t} SET password = ?3, ha1 = ?4, ha1b = ?5 WHERE username = ?1 AND domain = ?2"
        );
        let (s, to) = (s.clone(), self.inner.timeout);
        self.with(move |c| {
            c.prepare_cached(&sql)
                .and_then(|mut st| {
                    st.execute(params![s.username, s.domain, s.password, s.ha1, s.ha1b])
                })
                .map(|n| n > 0)
                .map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn subscriber_remove(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<bool, DbError> {
        let t = ident(table)?;
        let sql = format!("DELETE FROM {t} WHERE username = ?1 AND domain = ?2");
        let (u, d, to) = (username.to_string(), domain.to_string(), self.inner.timeout);
        self.with(move |c| {
            c.prepare_cached(&sql)
                .and_then(|mut st| st.execute(params![u, d]))
                .map(|n| n > 0)
                .map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn subscriber_list(&self, table: &str) -> Result<Vec<Subscriber>, DbError> {
        let t = ident(table)?;
        let sql = format!("SELECT {SUB_COLS} FROM {t} ORDER BY domain, username");
        let to = self.inner.timeout;
        self.with(move |c| {
            let run = || -> rusqlite::Result<Vec<Subscriber>> {
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map([], subscriber)?;
                rows.collect()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn select_strings(
        &self,
        table: &str,
        columns: &[&str],
        filter: &[(&str, &str)],
    ) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let t = ident(table)?;
        let mut cols = Vec::with_capacity(columns.len());
        for c in columns {
            cols.push(format!("CAST({} AS TEXT)", ident(c)?));
        }
        if cols.is_empty() {
            return Ok(Vec::new());
        }
        let mut conds = Vec::with_capacity(filter.len());
        for (i, (c, _)) in filter.iter().enumerate() {
            conds.push(format!("{} = ?{}", ident(c)?, i + 1));
        }
        let mut sql = format!("SELECT {} FROM {t}", cols.join(", "));
        if !conds.is_empty() {
            sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        let vals: Vec<String> = filter.iter().map(|(_, v)| v.to_string()).collect();
        let (n, to) = (columns.len(), self.inner.timeout);
        self.with(move |c| {
            let run = || -> rusqlite::Result<Vec<Vec<Option<String>>>> {
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map(rusqlite::params_from_iter(vals.iter()), |r| {
                    (0..n).map(|i| text(r, i)).collect()
                })?;
                rows.collect()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn location_load(&self, table: &str) -> Result<Vec<Location>, DbError> {
        let t = ident(table)?;
        let sql = format!("SELECT {} FROM {t}", LOC_COLS.join(", "));
        self.location_query(sql, Vec::new()).await
    }

    async fn location_get(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<Location>, DbError> {
        let t = ident(table)?;
        let mut sql = format!(
            "SELECT {} FROM {t} WHERE username = ?1",
            LOC_COLS.join(", ")
        );
        let mut args = vec![username.to_string()];
        if let Some(d) = domain {
            sql.push_str(" AND domain = ?2");
            args.push(d.to_string());
        }
        self.location_query(sql, args).await
    }

    async fn location_upsert(&self, table: &str, rows: &[Location]) -> Result<(), DbError> {
        let t = ident(table)?;
        let sql = upsert_sql(t, |n, _| format!("?{n}"));
        let (rows, to) = (rows.to_vec(), self.inner.timeout);
        self.with(move |c| {
            let mut run = || -> rusqlite::Result<()> {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                {
                    let mut st = tx.prepare_cached(&sql)?;
                    for l in &rows {
                        st.execute(params![
                            l.ruid,
                            l.username,
                            l.domain,
                            l.contact,
                            l.received,
                            l.path,
                            time::to_julian(l.expires),
                            l.q as f64,
                            l.callid,
                            l.cseq,
                            time::to_julian(l.last_modified),
                            l.flags,
                            l.cflags,
                            l.user_agent,
                            l.socket,
                            l.methods,
                            l.instance,
                            l.reg_id,
                            l.server_id,
                            l.connection_id,
                            l.keepalive,
                            l.partition,
                        ])?;
                    }
                }
                tx.commit()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn location_remove(&self, table: &str, ruids: &[String]) -> Result<u64, DbError> {
        let t = ident(table)?;
        let sql = format!("DELETE FROM {t} WHERE ruid = ?1");
        let (ruids, to) = (ruids.to_vec(), self.inner.timeout);
        self.with(move |c| {
            let mut run = || -> rusqlite::Result<u64> {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut n = 0;
                {
                    let mut st = tx.prepare_cached(&sql)?;
                    for r in &ruids {
                        n += st.execute([r])? as u64;
                    }
                }
                tx.commit()?;
                Ok(n)
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn location_remove_aor(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<u64, DbError> {
        let t = ident(table)?;
        let (u, d, to) = (
            username.to_string(),
            domain.map(str::to_string),
            self.inner.timeout,
        );
        let sql = match d {
            Some(_) => format!("DELETE FROM {t} WHERE username = ?1 AND domain = ?2"),
            None => format!("DELETE FROM {t} WHERE username = ?1"),
        };
        self.with(move |c| {
            let run = || -> rusqlite::Result<usize> {
                let mut st = c.prepare_cached(&sql)?;
                match &d {
                    Some(d) => st.execute(params![u, d]),
                    None => st.execute(params![u]),
                }
            };
            run().map(|n| n as u64).map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn location_remove_expired(&self, table: &str, now: i64) -> Result<u64, DbError> {
        let t = ident(table)?;
        let sql = format!("DELETE FROM {t} WHERE expires < ?1 AND expires <> ?2");
        let to = self.inner.timeout;
        self.with(move |c| {
            c.prepare_cached(&sql)
                .and_then(|mut st| st.execute(params![time::to_julian(now), time::to_julian(0)]))
                .map(|n| n as u64)
                .map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn rows_select(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<Value>>, DbError> {
        let t = ident(table)?;
        let cols = idents(columns)?;
        let sql = format!("SELECT {} FROM {t} ORDER BY {}", cols.join(", "), cols[0]);
        let (n, to) = (cols.len(), self.inner.timeout);
        self.with(move |c| {
            let run = || -> rusqlite::Result<Vec<Vec<Value>>> {
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map([], |r| (0..n).map(|i| value(r, i)).collect())?;
                rows.collect()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn rows_replace(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<(), DbError> {
        let t = ident(table)?.to_string();
        let cols: Vec<String> = idents(columns)?.into_iter().map(String::from).collect();
        check_widths(&rows, cols.len())?;
        let to = self.inner.timeout;
        self.with(move |c| {
            let mut run = || -> rusqlite::Result<()> {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(&format!("DELETE FROM {t}"), [])?;
                let names: Vec<&str> = cols.iter().map(String::as_str).collect();
                for batch in rows.chunks(batch_rows(names.len(), SQLITE_MAX_PARAMS)) {
                    let (sql, vals) = insert_sql(&t, &names, batch, |n, _| Some(format!("?{n}")));
                    // Not cached: the last batch's size varies and would evict useful statements.
                    tx.prepare(&sql)?
                        .execute(rusqlite::params_from_iter(vals))?;
                }
                tx.commit()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn uacreg_load(&self, table: &str) -> Result<Vec<UacReg>, DbError> {
        let t = ident(table)?;
        let sql = format!("SELECT {UAC_COLS} FROM {t}");
        let to = self.inner.timeout;
        self.with(move |c| {
            let run = || -> rusqlite::Result<Vec<UacReg>> {
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map([], uacreg)?;
                rows.collect()
            };
            run().map_err(|e| map_err(e, to))
        })
        .await
    }

    async fn raw_query(&self, sql: &str, params: &[Value]) -> Result<RawResult, DbError> {
        let sql = if params.is_empty() {
            sql.to_string()
        } else {
            placeholders(sql, PlaceholderStyle::Question)
        };
        let params = params.to_vec();
        let to = self.inner.timeout;
        self.with(move |c| raw_query(c, &sql, &params).map_err(|e| map_err(e, to)))
            .await
    }
}

impl SqliteStorage {
    async fn location_query(
        &self,
        sql: String,
        args: Vec<String>,
    ) -> Result<Vec<Location>, DbError> {
        let to = self.inner.timeout;
        self.with(move |c| {
            let mut st = c.prepare_cached(&sql).map_err(|e| map_err(e, to))?;
            let mut rows = st
                .query(rusqlite::params_from_iter(args.iter()))
                .map_err(|e| map_err(e, to))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(|e| map_err(e, to))? {
                out.push(location(r)?);
            }
            Ok(out)
        })
        .await
    }
}
