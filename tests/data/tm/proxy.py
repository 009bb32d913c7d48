"""Stateful proxy for tests/tm.rs and tests/tm_sipp.rs (Kamailio KEMI style).

Every request goes to [define] UAS (as $du) through KSR.tm.t_relay with an onreply and a failure
route armed. Optional defines:
  FORK2, FORK3  - extra parallel branches (KSR.corex.append_branch_uri) for INVITEs
  BACKUP        - the failure route relays there (once)
  FAIL_REPLY    - the failure route answers with this code itself (KSR.tm.t_reply)
Every relayed request gets "X-Tm-Test: <call-id>" (request route) and a failover branch also
"X-Failover: <$T_reply_code>" (failure route).
Log lines the tests look for (each ends with the Call-ID, so tests can share nothing):
  "RUN <method> <call-id>"                 every run of the request route
  "AVP-REQ <method> x=<$avp(x)> <call-id>" $avp(x) as the request route sees it on entry
  "ONREPLY <$rs> x=<$avp(x)> T=<$T_reply_code> <call-id>"   the onreply route (t_on_reply)
  "FAILURE code=<$T_reply_code> timeout=<t_branch_timeout> replied=<t_branch_replied>
           x=<$avp(x)> <call-id>"          the failure route (t_on_failure)
  "CANCEL-CHECK <t_check_trans> <call-id>" a CANCEL's transaction lookup
"""
import KSR


def mod_init():
    return kamailio()


def pv(name):
    v = KSR.pv.get(name)
    return "<null>" if v is None else str(v)


class kamailio:
    def ksr_request_route(self, msg):
        method = pv("$rm")
        ci = pv("$ci")
        KSR.info("RUN %s %s\n" % (method, ci))
        KSR.info("AVP-REQ %s x=%s %s\n" % (method, pv("$avp(x)"), ci))
        if KSR.is_OPTIONS() and KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if KSR.is_CANCEL():
            rc = KSR.tm.t_check_trans()
            KSR.info("CANCEL-CHECK %d %s\n" % (rc, ci))
            if rc > 0:
                KSR.tm.t_relay()
                return 1
            # no INVITE transaction: t_relay below answers it (481)
        uas = KSR.kx.get_def("UAS")
        if uas is None:
            KSR.sl.sl_send_reply(500, "No UAS defined")
            return 1
        if KSR.is_INVITE():
            KSR.pv.sets("$avp(x)", "inv-" + ci)
            # appended branches take the current $du: append before setting it
            for name in ("FORK2", "FORK3"):
                extra = KSR.kx.get_def(name)
                if extra is not None:
                    KSR.corex.append_branch_uri(extra)
        KSR.hdr.append("X-Tm-Test: " + ci + "\r\n")
        KSR.setdsturi(uas)
        KSR.tm.t_on_reply("tm_onreply")
        KSR.tm.t_on_failure("tm_failure")
        if KSR.tm.t_relay() < 0:
            KSR.err("RELAY-FAILED %s\n" % ci)
            KSR.sl.sl_send_reply(500, "Relay failed")
        return 1

    def tm_onreply(self, msg):
        KSR.info(
            "ONREPLY %s x=%s T=%s %s\n"
            % (pv("$rs"), pv("$avp(x)"), pv("$T_reply_code"), pv("$ci"))
        )
        return 1

    def tm_failure(self, msg):
        ci = pv("$ci")
        KSR.info(
            "FAILURE code=%s timeout=%d replied=%d x=%s %s\n"
            % (
                pv("$T_reply_code"),
                KSR.tm.t_branch_timeout(),
                KSR.tm.t_branch_replied(),
                pv("$avp(x)"),
                ci,
            )
        )
        if KSR.tm.t_is_canceled() > 0:
            return 1
        fail_reply = KSR.kx.get_def("FAIL_REPLY")
        if fail_reply is not None:
            rc = KSR.tm.t_reply(int(fail_reply), "Replaced By Failure Route")
            KSR.info("FAIL-REPLY %d %s\n" % (rc, ci))
            return 1
        backup = KSR.kx.get_def("BACKUP")
        if backup is None:
            return 1
        KSR.setdsturi(backup)
        KSR.hdr.append("X-Failover: " + pv("$T_reply_code") + "\r\n")
        KSR.tm.t_on_failure("tm_failure_last")
        rc = KSR.tm.t_relay()
        KSR.info("FAILOVER %d %s\n" % (rc, ci))
        return 1

    def tm_failure_last(self, msg):
        KSR.info("FAILURE-LAST code=%s %s\n" % (pv("$T_reply_code"), pv("$ci")))
        return 1
