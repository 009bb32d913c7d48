//! sqlops (`KSR.sqlops.*`, Kamailio src/modules/sqlops): SQL written in the route against named
//! connections, `[modparam.sqlops] sqlcon = ["ca=>postgres://user@host/db", "local=>sqlite:///x.db"]`.
//! Results go into per-worker containers read with `KSR.sqlops.sql_result_get` or `$dbr(res=>...)`
//! ([`result`]), into `$xavp(name=>column)` rows (`sql_xquery`), or into pseudo-variables
//! (`sql_pvquery`).
//!
//! Every query runs through the storage layer ([`crate::db`]) with the GIL released
//! ([`Db::wait`]), so a slow query blocks only the worker that runs it.
//!
//! Return codes follow the KEMI exports of sqlops.c (`sr_kemi_sqlops_exports`), which are not
//! those of the cfg functions: `sql_query` returns **0** on success (`sqlops_do_query`,
//! sql_api.c), not 1/2/3; `sql_xquery` 1 (also when there are no rows); `sql_pvquery` 1, or 2
//! when there are no rows; all -1 on error.
//!
//! # Avoiding SQL injection
//!
//! `sql_query(con, sql, res)` runs the text it gets. A route that builds it with values from the
//! message (`"... WHERE ip = '" + KSR.pv.get("$si") + "'"`, or `$ua`, `$fU`…) lets the sender
//! write SQL: a User-Agent of `x'; DROP TABLE baddies;--` ends the string and adds a statement.
//! Kamailio's answer is the `{sql.val}` transformation, which ksrd does not have. Use the
//! parameterised variants, a ksrd extension, instead:
//!
//! ```python
//! KSR.sqlops.sql_query_params("ca", "SELECT hits FROM baddies WHERE ip = ?", [KSR.pv.get("$si")], "ra")
//! KSR.sqlops.sql_xquery_params("ca", "SELECT * FROM users WHERE name = ? AND dom = ?", [user, dom], "u")
//! ```
//!
//! The values are sent to the database separately from the statement (bound by the driver), so
//! they are never parsed as SQL, whatever they contain. Placeholders are `?` or `$1`, `$2`…, on
//! both SQLite and PostgreSQL (ksrd rewrites them to the backend's style, outside of quoted
//! strings and comments); values are `str`, `int`, `float` or `None` (NULL). Only values can be
//! parameters: table and column names must be fixed in the route. On PostgreSQL a parameter of a
//! type ksrd cannot convert (e.g. `inet`) needs a cast in the query: `CAST(? AS text)::inet`.

pub mod result;

use std::sync::OnceLock;

use crate::config::Config;
use crate::db::{Db, DbConfig, DbError, DbUrl, RawResult, Value};
use crate::modules::modparam::{ModParams, ModuleParams, ParamKind as P};
use crate::modules::pv::{self, Xavp};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, ListItem, Ty::*, Val};

/// Kamailio's sqlops parameters (`params[]` in sqlops.c). `tr_buf_size` and `connect_mode` are
/// accepted and have no effect (no transformations; connections are made on first use).
pub const PARAMS: ModuleParams = ModuleParams {
    module: "sqlops",
    params: &[
        ("sqlcon", P::StrList),
        ("sqlres", P::StrList),
        ("tr_buf_size", P::Int),
        ("log_buf_size", P::Int),
        ("connect_mode", P::Int),
        ("results_maxsize", P::Int),
    ],
};

/// Kamailio's default `results_maxsize`.
const RESULTS_MAXSIZE: i64 = 32;
/// Kamailio's default `log_buf_size`: how much of a failed query is logged.
const LOG_BUF_SIZE: i64 = 128;

/// One `sqlcon` definition.
#[derive(Debug, Clone)]
pub struct ConDef {
    /// Connection name used by the route.
    pub name: String,
    /// Where the database is.
    pub url: DbUrl,
}

