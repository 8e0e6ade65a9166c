"""Who is acting: the operator and vmops version recorded on every fleet and event row."""

from __future__ import annotations

import functools
import os

from vmops import __version__


def hostname() -> str:
    """This host's name (socket is imported here, on a write: a command that only reads never needs it)."""
    import socket

    return socket.gethostname()


def operator() -> str:
    """``VMOPS_OPERATOR`` if set, else ``user@hostname`` (worked out once per process: every event row asks)."""
    name = os.environ.get("VMOPS_OPERATOR", "").strip()
    return name or _user_at_host()


@functools.lru_cache(maxsize=1)
def _user_at_host() -> str:
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{hostname()}"


def version() -> str:
    return __version__
