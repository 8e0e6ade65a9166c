"""Fleet names that collide with other fleets' member names (issue 7): `ab` and `ab-001` (whose members are
`vmops-ab-001-NNN`, starting with `ab`'s first member's name), `ab-0`, `ab-1`, `ab-1000`, plus hand-made
lookalikes (`vmops-ab-0001`, `vmops-ab-01`, `vmops-ab--001`) at the providers.

A fleet never adopts, marks gone or destroys another fleet's VMs: status, reconcile and destroy of one leave
every other fleet's VMs (and the lookalikes) untouched at the providers, and every VM is recorded by exactly
one fleet. Checked at the providers' own instance lists, not only in vmops' record.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fleet.conftest import make_manager, spec  # noqa: F401 - make_manager is a fixture
from tests.reliability.summary import record
from vmops.fleet.naming import belongs_to, member_name, parse_member_name, validate_fleet_name
from vmops.model import CreateRequest, State
from vmops.session import Session
from vmops.state import FleetState, MemberStatus

SCENARIO = "fleet name collisions"
#: Each name is another's prefix, or its members' names start with another's member names.
FLEETS = {"ab": 2, "ab-001": 2, "ab-0": 1, "ab-1": 1, "ab-1000": 1}
LOOKALIKES = {"crusoe": ["vmops-ab-0001", "vmops-ab-01"], "lambda": ["vmops-ab--001", "vmops-ab-001x"],
              "nebius": ["vmops-ab-001-01", "vmops-ab-0"]}
NATIVE = {"crusoe": "a100.1x", "lambda": "gpu_1x_a100", "nebius": "gpu-h200-sxm/1gpu-20vcpu-256gb"}  # not the fleets' shape

fleet_names = st.from_regex(r"\A[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,39}\Z").filter(lambda n: "--" not in n
                                                                                   and not n.endswith("-"))


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(f1=fleet_names, f2=fleet_names, s1=st.integers(0, 20000), s2=st.integers(0, 20000))
def test_member_names_are_unique_and_parse_back(f1, f2, s1, s2):
    validate_fleet_name(f1)
    n1 = member_name(f1, s1)
    assert parse_member_name(n1) == (f1, s1)
    assert belongs_to(n1, f1)
    if f1 != f2:
        assert not belongs_to(n1, f2)
        assert member_name(f2, s2) != n1
    # a name vmops would not spell this way is nobody's member
    assert parse_member_name(n1.replace(f"-{s1:03d}", f"-0{s1:03d}")) is None


def _all_vms(config) -> dict[tuple[str, str], object]:
    with Session(config) as s:
        out = s.instances()
        assert not out.failures, out.failures
        return {(i.provider, i.id): i for i in out.flat()}




def test_colliding_fleets_never_touch_each_others_vms(config, sims, make_manager):  # noqa: F811
    mgr = make_manager()
    owners: dict[tuple[str, str], str] = {}
    for name, count in FLEETS.items():
        res = mgr.create(spec("h100", count, name))
        assert res.fleet.state is FleetState.ACTIVE, (name, res.fleet)
        for m in res.members:
            if m.status is MemberStatus.RUNNING:
                owners[(m.provider, m.instance_id)] = name
    assert len(owners) == sum(FLEETS.values())
    lookalikes: set[tuple[str, str]] = set()
    with Session(config) as s:
        for provider, names in LOOKALIKES.items():
            for n in names:
                inst = s.provider(provider).create(CreateRequest(name=n, native_type=NATIVE[provider]), wait=True)
                lookalikes.add((provider, inst.id))
    trials = passed = wrongly_destroyed = adopted = 0
    problems: list[str] = []

    def check(step: str, gone: set[str]) -> None:
        """Every VM of a fleet not in ``gone``, and every lookalike, is still running at its provider."""
        nonlocal trials, passed, wrongly_destroyed, adopted
        vms = _all_vms(config)
        trials += 1
        ok = True
        for key, fleet in owners.items():
            alive = key in vms and vms[key].state is State.RUNNING
            if fleet in gone and key in vms and vms[key].state not in (State.DELETING, State.DELETED):
                problems.append(f"{step}: {fleet}'s VM {key} survived its fleet's destroy")
                ok = False
            if fleet not in gone and not alive:
                problems.append(f"{step}: {fleet}'s VM {key} was touched ({vms.get(key)})")
                wrongly_destroyed += 1
                ok = False
        for key in lookalikes:
            if key not in vms or vms[key].state is not State.RUNNING:
                problems.append(f"{step}: lookalike {key} was touched")
                wrongly_destroyed += 1
                ok = False
        recorded = {}
        for name in FLEETS:
            if name in gone:
                continue
            for m in mgr.store.members(mgr.store.get_fleet(name).id):
                if m.instance_id and m.status not in (MemberStatus.DESTROYED, MemberStatus.FAILED):
                    key = (m.provider, m.instance_id)
                    if key in recorded or owners.get(key) != name:
                        problems.append(f"{step}: {name} records {key} ({m.name}, {m.status.value}), owned by "
                                        f"{owners.get(key) or recorded.get(key) or 'a lookalike'}")
                        adopted += 1
                        ok = False
                    recorded[key] = name
                    if m.status is MemberStatus.GONE:
                        problems.append(f"{step}: {name}'s member {m.name} marked gone")
                        ok = False
        passed += ok

    check("after create", set())
    for name in FLEETS:
        view = mgr.status(name)
        assert view.running == FLEETS[name], (name, view.warnings, view.changes)
        check(f"status {name}", set())
        mgr.reconcile(name)
        check(f"reconcile {name}", set())
    gone: set[str] = set()
    for name in ("ab", "ab-001", "ab-1"):  # the shortest first: the most tempting prefix
        out = mgr.destroy(name)
        assert out.fleet.state is FleetState.DESTROYED, (name, out.fleet)
        gone.add(name)
        check(f"destroy {name}", gone)
        for other in FLEETS:
            if other not in gone:
                mgr.reconcile(other)
        check(f"reconcile after destroying {name}", gone)
    record(SCENARIO, trials=trials, passed=passed, leaked=wrongly_destroyed, duplicates=adopted,
           detail=problems[0] if problems else f"{len(FLEETS)} colliding fleets, {len(lookalikes)} lookalikes")
    assert not problems, problems
    # tidy up what is left
    for name in FLEETS:
        if name not in gone:
            mgr.destroy(name)
    with Session(config) as s:
        for provider, iid in lookalikes:
            s.provider(provider).destroy(iid, wait=True)
