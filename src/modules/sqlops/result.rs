//! sqlops result containers (Kamailio sqlops/sql_api.c `sql_result_t`) and `$dbr(res=>...)`
//! (sql_var.c `pv_parse_dbr_name` / `pv_get_dbr`).
//!
//! Containers belong to the SIP worker, as they belong to the process in Kamailio: a result
//! stored while handling one message stays readable in that worker until the next query into the
//! same container or `sql_result_free`. Another worker never sees it.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::db::{RawResult, Value};
use crate::modules::pv::{self, spec::Pv, PvVal};
use crate::script::ctx::RouteCtx;

/// One container: column names and rows (`None` = NULL).
#[derive(Debug, Default)]
pub struct SqlResult {
    /// Column names.
    pub cols: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Option<PvVal>>>,
}

/// Why a container cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// More containers than `results_maxsize` (sql_get_result).
    #[error("too many result containers defined (results_maxsize = {0})")]
    TooMany(usize),
}

thread_local! {
    static RESULTS: RefCell<HashMap<String, SqlResult>> = RefCell::new(HashMap::new());
}

/// A column value as sqlops keeps it. Kamailio turns DB1_DOUBLE into NULL (sql_do_query's
/// `default:` case); ksrd keeps the number, as text, because KEMI values are only str or int.
pub fn to_pv(v: Value) -> Option<PvVal> {
    match v {
        Value::Null => None,
        Value::Int(i) => Some(PvVal::Int(i)),
        Value::Str(s) => Some(PvVal::Str(s)),
        Value::Double(f) => Some(PvVal::Str(f.to_string())),
    }
}

/// Run `f` on container `name`, created empty when missing (Kamailio's sql_get_result creates
/// on first use, up to `maxsize` containers per process).
pub fn with<R>(
    name: &str,
    maxsize: usize,
    f: impl FnOnce(&mut SqlResult) -> R,
) -> Result<R, ResultError> {
    // "" is a container like any other (Kamailio only checks for a NULL name), so
    // `sql_query(con, "INSERT ...", "")` works as in Kamailio.
    RESULTS.with(|m| {
        use std::collections::hash_map::Entry;
        let mut m = m.borrow_mut();
        let count = m.len();
        match m.entry(name.to_string()) {
            Entry::Occupied(e) => Ok(f(e.into_mut())),
            // sql_get_result refuses a new container once more than `maxsize` exist.
            Entry::Vacant(_) if count > maxsize => Err(ResultError::TooMany(maxsize)),
            Entry::Vacant(e) => Ok(f(e.insert(SqlResult::default()))),
        }
    })
}

/// Run `f` on container `name` if it exists (reads never create one).
pub fn read<R>(name: &str, f: impl FnOnce(&SqlResult) -> R) -> Option<R> {
    RESULTS.with(|m| m.borrow().get(name).map(f))
}

/// Replace the contents of a container with a query result.
pub fn fill(r: &mut SqlResult, raw: RawResult) {
    r.cols = raw.columns;
    r.rows = raw
        .rows
        .into_iter()
        .map(|row| row.into_iter().map(to_pv).collect())
        .collect();
}

/// Empty a container (sql_reset_result).
pub fn reset(r: &mut SqlResult) {
    r.cols.clear();
    r.rows.clear();
}

/// Cell `[row, col]`: `None` when out of range, `Some(None)` for NULL.
pub fn cell(r: &SqlResult, row: i64, col: i64) -> Option<Option<&PvVal>> {
    let row = usize::try_from(row).ok()?;
    let col = usize::try_from(col).ok()?;
    if col >= r.cols.len() {
        return None;
    }
    r.rows.get(row).and_then(|v| v.get(col)).map(Option::as_ref)
}

/// A row or column index of `$dbr`: a number or a pseudo-variable (`$var(i)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbrIndex {
    /// A literal.
    Lit(i64),
    /// A pseudo-variable read when `$dbr` is.
    Pv(Box<Pv>),
}

