"""Stateful proxy (the seed tutorial's RELAY / reply route / failure route flow).

New calls to a user of ours go to [define] PROXY_TARGET; when it answers 5xx or does not answer
in time, the failure route sends the call to [define] BACKUP_TARGET (once). An AVP set in the
request route ("I remember") is seen again in the reply and failure routes of the same
transaction, not by later requests of the dialog.

    [define]
    PROXY_TARGET = "sip:10.0.0.10:5060"
    BACKUP_TARGET = "sip:10.0.0.11:5060"
"""
import KSR


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return 1
        if KSR.siputils.has_totag() > 0:
            self.within_dialog()
            return 1
        # 0 means a retransmission was absorbed: stop (kemi-spec.md section 0.4).
        if KSR.tm.t_check_trans() == 0:
            return 1
        if KSR.is_ACK():
            return 1
        KSR.hdr.remove("Route")
        if KSR.is_method_in("IS"):
            KSR.rr.record_route()
        KSR.pv.sets("$avp(note)", "I remember")
        if KSR.is_myself_ruri():
            target = KSR.kx.get_def("PROXY_TARGET")
            if target is None:
                KSR.sl.sl_send_reply(404, "Not Found")
                return 1
            KSR.setdsturi(target)
        self.relay()
        return 1

    def within_dialog(self):
        if KSR.rr.loose_route() > 0:
            KSR.info("in-dialog %s, note=%s\n" % (KSR.pv.get("$rm"), KSR.pv.get("$avp(note)")))
            self.relay()
            return
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return
        KSR.sl.sl_send_reply(404, "Not here")

    def relay(self):
        if KSR.is_INVITE():
            KSR.tm.t_on_reply("ksr_onreply_manage")
            KSR.tm.t_on_failure("ksr_failure_manage")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()

    def ksr_onreply_manage(self, msg):
        KSR.info("reply %s, note=%s\n" % (KSR.pv.get("$rs"), KSR.pv.get("$avp(note)")))
        return 1

    def ksr_failure_manage(self, msg):
        if KSR.tm.t_is_canceled() > 0:
            return 1
        KSR.info("failure %s, note=%s\n" % (KSR.pv.get("$T_reply_code"), KSR.pv.get("$avp(note)")))
        backup = KSR.kx.get_def("BACKUP_TARGET")
        timeout = KSR.tm.t_branch_timeout() > 0 and KSR.tm.t_branch_replied() < 0
        if backup is None or KSR.pv.get("$avp(failover)") is not None:
            return 1
        if KSR.tm.t_check_status("5[0-9][0-9]") > 0 or timeout:
            KSR.pv.sets("$avp(failover)", "yes")
            KSR.setdsturi(backup)
            self.relay()
        return 1
