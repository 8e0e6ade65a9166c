"""Fleets: N VMs of one GPU shape over several providers, managed as one unit (see ``manager``).

Kept light: import ``vmops.fleet.manager`` for the manager itself (it pulls in the session/adapters).
"""

from vmops.fleet.naming import belongs_to, generate_fleet_name, member_name, parse_member_name
from vmops.fleet.ownership import FLEET_LABEL, STORE_LABEL
from vmops.fleet.policies import DEFAULT_POLICY, POLICIES, Placement, get_policy

__all__ = [
    "DEFAULT_POLICY",
    "FLEET_LABEL",
    "POLICIES",
    "STORE_LABEL",
    "Placement",
    "belongs_to",
    "generate_fleet_name",
    "get_policy",
    "member_name",
    "parse_member_name",
]
