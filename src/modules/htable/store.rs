//! Persistence of tables with `dbtable`: the rows of Kamailio's `htable` database table mapped to
//! items and back (ht_db.c `ht_db_load_table`, `ht_db_save_table`), through [`HtableStore`], a
//! small trait over the storage layer (implemented in dbstore.rs). Nothing here talks to a
//! database.

use super::spec::TableSpec;
use super::table::ItemView;
use crate::modules::modparam::ModParams;
use crate::modules::pv::PvVal;

/// A column value as the database gives or takes it (the storage layer's generic value).
pub use crate::db::Value as DbValue;

/// Why loading or saving failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage layer failed (connection, query, pool timeout...).
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// A row does not fit Kamailio's schema.
    #[error("{table} row {row}: {msg}")]
    Row {
        table: String,
        row: usize,
        msg: String,
    },
}

/// What the module needs from a database: select some columns of a table, and replace a table's
/// rows. Called from plain threads only (startup, shutdown, RPC reload/store threads), never from
/// the tokio runtime, so implementations may block.
pub trait HtableStore: Send + Sync {
    /// `SELECT columns FROM table ORDER BY columns[0]`.
    fn select(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<DbValue>>, StoreError>;
    /// `DELETE FROM table`, then insert `rows` (values in `columns` order).
    fn replace(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<DbValue>>,
    ) -> Result<(), StoreError>;
}

/// Column names and options from the htable module parameters (Kamailio defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// `key_name_column`.
    pub key_name: String,
    /// `key_type_column` (0 plain, 1 array element).
    pub key_type: String,
    /// `value_type_column` (0 string, 1 int).
    pub value_type: String,
    /// `key_value_column`.
    pub key_value: String,
    /// `expires_column`.
    pub expires: String,
    /// `array_size_suffix`: name of the item holding an array's length.
    pub array_size_suffix: String,
    /// `db_expires`: load and save the expires column (autoexpire tables only).
    pub db_expires: bool,
}

impl Columns {
    /// From `[modparam.htable]`.
    pub fn from_params(p: &ModParams) -> Columns {
        let s = |n: &str, d: &str| {
            p.get_str("htable", n)
                .filter(|v| !v.is_empty())
                .unwrap_or(d)
                .to_string()
        };
        Columns {
            key_name: s("key_name_column", "key_name"),
            key_type: s("key_type_column", "key_type"),
            value_type: s("value_type_column", "value_type"),
            key_value: s("key_value_column", "key_value"),
            expires: s("expires_column", "expires"),
            array_size_suffix: s("array_size_suffix", "::size"),
            db_expires: p.get_int("htable", "db_expires").unwrap_or(0) != 0,
        }
    }

    fn with_expires(&self, spec: &TableSpec) -> bool {
        self.db_expires && spec.autoexpire > 0
    }

    fn list<'a>(&'a self, spec: &TableSpec) -> Vec<&'a str> {
        let mut c = vec![
            self.key_name.as_str(),
            self.key_type.as_str(),
            self.value_type.as_str(),
            self.key_value.as_str(),
        ];
        if self.with_expires(spec) {
            c.push(&self.expires);
        }
        c
    }
}

fn text(v: &DbValue) -> Option<String> {
    match v {
        DbValue::Null => None,
        DbValue::Int(i) => Some(i.to_string()),
        DbValue::Str(s) => Some(s.clone()),
        DbValue::Double(f) => Some(f.to_string()),
    }
}

fn int(v: &DbValue) -> Option<i64> {
    match v {
        DbValue::Int(i) => Some(*i),
        DbValue::Str(s) => s.trim().parse().ok(),
        // The table calls never read doubles; a whole one is still an integer.
        DbValue::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        DbValue::Double(_) | DbValue::Null => None,
    }
}

