#!/usr/bin/python
"""Ansible module: the nightly-cleanup plan (reads only; enforces the destroy limit). The policy is
vmops.cleanup.nightly; this module parses, calls and returns."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vmops_cleanup_plan
short_description: Decide what nightly-cleanup does, changing nothing
description:
  - Lists every enabled provider's VMs first, then reads the state file, and returns fleets to reconcile and
    stuck fleets to destroy (each with the fleet manager's own Decision), orphans to destroy, VMs vmops did
    not create (reported only), reserved VMs that cannot be terminated (reported only), VMs and fleets kept
    back (protected, too young, busy), and what cannot be cleaned up this run (C(incomplete)).
    docs/design.md, section 10, states the rules.
  - C(destroys) lists exactly the VMs the run destroys; C(destroy_count) counts them. Fails
    (error_class DestroyLimitExceeded) when that is more than I(max_destroy), before anything is touched.
options:
  stuck_after_hours: {description: A fleet in failed/creating for longer than this is destroyed., type: float, default: 6}
  orphan_min_age_hours: {description: Orphans younger than this are left (where the provider reports age)., type: float, default: 1}
  max_destroy: {description: Abort the run if it would destroy more VMs than this., type: int, default: 10}
  protect: {description: Names, ids, provider:id or fleet names (patterns) never touched., type: list, elements: str, default: []}
  destroy_surplus: {description: Let reconcile destroy members beyond a fleet's count., type: bool, default: false}
  providers: {description: Only these providers (default every enabled one)., type: list, elements: str}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vmops_common import open_session, run_module

ARGS: dict[str, Any] = dict(
    stuck_after_hours=dict(type="float", default=6.0),
    orphan_min_age_hours=dict(type="float", default=1.0),
    max_destroy=dict(type="int", default=10),
    protect=dict(type="list", elements="str", default=[]),
    destroy_surplus=dict(type="bool", default=False),
    providers=dict(type="list", elements="str"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGS, supports_check_mode=True)
    p = module.params

    def body() -> dict[str, Any]:
        from vmops.cleanup.nightly import plan_cleanup
        from vmops.cleanup.protect import ProtectList
        from vmops.fleet.manager import FleetManager

        if p["max_destroy"] < 0:
            raise ValueError("max_destroy must be 0 or more")
        with open_session() as s, FleetManager(s) as mgr:
            plan = plan_cleanup(mgr, providers=p["providers"], stuck_after_hours=p["stuck_after_hours"],
                                orphan_min_age_hours=p["orphan_min_age_hours"], protect=ProtectList.of(p["protect"]),
                                destroy_surplus=p["destroy_surplus"])
        out = plan.to_dict()
        for why in plan.incomplete:
            module.warn(f"not cleaned up this run: {why}")
        over = plan.over_limit(p["max_destroy"])
        if over:
            module.fail_json(msg=over, error_class="DestroyLimitExceeded", error_kind="limit", plan=out)
        return {"changed": False, "plan": out}

    run_module(module, body)


if __name__ == "__main__":
    main()
