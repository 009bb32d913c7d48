"""ksrctl against a real ksrd (the binary cargo built): htable and usrloc commands over HTTP and
the unix socket, human and --json output, RPC errors (exit 1) and an unreachable ksrd (exit 2)."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
KSRD = pathlib.Path(os.environ.get("KSRD_BIN", REPO / "target" / "debug" / "ksrd"))


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ksrctl(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    return subprocess.run(
        [sys.executable, "-m", "ksrd.ksrctl", *args],
        capture_output=True, text=True, env=env, timeout=30,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert KSRD.is_file(), f"build ksrd first (cargo build): {KSRD} missing"
    d = tmp_path_factory.mktemp("ksrctl")
    rpc = free_port(socket.SOCK_STREAM)
    sock = d / "rpc.sock"
    (d / "ksrd.toml").write_text(
        f'listen = ["udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"]\n'
        'db_url = ""\n'
        f'[script]\nfile = "{REPO / "routes" / "default.py"}"\nwatch = false\n'
        f'[rpc]\nlisten = "127.0.0.1:{rpc}"\nsocket = "{sock}"\n'
        '[modparam.htable]\nhtable = ["ipban=>size=4;autoexpire=300"]\n'
    )
    log = open(d / "ksrd.log", "w")
    p = subprocess.Popen([str(KSRD), "--config", str(d / "ksrd.toml")], cwd=d, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{rpc}"
    deadline = time.monotonic() + 30
    while ksrctl("--url", url, "version").returncode != 0:
        assert p.poll() is None, (d / "ksrd.log").read_text()
        assert time.monotonic() < deadline, "ksrd did not answer RPC"
        time.sleep(0.1)
    yield url, str(sock)
    p.terminate()
    p.wait(timeout=20)


def test_htable_commands(server):
    url, _ = server
    assert ksrctl("--url", url, "htable", "seti", "ipban", "192.0.2.7", "5").returncode == 0
    assert ksrctl("--url", url, "htable", "sets", "ipban", "note", "hello world").returncode == 0
    dump = ksrctl("--url", url, "htable", "dump", "ipban")
    assert dump.returncode == 0, dump.stderr
    rows = [line.split() for line in dump.stdout.splitlines()]
    assert rows[0] == ["KEY", "VALUE", "TYPE"]
    assert ["192.0.2.7", "5", "int"] in rows
    got = json.loads(ksrctl("--url", url, "--json", "htable", "get", "ipban", "192.0.2.7").stdout)
    assert got["item"]["value"] == 5, got
    assert ksrctl("--url", url, "htable", "delete", "ipban", "192.0.2.7").returncode == 0
    assert "192.0.2.7" not in ksrctl("--url", url, "htable", "dump", "ipban").stdout


def test_usrloc_over_the_unix_socket(server):
    _, sock = server
    add = ksrctl("--url", sock, "rpc", "ul.add", "location", "alice", "sip:alice@192.0.2.1", "3600",
                 "1.0", ".", "0", "0", "4294967295")
    assert add.returncode == 0, add.stderr
    show = ksrctl("--url", sock, "ul", "show", "alice")
    assert show.returncode == 0, show.stderr
    assert "sip:alice@192.0.2.1" in show.stdout and show.stdout.startswith("AOR")
    dump = json.loads(ksrctl("--url", sock, "--json", "ul", "dump").stdout)
    aors = dump["Domains"][0]["Domain"]["AoRs"]
    assert [a["Info"]["AoR"] for a in aors] == ["alice"]
    assert ksrctl("--url", sock, "ul", "rm", "alice").returncode == 0
    gone = ksrctl("--url", sock, "ul", "show", "alice")
    assert gone.returncode == 1 and "AOR not found" in gone.stderr


def test_errors_and_help(server):
    url, _ = server
    bad = ksrctl("--url", url, "rpc", "no.such_method")
    assert bad.returncode == 1 and "Method not found" in bad.stderr
    down = ksrctl("--url", f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}", "version")
    assert down.returncode == 2 and "cannot reach ksrd" in down.stderr
    help_ = ksrctl("--help")
    for m in ("htable.dump", "ul.lookup", "app_python.reload", "stats.get_statistics"):
        assert m in help_.stdout


def test_pike_top(server):
    url, _ = server
    r = ksrctl("--url", url, "pike", "top")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("max_hits 30"), r.stdout
    assert "IP" in r.stdout and "STATUS" in r.stdout
    r = ksrctl("--url", url, "--json", "pike", "top", "ALL")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["number_of_rows"] >= 0
    r = ksrctl("--url", url, "pike", "top", "COLD")
    assert r.returncode == 1 and "Select: ALL, HOT or WARM" in r.stderr
    r = ksrctl("--url", url, "nathelper", "enable_ping", "0")
    assert r.returncode == 0, r.stderr
