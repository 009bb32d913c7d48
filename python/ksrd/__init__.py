"""ksrd: a SIP server with Kamailio-compatible KEMI Python routing.

This package holds the Python-side tooling of ksrd (KSR stubs, helpers for testing route scripts).
The server itself is the Rust binary ``ksrd``; route scripts are plain Kamailio app_python3 KEMI
scripts (``import KSR``, ``def mod_init(): return kamailio()``).
"""

__version__ = "0.1.0"
