"""Stateless proxy (the seed tutorial): tag every request and forward it to one next hop.

The next hop comes from [define] PROXY_TARGET in ksrd.toml (Kamailio: #!define PROXY_TARGET ...).
"""
import KSR


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        target = KSR.kx.get_def("PROXY_TARGET")
        if target is None:
            KSR.sl.sl_send_reply(500, "No PROXY_TARGET defined")
            return 1
        KSR.hdr.append("X-Proxied: You betcha\r\n")
        KSR.setdsturi(target)
        if KSR.forward() < 0:
            KSR.sl.sl_send_reply(503, "Next Hop Unreachable")
        return 1

    def ksr_reply_route(self, msg):
        KSR.info("reply " + str(KSR.pv.get("$rs")) + " " + KSR.pv.gete("$rr") + "\n")
        return 1
