"""A production node that ignores the addresses a honeypot (routes/honeypot.py) has seen: a
request whose source IP is in the honeypot's `baddies` table gets no answer at all; everything
else is served (here: OPTIONS answered, anything else 404, to keep the example small).

    [modparam.sqlops]
    sqlcon = "honeypot=>postgres://ksrd:secret@db.example.net/honeypot"

The source address is bound as a parameter (sql_query_params), not pasted into the SQL. The
lookup costs one query per request; the query runs with the GIL released, so other workers keep
routing meanwhile. A database that does not answer lets requests through (fail open) rather than
silencing the node.
"""
import KSR

CON = "honeypot"
LOOKUP = "SELECT hits FROM baddies WHERE ip = ?"


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        ip = KSR.pv.get("$si")
        rc = KSR.sqlops.sql_query_params(CON, LOOKUP, [ip], "bl")
        if rc < 0:
            KSR.err("blacklist lookup for %s failed, serving it\n" % ip)
        elif KSR.sqlops.sql_num_rows("bl") > 0:
            return 1  # listed: drop, no reply
        if KSR.is_ACK():
            return 1
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
        else:
            KSR.sl.sl_send_reply(404, "Not Found")
        return 1