/// What `$dbr(res=>key)` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbrKey {
    /// `rows`: number of rows.
    Rows,
    /// `cols`: number of columns.
    Cols,
    /// `[r,c]`: a value.
    Cell(DbrIndex, DbrIndex),
    /// `colname[c]`: a column name.
    ColName(DbrIndex),
}

/// `$dbr(res=>key)`: the container and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbrName {
    /// Container name.
    pub res: String,
    /// What to read.
    pub key: DbrKey,
}

fn index(s: &str) -> Option<DbrIndex> {
    let s = s.trim();
    if s.starts_with('$') {
        return pv::spec::parse(s).ok().map(|p| DbrIndex::Pv(Box::new(p)));
    }
    s.parse().ok().map(DbrIndex::Lit)
}

impl DbrName {
    /// Parse the inside of `$dbr(...)`: `res=>rows`, `res=>cols`, `res=>[r,c]`, `res=>colname[c]`.
    pub fn parse(s: &str) -> Option<DbrName> {
        let (res, key) = s.split_once("=>")?;
        let res = res.trim();
        if res.is_empty() || res.contains(char::is_whitespace) {
            return None;
        }
        let key = key.trim();
        let key = match key {
            "rows" => DbrKey::Rows,
            "cols" => DbrKey::Cols,
            _ if key.starts_with('[') => {
                let inner = key.strip_prefix('[')?.strip_suffix(']')?;
                let (r, c) = inner.split_once(',')?;
                DbrKey::Cell(index(r)?, index(c)?)
            }
            _ => {
                let inner = key
                    .strip_prefix("colname")?
                    .trim_start()
                    .strip_prefix('[')?
                    .strip_suffix(']')?;
                DbrKey::ColName(index(inner)?)
            }
        };
        Some(DbrName {
            res: res.to_string(),
            key,
        })
    }
}

fn resolve(ctx: &RouteCtx, i: &DbrIndex) -> Option<i64> {
    match i {
        DbrIndex::Lit(n) => Some(*n),
        DbrIndex::Pv(p) => match pv::get(ctx, p)? {
            PvVal::Int(n) => Some(n),
            PvVal::Str(s) => s.trim().parse().ok(),
            PvVal::Bytes(_) => None,
        },
    }
}

/// Read `$dbr(...)`: counts as int (0 for a container never filled), values as int/str, None
/// for NULL, an index out of range or one that does not resolve (pv_get_dbr).
pub fn dbr_get(ctx: &RouteCtx, n: &DbrName) -> Option<PvVal> {
    match &n.key {
        DbrKey::Rows => Some(PvVal::Int(
            read(&n.res, |r| r.rows.len() as i64).unwrap_or(0),
        )),
        DbrKey::Cols => Some(PvVal::Int(
            read(&n.res, |r| r.cols.len() as i64).unwrap_or(0),
        )),
        DbrKey::Cell(row, col) => {
            let (row, col) = (resolve(ctx, row)?, resolve(ctx, col)?);
            read(&n.res, |r| cell(r, row, col).flatten().cloned()).flatten()
        }
        DbrKey::ColName(col) => {
            let col = usize::try_from(resolve(ctx, col)?).ok()?;
            read(&n.res, |r| r.cols.get(col).cloned().map(PvVal::Str)).flatten()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbr_names() {
        let p = |s: &str| DbrName::parse(s).map(|n| n.key);
        assert_eq!(p("ra=>rows"), Some(DbrKey::Rows));
        assert_eq!(p(" ra => cols "), Some(DbrKey::Cols));
        assert_eq!(
            p("ra=>[1, 2]"),
            Some(DbrKey::Cell(DbrIndex::Lit(1), DbrIndex::Lit(2)))
        );
        assert_eq!(p("ra=>colname[0]"), Some(DbrKey::ColName(DbrIndex::Lit(0))));
        assert!(matches!(
            p("ra=>[$var(i),0]"),
            Some(DbrKey::Cell(DbrIndex::Pv(_), DbrIndex::Lit(0)))
        ));
        assert_eq!(p("ra=>nope"), None);
        assert_eq!(p("=>rows"), None);
        assert_eq!(p("ra=>[1]"), None);
    }
}