/// Why a `sqlcon` value is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConError {
    /// Not `name=>url`.
    #[error("expected name=>url, got {0:?}")]
    Syntax(String),
    /// The same name twice (sql_init_con: "duplicate connection name").
    #[error("duplicate connection name {0:?}")]
    Duplicate(String),
    /// A URL the storage layer does not take.
    #[error("connection {name:?}: {msg}")]
    Url {
        /// Connection name.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

/// Parse one `sqlcon` value, `name=>url` (sql_parse_param); relative SQLite paths resolve
/// against `base`.
pub fn parse_con(s: &str, base: &std::path::Path) -> Result<ConDef, ConError> {
    let (name, url) = s
        .split_once("=>")
        .ok_or_else(|| ConError::Syntax(s.to_string()))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(ConError::Syntax(s.to_string()));
    }
    let url = DbUrl::parse(url, base).map_err(|msg| ConError::Url {
        name: name.to_string(),
        msg,
    })?;
    Ok(ConDef {
        name: name.to_string(),
        url,
    })
}

/// Check the `sqlcon` definitions at config load: the connections, or `(key, message)` for the
/// first bad one.
pub fn validate(p: &ModParams, base: &std::path::Path) -> Result<Vec<ConDef>, (String, String)> {
    let mut out: Vec<ConDef> = Vec::new();
    for (i, s) in p.get_list("sqlops", "sqlcon").iter().enumerate() {
        let key = format!("modparam.sqlops.sqlcon[{i}]");
        let c = parse_con(s, base).map_err(|e| (key.clone(), e.to_string()))?;
        if out.iter().any(|o| o.name == c.name) {
            return Err((key, ConError::Duplicate(c.name).to_string()));
        }
        out.push(c);
    }
    for k in ["results_maxsize", "log_buf_size"] {
        if let Some(n) = p.get_int("sqlops", k).filter(|n| *n < 1) {
            return Err((
                format!("modparam.sqlops.{k}"),
                format!("must be at least 1, got {n}"),
            ));
        }
    }
    Ok(out)
}

/// The module's state, held in `Core`: the open connections.
pub struct Sqlops {
    cons: OnceLock<Vec<(String, Db)>>,
    maxsize: usize,
    log_buf: usize,
}

impl Sqlops {
    /// The module with its parameters; connections come with [`Sqlops::open`].
    pub fn from_params(p: &ModParams) -> Sqlops {
        let int = |k: &str, d: i64| p.get_int("sqlops", k).filter(|n| *n > 0).unwrap_or(d);
        Sqlops {
            cons: OnceLock::new(),
            maxsize: int("results_maxsize", RESULTS_MAXSIZE) as usize,
            log_buf: int("log_buf_size", LOG_BUF_SIZE) as usize,
        }
    }

    /// Open every `sqlcon` of `cfg` (on the current runtime). An SQLite file that cannot be
    /// opened is an error; PostgreSQL connects on first use. The storage layer's pool size and
    /// timeout (`[db]`) apply to each connection.
    pub async fn open(&self, cfg: &Config) -> Result<(), (String, DbError)> {
        let mut cons = Vec::new();
        for c in &cfg.sqlcon {
            let dc = DbConfig {
                url: Some(c.url.clone()),
                ..cfg.db.clone()
            };
            let db = Db::open(&dc)
                .await
                .map_err(|e| (format!("sqlops connection {:?} ({})", c.name, c.url), e))?;
            tracing::info!(con = %c.name, db = %db.url(), "sqlops: connection defined");
            cons.push((c.name.clone(), db));
        }
        let _ = self.cons.set(cons);
        Ok(())
    }

    /// The connection called `name`; logs an error naming it when there is none.
    fn con(&self, name: &str) -> Option<&Db> {
        let found = self
            .cons
            .get()
            .and_then(|v| v.iter().find(|(n, _)| n == name))
            .map(|(_, d)| d);
        if found.is_none() {
            tracing::error!(
                con = name,
                "sqlops: invalid connection [{name}]: no such sqlcon (define it with [modparam.sqlops] sqlcon = [\"{name}=>URL\"])"
            );
        }
        found
    }
}

/// The first `n` characters of a query, for logs (Kamailio's `log_buf_size`).
fn clip(sql: &str, n: usize) -> &str {
    match sql.char_indices().nth(n) {
        Some((i, _)) => &sql[..i],
        None => sql,
    }
}

/// Run `sql` on connection `con` from a worker, GIL released; errors are logged.
fn run(ctx: &RouteCtx, con: &str, sql: &str, params: Vec<Value>) -> Option<RawResult> {
    let s = &ctx.core.sqlops;
    let db = s.con(con)?;
    match db.wait(db.raw_query(sql, &params)) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(con, query = clip(sql, s.log_buf), error = %e, "sqlops: cannot do the query");
            None
        }
    }
}

