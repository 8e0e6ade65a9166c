"""Fleets: N VMs of one GPU shape over several providers, managed as one unit (see ``manager``).

Kept light: the names below load on first use (PEP 562), so `import vmops.fleet.report` loads no policy,
planner or provider code (`vm fleet list` reads only the record)."""

from importlib import import_module
from typing import Any

_WHERE = {
    "belongs_to": "naming", "generate_fleet_name": "naming", "member_name": "naming", "parse_member_name": "naming",
    "FLEET_LABEL": "ownership", "STORE_LABEL": "ownership",
    "DEFAULT_POLICY": "policies", "POLICIES": "policies", "Placement": "policies", "get_policy": "policies",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'vmops.fleet' has no attribute {name!r}")
    return getattr(import_module(f"vmops.fleet.{_WHERE[name]}"), name)
