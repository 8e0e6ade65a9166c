"""The two task namespaces built from the same task functions:

* ``vm_namespace()`` for the installed `vm` program: single-VM tasks at top level (`vm list`), and
  sub-collections for the rest (`vm fleet create`, `vm sim up`, `vm config show`, `vm playbook run`).
* ``inv_namespace()`` for the repo's tasks.py: everything under a collection (`inv vm.list`, `inv fleet.create`).

The command modules import only invoke and vmops' light modules at top level (a test checks it).
"""

from __future__ import annotations

from invoke import Collection

from vmops.cli import cost_cmds, fleet_cmds, playbook_cmds, sim_cmds, vm_cmds

VM_TASKS = (*vm_cmds.VM_TASKS, cost_cmds.cost)
SUBCOLLECTIONS = (vm_cmds.config_ns, sim_cmds.ns, fleet_cmds.ns, playbook_cmds.ns)


def vm_namespace() -> Collection:
    ns = Collection()
    for t in VM_TASKS:
        ns.add_task(t)
    for coll in SUBCOLLECTIONS:
        ns.add_collection(coll)
    return ns


def inv_namespace() -> Collection:
    vm = Collection("vm")
    for t in VM_TASKS:
        vm.add_task(t)
    vm.add_collection(vm_cmds.config_ns)
    ns = Collection()
    ns.add_collection(vm)
    for coll in SUBCOLLECTIONS[1:]:
        ns.add_collection(coll)
    return ns
