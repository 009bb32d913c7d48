# bench "calls" (KEMI Python): stateful record-routing proxy without a registrar: every new
# call goes to the SIPp UAS at UAS. Same logic as native.cfg; runs unmodified on Kamailio
# app_python3 and on ksrd.
import KSR

UAS = "sip:127.0.0.1:25070"


def mod_init():
    return Routes()


class Routes:
    def child_init(self, rank):
        return 0

    def relay(self):
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if (KSR.is_OPTIONS() and KSR.is_myself_ruri()
                and KSR.corex.has_ruri_user() < 0):
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return 1
        if KSR.siputils.has_totag() > 0:
            if KSR.rr.loose_route() > 0:
                return self.relay()
            if KSR.is_ACK():
                if KSR.tm.t_check_trans() > 0:
                    KSR.tm.t_relay()
                return 1
            KSR.sl.sl_send_reply(404, "Not here")
            return 1
        if KSR.tmx.t_precheck_trans() > 0:
            KSR.tm.t_check_trans()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        KSR.hdr.remove("Route")
        if KSR.is_method_in("IS"):
            KSR.rr.record_route()
        if KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(484, "Address Incomplete")
            return 1
        KSR.setdsturi(UAS)
        return self.relay()
