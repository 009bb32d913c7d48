//! Kamailio's schema for the tables ksrd uses, as data: rendered to DDL for SQLite and PostgreSQL
//! and used to check an existing database.
//!
//! Table and column names, types, defaults, constraint and index names and the `version` rows are
//! those of Kamailio 5.6 (`kamdbctl create`: standard, auth_db, usrloc, htable and uac), so a
//! database made by either program is accepted by the other.

use std::fmt;

/// SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `VARCHAR(n)`.
    Varchar(u16),
    /// `INTEGER`.
    Int,
    /// `REAL`.
    Real,
    /// `TIMESTAMP WITHOUT TIME ZONE`.
    Timestamp,
}

/// A column (every table also has Kamailio's `id` primary key, not listed).
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// Nullable.
    pub null: bool,
    /// Default as an SQL literal (`None`: no DEFAULT clause).
    pub default: Option<&'static str>,
}

/// A table of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Name.
    pub name: &'static str,
    /// The `version.table_version` Kamailio expects.
    pub version: i32,
    /// Columns after `id`.
    pub cols: &'static [Col],
    /// Named UNIQUE constraints.
    pub unique: &'static [(&'static str, &'static [&'static str])],
    /// Named plain indexes.
    pub indexes: &'static [(&'static str, &'static [&'static str])],
}

const fn s(name: &'static str, n: u16) -> Col {
    Col {
        name,
        ty: Ty::Varchar(n),
        null: false,
        default: Some("''"),
    }
}
const fn sn(name: &'static str, n: u16) -> Col {
    Col {
        name,
        ty: Ty::Varchar(n),
        null: true,
        default: Some("NULL"),
    }
}
const fn i(name: &'static str, default: &'static str) -> Col {
    Col {
        name,
        ty: Ty::Int,
        null: false,
        default: Some(default),
    }
}
const fn col(name: &'static str, ty: Ty, default: &'static str) -> Col {
    Col {
        name,
        ty,
        null: false,
        default: Some(default),
    }
}

/// `version`: one row per table with the schema version Kamailio modules check at start-up.
pub const VERSION: Table = Table {
    name: "version",
    version: 1,
    cols: &[
        Col {
            name: "table_name",
            ty: Ty::Varchar(32),
            null: false,
            default: None,
        },
        i("table_version", "0"),
    ],
    unique: &[("version_table_name_idx", &["table_name"])],
    indexes: &[],
};

/// `subscriber` (auth_db).
pub const SUBSCRIBER: Table = Table {
    name: "subscriber",
    version: 7,
    cols: &[
        s("username", 64),
        s("domain", 64),
        s("password", 64),
        s("ha1", 128),
        s("ha1b", 128),
    ],
    unique: &[("subscriber_account_idx", &["username", "domain"])],
    indexes: &[("subscriber_username_idx", &["username"])],
};

/// `location` (usrloc).
pub const LOCATION: Table = Table {
    name: "location",
    version: 9,
    cols: &[
        s("ruid", 64),
        s("username", 64),
        sn("domain", 64),
        s("contact", 512),
        sn("received", 128),
        sn("path", 512),
        col("expires", Ty::Timestamp, "'2030-05-28 21:32:15'"),
        col("q", Ty::Real, "1.0"),
        col("callid", Ty::Varchar(255), "'Default-Call-ID'"),
        i("cseq", "1"),
        col("last_modified", Ty::Timestamp, "'2000-01-01 00:00:01'"),
        i("flags", "0"),
        i("cflags", "0"),
        s("user_agent", 255),
        sn("socket", 64),
        Col {
            name: "methods",
            ty: Ty::Int,
            null: true,
            default: Some("NULL"),
        },
        sn("instance", 255),
        i("reg_id", "0"),
        i("server_id", "0"),
        i("connection_id", "0"),
        i("keepalive", "0"),
        i("partition", "0"),
    ],
    unique: &[("location_ruid_idx", &["ruid"])],
    indexes: &[
        (
            "location_account_contact_idx",
            &["username", "domain", "contact"],
        ),
        ("location_expires_idx", &["expires"]),
        ("location_tcpcon_idx", &["connection_id"]),
        ("location_connection_idx", &["server_id", "connection_id"]),
    ],
};

