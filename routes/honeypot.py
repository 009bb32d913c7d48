"""A honeypot: answer every request 200 OK, and remember who asked.

Each source IP gets one row in the `baddies` table (routes/sql/baddies.sql) of the sqlops
connection `honeypot`: the number of requests, when the last one came, its User-Agent, and the
country and city from GeoIP2 when that module is there. Production nodes read the same table
with routes/check_blacklist.py and stop answering those addresses.

    [modparam.sqlops]
    sqlcon = "honeypot=>postgres://ksrd:secret@db.example.net/honeypot"   # or sqlite:///var/lib/ksrd/honeypot.db

Every value comes from the request (and a scanner chooses its User-Agent), so they are bound
parameters (sql_query_params), never pasted into the SQL text.
"""
import time

import KSR

CON = "honeypot"

DDL = """CREATE TABLE IF NOT EXISTS baddies (
    ip VARCHAR(64) PRIMARY KEY,
    hits INTEGER NOT NULL DEFAULT 0,
    last_seen BIGINT NOT NULL DEFAULT 0,
    ua VARCHAR(255) NOT NULL DEFAULT '',
    country VARCHAR(2) NOT NULL DEFAULT '',
    city VARCHAR(128) NOT NULL DEFAULT ''
)"""

# One statement, atomic on both SQLite (3.24+) and PostgreSQL (9.5+): two requests from the same
# address at the same time in two workers still count two hits.
UPSERT = """INSERT INTO baddies (ip, hits, last_seen, ua, country, city) VALUES (?, 1, ?, ?, ?, ?)
ON CONFLICT (ip) DO UPDATE SET hits = baddies.hits + 1, last_seen = excluded.last_seen,
    ua = excluded.ua, country = excluded.country, city = excluded.city"""


def mod_init():
    if KSR.sqlops.sql_query(CON, DDL, "honeypot") < 0:
        # Not fatal: the table may come from routes/sql/baddies.sql, and `ksrd --check` has
        # no connections at all.
        KSR.warn("honeypot: cannot create table baddies on connection %s\n" % CON)
    return kamailio()


def geo(ip):
    """(country code, city) of ip; empty strings without a GeoIP2 database or a match."""
    if KSR.geoip2.match(ip, "src") > 0:
        return KSR.pv.gete("$gip2(src=>cc)"), KSR.pv.gete("$gip2(src=>city)")
    return "", ""


class kamailio:
    def ksr_request_route(self, msg):
        ip = KSR.pv.get("$si")
        country, city = geo(ip)
        ua = KSR.pv.gete("$ua")[:255]
        if KSR.sqlops.sql_query_params(CON, UPSERT, [ip, int(time.time()), ua, country, city], "honeypot") < 0:
            KSR.err("honeypot: cannot record %s\n" % ip)
        if not KSR.is_ACK():
            KSR.sl.sl_send_reply(200, "OK")
        return 1