/// Bound values from a `list` argument.
fn bound(items: &[ListItem]) -> Vec<Value> {
    items
        .iter()
        .map(|i| match i {
            ListItem::None => Value::Null,
            ListItem::Int(n) => Value::Int(*n),
            ListItem::Float(f) => Value::Double(*f),
            ListItem::Str(s) => Value::Str(s.clone()),
        })
        .collect()
}

/// sqlops_do_query: the container is emptied first (so it is empty after a failure), then
/// filled with the rows; 0 on success, -1 on error.
fn query_into(ctx: &mut RouteCtx, con: &str, sql: &str, params: Vec<Value>, res: &str) -> Val {
    let maxsize = ctx.core.sqlops.maxsize;
    if let Err(e) = result::with(res, maxsize, result::reset) {
        tracing::error!(res, "sqlops: invalid result container [{res}]: {e}");
        return Val::Int(-1);
    }
    let Some(r) = run(ctx, con, sql, params) else {
        return Val::Int(-1);
    };
    // `with` succeeded above, so the container exists now.
    let _ = result::with(res, maxsize, |c| result::fill(c, r));
    Val::Int(0)
}

fn sql_query(ctx: &mut RouteCtx, a: &Args) -> Val {
    query_into(ctx, a.str(0), a.str(1), Vec::new(), a.str(2))
}

fn sql_query_params(ctx: &mut RouteCtx, a: &Args) -> Val {
    query_into(ctx, a.str(0), a.str(1), bound(a.list(2)), a.str(3))
}

/// sql_exec_xquery: one `$xavp(xavp)` row per result row, fields in column order, row 0 the
/// newest item (`$xavp(xavp=>col)` reads row 0, `$xavp(xavp[1]=>col)` row 1). 1 on success,
/// with or without rows; -1 on error.
fn xquery_into(ctx: &mut RouteCtx, con: &str, sql: &str, params: Vec<Value>, xavp: &str) -> Val {
    if xavp.is_empty() {
        tracing::error!("sqlops: invalid xavp name");
        return Val::Int(-1);
    }
    let Some(r) = run(ctx, con, sql, params) else {
        return Val::Int(-1);
    };
    let RawResult { columns, rows, .. } = r;
    let st = ctx.xavps.entry(xavp.to_string()).or_default();
    // Newest last: the last row first, so that row 0 ends up newest (Kamailio adds each row at
    // the head, walking the rows backwards).
    for row in rows.into_iter().rev() {
        let fields = columns
            .iter()
            .cloned()
            .zip(row.into_iter().map(result::to_pv))
            .collect();
        st.push(Xavp::Row(fields));
    }
    if st.is_empty() {
        ctx.xavps.remove(xavp);
    }
    Val::Int(1)
}

fn sql_xquery(ctx: &mut RouteCtx, a: &Args) -> Val {
    xquery_into(ctx, a.str(0), a.str(1), Vec::new(), a.str(2))
}

fn sql_xquery_params(ctx: &mut RouteCtx, a: &Args) -> Val {
    xquery_into(ctx, a.str(0), a.str(1), bound(a.list(2)), a.str(3))
}

