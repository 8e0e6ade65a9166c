#!/usr/bin/python
"""Ansible module: pick the idle VMs idle-reaper stops or destroys (reads only; enforces the limit)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vmops_idle_plan
short_description: Find VMs matching a name/label pattern older than N hours, changing nothing
description:
  - Returns C(act) (VMs to stop/destroy now) and C(skipped) (matching VMs left alone, with the reason:
    protected, reserved, fleet member, age unknown, cannot stop, not running).
  - Fails (error_class ActionLimitExceeded) when more than I(max_actions) VMs would be acted on, before
    anything has been touched.
options:
  names: {description: Shell patterns on the VM name (any matches)., type: list, elements: str, default: []}
  name_regex: {description: Regular expression the VM name must contain., type: str}
  labels: {description: Labels every match must carry (values may be shell patterns)., type: dict, default: {}}
  older_than_hours: {description: Only VMs created longer ago than this., type: float, required: true}
  action: {type: str, choices: [stop, destroy], default: stop}
  include_fleet_members: {description: Also act on members of vmops fleets., type: bool, default: false}
  protect: {type: list, elements: str, default: []}
  max_actions: {description: Abort if more VMs than this would be acted on., type: int, default: 5}
  providers: {type: list, elements: str}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vmops_cleanup import IdleRule, plan_idle
from ansible.module_utils.vmops_common import ProtectList, listing_failures, open_session, run_module

ARGS: dict[str, Any] = dict(
    names=dict(type="list", elements="str", default=[]),
    name_regex=dict(type="str"),
    labels=dict(type="dict", default={}),
    older_than_hours=dict(type="float", required=True),
    action=dict(type="str", default="stop", choices=["stop", "destroy"]),
    include_fleet_members=dict(type="bool", default=False),
    protect=dict(type="list", elements="str", default=[]),
    max_actions=dict(type="int", default=5),
    providers=dict(type="list", elements="str"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGS, supports_check_mode=True)
    p = module.params

    def body() -> dict[str, Any]:
        import re

        from vmops.state import store_for

        if not (p["names"] or p["name_regex"] or p["labels"]):
            raise ValueError("idle-reaper needs a selector: give names, name_regex or labels (matching every VM "
                             "is never a default)")
        if p["name_regex"]:
            try:
                re.compile(p["name_regex"])
            except re.error as e:
                raise ValueError(f"name_regex {p['name_regex']!r} is not a valid regular expression ({e})") from None
        if p["older_than_hours"] < 0:
            raise ValueError("older_than_hours must be 0 or more")
        rule = IdleRule(names=tuple(p["names"]), name_regex=p["name_regex"],
                        labels={str(k): str(v) for k, v in p["labels"].items()},
                        older_than_hours=p["older_than_hours"], action=p["action"],
                        include_fleet_members=p["include_fleet_members"])
        with open_session() as s:
            names = s.provider_names(p["providers"] or None)
            listed = s.instances(names)
            can_stop = {n: s.provider(n).capabilities.stop_start for n in names}
            with store_for(s.config) as store:
                act, skipped = plan_idle(instances=listed.results, can_stop=can_stop, store=store, rule=rule,
                                         protect=ProtectList.of(p["protect"]))
            failures = listing_failures(listed.failures)
            for prov, why in failures.items():
                module.warn(f"{prov}: could not list instances, so nothing there is reaped this run ({why})")
            out = {"act": act, "skipped": skipped, "listing_failures": failures, "action": p["action"]}
            if len(act) > p["max_actions"]:
                module.fail_json(
                    msg=(f"idle-reaper would {p['action']} {len(act)} VM(s), more than max_actions="
                         f"{p['max_actions']}; nothing was touched. Narrow the pattern, protect VMs, or raise "
                         f"max_actions"),
                    error_class="ActionLimitExceeded", error_kind="limit", plan=out)
            return {"changed": False, "plan": out}

    run_module(module, body)


if __name__ == "__main__":
    main()
