//! Table definitions: `modparam("htable", "htable", "ipban=>size=8;autoexpire=300;initval=0")`,
//! parsed with the keys and defaults of Kamailio's `ht_table_spec` (src/modules/htable/ht_api.c).

/// Largest `size` ksrd accepts: 2^24 slots (Kamailio takes up to 31 and then fails to allocate).
pub const MAX_SIZE: u32 = 24;
/// Most columns a `cols` list may name (Kamailio `HT_MAX_COLS`).
pub const MAX_COLS: usize = 8;

/// One table definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name (`$sht(name=>key)`).
    pub name: String,
    /// Number of slots: 2^size (8 for size <= 1, 2^14 for size > 31, as Kamailio).
    pub slots: usize,
    /// Seconds an item lives after its last write (0: never expires).
    pub autoexpire: u32,
    /// Value a missing item reads as, and `sht_inc`/`sht_dec` start from.
    pub initval: Option<i64>,
    /// Whether a write refreshes the expire time (Kamailio default 1).
    pub updateexpire: bool,
    /// Database table to load from (and save to, with dbmode 1).
    pub dbtable: Option<String>,
    /// 1: save the table to `dbtable` on shutdown.
    pub dbmode: u32,
    /// Custom columns: the first is the key, the others are packed into a string value.
    pub cols: Vec<String>,
    /// DMQ replication flag (accepted and shown; ksrd has no DMQ).
    pub dmqreplicate: u32,
    /// Delimiter of packed `cols` values.
    pub coldelim: char,
    /// Text of a NULL column in packed values (None: nothing).
    pub colnull: Option<char>,
    /// Reload from the database every so many seconds (0: never).
    pub reloadat: u32,
}

/// Why a table definition is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not `name=>key=value;...`.
    #[error("expected name=>key=value;... in {0:?}")]
    Syntax(String),
    /// A key Kamailio does not know.
    #[error("unknown key {key:?} in {spec:?} (known: size, autoexpire, initval, updateexpire, dbtable, dbmode, cols, dmqreplicate, coldelim, colnull, reloadat)")]
    UnknownKey { key: String, spec: String },
    /// A value of the wrong type.
    #[error("invalid value {value:?} for {key} in {spec:?}")]
    Value {
        key: String,
        value: String,
        spec: String,
    },
    /// `size` above [`MAX_SIZE`].
    #[error("size={0} is too large (at most {MAX_SIZE}, i.e. 2^{MAX_SIZE} slots)")]
    TooLarge(u32),
    /// `cols` with fewer than two or more than eight names.
    #[error("cols needs 2 to {MAX_COLS} column names (key, value...), got {0:?}")]
    Cols(String),
    /// Two definitions with the same name.
    #[error("htable {0:?} is defined twice")]
    Duplicate(String),
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Split `name=>rest` as Kamailio's `keyvalue_parse_str` and `pv_parse_ht_name` do: leading
/// blanks skipped, the name ends at `=` or a blank, then `=>`.
pub fn split_name(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(is_ws);
    let end = s.find(|c: char| c == '=' || is_ws(c))?;
    let name = &s[..end];
    let rest = s[end..].trim_start_matches(is_ws).strip_prefix("=>")?;
    (!name.is_empty()).then_some((name, rest))
}

fn uint(key: &str, v: &str, spec: &str) -> Result<u32, SpecError> {
    v.parse().map_err(|_| SpecError::Value {
        key: key.into(),
        value: v.into(),
        spec: spec.into(),
    })
}

/// Parse one definition.
pub fn parse(spec: &str) -> Result<TableSpec, SpecError> {
    let (name, params) = split_name(spec).ok_or_else(|| SpecError::Syntax(spec.into()))?;
    let params = params.trim_start_matches(is_ws);
    // keyvalue_parse_str: an empty parameter list is an error; one trailing ';' is allowed.
    let params = params.strip_suffix(';').unwrap_or(params);
    if params.trim().is_empty() {
        return Err(SpecError::Syntax(spec.into()));
    }
    let mut t = TableSpec {
        name: name.to_string(),
        slots: 0,
        autoexpire: 0,
        initval: None,
        updateexpire: true,
        dbtable: None,
        dbmode: 0,
        cols: Vec::new(),
        dmqreplicate: 0,
        coldelim: ',',
        colnull: Some('*'),
        reloadat: 0,
    };
    let mut size = 4u32;
    for p in params.split(';') {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (p.trim(), ""),
        };
        let bad = || SpecError::Value {
            key: k.into(),
            value: v.into(),
            spec: spec.into(),
        };
        match k {
            "dbtable" => t.dbtable = (!v.is_empty()).then(|| v.to_string()),
            "cols" => {
                // ht_add_table: comma separated, at least (key, value), at most HT_MAX_COLS.
                let cols: Vec<String> = v.split(',').map(|c| c.trim().to_string()).collect();
                if cols.len() < 2 || cols.len() > MAX_COLS || cols.iter().any(|c| c.is_empty()) {
                    return Err(SpecError::Cols(v.into()));
                }
                t.cols = cols;
            }
            "autoexpire" => t.autoexpire = uint(k, v, spec)?,
            "size" => size = uint(k, v, spec)?,
            "dbmode" => t.dbmode = uint(k, v, spec)?,
            "initval" => t.initval = Some(v.parse().map_err(|_| bad())?),
            "updateexpire" => t.updateexpire = uint(k, v, spec)? != 0,
            "dmqreplicate" => t.dmqreplicate = uint(k, v, spec)?,
            "coldelim" => {
                let mut c = v.chars();
                match (c.next(), c.next()) {
                    (Some(d), None) => t.coldelim = d,
                    _ => return Err(bad()),
                }
            }
            "colnull" => {
                let mut c = v.chars();
                match (c.next(), c.next()) {
                    (d, None) => t.colnull = d,
                    _ => return Err(bad()),
                }
            }
            "reloadat" => t.reloadat = uint(k, v, spec)?,
            _ => {
                return Err(SpecError::UnknownKey {
                    key: k.into(),
                    spec: spec.into(),
                })
            }
        }
    }
    t.slots = match size {
        0 | 1 => 8,
        32.. => 1 << 14,
        s if s > MAX_SIZE => return Err(SpecError::TooLarge(s)),
        s => 1 << s,
    };
    Ok(t)
}

