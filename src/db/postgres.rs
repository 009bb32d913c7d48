//! The PostgreSQL backend: a deadpool-postgres pool of tokio-postgres connections.
//!
//! Connections are made lazily and checked when taken from the pool (a connection the server
//! closed is dropped and replaced), so after an outage the next call reconnects by itself. Each
//! call is bounded by the configured timeout (waiting for a connection, connecting, and the query).
//!
//! Calls from SIP workers (inside [`super::Db::wait`]) use a connection of the worker's own,
//! driven by the worker's own runtime, as each Kamailio child has its own connection: the query
//! goes out and the answer comes back on the worker thread, with no hand-over to the runtime
//! threads and back (two thread wake-ups per query, which cost more CPU than the query itself).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

use super::schema::{self, Dialect, SchemaReport, TableState};
use super::sqlite::{upsert_sql, LOC_COLS, UAC_COLS};
use super::url::PgUrl;
use super::{
    batch_rows, check_widths, guarded, ident, idents, inline_allowed, insert_sql, placeholders,
    time, Backend, DbConfig, DbError, Health, Location, PlaceholderStyle, RawResult, Storage,
    Subscriber, UacReg, Value,
};

/// Run the block as one storage call, bounded by the timeout and recorded in the health state.
/// A worker's connection is only polled while the worker makes a call, so one the server closed
/// meanwhile (a restart) is found dead by the call itself: the block then runs once more, on a
/// new connection, instead of failing.
macro_rules! call {
    ($self:ident, $body:block) => {
        guarded(&$self.health, $self.timeout, async {
            match async $body.await {
                Err(DbError::Unavailable(_)) if inline_allowed() => async $body.await,
                r => r,
            }
        })
    };
}

/// PostgreSQL storage (see the module doc).
pub struct PgStorage {
    pool: Pool,
    /// The connection settings, for the per-worker pools.
    config: tokio_postgres::Config,
    /// Tells this storage's per-worker pools from another's.
    id: u64,
    timeout: Duration,
    health: Health,
}

thread_local! {
    /// Per-worker pools of one connection, by storage id.
    static WORKER_POOLS: RefCell<HashMap<u64, Pool>> = RefCell::new(HashMap::new());
}

fn build_pool(
    pc: &tokio_postgres::Config,
    size: usize,
    timeout: Duration,
) -> Result<Pool, DbError> {
    let mgr = Manager::from_config(
        pc.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(size.max(1))
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Query(format!("cannot build the connection pool: {e}")))
}

type Param<'a> = &'a (dyn ToSql + Sync);

impl PgStorage {
    /// A pool for `url`; nothing connects until the first call.
    pub fn new(url: &PgUrl, cfg: &DbConfig) -> Result<PgStorage, DbError> {
        let mut pc = url.config.clone();
        pc.connect_timeout(cfg.timeout);
        if pc.get_application_name().is_none() {
            pc.application_name("ksrd");
        }
        let pool = build_pool(&pc, cfg.pool_size, cfg.timeout)?;
        static IDS: AtomicU64 = AtomicU64::new(0);
        Ok(PgStorage {
            pool,
            config: pc,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            timeout: cfg.timeout,
            health: Health::new(url.redacted.clone()),
        })
    }

    async fn client(&self) -> Result<Object, DbError> {
        let pool = if inline_allowed() {
            self.worker_pool()?
        } else {
            self.pool.clone()
        };
        pool.get().await.map_err(|e| match e {
            PoolError::Timeout(_) => DbError::Timeout(self.timeout),
            PoolError::Backend(e) => pg_err(e),
            PoolError::Closed => DbError::Unavailable("connection pool closed".into()),
            other => DbError::Unavailable(other.to_string()),
        })
    }

