-- The table of routes/honeypot.py and routes/check_blacklist.py, for SQLite and PostgreSQL alike:
--   sqlite3 honeypot.db < routes/sql/baddies.sql
--   psql -d honeypot -f routes/sql/baddies.sql
-- (honeypot.py also creates it at start-up when it is missing.)
-- last_seen is Unix time, so that both databases store and compare it the same way.
CREATE TABLE IF NOT EXISTS baddies (
    ip VARCHAR(64) PRIMARY KEY,
    hits INTEGER NOT NULL DEFAULT 0,
    last_seen BIGINT NOT NULL DEFAULT 0,
    ua VARCHAR(255) NOT NULL DEFAULT '',
    country VARCHAR(2) NOT NULL DEFAULT '',
    city VARCHAR(128) NOT NULL DEFAULT ''
);