/// ki_sqlops_pvquery: `$var`/`$avp`/... names in a comma list get the columns, in order. The
/// query's own pseudo-variables are expanded first (pv_printf, as Kamailio does for this
/// function only). Rows are assigned last to first, so a `$var` ends with row 0 and an `$avp`
/// stack has row 0 on top. 1 ok, 2 no rows, -1 error (bad list, a column without a variable, a
/// read-only variable).
fn sql_pvquery(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (con, fmt, names) = (a.str(0), a.str(1), a.str(2));
    let mut specs = Vec::new();
    for (i, n) in names.split(',').map(str::trim).enumerate() {
        match ctx.pv_cache.get(n) {
            Ok(p) => specs.push(p),
            Err(e) => {
                tracing::error!(
                    "sqlops: invalid result parameter [{names}]: variable {} {e}",
                    i + 1
                );
                return Val::Int(-1);
            }
        }
    }
    if ctx.core.sqlops.con(con).is_none() {
        return Val::Int(-1);
    }
    let Some(sql) = crate::modules::xlog::eval(ctx, fmt) else {
        tracing::error!("sqlops: invalid query string [{fmt}]");
        return Val::Int(-1);
    };
    let Some(r) = run(ctx, con, &sql, Vec::new()) else {
        return Val::Int(-1);
    };
    if r.rows.is_empty() || r.columns.is_empty() {
        return Val::Int(2);
    }
    for row in r.rows.into_iter().rev() {
        for (j, v) in row.into_iter().enumerate() {
            let Some(spec) = specs.get(j) else {
                tracing::error!("sqlops: missing pv spec for column {}", j + 1);
                return Val::Int(-1);
            };
            if let Err(e) = pv::set(ctx, spec, result::to_pv(v)) {
                tracing::error!(
                    "sqlops: failed to convert value for column {} ({}): {e}",
                    r.columns.get(j).map(String::as_str).unwrap_or(""),
                    j + 1
                );
                return Val::Int(-1);
            }
        }
    }
    Val::Int(1)
}

/// sql_do_query_async: the query runs on the runtime after the call returns, its result is
/// dropped (Kamailio hands it to an async worker). 1 when queued, -1 for an unknown connection.
fn sql_query_async(ctx: &mut RouteCtx, a: &Args) -> Val {
    let con = a.str(0);
    let Some(db) = ctx.core.sqlops.con(con).cloned() else {
        return Val::Int(-1);
    };
    let (sql, con, clip_at) = (
        a.str(1).to_string(),
        con.to_string(),
        ctx.core.sqlops.log_buf,
    );
    let rt = db.handle().clone();
    rt.spawn(async move {
        if let Err(e) = db.raw_query(&sql, &[]).await {
            tracing::error!(con, query = clip(&sql, clip_at), error = %e, "sqlops: async query failed");
        }
    });
    Val::Int(1)
}

fn sql_result_free(ctx: &mut RouteCtx, a: &Args) -> Val {
    // ki_sqlops_reset_result: 1 whatever happened (an error is only logged).
    if let Err(e) = result::with(a.str(0), ctx.core.sqlops.maxsize, result::reset) {
        tracing::error!("sqlops: invalid result container [{}]: {e}", a.str(0));
    }
    Val::Int(1)
}

/// A count of container `res`; -1 for an invalid name (which is created when missing).
fn count(ctx: &RouteCtx, res: &str, f: fn(&result::SqlResult) -> usize) -> Val {
    match result::with(res, ctx.core.sqlops.maxsize, |r| f(r) as i64) {
        Ok(n) => Val::Int(n),
        Err(e) => {
            tracing::error!("sqlops: invalid result container [{res}]: {e}");
            Val::Int(-1)
        }
    }
}

fn sql_num_rows(ctx: &mut RouteCtx, a: &Args) -> Val {
    count(ctx, a.str(0), |r| r.rows.len())
}

fn sql_num_columns(ctx: &mut RouteCtx, a: &Args) -> Val {
    count(ctx, a.str(0), |r| r.cols.len())
}

/// sqlops_is_null: 1 NULL, 0 a value, -1 out of bounds or an invalid container.
fn sql_is_null(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (res, row, col) = (a.str(0), a.int(1), a.int(2));
    let r = result::with(res, ctx.core.sqlops.maxsize, |r| {
        result::cell(r, row, col).map(|v| v.is_none())
    });
    match r {
        Ok(Some(true)) => Val::Int(1),
        Ok(Some(false)) => Val::Int(0),
        Ok(None) => {
            tracing::error!("sqlops: index out of bounds [{row},{col}] in [{res}]");
            Val::Int(-1)
        }
        Err(e) => {
            tracing::error!("sqlops: invalid result container [{res}]: {e}");
            Val::Int(-1)
        }
    }
}

/// ki_sqlops_result_get_mode: the value at `[row, col]`, or `null` for NULL, an index out of
/// range and an invalid container.
fn result_get(ctx: &RouteCtx, a: &Args, null: Val) -> Val {
    let res = a.str(0);
    if res.is_empty() {
        // ki_sqlops_result_get_mode is the one place that refuses an empty name.
        tracing::error!("sqlops: invalid result name");
        return null;
    }
    let r = result::with(res, ctx.core.sqlops.maxsize, |r| {
        result::cell(r, a.int(1), a.int(2)).flatten().cloned()
    });
    match r {
        Ok(Some(v)) => v.into(),
        Ok(None) => null,
        Err(e) => {
            tracing::error!("sqlops: invalid result container [{res}]: {e}");
            null
        }
    }
}