/// Parse every `htable` parameter value; the error carries the index of the bad one.
pub fn parse_all(list: &[String]) -> Result<Vec<TableSpec>, (usize, SpecError)> {
    let mut out: Vec<TableSpec> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let t = parse(s).map_err(|e| (i, e))?;
        if out.iter().any(|o| o.name == t.name) {
            return Err((i, SpecError::Duplicate(t.name)));
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_keys() {
        let t = parse("ipban=>size=8;autoexpire=300;initval=0").unwrap();
        assert_eq!(t.name, "ipban");
        assert_eq!(t.slots, 256);
        assert_eq!(t.autoexpire, 300);
        assert_eq!(t.initval, Some(0));
        assert!(t.updateexpire);
        assert_eq!(t.dbtable, None);
        let t = parse(
            "auth=>size=10;dbtable=htable;dbmode=1;updateexpire=0;initval=-3;dmqreplicate=1;cols=k,v1,v2;coldelim=|;colnull=;reloadat=60;",
        )
        .unwrap();
        assert_eq!(t.slots, 1024);
        assert_eq!(t.dbtable.as_deref(), Some("htable"));
        assert_eq!(t.dbmode, 1);
        assert!(!t.updateexpire);
        assert_eq!(t.initval, Some(-3));
        assert_eq!(t.cols, ["k", "v1", "v2"]);
        assert_eq!(t.coldelim, '|');
        assert_eq!(t.colnull, None);
        assert_eq!(t.reloadat, 60);
    }

    #[test]
    fn sizes_as_kamailio() {
        // ht_add_table: size <= 1 gives 8 slots, > 31 gives 2^14; the default is 4 (16 slots).
        assert_eq!(parse("a=>size=0").unwrap().slots, 8);
        assert_eq!(parse("a=>size=1").unwrap().slots, 8);
        assert_eq!(parse("a=>size=2").unwrap().slots, 4);
        assert_eq!(parse("a=>autoexpire=5").unwrap().slots, 16);
        assert_eq!(parse("a=>size=14").unwrap().slots, 16384);
        assert_eq!(parse("a=>size=40").unwrap().slots, 16384);
        assert_eq!(parse("a=>size=28"), Err(SpecError::TooLarge(28)));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(matches!(parse("noarrow"), Err(SpecError::Syntax(_))));
        assert!(matches!(parse("a=>"), Err(SpecError::Syntax(_))));
        assert!(matches!(parse("=>size=2"), Err(SpecError::Syntax(_))));
        let e = parse("a=>sise=2").unwrap_err();
        assert!(e.to_string().contains("\"sise\""), "{e}");
        let e = parse("a=>autoexpire=-1").unwrap_err();
        assert!(e.to_string().contains("autoexpire"), "{e}");
        assert!(parse("a=>initval=x").is_err());
        assert!(parse("a=>coldelim=ab").is_err());
        assert!(matches!(parse("a=>cols=k"), Err(SpecError::Cols(_))));
        assert!(matches!(
            parse("a=>cols=a,b,c,d,e,f,g,h,i"),
            Err(SpecError::Cols(_))
        ));
        let all = parse_all(&["a=>size=2".into(), "b=>size=2".into(), "a=>size=3".into()]);
        assert_eq!(all, Err((2, SpecError::Duplicate("a".into()))));
    }

    #[test]
    fn name_split() {
        assert_eq!(split_name("t=>k"), Some(("t", "k")));
        assert_eq!(split_name("  t  =>$si"), Some(("t", "$si")));
        assert_eq!(split_name("t=>"), Some(("t", "")));
        assert_eq!(split_name("t=k"), None);
        assert_eq!(split_name("t"), None);
    }
}
