"""Unattended cleanup policy (nightly-cleanup, idle-reaper): what may be touched, decided in one place and
read-only; the playbooks' Ansible modules only parse arguments, call these and return the result.

* ``protect``: the protect list, the guard an acting step applies to a Decision, age helpers;
* ``nightly``: the nightly-cleanup plan (fleets through the fleet manager's own Decisions, orphans and
  unmanaged VMs through the one ownership rule);
* ``idle``: the idle-reaper plan.
"""