fn sql_result_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    result_get(ctx, a, Val::None)
}

fn sql_result_gete(ctx: &mut RouteCtx, a: &Args) -> Val {
    result_get(ctx, a, Val::Str(String::new()))
}

fn sql_result_getz(ctx: &mut RouteCtx, a: &Args) -> Val {
    result_get(ctx, a, Val::Int(0))
}

/// `KSR.sqlops.*`, in sqlops.c order, then the ksrd extensions.
pub static EXPORTS: &[Export] = &[
    ex(
        "sqlops",
        "sql_query",
        &[("con", Str), ("query", Str), ("res", Str)],
        Int,
        "Run query on connection con, rows into result container res; 0 ok, -1 error (KEMI code, not the cfg 1/2/3). Never put message values into query: use sql_query_params",
        sql_query,
    ),
    ex(
        "sqlops",
        "sql_result_free",
        &[("res", Str)],
        Int,
        "Empty result container res; 1",
        sql_result_free,
    ),
    ex(
        "sqlops",
        "sql_num_rows",
        &[("res", Str)],
        Int,
        "Rows in result container res; -1 for an invalid container",
        sql_num_rows,
    ),
    ex(
        "sqlops",
        "sql_num_columns",
        &[("res", Str)],
        Int,
        "Columns in result container res; -1 for an invalid container",
        sql_num_columns,
    ),
    ex(
        "sqlops",
        "sql_is_null",
        &[("res", Str), ("row", Int), ("col", Int)],
        Int,
        "1 when value [row, col] of res is NULL, 0 when not, -1 out of bounds",
        sql_is_null,
    ),
    ex(
        "sqlops",
        "sql_pvquery",
        &[("con", Str), ("query", Str), ("pvs", Str)],
        Int,
        "Run query (its $pv expanded) and assign the columns to the comma-separated variables, e.g. \"$var(a),$avp(b)\"; 1 ok, 2 no rows, -1 error",
        sql_pvquery,
    ),
    ex(
        "sqlops",
        "sql_xquery",
        &[("con", Str), ("query", Str), ("xavp", Str)],
        Int,
        "Run query; each row becomes an $xavp(xavp=>column) item, row 0 first ($xavp(xavp[1]=>column) for row 1); 1 ok, -1 error",
        sql_xquery,
    ),
    ex(
        "sqlops",
        "sql_query_async",
        &[("con", Str), ("query", Str)],
        Int,
        "Run query in the background, result dropped; 1 queued, -1 unknown connection",
        sql_query_async,
    ),
    ex(
        "sqlops",
        "sql_result_get",
        &[("res", Str), ("row", Int), ("col", Int)],
        Xval,
        "Value [row, col] of result container res: int or str, None for NULL or out of range",
        sql_result_get,
    ),
    ex(
        "sqlops",
        "sql_result_gete",
        &[("res", Str), ("row", Int), ("col", Int)],
        Xval,
        "Value [row, col] of res, \"\" for NULL or out of range",
        sql_result_gete,
    ),
    ex(
        "sqlops",
        "sql_result_getz",
        &[("res", Str), ("row", Int), ("col", Int)],
        Xval,
        "Value [row, col] of res, 0 for NULL or out of range",
        sql_result_getz,
    ),
    ex(
        "sqlops",
        "sql_query_params",
        &[("con", Str), ("query", Str), ("params", List), ("res", Str)],
        Int,
        "ksrd: sql_query with the values of params bound to the ? or $1.. placeholders by the driver (no SQL injection); 0 ok, -1 error",
        sql_query_params,
    ),
    ex(
        "sqlops",
        "sql_xquery_params",
        &[("con", Str), ("query", Str), ("params", List), ("xavp", Str)],
        Int,
        "ksrd: sql_xquery with the values of params bound to the ? or $1.. placeholders by the driver; 1 ok, -1 error",
        sql_xquery_params,
    ),
];