/// Load the items of `spec.dbtable` (`ht_db_load_table`): key_type 1 rows become `name[i]` plus
/// `name::size`; value_type 1 is an int; rows whose `expires` has passed are skipped. With
/// `cols`, the first column is the key and the others are packed into a string value.
pub fn load(
    store: &dyn HtableStore,
    spec: &TableSpec,
    cols: &Columns,
    now: u32,
) -> Result<Vec<ItemView>, StoreError> {
    let Some(dbtable) = spec.dbtable.as_deref() else {
        return Ok(Vec::new());
    };
    let fresh = if spec.autoexpire > 0 {
        now.saturating_add(spec.autoexpire)
    } else {
        0
    };
    let bad = |row: usize, msg: &str| StoreError::Row {
        table: dbtable.to_string(),
        row,
        msg: msg.to_string(),
    };
    let mut out = Vec::new();
    if !spec.cols.is_empty() {
        let names: Vec<&str> = spec.cols.iter().map(String::as_str).collect();
        for (r, row) in store.select(dbtable, &names)?.into_iter().enumerate() {
            let key = row
                .first()
                .and_then(text)
                .ok_or_else(|| bad(r, "null key"))?;
            let mut packed = String::new();
            for (i, v) in row.iter().skip(1).enumerate() {
                if i > 0 {
                    packed.push(spec.coldelim);
                }
                match text(v) {
                    Some(t) => packed.push_str(&t),
                    None => packed.extend(spec.colnull),
                }
            }
            out.push(ItemView {
                key,
                value: PvVal::Str(packed),
                expire: fresh,
            });
        }
        return Ok(out);
    }
    let with_exp = cols.with_expires(spec);
    let rows = store.select(dbtable, &cols.list(spec))?;
    let size_item = |name: &str, n: i64| ItemView {
        key: format!("{name}{}", cols.array_size_suffix),
        value: PvVal::Int(n),
        expire: fresh,
    };
    let (mut pname, mut last_ktype, mut n) = (String::new(), 0i64, 0i64);
    for (r, row) in rows.into_iter().enumerate() {
        if row.len() < 4 {
            return Err(bad(r, "missing columns"));
        }
        let kname = text(&row[0]).ok_or_else(|| bad(r, "null key_name"))?;
        let mut expire = fresh;
        if with_exp {
            let e = row.get(4).and_then(int).unwrap_or(0);
            if e > 0 && e < now as i64 {
                continue;
            }
            if e > 0 {
                expire = e.clamp(1, u32::MAX as i64) as u32;
            }
        }
        let ktype = int(&row[1]).ok_or_else(|| bad(r, "wrong key_type"))?;
        if last_ktype == 1 && !pname.is_empty() && pname != kname {
            out.push(size_item(&pname, n));
            n = 0;
        }
        last_ktype = ktype;
        let hname = if ktype == 1 {
            n += 1;
            format!("{kname}[{}]", n - 1)
        } else {
            kname.clone()
        };
        pname = kname;
        let vtype = int(&row[2]).ok_or_else(|| bad(r, "wrong value_type"))?;
        let value = if vtype == 1 {
            // str2slong on a bad number leaves 0.
            PvVal::Int(int(&row[3]).unwrap_or(0))
        } else {
            PvVal::Str(text(&row[3]).ok_or_else(|| bad(r, "null key_value"))?)
        };
        out.push(ItemView {
            key: hname,
            value,
            expire,
        });
    }
    if last_ktype == 1 {
        out.push(size_item(&pname, n));
    }
    Ok(out)
}

