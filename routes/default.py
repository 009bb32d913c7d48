"""Default ksrd routes: answer keepalives, reject what is not handled yet.

Written exactly like a Kamailio app_python3 (KEMI) script; ksrd runs it unchanged.
"""
import KSR

# Kamailio sanity bits: R-URI version+scheme, required headers, CSeq method+value,
# Content-Length, Expires, Proxy-Require, parse URIs, digest credentials, first Via.
SANITY_CHECKS = 1 | 2 | 4 | 32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 16384
SANITY_URI_CHECKS = 1 | 2 | 4  # R-URI, From, To


def mod_init():
    return kamailio()


class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        # Reply to the port the request came from (NAT-friendly, as kamailio.cfg's NATDETECT does).
        KSR.force_rport()
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.sanity.sanity_check(SANITY_CHECKS, SANITY_URI_CHECKS) < 0:
            KSR.err("malformed SIP request from " + KSR.pv.get("$si") + ":" + str(KSR.pv.get("$sp")) + "\n")
            return 1
        if KSR.is_ACK():
            return 1
        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if KSR.is_myself_ruri():
            KSR.sl.sl_send_reply(404, "Not Found")
        else:
            KSR.sl.sl_send_reply(403, "Relaying Forbidden")
        return 1
