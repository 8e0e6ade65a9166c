"""Build scenarios at the simulators through vmops itself (the adapters), and read them back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from typing import Mapping

from vmops.catalogue import resolve_type
from vmops.fleet.naming import member_name
from vmops.fleet.ownership import labels_for
from vmops.model import CreateRequest, GpuShape, Instance, ReservationPolicy
from vmops.session import Session
from vmops.state import FleetState, MemberStatus, open_store

from tests.playbooks.helpers import ansible_env


def make_vm(env: Mapping[str, str], provider: str, name: str, gpu: str = "h100", *,
            labels: Mapping[str, str] | None = None) -> Instance:
    with Session(env=env) as s:
        native = resolve_type(provider, gpu).name
        # on-demand, as `vm create` makes it (Crusoe would otherwise place it into a free reservation)
        return s.provider(provider).create(CreateRequest(name=name, native_type=native, labels=dict(labels or {}),
                                                         reservation_policy=ReservationPolicy.FORBID))


def store_id(env: Mapping[str, str]) -> str:
    """The identity of the state store of ``env`` (made if there is none yet)."""
    with open_store(f"{env['VMOPS_HOME']}/state.db") as st:
        return st.identity


def make_orphan(env: Mapping[str, str], provider: str, fleet: str, seq: int) -> Instance:
    """A VM exactly as a fleet member of ``fleet`` of this installation is made (name and labels), with no
    member record anywhere."""
    return make_vm(env, provider, member_name(fleet, seq), labels=labels_for(fleet, store_id(env)))


def recorded_fleet(env: Mapping[str, str], fleet: str, vms: list[tuple[str, str | None]], *, gpu: str = "h100",
                   count: int | None = None, state: FleetState = FleetState.ACTIVE) -> list[Instance]:
    """A fleet as vmops records it: each VM made at its provider (name and labels exactly as a fleet makes
    them; ``(provider, reservation id or None)``) and recorded as a running member; then the fleet is put in
    ``state``."""
    made: list[Instance] = []
    with Session(env=env) as s, open_store(f"{env['VMOPS_HOME']}/state.db") as store:
        rec, _ = store.claim_fleet(fleet, gpu=str(GpuShape.parse(gpu)), count=count or len(vms), min_count=None,
                                   policy="spread")
        for provider, rsv in vms:
            adapter = s.provider(provider)
            native = resolve_type(provider, gpu).name
            m = store.add_member(rec.id, name=None, name_for_seq=lambda seq: member_name(fleet, seq),
                                 provider=provider, region=None, native_type=native, idempotency_key=str(uuid.uuid4()))
            labels = labels_for(fleet, store.identity) if adapter.capabilities.labels else {}
            inst = adapter.create(CreateRequest(
                name=m.name, native_type=native, labels=labels, reservation_ids=(rsv,) if rsv else (),
                reservation_policy=ReservationPolicy.STRICT if rsv else ReservationPolicy.FORBID))
            store.update_member(m.id, status=MemberStatus.RUNNING, instance_id=inst.id, state=inst.state,
                                reserved=inst.reserved, reservation_id=inst.reservation_id,
                                price_per_hour=inst.price_per_hour or 0.0)
            made.append(inst)
        store.set_fleet_state(rec.id, state, message="test scenario")
    return made


def snapshot(env: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(provider, id) -> (name, state) of every VM that is not gone, as the providers list them."""
    with Session(env=env) as s:
        out = s.instances()
        assert not out.failures, out.failures
        return {(i.provider, i.id): (i.name, i.state.value) for i in out.flat() if not i.state.is_gone}


def live(env: Mapping[str, str]) -> dict[str, dict[str, Instance]]:
    """provider -> {name: instance} for every VM that is not gone."""
    with Session(env=env) as s:
        out = s.instances()
        assert not out.failures, out.failures
        return {p: {i.name: i for i in insts if not i.state.is_gone} for p, insts in out.results.items()}


def all_names(env: Mapping[str, str]) -> set[str]:
    return {n for by_name in live(env).values() for n in by_name}


def mutating(sims: Mapping[str, object]) -> dict[str, int]:
    return {n: s.requests.mutating_count() for n, s in sims.items()}  # type: ignore[attr-defined]


def reset_counters(sims: Mapping[str, object]) -> None:
    for s in sims.values():
        s.requests.reset()  # type: ignore[attr-defined]


CRASH_SCRIPT = textwrap.dedent('''
    import os, signal, sys, uuid
    from vmops.catalogue import resolve_type
    from vmops.fleet.naming import member_name
    from vmops.fleet.ownership import labels_for
    from vmops.model import CreateRequest, ReservationPolicy
    from vmops.session import Session
    from vmops.state import FleetLock, MemberStatus, open_store

    fleet, providers = sys.argv[1], sys.argv[2].split(",")
    s = Session()
    store = open_store(s.config.state_path)
    FleetLock(s.config.home, fleet).acquire()  # held until the kill, as `fleet create` does
    rec, _ = store.claim_fleet(fleet, gpu="h100:1", count=len(providers), min_count=len(providers), policy="spread")
    for i, p in enumerate(providers):
        native = resolve_type(p, "h100").name
        key = str(uuid.uuid4())
        m = store.add_member(rec.id, name=None, name_for_seq=lambda seq: member_name(fleet, seq), provider=p,
                             region=None, native_type=native, idempotency_key=key)
        inst = s.provider(p).create(CreateRequest(name=m.name, native_type=native, labels=labels_for(fleet, store.identity),
                                                  idempotency_key=key,
                                                  reservation_policy=ReservationPolicy.FORBID), wait=False)
        if i < len(providers) - 1:  # the last create's answer is "lost": the crash comes first
            store.update_member(m.id, status=MemberStatus.ACCEPTED, instance_id=inst.id)
    os.kill(os.getpid(), signal.SIGKILL)
''')


def crash_fleet_create(env: Mapping[str, str], fleet: str, providers: list[str]) -> None:
    """A `fleet create` SIGKILLed mid-flight: fleet row `creating`, one VM per provider made, the last one's
    instance id never recorded. Follows the manager's write-ahead order exactly."""
    p = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, fleet, ",".join(providers)], env=ansible_env(env),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -9, f"crash script did not die by SIGKILL: {p.returncode}\n{p.stderr}"
