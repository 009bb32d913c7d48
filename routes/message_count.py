"""Count the requests each source IP sends (the seed's htable tutorial).

Every request adds one to $sht(MessageCount=>$si); keepalive OPTIONS are answered, anything else
gets 404 here. Read the counters at run time with `htable.dump MessageCount`, change one with
`htable.seti MessageCount 192.0.2.7 5`.

    [modparam.htable]
    htable = "MessageCount=>size=8;autoexpire=3600;initval=0"
"""
import KSR


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        si = KSR.pv.get("$si")
        count = KSR.htable.sht_inc("MessageCount", si)
        KSR.info("%s has sent %d requests\n" % (si, count))
        if KSR.is_ACK():
            return 1
        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        KSR.sl.sl_send_reply(404, "Not Found")
        return 1