    /// This worker's own pool (see the module doc).
    fn worker_pool(&self) -> Result<Pool, DbError> {
        WORKER_POOLS.with(|m| {
            if let Some(p) = m.borrow().get(&self.id) {
                return Ok(p.clone());
            }
            let p = build_pool(&self.config, 1, self.timeout)?;
            m.borrow_mut().insert(self.id, p.clone());
            Ok(p)
        })
    }

    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        call!(self, {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(pg_err)?;
            c.query(&st, params).await.map_err(pg_err)
        })
        .await
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        call!(self, {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(pg_err)?;
            c.execute(&st, params).await.map_err(pg_err)
        })
        .await
    }

    async fn locations(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Location>, DbError> {
        self.query(sql, params)
            .await?
            .iter()
            .map(location)
            .collect()
    }
}

/// Map a tokio-postgres error: lost connections and refused connects are "unavailable".
fn pg_err(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        return if *code == SqlState::UNIQUE_VIOLATION {
            DbError::Duplicate(db.message().to_string())
        } else if *code == SqlState::UNDEFINED_TABLE {
            let name = db.message().split('"').nth(1).unwrap_or(db.message());
            DbError::MissingTable(name.to_string())
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            DbError::Unavailable(db.message().to_string())
        } else {
            DbError::Query(format!("{} ({})", db.message(), code.code()))
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    let msg = e.to_string();
    if e.is_closed() || io || msg.starts_with("error connecting") || msg.starts_with("timeout") {
        DbError::Unavailable(msg)
    } else {
        DbError::Query(msg)
    }
}

fn s(r: &Row, i: usize) -> Result<String, DbError> {
    Ok(so(r, i)?.unwrap_or_default())
}
fn so(r: &Row, i: usize) -> Result<Option<String>, DbError> {
    r.try_get::<_, Option<String>>(i).map_err(|e| bad(r, i, e))
}
fn i32o(r: &Row, i: usize) -> Result<Option<i32>, DbError> {
    r.try_get::<_, Option<i32>>(i).map_err(|e| bad(r, i, e))
}
fn int(r: &Row, i: usize) -> Result<i32, DbError> {
    Ok(i32o(r, i)?.unwrap_or(0))
}
fn bad(r: &Row, i: usize, e: tokio_postgres::Error) -> DbError {
    DbError::BadValue {
        column: r
            .columns()
            .get(i)
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        msg: e.to_string(),
    }
}
fn ts(r: &Row, i: usize, column: &str) -> Result<i64, DbError> {
    match so(r, i)? {
        None => Ok(0),
        Some(t) => time::from_local_string(&t).ok_or_else(|| DbError::BadValue {
            column: column.into(),
            msg: format!("not a timestamp: {t:?}"),
        }),
    }
}

fn subscriber(r: &Row) -> Result<Subscriber, DbError> {
    Ok(Subscriber {
        username: s(r, 0)?,
        domain: s(r, 1)?,
        password: s(r, 2)?,
        ha1: s(r, 3)?,
        ha1b: s(r, 4)?,
    })
}

/// The location columns, timestamps as local-time text (how Kamailio's srdb1 reads them).
fn loc_select() -> String {
    LOC_COLS
        .iter()
        .map(|c| match *c {
            "expires" | "last_modified" => format!("to_char({c}, 'YYYY-MM-DD HH24:MI:SS')"),
            _ => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn location(r: &Row) -> Result<Location, DbError> {
    Ok(Location {
        ruid: s(r, 0)?,
        username: s(r, 1)?,
        domain: so(r, 2)?,
        contact: s(r, 3)?,
        received: so(r, 4)?,
        path: so(r, 5)?,
        expires: ts(r, 6, "expires")?,
        q: r.try_get::<_, Option<f32>>(7)
            .map_err(|e| bad(r, 7, e))?
            .unwrap_or(1.0),
        callid: s(r, 8)?,
        cseq: int(r, 9)?,
        last_modified: ts(r, 10, "last_modified")?,
        flags: int(r, 11)?,
        cflags: int(r, 12)?,
        user_agent: s(r, 13)?,
        socket: so(r, 14)?,
        methods: i32o(r, 15)?,
        instance: so(r, 16)?,
        reg_id: int(r, 17)?,
        server_id: int(r, 18)?,
        connection_id: int(r, 19)?,
        keepalive: int(r, 20)?,
        partition: int(r, 21)?,
    })
}

async fn cols_of(c: &Object, table: &str) -> Result<Vec<String>, DbError> {
    let rows = c
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .await
        .map_err(pg_err)?;
    rows.iter().map(|r| s(r, 0)).collect()
}

/// A column as [`Value`] by its declared type. Other types are refused, as Kamailio's htable
/// refuses them (`ht_pack_values`: "unsupported data type").
fn value(r: &Row, i: usize) -> Result<Value, DbError> {
    let ty = r.columns()[i].type_();
    let v = if *ty == Type::INT2 {
        r.try_get::<_, Option<i16>>(i).map(|v| v.map(i64::from))
    } else if *ty == Type::INT4 {
        r.try_get::<_, Option<i32>>(i).map(|v| v.map(i64::from))
    } else if *ty == Type::INT8 {
        r.try_get::<_, Option<i64>>(i)
    } else if *ty == Type::BOOL {
        r.try_get::<_, Option<bool>>(i).map(|v| v.map(i64::from))
    } else if *ty == Type::BYTEA {
        let b = r
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(|e| bad(r, i, e))?;
        return Ok(b.map_or(Value::Null, |b| {
            Value::Str(String::from_utf8_lossy(&b).into_owned())
        }));
    } else {
        // text, varchar, char, name (and text-like extension types); anything else fails here
        let s = so(r, i)?;
        return Ok(s.map_or(Value::Null, Value::Str));
    };
    Ok(v.map_err(|e| bad(r, i, e))?.map_or(Value::Null, Value::Int))
}

/// True for "cannot insert multiple commands into a prepared statement".
fn is_multi_statement(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        *d.code() == SqlState::SYNTAX_ERROR && d.message().contains("multiple commands")
    })
}

/// Run a text of several statements with the simple protocol: the rows of the last statement
/// that returned some, every value as text.
async fn simple_query(c: &Object, sql: &str) -> Result<RawResult, DbError> {
    use tokio_postgres::SimpleQueryMessage as M;
    let mut out = RawResult::default();
    let mut fresh = true;
    for m in c.simple_query(sql).await.map_err(pg_err)? {
        match m {
            M::RowDescription(cols) => {
                out.columns = cols.iter().map(|c| c.name().to_string()).collect();
                out.rows.clear();
                fresh = false;
            }
            M::Row(r) => {
                if fresh {
                    out.columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                    out.rows.clear();
                    fresh = false;
                }
                out.rows.push(
                    (0..r.len())
                        .map(|i| r.get(i).map_or(Value::Null, |v| Value::Str(v.to_string())))
                        .collect(),
                );
            }
            M::CommandComplete(n) => {
                out.affected = n;
                fresh = true;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A value bound to a placeholder of an operator's query: converted to whatever type
/// PostgreSQL inferred for the placeholder (an integer column gets an integer even when the
/// route passed the digits as a str), so routes need no casts for the common types.
#[derive(Debug)]
struct RawParam<'a>(&'a Value);

type BoxErr = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for RawParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, BoxErr> {
        use tokio_postgres::types::IsNull;
        let int = |v: &Value| -> Result<i64, BoxErr> {
            match v {
                Value::Int(n) => Ok(*n),
                Value::Str(s) => s.trim().parse().map_err(|_| {
                    format!("{s:?} is not an integer for a parameter of type {ty}").into()
                }),
                Value::Double(f) if f.fract() == 0.0 => Ok(*f as i64),
                _ => Err(format!("{v:?} is not an integer for a parameter of type {ty}").into()),
            }
        };
        let float = |v: &Value| -> Result<f64, BoxErr> {
            match v {
                Value::Int(n) => Ok(*n as f64),
                Value::Double(f) => Ok(*f),
                Value::Str(s) => s.trim().parse().map_err(|_| {
                    format!("{s:?} is not a number for a parameter of type {ty}").into()
                }),
                Value::Null => Err("null".into()),
            }
        };
        let v = self.0;
        if matches!(v, Value::Null) {
            return Ok(IsNull::Yes);
        }
        match *ty {
            Type::INT2 => i16::try_from(int(v)?)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(int(v)?)?.to_sql(ty, out),
            Type::INT8 => int(v)?.to_sql(ty, out),
            Type::OID => u32::try_from(int(v)?)?.to_sql(ty, out),
            Type::FLOAT4 => (float(v)? as f32).to_sql(ty, out),
            Type::FLOAT8 => float(v)?.to_sql(ty, out),
            Type::BOOL => (int(v)? != 0).to_sql(ty, out),
            Type::BYTEA => match v {
                Value::Str(s) => s.as_bytes().to_sql(ty, out),
                other => other_text(other).as_bytes().to_sql(ty, out),
            },
            _ if <&str as ToSql>::accepts(ty) => match v {
                Value::Str(s) => s.as_str().to_sql(ty, out),
                other => other_text(other).as_str().to_sql(ty, out),
            },
            _ => Err(format!(
                "cannot bind a value to a parameter of type {ty}: cast the placeholder in the query, e.g. CAST(? AS text)"
            )
            .into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A non-text parameter as text.
fn other_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Int(n) => n.to_string(),
        Value::Str(s) => s.clone(),
        Value::Double(f) => f.to_string(),
    }
}

/// A column of an operator's query, whatever its type: integers (and booleans) as Int, floats as
/// Double, timestamps and dates as Unix time (Kamailio's DB1_DATETIME), numerics as their
/// decimal text, bytea and text types as Str, `void` as NULL.
struct AnyValue(Value);

impl<'a> tokio_postgres::types::FromSql<'a> for AnyValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<AnyValue, BoxErr> {
        use tokio_postgres::types::FromSql;
        // Microseconds (days for a date) since 2000-01-01 00:00:00.
        const PG_EPOCH: i64 = 946_684_800;
        let v = match *ty {
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Double(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Double(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Str(String::from_utf8_lossy(raw).into_owned()),
            Type::VOID => Value::Null,
            Type::TIMESTAMPTZ => {
                Value::Int(i64::from_sql(&Type::INT8, raw)?.div_euclid(1_000_000) + PG_EPOCH)
            }
            Type::TIMESTAMP => {
                let utc = i64::from_sql(&Type::INT8, raw)?.div_euclid(1_000_000) + PG_EPOCH;
                Value::Int(naive_local(utc))
            }
            Type::DATE => Value::Int(naive_local(
                i64::from(i32::from_sql(&Type::INT4, raw)?) * 86_400 + PG_EPOCH,
            )),
            Type::NUMERIC => Value::Str(numeric_text(raw).ok_or("malformed numeric")?),
            Type::JSONB => {
                Value::Str(String::from_utf8_lossy(raw.get(1..).unwrap_or_default()).into_owned())
            }
            _ if <&str as FromSql>::accepts(ty) => {
                Value::Str(<&str>::from_sql(ty, raw)?.to_string())
            }
            _ => {
                return Err(format!(
                    "sqlops cannot read a column of type {ty}: cast it in the query, e.g. col::text"
                )
                .into())
            }
        };
        Ok(AnyValue(v))
    }

    fn from_sql_null(_: &Type) -> Result<AnyValue, BoxErr> {
        Ok(AnyValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A wall-clock time without zone (seconds as if UTC) read as local time, as Kamailio's
/// db_postgres reads `timestamp` columns.
fn naive_local(as_utc: i64) -> i64 {
    time::to_utc_string(as_utc)
        .and_then(|text| time::from_local_string(&text))
        .unwrap_or(as_utc)
}

/// The decimal text of a binary NUMERIC (base-10000 digits, weight, sign, display scale).
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?])) };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|k| word(8 + 2 * k))
        .collect::<Option<_>>()?;
    let digit = |k: i32| -> u16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    // Integer part: groups 0..=weight.
    if weight < 0 {
        out.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                out.push_str(&digit(k).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(k)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// A column of an operator's query (see [`AnyValue`]).
fn raw_value(r: &Row, i: usize) -> Result<Value, DbError> {
    r.try_get::<_, AnyValue>(i)
        .map(|v| v.0)
        .map_err(|e| bad(r, i, e))
}

/// PostgreSQL's bound on parameters per statement.
const PG_MAX_PARAMS: usize = 65535;

#[async_trait::async_trait]
impl Storage for PgStorage {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn init_schema(&self, create: bool) -> Result<SchemaReport, DbError> {
        call!(self, {
            let mut c = self.client().await?;
            let mut have_version = !cols_of(&c, "version").await?.is_empty();
            let mut tables = Vec::new();
            for t in schema::TABLES {
                let cols = cols_of(&c, t.name).await?;
                let state = if cols.is_empty() {
                    if create {
                        let tx = c.transaction().await.map_err(pg_err)?;
                        for sql in t.create_sql(Dialect::Postgres) {
                            tx.batch_execute(&sql).await.map_err(pg_err)?;
                        }
                        tx.commit().await.map_err(pg_err)?;
                        if t.name == "version" {
                            have_version = true;
                        }
                        TableState::Created
                    } else {
                        TableState::Missing
                    }
                } else {
                    let v = if have_version {
                        let rows = c
                            .query(
                                "SELECT table_version FROM version WHERE table_name = $1",
                                &[&t.name],
                            )
                            .await
                            .map_err(pg_err)?;
                        match rows.first() {
                            Some(r) => i32o(r, 0)?,
                            None => None,
                        }
                    } else {
                        None
                    };
                    t.check(&cols, v)
                };
                tables.push((t.name, state));
            }
            Ok(SchemaReport { tables })
        })
        .await
    }

    async fn table_version(&self, table: &str) -> Result<Option<i32>, DbError> {
        let rows = self
            .query(
                "SELECT table_version FROM version WHERE table_name = $1",
                &[&table],
            )
            .await?;
        match rows.first() {
            Some(r) => i32o(r, 0),
            None => Ok(None),
        }
    }

    async fn subscriber_get(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Option<Subscriber>, DbError> {
        let t = ident(table)?;
        let cols = "username, domain, password, ha1, ha1b";
        let rows = match domain {
            Some(d) => {
                let sql =
                    format!("SELECT {cols} FROM {t} WHERE username = $1 AND domain = $2 LIMIT 1");
                self.query(&sql, &[&username, &d]).await?
            }
            None => {
                let sql = format!("SELECT {cols} FROM {t} WHERE username = $1 LIMIT 1");
                self.query(&sql, &[&username]).await?
            }
        };
        rows.first().map(subscriber).transpose()
    }

    async fn subscriber_add(&self, table: &str, s: &Subscriber) -> Result<(), DbError> {
        let t = ident(table)?;
        let sql = format!(
            "INSERT INTO {t} (username, domain, password, ha1, ha1b) VALUES ($1, $2, $3, $4, $5)"
        );
        self.execute(
            &sql,
            &[&s.username, &s.domain, &s.password, &s.ha1, &s.ha1b],
        )
        .await
        .map(|_| ())
    }

    async fn subscriber_update(&self, table: &str, s: &Subscriber) -> Result<bool, DbError> {
        let t = ident(table)?;
        let sql = format!(
            "UPDATE {t} SET password = $3, ha1 = $4, ha1b = $5 WHERE username = $1 AND domain = $2"
        );
        self.execute(
            &sql,
            &[&s.username, &s.domain, &s.password, &s.ha1, &s.ha1b],
        )
        .await
        .map(|n| n > 0)
    }

    async fn subscriber_remove(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<bool, DbError> {
        let t = ident(table)?;
        let sql = format!("DELETE FROM {t} WHERE username = $1 AND domain = $2");
        self.execute(&sql, &[&username, &domain])
            .await
            .map(|n| n > 0)
    }

    async fn subscriber_list(&self, table: &str) -> Result<Vec<Subscriber>, DbError> {
        let t = ident(table)?;
        let sql = format!(
            "SELECT username, domain, password, ha1, ha1b FROM {t} ORDER BY domain, username"
        );
        self.query(&sql, &[])
            .await?
            .iter()
            .map(subscriber)
            .collect()
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
        let mut sql = format!("SELECT {} FROM {t}", cols.join(", "));
        let mut conds = Vec::with_capacity(filter.len());
        for (i, (c, _)) in filter.iter().enumerate() {
            // compared as text, so a filter on a non-text column takes a string like the others
            conds.push(format!("CAST({} AS TEXT) = ${}", ident(c)?, i + 1));
        }
        if !conds.is_empty() {
            sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        let vals: Vec<&str> = filter.iter().map(|(_, v)| *v).collect();
        let params: Vec<Param> = vals.iter().map(|v| v as Param).collect();
        let rows = self.query(&sql, &params).await?;
        rows.iter()
            .map(|r| (0..columns.len()).map(|i| so(r, i)).collect())
            .collect()
    }

    async fn location_load(&self, table: &str) -> Result<Vec<Location>, DbError> {
        let t = ident(table)?;
        self.locations(&format!("SELECT {} FROM {t}", loc_select()), &[])
            .await
    }

    async fn location_get(
        &self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<Location>, DbError> {
        let t = ident(table)?;
        match domain {
            Some(d) => {
                let sql = format!(
                    "SELECT {} FROM {t} WHERE username = $1 AND domain = $2",
                    loc_select()
                );
                self.locations(&sql, &[&username, &d]).await
            }
            None => {
                let sql = format!("SELECT {} FROM {t} WHERE username = $1", loc_select());
                self.locations(&sql, &[&username]).await
            }
        }
    }

    async fn location_upsert(&self, table: &str, rows: &[Location]) -> Result<(), DbError> {
        let t = ident(table)?;
        let sql = upsert_sql(t, |n, c| match c {
            "expires" | "last_modified" => format!("CAST(CAST(${n} AS TEXT) AS TIMESTAMP)"),
            _ => format!("${n}"),
        });
        call!(self, {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let st = tx.prepare_cached(&sql).await.map_err(pg_err)?;
            for l in rows {
                let expires = time::to_local_string(l.expires);
                let modified = time::to_local_string(l.last_modified);
                tx.execute(
                    &st,
                    &[
                        &l.ruid,
                        &l.username,
                        &l.domain,
                        &l.contact,
                        &l.received,
                        &l.path,
                        &expires,
                        &l.q,
                        &l.callid,
                        &l.cseq,
                        &modified,
                        &l.flags,
                        &l.cflags,
                        &l.user_agent,
                        &l.socket,
                        &l.methods,
                        &l.instance,
                        &l.reg_id,
                        &l.server_id,
                        &l.connection_id,
                        &l.keepalive,
                        &l.partition,
                    ],
                )
                .await
                .map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn location_remove(&self, table: &str, ruids: &[String]) -> Result<u64, DbError> {
        let t = ident(table)?;
        let sql = format!("DELETE FROM {t} WHERE ruid = $1");
        call!(self, {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let st = tx.prepare_cached(&sql).await.map_err(pg_err)?;
            let mut n = 0;
            for r in ruids {
                n += tx.execute(&st, &[r]).await.map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)?;
            Ok(n)
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
        match domain {
            Some(d) => {
                let sql = format!("DELETE FROM {t} WHERE username = $1 AND domain = $2");
                self.execute(&sql, &[&username, &d]).await
            }
            None => {
                let sql = format!("DELETE FROM {t} WHERE username = $1");
                self.execute(&sql, &[&username]).await
            }
        }
    }

    async fn location_remove_expired(&self, table: &str, now: i64) -> Result<u64, DbError> {
        let t = ident(table)?;
        let sql = format!(
            "DELETE FROM {t} WHERE expires < CAST(CAST($1 AS TEXT) AS TIMESTAMP) \
             AND expires <> CAST(CAST($2 AS TEXT) AS TIMESTAMP)"
        );
        let (now, zero) = (time::to_local_string(now), time::to_local_string(0));
        self.execute(&sql, &[&now, &zero]).await
    }

    async fn rows_select(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<Value>>, DbError> {
        let t = ident(table)?;
        let cols = idents(columns)?;
        let sql = format!("SELECT {} FROM {t} ORDER BY {}", cols.join(", "), cols[0]);
        self.query(&sql, &[])
            .await?
            .iter()
            .map(|r| (0..cols.len()).map(|i| value(r, i)).collect())
            .collect()
    }

    async fn rows_replace(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<(), DbError> {
        let t = ident(table)?;
        let cols = idents(columns)?;
        check_widths(&rows, cols.len())?;
        // Typed placeholders: bigint and text reach INTEGER and VARCHAR columns by assignment
        // cast, whatever the column types are.
        let ph = |n: usize, v: &Value| match v {
            Value::Null => None,
            Value::Int(_) => Some(format!("${n}::bigint")),
            Value::Str(_) => Some(format!("${n}::text")),
            Value::Double(_) => Some(format!("${n}::float8")),
        };
        call!(self, {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            tx.batch_execute(&format!("DELETE FROM {t}"))
                .await
                .map_err(pg_err)?;
            for batch in rows.chunks(batch_rows(cols.len(), PG_MAX_PARAMS)) {
                let (sql, vals) = insert_sql(t, &cols, batch, ph);
                let params: Vec<Param> = vals
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(n) => Some(n as Param),
                        Value::Str(s) => Some(s as Param),
                        Value::Double(f) => Some(f as Param),
                        Value::Null => None,
                    })
                    .collect();
                // Unnamed statement: the last batch's text varies, caching it would only grow
                // the per-connection cache.
                tx.execute(sql.as_str(), &params).await.map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn uacreg_load(&self, table: &str) -> Result<Vec<UacReg>, DbError> {
        let t = ident(table)?;
        let sql = format!("SELECT {UAC_COLS} FROM {t}");
        self.query(&sql, &[])
            .await?
            .iter()
            .map(|r| {
                Ok(UacReg {
                    l_uuid: s(r, 0)?,
                    l_username: s(r, 1)?,
                    l_domain: s(r, 2)?,
                    r_username: s(r, 3)?,
                    r_domain: s(r, 4)?,
                    realm: s(r, 5)?,
                    auth_username: s(r, 6)?,
                    auth_password: s(r, 7)?,
                    auth_ha1: s(r, 8)?,
                    auth_proxy: s(r, 9)?,
                    expires: int(r, 10)?,
                    flags: int(r, 11)?,
                    reg_delay: int(r, 12)?,
                    contact_addr: s(r, 13)?,
                    socket: s(r, 14)?,
                })
            })
            .collect()
    }

    async fn raw_query(&self, sql: &str, params: &[Value]) -> Result<RawResult, DbError> {
        let text = if params.is_empty() {
            sql.to_string()
        } else {
            placeholders(sql, PlaceholderStyle::Dollar)
        };
        let bound: Vec<RawParam> = params.iter().map(RawParam).collect();
        let refs: Vec<Param> = bound.iter().map(|p| p as Param).collect();
        call!(self, {
            let c = self.client().await?;
            // Parameterised texts are fixed, so their statements are worth caching; texts with
            // the values written in (Kamailio's sql_query) differ on every call and are not.
            let prepared = if params.is_empty() {
                c.prepare(&text).await
            } else {
                c.prepare_cached(&text).await
            };
            let st = match prepared {
                Ok(st) => st,
                // Several statements in one text: db_postgres runs them all (simple protocol),
                // and so does ksrd; the values of the last result set come back as text.
                Err(e) if params.is_empty() && is_multi_statement(&e) => {
                    return simple_query(&c, &text).await;
                }
                Err(e) => return Err(pg_err(e)),
            };
            if st.columns().is_empty() {
                let affected = c.execute(&st, &refs).await.map_err(pg_err)?;
                return Ok(RawResult {
                    affected,
                    ..RawResult::default()
                });
            }
            let columns: Vec<String> = st.columns().iter().map(|c| c.name().to_string()).collect();
            let rows = c
                .query(&st, &refs)
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| (0..columns.len()).map(|i| raw_value(r, i)).collect())
                .collect::<Result<Vec<Vec<Value>>, DbError>>()?;
            Ok(RawResult {
                columns,
                rows,
                affected: 0,
            })
        })
        .await
    }
}
