"""The two task namespaces built from the same task functions:

* ``vm_namespace()`` for the installed `vm` program: single-VM tasks at top level (`vm list`), and
  sub-collections for the rest (`vm fleet create`, `vm sim up`, `vm config show`).
* ``inv_namespace()`` for the repo's tasks.py: everything under a collection (`inv vm.list`, `inv fleet.create`).
"""

from __future__ import annotations

import importlib

from invoke import Collection

from vmops.cli import sim_cmds, vm_cmds

#: Sub-collections with their module; optional ones are skipped until their module exists.
_SUBCOLLECTIONS = (
    ("vmops.cli.fleet_cmds", "ns"),
    ("vmops.cli.playbook_cmds", "ns"),
)


def _optional() -> list[Collection]:
    out = []
    for mod, attr in _SUBCOLLECTIONS:
        try:
            out.append(getattr(importlib.import_module(mod), attr))
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return out


def vm_namespace() -> Collection:
    ns = Collection()
    for t in vm_cmds.VM_TASKS:
        ns.add_task(t)
    ns.add_collection(vm_cmds.config_ns)
    ns.add_collection(sim_cmds.ns)
    cost = getattr(importlib.import_module("vmops.cli.cost_cmds"), "cost", None) if _exists("vmops.cli.cost_cmds") else None
    if cost is not None:
        ns.add_task(cost)
    for coll in _optional():
        ns.add_collection(coll)
    return ns


def inv_namespace() -> Collection:
    vm = Collection("vm")
    for t in vm_cmds.VM_TASKS:
        vm.add_task(t)
    if _exists("vmops.cli.cost_cmds"):
        vm.add_task(importlib.import_module("vmops.cli.cost_cmds").cost)
    vm.add_collection(vm_cmds.config_ns)
    ns = Collection()
    ns.add_collection(vm)
    ns.add_collection(sim_cmds.ns)
    for coll in _optional():
        ns.add_collection(coll)
    return ns


def _exists(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None
