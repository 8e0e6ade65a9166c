#!/usr/bin/python
"""Ansible module: one VM at one provider, through vmops."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vmops_instance
short_description: Read, create, start, stop or destroy one VM through vmops
description:
  - Speaks vmops' normalized model, so the same task works on Crusoe, Lambda and Nebius.
  - Idempotent; supports check mode (reports what would change, calls nothing that changes anything) and diff.
  - Errors fail the task with C(error_class), C(error_kind) and vmops' one-sentence message.
options:
  provider: {description: crusoe, lambda or nebius, type: str, required: true}
  id: {description: Provider instance id. One of id or name is required., type: str}
  name: {description: VM name (must be unique at the provider when used to find a VM)., type: str}
  state:
    description:
      - C(facts) reads only (default). C(present) makes sure the VM exists (creates it by name with I(gpu), on on-demand capacity: never into a reservation).
      - C(running) also starts it if stopped; C(stopped) stops it; C(absent) destroys it (already gone is ok).
    type: str
    choices: [facts, present, running, stopped, absent]
    default: facts
  gpu: {description: GPU shape (h100, h100:8) or the provider's native type; for creating., type: str}
  region: {description: Region (native name or alias) for creating., type: str}
  protect:
    description: Names, ids or patterns never stopped or destroyed (the task reports them and changes nothing).
    type: list
    elements: str
    default: []
  only_orphan:
    description:
      - With C(absent), destroy only if the VM carries a vmops fleet member name (and, where the provider has
        labels, the matching fleet label) and no live fleet of that name is recorded in the state file.
        Re-checked at the moment of destroying; used by nightly-cleanup.
    type: bool
    default: false
"""

