"""Static checks of the route scripts shipped in routes/.

Every routes/*.py must compile and, when imported with a stub ``KSR`` module (the real engine
harness comes later), define ``mod_init()`` returning an object with a callable
``ksr_request_route`` -- the Kamailio app_python3 KEMI contract ksrd follows.
"""

import importlib.util
import pathlib
import py_compile
import sys
import types

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ROUTES = REPO / "routes"
ROUTE_FILES = sorted(ROUTES.glob("*.py"))


class _Anything:
    """Stands for any KSR function or sub-module: attribute access and calls always succeed."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Anything(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        return 1

    def __repr__(self):
        return f"<stub {self._name}>"


class _StubKSR(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Anything(f"KSR.{attr}")


@pytest.fixture
def stub_ksr(monkeypatch):
    monkeypatch.setitem(sys.modules, "KSR", _StubKSR("KSR"))
    return sys.modules["KSR"]


def load_route(path, monkeypatch):
    """Import a route file as a fresh module (its directory on sys.path, like ksrd does)."""
    monkeypatch.syspath_prepend(str(path.parent))
    name = f"_ksrd_route_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_kemi_contract(path, monkeypatch):
    py_compile.compile(str(path), cfile=None, doraise=True, optimize=-1)
    mod = load_route(path, monkeypatch)
    assert callable(getattr(mod, "mod_init", None)), f"{path.name}: no mod_init()"
    obj = mod.mod_init()
    assert obj is not None, f"{path.name}: mod_init() returned None"
    assert callable(getattr(obj, "ksr_request_route", None)), (
        f"{path.name}: the object from mod_init() has no ksr_request_route(self, msg)"
    )
    return obj


def test_routes_directory_has_scripts():
    assert ROUTES.is_dir(), f"{ROUTES} missing"
    names = {p.name for p in ROUTE_FILES}
    assert "default.py" in names, f"routes/default.py missing (have {sorted(names)})"


@pytest.mark.parametrize("path", ROUTE_FILES, ids=[p.name for p in ROUTE_FILES])
def test_route_compiles_and_follows_kemi_contract(path, stub_ksr, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))  # keep the checkout clean
    check_kemi_contract(path, monkeypatch)


# The checker itself must reject what ksrd rejects, or the tests above prove nothing.

GOOD = """\
import KSR
def mod_init():
    KSR.info("init\\n")
    return kamailio()
class kamailio:
    def ksr_request_route(self, msg):
        KSR.sl.sl_send_reply(200, "OK")
        return 1
"""


def test_checker_accepts_a_kemi_script(tmp_path, stub_ksr, monkeypatch):
    p = tmp_path / "good.py"
    p.write_text(GOOD)
    obj = check_kemi_contract(p, monkeypatch)
    assert obj.ksr_request_route(None) == 1


@pytest.mark.parametrize(
    "src, err",
    [
        ("import KSR\ndef mod_init(:\n", py_compile.PyCompileError),
        ("import KSR\n", AssertionError),
        ("import KSR\ndef mod_init():\n    return None\n", AssertionError),
        ("import KSR\nclass K: pass\ndef mod_init():\n    return K()\n", AssertionError),
        ("import KSR\nraise RuntimeError('module body')\n", RuntimeError),
    ],
    ids=["syntax-error", "no-mod_init", "mod_init-none", "no-request-route", "body-raises"],
)
def test_checker_rejects_broken_scripts(tmp_path, stub_ksr, monkeypatch, src, err):
    p = tmp_path / "bad.py"
    p.write_text(src)
    with pytest.raises(err):
        check_kemi_contract(p, monkeypatch)


def test_helper_module_next_to_route_is_importable(tmp_path, stub_ksr, monkeypatch):
    (tmp_path / "helper_mod_x.py").write_text("REASON = 'from helper'\n")
    p = tmp_path / "r.py"
    p.write_text(
        "import KSR\nimport helper_mod_x\n"
        "def mod_init():\n    return kamailio()\n"
        "class kamailio:\n    def ksr_request_route(self, msg):\n        return helper_mod_x.REASON\n"
    )
    monkeypatch.delitem(sys.modules, "helper_mod_x", raising=False)
    obj = check_kemi_contract(p, monkeypatch)
    assert obj.ksr_request_route(None) == "from helper"
