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
    providers (marks members deleted outside vmops as gone, adopts VMs that are the fleet's by the ownership
    rule) and finishes interrupted creates/destroys; it destroys members beyond the count only with
    I(destroy_surplus). C(facts) reads the record (all fleets if no name is given).
  - C(absent) and C(reconcile) return the fleet manager's C(decision) (what is destroyed, adopted, marked gone,
    and why, with the cost per hour before and after). Check mode returns the same Decision and changes
    nothing; C(present) in check mode returns the placement plan. docs/design.md, section 10.
options:
  name: {description: Fleet name (required except for facts)., type: str}
  state: {type: str, choices: [facts, present, absent, reconcile], default: facts}
  gpu: {description: GPU shape for present (h100, h100:8)., type: str}
  count: {description: Number of VMs for present., type: int}
  min: {description: Fewest VMs that still make a fleet (default count, all-or-nothing)., type: int}
  policy: {description: spread, cheapest, pack or fastest., type: str, default: spread}
  allow_unterminable_reserved: {description: Allow landing on reserved capacity the API cannot terminate., type: bool, default: false}
  protect: {description: Fleet names/patterns (or member VM names/ids) that absent/reconcile must not touch., type: list, elements: str, default: []}
  max_destroy:
    description: With absent or reconcile, fail before destroying anything if the Decision destroys more VMs than this.
    type: int
  destroy_surplus: {description: With reconcile, destroy members beyond the fleet's count., type: bool, default: false}
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
decision: {description: The fleet manager's Decision for absent/reconcile (in check mode, what would be done), type: dict}
plan: {description: In check mode for present, the placement plan, type: list}
undestroyed: {description: Members absent could not destroy (with tolerate_unterminable), type: list}
unobserved: {description: With reconcile, providers that could not be observed and why (their members were left as recorded; each is also a warning), type: dict}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vmops_common import open_session, run_module

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
    destroy_surplus=dict(type="bool", default=False),
)


def _summary(view: Any) -> dict[str, Any]:
    if view is None:
        return {"state": "absent"}
    c = view.counts
    return {"state": view.state, "gpu": view.fleet.gpu, "count": view.fleet.count, "running": c.running,
            "stopped": c.stopped}


def _changed(decision: Any, state_before: str) -> bool:
    """A Decision changes something if it has actions beyond refreshing the record, or moves the fleet."""
    return bool(decision.to_dict()["actions"]) or (decision.next_state not in (None, state_before))


def _lines(decision: Any) -> list[str]:
    return [f"{a['action']} {a['name']} ({a['id']}) at {a['provider']}: {a['reason']}"
            for a in decision.to_dict()["actions"]]


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGS, supports_check_mode=True,
        required_if=[("state", "present", ("name", "gpu", "count")), ("state", "absent", ("name",)),
                     ("state", "reconcile", ("name",))])
    p = module.params

    def body() -> dict[str, Any]:
        from vmops.cleanup.protect import Guard, Protected, ProtectList
        from vmops.fleet.manager import FleetManager, FleetSpec
        from vmops.fleet.report import FleetDestroyIncomplete, FleetView
        from vmops.session import parse_shape_for
        from vmops.state import LIVE, FleetState, store_exists

        with open_session() as s, FleetManager(s) as mgr:
            want = p["state"]
            exists = store_exists(s.config)
            if want == "facts":
                if p["name"]:
                    rec = mgr.store.find_fleet(p["name"]) if exists else None
                    view = mgr.status(p["name"], refresh=False) if rec else None
                    return {"changed": False, "fleet": view.to_dict() if view else None,
                            "members": [m.to_dict() for m in view.members] if view else [],
                            "live_members": sum(1 for m in view.members if m.status in LIVE) if view else 0}
                return {"changed": False, "fleets": [v.to_dict() for v in mgr.list()]}

            name = p["name"]
            rec = mgr.store.find_fleet(name) if exists or want == "present" else None
            before = _summary(FleetView(rec, mgr.store.members(rec.id)) if rec else None)
            result: dict[str, Any] = {"changed": False, "changes": []}

            def finish(changed: bool, after: dict[str, Any] | None = None) -> dict[str, Any]:
                now = mgr.store.find_fleet(name) if rec is not None or want == "present" else None
                view = FleetView(now, mgr.store.members(now.id)) if now else None
                result["changed"] = changed
                result["fleet"] = view.to_dict() if view else None
                result["members"] = [m.to_dict() for m in view.members] if view else []
                if module._diff and changed:
                    result["diff"] = {"before": before, "after": after or _summary(view),
                                      "before_header": f"fleet {name}", "after_header": f"fleet {name}"}
                return result

            if want == "present":
                shape = parse_shape_for(None, p["gpu"])
                spec = FleetSpec(gpu=shape, count=p["count"], name=name, min_count=p["min"], policy=p["policy"],
                                 allow_unterminable_reserved=p["allow_unterminable_reserved"]).validated()
                live = rec is not None and rec.state is not FleetState.DESTROYED
                if live:
                    if rec.gpu != str(shape) or rec.count != spec.count:
                        from vmops.errors import StateError

                        raise StateError(
                            f"fleet {name!r} exists as {rec.count} x {rec.gpu} ({rec.state.value}); vmops does not "
                            f"resize fleets", hint="Run fleet-down.yml first, or declare the same gpu and count")
                    if rec.state is FleetState.ACTIVE:
                        return finish(False)
                if module.check_mode:
                    preview = mgr.preview_create(spec)  # what the create would make: a resume only the rest
                    plan = preview.plan
                    result["plan"] = plan.rows()
                    result["plan_total_per_hour"] = plan.total_per_hour
                    if preview.resuming is not None:
                        result["resume"] = preview.to_dict()["resume"]
                    if plan.shortfall:
                        module.warn(f"the providers can supply only {plan.planned} of {plan.count} "
                                    f"VMs now; the create would fail over or fall short")
                    problem = preview.error()
                    if problem is not None:  # the create would fail so: check mode fails the same way
                        raise problem
                    return finish(True, {"state": "active", "gpu": str(shape), "count": spec.count,
                                         "running": spec.count, "stopped": 0})
                out = mgr.create(spec)
                result["shortfall"] = out.shortfall
                for line in out.left_out():
                    module.warn(line)
                err = out.error()
                if err is not None:
                    raise err
                return finish(True)

            if rec is None:
                return finish(False)  # absent/reconcile of an unknown fleet: nothing to do
            guard = Guard(ProtectList.of(p["protect"]), p["max_destroy"])
            try:
                if want == "absent":
                    if rec.state is FleetState.DESTROYED and not any(m.status in LIVE for m in mgr.store.members(rec.id)):
                        return finish(False)
                    if module.check_mode:
                        decision = mgr.preview_destroy(name)
                        if decision.touches_vms:
                            guard(decision)
                        result.update(decision=decision.to_dict(), changes=_lines(decision))
                        for h in decision.held:
                            module.warn(f"{h.name} ({h.instance_id}) at {h.provider} would stay: {h.reason}")
                        return finish(_changed(decision, rec.state.value), {"state": decision.next_state})
                    try:
                        view = mgr.destroy(name, confirm=guard)
                    except FleetDestroyIncomplete as e:
                        left = list(e.undestroyed)
                        if not (p["tolerate_unterminable"] and left and all(u.member.undestroyable for u in left)):
                            raise
                        result["undestroyed"] = [u.to_dict() for u in left]
                        module.warn(f"fleet {name!r}: {len(left)} member(s) cannot be destroyed through the API and "
                                    "stay recorded: " + ", ".join(u.member.name for u in left))
                        return finish(True)
                    result.update(decision=view.decision.to_dict(), changes=list(view.changes))
                    return finish(_changed(view.decision, rec.state.value))

                # reconcile
                if module.check_mode:
                    decision = mgr.preview_reconcile(name, destroy_surplus=p["destroy_surplus"])
                    if decision.touches_vms:
                        guard(decision)
                    result.update(decision=decision.to_dict(), changes=_lines(decision))
                    for h in decision.held:
                        module.warn(f"fleet {name!r}: held: {h.name} ({h.instance_id}) at {h.provider}: {h.reason}")
                    return finish(_changed(decision, rec.state.value), {"state": decision.next_state})
                view = mgr.reconcile(name, destroy_surplus=p["destroy_surplus"], confirm=guard)
                result.update(decision=view.decision.to_dict(), changes=list(view.changes),
                              refresh_warnings=list(view.warnings), unobserved=dict(view.unobserved))
                for warning in view.warnings:
                    module.warn(f"fleet {name!r}: {warning}")
                return finish(_changed(view.decision, rec.state.value))
            except Protected as e:
                module.warn(f"fleet {name!r} not touched: {e.message}")
                result["skipped_reason"] = e.message
                return finish(False)

    run_module(module, body)


if __name__ == "__main__":
    main()
