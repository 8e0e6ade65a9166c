"""Who is acting: the operator and vmops version recorded on every fleet and event row."""

from __future__ import annotations

import getpass
import os
import socket

from vmops import __version__


def operator() -> str:
    """``VMOPS_OPERATOR`` if set, else ``user@hostname``."""
    name = os.environ.get("VMOPS_OPERATOR", "").strip()
    if name:
        return name
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def version() -> str:
    return __version__