/// `location_attrs` (usrloc, contact attributes; created because usrloc-create.sql has it).
pub const LOCATION_ATTRS: Table = Table {
    name: "location_attrs",
    version: 1,
    cols: &[
        s("ruid", 64),
        s("username", 64),
        sn("domain", 64),
        s("aname", 64),
        i("atype", "0"),
        s("avalue", 512),
        col("last_modified", Ty::Timestamp, "'2000-01-01 00:00:01'"),
    ],
    unique: &[],
    indexes: &[
        (
            "location_attrs_account_record_idx",
            &["username", "domain", "ruid"],
        ),
        ("location_attrs_last_modified_idx", &["last_modified"]),
    ],
};

/// `htable` (htable `dbtable`).
pub const HTABLE: Table = Table {
    name: "htable",
    version: 2,
    cols: &[
        s("key_name", 64),
        i("key_type", "0"),
        i("value_type", "0"),
        s("key_value", 128),
        i("expires", "0"),
    ],
    unique: &[],
    indexes: &[],
};

/// `uacreg` (uac remote registrations).
pub const UACREG: Table = Table {
    name: "uacreg",
    version: 5,
    cols: &[
        s("l_uuid", 64),
        s("l_username", 64),
        s("l_domain", 64),
        s("r_username", 64),
        s("r_domain", 64),
        s("realm", 64),
        s("auth_username", 64),
        s("auth_password", 64),
        s("auth_ha1", 128),
        s("auth_proxy", 255),
        i("expires", "0"),
        i("flags", "0"),
        i("reg_delay", "0"),
        s("contact_addr", 255),
        s("socket", 128),
    ],
    unique: &[("uacreg_l_uuid_idx", &["l_uuid"])],
    indexes: &[],
};

/// Every table ksrd creates, `version` first.
pub const TABLES: &[Table] = &[
    VERSION,
    SUBSCRIBER,
    LOCATION,
    LOCATION_ATTRS,
    HTABLE,
    UACREG,
];

impl Ty {
    fn sql(self) -> String {
        match self {
            Ty::Varchar(n) => format!("VARCHAR({n})"),
            Ty::Int => "INTEGER".into(),
            Ty::Real => "REAL".into(),
            Ty::Timestamp => "TIMESTAMP WITHOUT TIME ZONE".into(),
        }
    }
}

impl Table {
    /// Statements that create the table, its indexes and its `version` row (the row only if
    /// missing). Safe to run again, and to race with another process doing the same.
    pub fn create_sql(&self, d: Dialect) -> Vec<String> {
        let id = match d {
            Dialect::Sqlite => "INTEGER",
            Dialect::Postgres => "SERIAL",
        };
        let mut lines = vec![format!("    id {id} PRIMARY KEY NOT NULL")];
        for c in self.cols {
            let mut l = format!("    {} {}", c.name, c.ty.sql());
            if let Some(dflt) = c.default {
                l.push_str(&format!(" DEFAULT {dflt}"));
            }
            if !c.null {
                l.push_str(" NOT NULL");
            }
            lines.push(l);
        }
        for (name, cols) in self.unique {
            lines.push(format!(
                "    CONSTRAINT {name} UNIQUE ({})",
                cols.join(", ")
            ));
        }
        let mut out = vec![format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
            self.name,
            lines.join(",\n")
        )];
        for (name, cols) in self.indexes {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {name} ON {} ({})",
                self.name,
                cols.join(", ")
            ));
        }
        out.push(self.version_row_sql());
        out
    }

    /// Insert this table's `version` row unless there is one.
    pub fn version_row_sql(&self) -> String {
        format!(
            "INSERT INTO version (table_name, table_version) SELECT '{0}', {1} \
             WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = '{0}')",
            self.name, self.version
        )
    }

    /// Problems of an existing table with columns `existing` and version row `version`.
    pub fn check(&self, existing: &[String], version: Option<i32>) -> TableState {
        let missing: Vec<&str> = std::iter::once("id")
            .chain(self.cols.iter().map(|c| c.name))
            .filter(|c| !existing.iter().any(|e| e.eq_ignore_ascii_case(c)))
            .collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing columns: {}", missing.join(", ")));
        }
        match version {
            None => problems.push("no row in the version table".to_string()),
            Some(v) if v < self.version => problems.push(format!(
                "version {v} in the version table; ksrd uses Kamailio 5.6's version {}",
                self.version
            )),
            Some(_) => {}
        }
        if !problems.is_empty() {
            return TableState::Mismatch(problems);
        }
        match version {
            Some(v) if v > self.version => TableState::Newer(v),
            _ => TableState::Present,
        }
    }
}

