#!/usr/bin/python
"""Ansible module: a vmops fleet as declared state."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vmops_fleet
short_description: Declare, destroy, reconcile or read a vmops fleet
description:
  - C(present) makes sure fleet I(name) exists with I(count) x I(gpu); an unfinished fleet of that name is
    resumed (creating only what is missing), so running it twice never makes a second fleet.
  - C(absent) destroys every member (already gone is fine). C(reconcile) brings the record in line with the
    providers (marks members deleted outside vmops, adopts VMs named for the fleet) and finishes interrupted
    creates/destroys. C(facts) reads the record (all fleets if no name is given).
  - Check mode reads only: C(present) returns the placement plan, C(reconcile) the changes it would make.
options:
  name: {description: Fleet name (required except for facts)., type: str}
  state: {type: str, choices: [facts, present, absent, reconcile], default: facts}
  gpu: {description: GPU shape for present (h100, h100:8)., type: str}
  count: {description: Number of VMs for present., type: int}
  min: {description: Fewest VMs that still make a fleet (default count, all-or-nothing)., type: int}
  policy: {description: spread, cheapest or pack., type: str, default: spread}
  allow_unterminable_reserved: {description: Allow landing on reserved capacity the API cannot terminate., type: bool, default: false}
  protect: {description: Fleet names/patterns (or member VM names/ids) that absent/reconcile must not touch., type: list, elements: str, default: []}
  max_destroy:
    description: With absent, fail before destroying anything if the fleet has more live members than this.
    type: int
  tolerate_unterminable:
    description: With absent, reserved members the provider cannot terminate stay recorded and are reported
      as a warning instead of failing the task.
    type: bool
    default: false
"""