/// Save items to `spec.dbtable`, replacing its rows (`ht_db_save_table`). Tables with `cols` are
/// not saved (Kamailio neither).
pub fn save(
    store: &dyn HtableStore,
    spec: &TableSpec,
    cols: &Columns,
    items: Vec<ItemView>,
) -> Result<(), StoreError> {
    let Some(dbtable) = spec.dbtable.as_deref() else {
        return Ok(());
    };
    if !spec.cols.is_empty() {
        return Ok(());
    }
    let with_exp = cols.with_expires(spec);
    let rows = items
        .into_iter()
        .map(|it| {
            let (vtype, v) = match it.value {
                PvVal::Int(i) => (1, i.to_string()),
                PvVal::Str(s) => (0, s),
                PvVal::Bytes(b) => (0, String::from_utf8_lossy(&b).into_owned()),
            };
            let mut row = vec![
                DbValue::Str(it.key),
                DbValue::Int(0),
                DbValue::Int(vtype),
                DbValue::Str(v),
            ];
            if with_exp {
                row.push(DbValue::Int(it.expire as i64));
            }
            row
        })
        .collect();
    store.replace(dbtable, &cols.list(spec), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::htable::spec::parse;
    use parking_lot::Mutex;
    use std::collections::HashMap;

    /// One stored table: column names and rows.
    type MemTable = (Vec<String>, Vec<Vec<DbValue>>);

    /// A store in memory: table name -> table.
    #[derive(Default)]
    struct Mem(Mutex<HashMap<String, MemTable>>);

    impl HtableStore for Mem {
        fn select(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<DbValue>>, StoreError> {
            let m = self.0.lock();
            let (have, rows) = m
                .get(table)
                .ok_or_else(|| crate::db::DbError::MissingTable(table.into()))?;
            let idx: Vec<usize> = columns
                .iter()
                .map(|c| have.iter().position(|h| h == c).unwrap())
                .collect();
            let mut out: Vec<Vec<DbValue>> = rows
                .iter()
                .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
                .collect();
            out.sort_by_key(|r| text(&r[0]));
            Ok(out)
        }
        fn replace(
            &self,
            table: &str,
            columns: &[&str],
            rows: Vec<Vec<DbValue>>,
        ) -> Result<(), StoreError> {
            let cols = columns.iter().map(|c| c.to_string()).collect();
            self.0.lock().insert(table.into(), (cols, rows));
            Ok(())
        }
    }

    fn s(x: &str) -> DbValue {
        DbValue::Str(x.into())
    }
    fn i(x: i64) -> DbValue {
        DbValue::Int(x)
    }

    #[test]
    fn load_kamailio_rows() {
        let m = Mem::default();
        let c = Columns::from_params(&ModParams::default());
        let cols = ["key_name", "key_type", "value_type", "key_value", "expires"];
        m.replace(
            "htable",
            &cols,
            vec![
                vec![s("alice"), i(0), i(0), s("pw1"), i(0)],
                vec![s("count"), i(0), i(1), s("12"), i(0)],
                vec![s("gw"), i(1), i(0), s("a"), i(0)],
                vec![s("gw"), i(1), i(0), s("b"), i(0)],
                vec![s("old"), i(0), i(0), s("x"), i(10)],
            ],
        )
        .unwrap();
        let spec = parse("t=>dbtable=htable;autoexpire=60").unwrap();
        let got = load(&m, &spec, &c, 1000).unwrap();
        let kv: Vec<(String, PvVal)> = got
            .iter()
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect();
        assert_eq!(
            kv,
            [
                ("alice".to_string(), PvVal::Str("pw1".into())),
                ("count".to_string(), PvVal::Int(12)),
                ("gw[0]".to_string(), PvVal::Str("a".into())),
                ("gw[1]".to_string(), PvVal::Str("b".into())),
                ("gw::size".to_string(), PvVal::Int(2)),
                ("old".to_string(), PvVal::Str("x".into())),
            ]
        );
        assert!(got.iter().all(|v| v.expire == 1060));

        // With db_expires the passed row is skipped and the others keep their expires.
        let c2 = Columns {
            db_expires: true,
            ..c.clone()
        };
        let got = load(&m, &spec, &c2, 1000).unwrap();
        assert!(!got.iter().any(|v| v.key == "old"));
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn save_then_load_round_trips() {
        let m = Mem::default();
        let c = Columns::from_params(&ModParams::default());
        let spec = parse("t=>dbtable=ht;dbmode=1").unwrap();
        let items = vec![
            ItemView {
                key: "a".into(),
                value: PvVal::Int(-4),
                expire: 0,
            },
            ItemView {
                key: "b".into(),
                value: PvVal::Str("x y".into()),
                expire: 0,
            },
        ];
        save(&m, &spec, &c, items.clone()).unwrap();
        assert_eq!(load(&m, &spec, &c, 5).unwrap(), items);
    }

    #[test]
    fn custom_columns_pack_values() {
        let m = Mem::default();
        m.replace(
            "acl",
            &["ip", "grp", "note"],
            vec![vec![s("10.0.0.1"), i(3), DbValue::Null]],
        )
        .unwrap();
        let spec = parse("t=>dbtable=acl;cols=ip,grp,note;coldelim=|").unwrap();
        let got = load(&m, &spec, &Columns::from_params(&ModParams::default()), 5).unwrap();
        assert_eq!(got[0].key, "10.0.0.1");
        assert_eq!(got[0].value, PvVal::Str("3|*".into()));
    }
}
