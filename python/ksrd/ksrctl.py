"""ksrctl: manage a running ksrd over its JSON-RPC interface (Kamailio's kamcmd/kamcli commands).

    ksrctl htable dump ipban          ksrctl ul show alice@example.com
    ksrctl htable delete ipban 1.2.3.4  ksrctl ul dump
    ksrctl htable seti MessageCount k 5 ksrctl reload
    ksrctl stats                      ksrctl rpc core.version
    ksrctl --json ul dump             ksrctl --url /run/ksrd/ksrd_rpc.sock rpc tm.stats

``--url`` takes ksrd's HTTP RPC address (``http://127.0.0.1:5071``, its default ``[rpc] listen``)
or the path of its unix socket (``[rpc] socket``). Output is human-readable; ``--json`` prints the
JSON result for scripts. Exit status: 0 ok, 1 the command failed in ksrd, 2 bad usage or ksrd not
reachable.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import sys
import urllib.parse
from typing import Any

DEFAULT_URL = os.environ.get("KSRCTL_URL", "http://127.0.0.1:5071")
_ids = itertools.count(1)


class Unreachable(Exception):
    """ksrd did not answer at the URL."""


class RpcFault(Exception):
    """ksrd answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


def call(url: str, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call; the result, or RpcFault / Unreachable."""
    body = json.dumps(
        {"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)}
    ).encode()
    try:
        if url.startswith(("http://", "https://")):
            raw = _http(url, body)
        else:
            raw = _unix(url, body)
    except OSError as e:
        raise Unreachable(f"cannot reach ksrd at {url}: {e.strerror or e}") from e
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise Unreachable(f"{url} did not answer JSON-RPC: {raw[:200]!r}") from e
    if "error" in doc:
        err = doc["error"] or {}
        raise RpcFault(int(err.get("code", -1)), str(err.get("message", "error")))
    return doc.get("result")


def _http(url: str, body: bytes) -> bytes:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=10)
    try:
        conn.request("POST", u.path or "/RPC", body, {"Content-Type": "application/json"})
        return conn.getresponse().read()
    finally:
        conn.close()


def _unix(path: str, body: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(body)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def _arg(v: str) -> Any:
    """RPC arguments typed as kamcmd does: integers become numbers, anything else a string."""
    try:
        return int(v)
    except ValueError:
        return v


# ---- human output -----------------------------------------------------------------------------


def _table(rows: list[list[Any]], head: list[str]) -> str:
    cells = [head] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _htable_dump(res: Any) -> str:
    rows = []
    for slot in res or []:
        for it in slot.get("slot", []):
            rows.append([it.get("name"), it.get("value"), it.get("type")])
    return _table(sorted(rows, key=lambda r: str(r[0])), ["KEY", "VALUE", "TYPE"])


def _contacts(aor: str, contacts: list[Any]) -> list[list[Any]]:
    out = []
    for c in contacts:
        c = c.get("Contact", c)
        out.append([aor, c.get("Address"), c.get("Expires"), c.get("Q"), c.get("Received"), c.get("User-Agent")])
    return out


_UL_HEAD = ["AOR", "CONTACT", "EXPIRES", "Q", "RECEIVED", "USER-AGENT"]


def _ul_dump(res: Any) -> str:
    parts = []
    for d in (res or {}).get("Domains", []):
        d = d.get("Domain", d)
        rows = []
        for a in d.get("AoRs", []):
            info = a.get("Info", a)
            rows += _contacts(info.get("AoR"), info.get("Contacts", []))
        parts.append(f"table {d.get('Domain')}: {len(d.get('AoRs', []))} AoRs\n" + _table(rows, _UL_HEAD))
    return "\n\n".join(parts) if parts else "(no usrloc tables)"


def _ul_show(res: Any) -> str:
    return _table(_contacts(res.get("AoR"), res.get("Contacts", [])), _UL_HEAD)


def _generic(res: Any, indent: str = "") -> str:
    if isinstance(res, dict):
        lines = []
        for k, v in res.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{indent}{k}:")
                lines.append(_generic(v, indent + "  "))
            else:
                lines.append(f"{indent}{k}: {json.dumps(v) if not isinstance(v, str) else v}")
        return "\n".join(lines)
    if isinstance(res, list):
        return "\n".join(
            (f"{indent}-\n" + _generic(v, indent + "  ")) if isinstance(v, (dict, list)) else f"{indent}- {v}"
            for v in res
        )
    return f"{indent}{res}"


def _pike_top(res: Any) -> str:
    rows = [[e.get("ip_addr"), e.get("status"), e.get("leaf_hits_prev"), e.get("leaf_hits_curr"), e.get("expires")]
            for e in (res or {}).get("list", [])]
    return f"max_hits {res.get('max_hits')}\n" + _table(rows, ["IP", "STATUS", "HITS_PREV", "HITS_CURR", "EXPIRES"])


# ---- commands ---------------------------------------------------------------------------------

# (group, name): (RPC method, positional argument names, human formatter, help)
COMMANDS: dict[tuple[str, str], tuple[str, list[str], Any, str]] = {
    ("htable", "dump"): ("htable.dump", ["table"], _htable_dump, "list the items of a table"),
    ("htable", "get"): ("htable.get", ["table", "key"], None, "show one item"),
    ("htable", "delete"): ("htable.delete", ["table", "key"], None, "delete one item"),
    ("htable", "sets"): ("htable.sets", ["table", "key", "value"], None, "set a string item"),
    ("htable", "seti"): ("htable.seti", ["table", "key", "value"], None, "set an integer item"),
    ("htable", "flush"): ("htable.flush", ["table"], None, "empty a table"),
    ("htable", "reload"): ("htable.reload", ["table"], None, "reload a table from its dbtable"),
    ("htable", "list"): ("htable.listTables", [], None, "list the tables"),
    ("htable", "stats"): ("htable.stats", [], None, "items per table"),
    ("ul", "dump"): ("ul.dump", [], _ul_dump, "every registered contact"),
    ("ul", "show"): ("ul.lookup", ["aor"], _ul_show, "the contacts of an AoR (table: --table)"),
    ("ul", "rm"): ("ul.rm", ["aor"], None, "remove an AoR (table: --table)"),
    ("ul", "flush"): ("ul.flush", [], None, "write the usrloc cache to the database"),
    ("", "reload"): ("app_python.reload", [], None, "reload the route scripts"),
    ("", "stats"): ("stats.get_statistics", [], None, "every statistic"),
    ("", "version"): ("core.version", [], None, "ksrd's version"),
    ("tm", "stats"): ("tm.stats", [], None, "transaction statistics"),
    ("pike", "top"): ("pike.top", ["filter?"], _pike_top, "addresses pike watches: HOT (default), WARM or ALL"),
    ("nathelper", "enable_ping"): ("nathelper.enable_ping", ["on"], None, "NAT keepalives on (1) or off (0)"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ksrctl",
        description="Manage a running ksrd over JSON-RPC.",
        epilog="RPC methods: " + ", ".join(sorted({m for m, *_ in COMMANDS.values()}))
        + "; anything else with `ksrctl rpc METHOD ARGS`.",
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"HTTP RPC URL or unix socket path (default {DEFAULT_URL}, or $KSRCTL_URL)")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    sub = p.add_subparsers(dest="group", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for (group, name), (method, args, _fmt, doc) in COMMANDS.items():
        if group == "":
            sp = sub.add_parser(name, help=f"{doc} ({method})")
        else:
            if group not in groups:
                g = sub.add_parser(group, help=f"{group}.* commands")
                groups[group] = g.add_subparsers(dest="cmd", required=True, metavar="SUBCOMMAND")
            sp = groups[group].add_parser(name, help=f"{doc} ({method})")
        for a in args:
            if a.endswith("?"):
                sp.add_argument(a[:-1], nargs="?")
            else:
                sp.add_argument(a)
        if group == "ul" and name in ("show", "rm"):
            sp.add_argument("--table", default="location", help="usrloc table (default location)")
    r = sub.add_parser("rpc", help="call any RPC method: ksrctl rpc METHOD [ARGS...]")
    r.add_argument("method")
    r.add_argument("params", nargs="*")
    return p


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    fmt = None
    if ns.group == "rpc":
        method, params = ns.method, [_arg(v) for v in ns.params]
    else:
        cmd = getattr(ns, "cmd", None)
        key = (ns.group, cmd) if cmd else ("", ns.group)
        method, args, fmt, _doc = COMMANDS[key]
        typed = {("htable", "seti"): "value", ("nathelper", "enable_ping"): "on"}.get(key)
        params = []
        for a in args:
            v = getattr(ns, a.rstrip("?"))
            if v is not None:
                params.append(_arg(v) if a == typed else v)
        if key[0] == "ul" and key[1] in ("show", "rm"):
            params = [ns.table] + params
    try:
        res = call(ns.url, method, params)
    except Unreachable as e:
        print(f"ksrctl: {e} (is ksrd running? see [rpc] in ksrd.toml, or pass --url)", file=sys.stderr)
        return 2
    except RpcFault as e:
        print(f"ksrctl: {method}: {e.message} ({e.code})", file=sys.stderr)
        return 1
    if ns.json:
        print(json.dumps(res, indent=2))
    elif fmt is not None:
        print(fmt(res))
    else:
        print(_generic(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