RETURN = r"""
instance: {description: The VM after the task (or as it would be), type: dict}
action: {description: created, started, stopped, destroyed or none, type: str}
skipped_reason: {description: Why a requested change was not made (protected, not an orphan), type: str}
placement: {description: "Check mode, a VM to create: where the create would put it (region, reservation_id), read now", type: dict}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vmops_common import open_session, run_module

ARGS: dict[str, Any] = dict(
    provider=dict(type="str", required=True),
    id=dict(type="str"),
    name=dict(type="str"),
    state=dict(type="str", default="facts", choices=["facts", "present", "running", "stopped", "absent"]),
    gpu=dict(type="str"),
    region=dict(type="str"),
    protect=dict(type="list", elements="str", default=[]),
    only_orphan=dict(type="bool", default=False),
)


def _find(adapter: Any, iid: str | None, name: str | None) -> Any:
    from vmops.errors import InvalidArgument, NotFound

    if iid:
        try:
            inst = adapter.get_instance(iid)
        except NotFound:
            return None
        return None if inst.state.is_gone else inst
    found = [i for i in adapter.find_by_name(name) if not i.state.is_gone]
    if len(found) > 1:
        raise InvalidArgument(
            f"{len(found)} VMs are called {name!r} at {adapter.name} ({', '.join(i.id for i in found)})",
            hint="Pass id instead of name")
    return found[0] if found else None


def brief(inst: Any) -> dict[str, Any]:
    from vmops.cleanup.nightly import Noted

    return Noted(inst).to_dict()


def _view(inst: Any) -> dict[str, Any]:
    return {"state": inst.state.value if inst else "absent"}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGS, required_one_of=[("id", "name")], supports_check_mode=True)
    p = module.params

    def body() -> dict[str, Any]:
        from vmops.catalogue import provider_entry, resolve_type
        from vmops.cleanup.protect import ProtectList
        from vmops.errors import InvalidArgument
        import vmops.verbs
        from vmops.single import create_requests

        with open_session() as s:
            pname = s.check_provider(p["provider"])
            adapter = s.provider(pname)
            inst = _find(adapter, p["id"], p["name"])
            want = p["state"]
            before = _view(inst)
            result: dict[str, Any] = {"changed": False, "action": "none",
                                      "instance": brief(inst) if inst else None}

            def done(action: str, after: Any, after_state: str) -> dict[str, Any]:
                result.update(changed=True, action=action)
                result["instance"] = brief(after) if after is not None else result["instance"]
                if module._diff:
                    result["diff"] = {"before": before, "after": {"state": after_state},
                                      "before_header": f"{pname}/{p['id'] or p['name']}",
                                      "after_header": f"{pname}/{p['id'] or p['name']}"}
                return result

            if want == "facts":
                return result

            def judged(verb: str) -> bool:
                """True when ``inst`` is already where ``verb`` takes it, or on its way there (then waited for,
                outside check mode); raises what the verb would refuse (the rule `vm stop/start/destroy` and their
                --dry-run follow: check mode fails as the run would)."""
                verdict = vmops.verbs.verdict(adapter, verb, inst)
                if verdict.refusal is not None:
                    raise verdict.refusal
                if verdict.underway and not module.check_mode:
                    from vmops.providers.base import TARGETS

                    result["instance"] = brief(adapter.wait_for({inst.id: TARGETS[verb]})[inst.id])
                return verdict.already or verdict.underway

            if want in ("stopped", "absent") and inst is not None:
                fleet = _fleet_of(s, inst)
                pat = ProtectList.of(p["protect"]).match(inst, fleet)
                if pat:
                    module.warn(f"{pname} instance {inst.name} ({inst.id}) is protected by {pat!r}; not touched")
                    result["skipped_reason"] = f"protected by {pat!r}"
                    return result

            if want in ("present", "running"):
                if inst is None:
                    if not p["name"] or not p["gpu"]:
                        raise InvalidArgument(
                            f"no such VM at {pname}, and creating one needs name and gpu",
                            hint="Give name and gpu (and optionally region)")
                    native = resolve_type(pname, p["gpu"])
                    region = provider_entry(pname).resolve_region(p["region"] or None)
                    # on-demand, as `vm create` without --reserved (a free reservation is never taken by itself)
                    # _find looked the name up (unless an id was given): the adapter need not again
                    request = create_requests(adapter, native.name, [p["name"]], region=region,
                                              names_free=not p["id"])[0]
                    if module.check_mode:  # placed as the create would place it (reads only): or refused as it would be
                        where, rid = adapter.placement(request)
                        result["placement"] = {"region": where, "reservation_id": rid}
                        return done("created", None, "running")
                    made = adapter.create(request)
                    return done("created", made, made.state.value)
                if want == "running" and not judged("start"):
                    if module.check_mode:
                        return done("started", None, "running")
                    return done("started", (after := adapter.start(inst.id)), after.state.value)
                return result

            if want == "stopped":
                if inst is None:
                    raise InvalidArgument(f"there is no VM {p['id'] or p['name']!r} at {pname} to stop")
                if judged("stop"):
                    return result
                if module.check_mode:
                    return done("stopped", None, "stopped")
                return done("stopped", (after := adapter.stop(inst.id)), after.state.value)

            # absent
            if inst is None:
                return result
            if p["only_orphan"]:
                reason = _not_an_orphan(s, inst)
                if reason:
                    module.warn(f"{pname} instance {inst.name} ({inst.id}) kept: {reason}")
                    result["skipped_reason"] = reason
                    return result
            if judged("destroy"):
                return result
            if module.check_mode:
                return done("destroyed", None, "absent")
            after = adapter.destroy(inst.id)
            result["instance"] = brief(after)
            return done("destroyed", None, "absent")

    run_module(module, body)


def _fleet_of(session: Any, inst: Any) -> str | None:
    """The fleet ``inst`` is a VM of by the ownership rule (for the protect list), or None."""
    from vmops.fleet.ownership import claimed
    from vmops.state import store_exists, store_for

    store_id = None
    if store_exists(session.config):
        with store_for(session.config) as store:
            store_id = store.identities
    return claimed(inst, labelled=session.provider(inst.provider).capabilities.labels, store_id=store_id).fleet


def _not_an_orphan(session: Any, inst: Any) -> str | None:
    """None if ``inst`` is a vmops orphan now (re-read from the state file); else why it is not."""
    from vmops.cleanup.nightly import orphan_verdict
    from vmops.fleet.manager import FleetManager

    with FleetManager(session) as mgr:
        return orphan_verdict(mgr, inst)


if __name__ == "__main__":
    main()