RETURN = r"""
fleet: {description: The fleet record after the task, type: dict}
members: {description: Its members, type: list}
changes: {description: What reconcile changed (or would change in check mode), type: list}
plan: {description: In check mode for present, the placement plan, type: list}
undestroyed: {description: Members absent could not destroy (with tolerate_unterminable), type: list}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vmops_cleanup import RECONCILE_MAY_DESTROY, preview_reconcile
from ansible.module_utils.vmops_common import ProtectList, open_session, run_module

ARGS: dict[str, Any] = dict(
    name=dict(type="str"),
    state=dict(type="str", default="facts", choices=["facts", "present", "absent", "reconcile"]),
    gpu=dict(type="str"),
    count=dict(type="int"),
    min=dict(type="int"),
    policy=dict(type="str", default="spread"),
    allow_unterminable_reserved=dict(type="bool", default=False),
    protect=dict(type="list", elements="str", default=[]),
    tolerate_unterminable=dict(type="bool", default=False),
    max_destroy=dict(type="int"),
)


def _summary(fleet: Any, members: list[Any]) -> dict[str, Any]:
    from vmops.state import MemberStatus

    if fleet is None:
        return {"state": "absent"}
    return {"state": fleet.state.value, "gpu": fleet.gpu, "count": fleet.count,
            "running": sum(1 for m in members if m.status is MemberStatus.RUNNING)}


def _protected(protect: ProtectList, name: str, members: list[Any]) -> str | None:
    pat = protect.match_fleet(name)
    if pat:
        return pat
    for m in members:
        for key in (m.name, m.instance_id or "", f"{m.provider}:{m.instance_id}"):
            for p in protect.patterns:
                import fnmatch

                if key and fnmatch.fnmatchcase(key, p):
                    return p
    return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGS, supports_check_mode=True,
        required_if=[("state", "present", ("name", "gpu", "count")), ("state", "absent", ("name",)),
                     ("state", "reconcile", ("name",))])
    p = module.params

    def body() -> dict[str, Any]:
        from vmops.fleet.manager import FleetManager, FleetSpec
        from vmops.session import parse_shape_for
        from vmops.state import FleetState, LIVE

        with open_session() as s, FleetManager(s) as mgr:
            store = mgr.store
            want = p["state"]
            if want == "facts":
                if p["name"]:
                    rec = store.find_fleet(p["name"])
                    ms = store.members(rec.id) if rec else []
                    return {"changed": False, "fleet": rec.to_dict() if rec else None,
                            "members": [m.to_dict() for m in ms],
                            "live_members": sum(1 for m in ms if m.status in LIVE)}
                return {"changed": False, "fleets": [v.fleet.to_dict() | {"members": len(v.members)}
                                                      for v in mgr.list()]}

            name = p["name"]
            rec = store.find_fleet(name)
            members = store.members(rec.id) if rec else []
            before = _summary(rec, members)
            result: dict[str, Any] = {"changed": False, "changes": []}

            def finish(changed: bool) -> dict[str, Any]:
                now = store.find_fleet(name)
                ms = store.members(now.id) if now else []
                result["changed"] = changed
                result["fleet"] = now.to_dict() if now else None
                result["members"] = [m.to_dict() for m in ms]
                if module._diff and changed:
                    after = result.pop("_after", None) or _summary(now, ms)
                    result["diff"] = {"before": before, "after": after,
                                      "before_header": f"fleet {name}", "after_header": f"fleet {name}"}
                result.pop("_after", None)
                return result

            if want == "present":
                shape = parse_shape_for(None, p["gpu"])
                spec = FleetSpec(gpu=shape, count=p["count"], name=name, min_count=p["min"], policy=p["policy"],
                                 allow_unterminable_reserved=p["allow_unterminable_reserved"]).validated()
                if rec is not None and rec.state is not FleetState.DESTROYED:
                    if rec.gpu != str(shape) or rec.count != spec.count:
                        from vmops.errors import StateError

                        raise StateError(
                            f"fleet {name!r} exists as {rec.count} x {rec.gpu} ({rec.state.value}); vmops does not "
                            f"resize fleets", hint="Run fleet-down.yml first, or declare the same gpu and count")
                    if rec.state is FleetState.ACTIVE:
                        return finish(False)
                if module.check_mode:
                    running = sum(1 for m in members if m.status.value == "running") if rec and \
                        rec.state is not FleetState.DESTROYED else 0
                    plan = mgr.plan(spec, count=spec.count - running)
                    result["plan"] = plan.rows()
                    result["plan_total_per_hour"] = plan.total_per_hour
                    if plan.shortfall:
                        module.warn(f"the providers can supply only {plan.planned} of {spec.count - running} "
                                    f"VMs now; the create would fail over or fall short")
                    result["_after"] = {"state": "active", "gpu": str(shape), "count": spec.count,
                                        "running": spec.count}
                    return finish(True)
                out = mgr.create(spec)
                result["shortfall"] = out.shortfall
                return finish(True)

            if rec is None:
                return finish(False)  # absent/reconcile of an unknown fleet: nothing to do
            pat = _protected(ProtectList.of(p["protect"]), name, members)

            if want == "absent":
                if rec.state is FleetState.DESTROYED and not any(m.status in LIVE for m in members):
                    return finish(False)
                if pat:
                    module.warn(f"fleet {name!r} is protected by {pat!r}; not destroyed")
                    result["skipped_reason"] = f"protected by {pat!r}"
                    return finish(False)
                live_n = sum(1 for m in members if m.status in LIVE)
                if p["max_destroy"] is not None and live_n > p["max_destroy"]:
                    module.fail_json(
                        msg=f"fleet {name!r} has {live_n} live member(s), more than max_destroy={p['max_destroy']}; "
                            f"nothing was touched. Raise max_destroy deliberately to destroy it",
                        error_class="DestroyLimitExceeded", error_kind="limit", live_members=live_n)
                if module.check_mode:
                    result["_after"] = {"state": "destroyed"}
                    return finish(True)
                from vmops.fleet.report import FleetDestroyIncomplete

                try:
                    mgr.destroy(name)
                except FleetDestroyIncomplete as e:
                    left = list(e.undestroyed)
                    if not (p["tolerate_unterminable"] and left and all(u.member.reserved for u in left)):
                        raise
                    result["undestroyed"] = [u.to_dict() for u in left]
                    module.warn(f"fleet {name!r}: {len(left)} reserved member(s) cannot be terminated through the "
                                f"API and stay recorded: " + ", ".join(u.member.name for u in left))
                return finish(True)

            # reconcile
            if pat and rec.state.value in RECONCILE_MAY_DESTROY:
                module.warn(f"fleet {name!r} is protected by {pat!r}; not reconciled (reconcile could destroy "
                            f"members in state {rec.state.value})")
                result["skipped_reason"] = f"protected by {pat!r}"
                return finish(False)
            if module.check_mode:
                result["changes"] = preview_reconcile(s, store, rec)
                return finish(bool(result["changes"]))
            view = mgr.reconcile(name)
            result["changes"] = list(view.changes)
            result["refresh_warnings"] = list(view.warnings)
            after = store.find_fleet(name)
            return finish(bool(view.changes) or (after is not None and after.state is not rec.state))

    run_module(module, body)


if __name__ == "__main__":
    main()
