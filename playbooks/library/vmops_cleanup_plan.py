#!/usr/bin/python
"""Ansible module: decide what nightly-cleanup may touch (reads only; enforces the destroy limit)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vmops_cleanup_plan
short_description: Classify every VM and fleet for nightly-cleanup, changing nothing
description:
  - Lists every enabled provider's VMs first, then reads the state file, and sorts everything into
    fleets to reconcile, stuck fleets to destroy, orphans to destroy, VMs vmops did not create (reported
    only), reserved VMs that cannot be terminated (reported only) and VMs kept back (protected, too young,
    busy). See docs/playbooks-design.md for the rules.
  - Fails (error_class DestroyLimitExceeded) when the run could destroy more than I(max_destroy) VMs, before
    anything has been touched.
options:
  stuck_after_hours: {description: A fleet in failed/creating for longer than this is destroyed., type: float, default: 6}
  orphan_min_age_hours: {description: Orphans younger than this are left (where the provider reports age)., type: float, default: 1}
  max_destroy: {description: Abort the run if it could destroy more VMs than this., type: int, default: 10}
  protect: {description: Names, ids, provider:id or fleet names (patterns) never touched., type: list, elements: str, default: []}
  providers: {description: Only these providers (default every enabled one)., type: list, elements: str}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vmops_cleanup import plan_cleanup
from ansible.module_utils.vmops_common import ProtectList, listing_failures, open_session, run_module

ARGS: dict[str, Any] = dict(
    stuck_after_hours=dict(type="float", default=6.0),
    orphan_min_age_hours=dict(type="float", default=1.0),
    max_destroy=dict(type="int", default=10),
    protect=dict(type="list", elements="str", default=[]),
    providers=dict(type="list", elements="str"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGS, supports_check_mode=True)
    p = module.params

    def body() -> dict[str, Any]:
        from vmops.state import store_for

        if p["max_destroy"] < 0:
            raise ValueError("max_destroy must be 0 or more")
        with open_session() as s:
            names = s.provider_names(p["providers"] or None)
            listed = s.instances(names)  # FIRST the providers, THEN the state file (write-ahead rule)
            labelled = {n: s.provider(n).capabilities.labels for n in names}
            with store_for(s.config) as store:
                plan = plan_cleanup(
                    instances=listed.results, labelled=labelled, store=store, home=s.config.home,
                    stuck_after_hours=p["stuck_after_hours"], orphan_min_age_hours=p["orphan_min_age_hours"],
                    protect=ProtectList.of(p["protect"]))
            out = plan.to_dict()
            out["listing_failures"] = listing_failures(listed.failures)
            for prov, why in out["listing_failures"].items():
                module.warn(f"{prov}: could not list instances, so nothing there is cleaned up this run ({why})")
            if plan.destroy_count > p["max_destroy"]:
                module.fail_json(
                    msg=(f"this run could destroy {plan.destroy_count} VM(s) ({len(plan.orphans)} orphan(s), "
                         f"{sum(x.destroy_count for x in plan.stuck)} in stuck fleet(s), "
                         f"{sum(plan.reconcile_may_destroy.values())} by reconcile), more than max_destroy="
                         f"{p['max_destroy']}; nothing was touched. Review the plan (run with --check) and raise "
                         f"max_destroy or add to the protect list"),
                    error_class="DestroyLimitExceeded", error_kind="limit", plan=out)
            return {"changed": False, "plan": out}

    run_module(module, body)


if __name__ == "__main__":
    main()