/// The state of one table after [`crate::db::Storage::init_schema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableState {
    /// Created now.
    Created,
    /// Was there, as expected.
    Present,
    /// Was there with a newer Kamailio version and every column ksrd uses (works; noted).
    Newer(i32),
    /// Does not exist (and was not to be created).
    Missing,
    /// Exists but does not match.
    Mismatch(Vec<String>),
}

/// What [`crate::db::Storage::init_schema`] found and did, table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    /// `(table, state)` in [`TABLES`] order.
    pub tables: Vec<(&'static str, TableState)>,
}

impl SchemaReport {
    /// True when every table is usable.
    pub fn is_ok(&self) -> bool {
        self.tables.iter().all(|(_, s)| {
            matches!(
                s,
                TableState::Created | TableState::Present | TableState::Newer(_)
            )
        })
    }
    /// Tables created by this call.
    pub fn created(&self) -> Vec<&'static str> {
        self.tables
            .iter()
            .filter(|(_, s)| *s == TableState::Created)
            .map(|(t, _)| *t)
            .collect()
    }
    /// One line per table that is not usable.
    pub fn problems(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter_map(|(t, s)| match s {
                TableState::Missing => Some(format!("table {t}: missing (run `ksrd db init`)")),
                TableState::Mismatch(p) => Some(format!("table {t}: {}", p.join("; "))),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for TableState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableState::Created => f.write_str("created"),
            TableState::Present => f.write_str("present"),
            TableState::Newer(v) => {
                write!(f, "present (newer version {v}; ksrd uses its 5.6 columns)")
            }
            TableState::Missing => f.write_str("missing"),
            TableState::Mismatch(p) => write!(f, "MISMATCH: {}", p.join("; ")),
        }
    }
}

/// The table named `name` in [`TABLES`].
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_reads_like_kamailio() {
        let sql = SUBSCRIBER.create_sql(Dialect::Postgres);
        assert_eq!(
            sql[0],
            "CREATE TABLE IF NOT EXISTS subscriber (\n    id SERIAL PRIMARY KEY NOT NULL,\n    username VARCHAR(64) DEFAULT '' NOT NULL,\n    domain VARCHAR(64) DEFAULT '' NOT NULL,\n    password VARCHAR(64) DEFAULT '' NOT NULL,\n    ha1 VARCHAR(128) DEFAULT '' NOT NULL,\n    ha1b VARCHAR(128) DEFAULT '' NOT NULL,\n    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)\n)"
        );
        assert_eq!(
            sql[1],
            "CREATE INDEX IF NOT EXISTS subscriber_username_idx ON subscriber (username)"
        );
        let v = VERSION.create_sql(Dialect::Sqlite);
        assert!(v[0].contains("id INTEGER PRIMARY KEY NOT NULL"));
        assert!(v[0].contains("table_name VARCHAR(32) NOT NULL,"));
        let l = LOCATION.create_sql(Dialect::Sqlite);
        assert!(l[0].contains("domain VARCHAR(64) DEFAULT NULL,"));
        assert!(l[0].contains(
            "expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL"
        ));
        assert_eq!(l.len(), 1 + 4 + 1);
    }

    #[test]
    fn versions_are_kamailio_56() {
        let v: Vec<(&str, i32)> = TABLES.iter().map(|t| (t.name, t.version)).collect();
        assert_eq!(
            v,
            [
                ("version", 1),
                ("subscriber", 7),
                ("location", 9),
                ("location_attrs", 1),
                ("htable", 2),
                ("uacreg", 5)
            ]
        );
    }

    #[test]
    fn check_reports() {
        let cols: Vec<String> = ["id", "username", "domain", "password", "ha1", "ha1b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(SUBSCRIBER.check(&cols, Some(7)), TableState::Present);
        assert_eq!(SUBSCRIBER.check(&cols, Some(8)), TableState::Newer(8));
        assert!(matches!(
            SUBSCRIBER.check(&cols[..5], Some(6)),
            TableState::Mismatch(p) if p.len() == 2 && p[0].contains("ha1b")
        ));
    }
}
