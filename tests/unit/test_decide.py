"""decide() and the ownership rule on plain data: no simulator, no store, no network."""

from __future__ import annotations

from vmops.fleet.decision import ActionKind
from vmops.fleet.lifecycle import decide_destroy, decide_power, decide_reconcile, join_destroys, sync_actions
from vmops.fleet.health import count, health
from vmops.fleet.observe import Observation
from vmops.fleet.ownership import FLEET_LABEL, STORE_LABEL, belongs, claim, labels_for
from vmops.model import Instance, State
from vmops.state import FleetRecord, FleetState, MemberRecord, MemberStatus

STORE = "store-1"


def fleet(state: FleetState = FleetState.ACTIVE, count: int = 2, min_count: int = 2, name: str = "train") -> FleetRecord:
    return FleetRecord(1, name, "h100:1", count, min_count, "spread", state, False, "t", "t")


def member(seq: int, iid: str | None, status: MemberStatus = MemberStatus.RUNNING, state: State = State.RUNNING,
           provider: str = "p", price: float = 2.0, **kw) -> MemberRecord:
    return MemberRecord(seq, 1, seq, f"vmops-train-{seq:03d}", provider, "r", "t", status, state, f"k{seq}", "t", "t",
                        instance_id=iid, price_per_hour=price, **kw)


def vm(iid: str, name: str, state: State = State.RUNNING, provider: str = "p", labels=None, **kw) -> Instance:
    return Instance(provider, iid, name, state, "n", "t", labels=labels or {}, price_per_hour=2.0, **kw)


def obs(f: FleetRecord, members, listing, labelled: bool = False) -> Observation:
    return Observation(f, list(members), STORE, {"p": labelled}, {"p": list(listing)})


def test_ownership_needs_the_exact_name_and_on_labelled_providers_both_labels() -> None:
    good = vm("1", "vmops-train-002", labels=labels_for("train", STORE))
    assert claim(good, labelled=True, store_id=STORE).fleet == "train"
    assert claim(vm("2", "vmops-train-002"), labelled=True, store_id=STORE).fleet is None  # no labels
    other = vm("3", "vmops-train-002", labels={FLEET_LABEL: "train", STORE_LABEL: "elsewhere"})
    assert "another vmops state store" in (claim(other, labelled=True, store_id=STORE).why_not or "")
    assert claim(vm("4", "vmops-train-002"), labelled=False, store_id=STORE).fleet == "train"  # name-only provider
    assert not belongs(vm("5", "vmops-train-0002"), "train", labelled=False, store_id=STORE)  # not vmops' spelling
    assert not belongs(vm("6", "vmops-train-x-001"), "train", labelled=False, store_id=STORE)


def test_reconcile_never_destroys_an_existing_member_without_a_flag() -> None:
    f = fleet(count=1, min_count=1)
    ms = [member(1, "a")]
    listing = [vm("a", "vmops-train-001"), vm("b", "vmops-train-002")]  # b: surplus, ours by name
    o = obs(f, ms, listing)
    sync = sync_actions(o, adopt=True)
    assert [a.kind for a in sync if a.kind is not ActionKind.REFRESH] == [ActionKind.ADOPT]
    d = decide_reconcile(o, sync, {"p": True})
    assert d.destroys == [] and [h.instance_id for h in d.held] == ["b"]
    d = decide_reconcile(o, sync, {"p": True}, destroy_surplus=True)
    assert [a.instance_id for a in d.destroys] == ["b"]
    assert d.cost_before == 4.0 and d.cost_after == 2.0


def test_label_less_lookalike_on_a_labelled_provider_is_not_adopted() -> None:
    f = fleet(count=1, min_count=1)
    o = obs(f, [member(1, "a")], [vm("a", "vmops-train-001", labels=labels_for("train", STORE)),
                                  vm("b", "vmops-train-002")], labelled=True)
    sync = sync_actions(o, adopt=True)
    assert not [a for a in sync if a.kind is ActionKind.ADOPT]
    assert not decide_reconcile(o, sync, {"p": True}, destroy_surplus=True).destroys


def test_reconcile_finishes_a_destroy_that_was_asked_for() -> None:
    f = fleet(FleetState.DESTROYING)
    ms = [member(1, "a"), member(2, "b", MemberStatus.DESTROYING)]
    o = obs(f, ms, [vm("a", "vmops-train-001"), vm("b", "vmops-train-002", State.DELETING)])
    d = decide_reconcile(o, sync_actions(o, adopt=True), {"p": True})
    assert sorted(a.instance_id for a in d.destroys) == ["a", "b"] and d.next_state == "destroyed"


def test_destroy_holds_what_the_api_can_never_destroy() -> None:
    f = fleet()
    ms = [member(1, "a"), member(2, "r", reserved=True)]
    o = obs(f, ms, [vm("a", "vmops-train-001"), vm("r", "vmops-train-002", reserved=True, can_terminate=False)])
    d = decide_destroy(o, sync_actions(o, adopt=True), {"p": False})
    assert [a.instance_id for a in d.destroys] == ["a"] and [h.instance_id for h in d.held] == ["r"]
    assert d.next_state == "destroying" and (d.cost_before, d.cost_after) == (2.0, 0.0)  # reserved: prepaid


def test_members_gone_elsewhere_are_marked_and_lost_answers_resolved() -> None:
    f = fleet()
    ms = [member(1, "a"), member(2, None, MemberStatus.REQUESTED, State.UNKNOWN)]
    o = obs(f, ms, [vm("x", "vmops-train-002")])
    kinds = {a.member_id: a.kind for a in sync_actions(o, adopt=True)}
    assert kinds == {1: ActionKind.MARK_GONE, 2: ActionKind.RESOLVE}
    kinds = {a.member_id: a.kind for a in sync_actions(o, adopt=False)}
    assert kinds == {1: ActionKind.MARK_GONE}  # without the lock: nothing resolved by name


def test_counts_come_from_real_states_and_below_min_is_degraded() -> None:
    ms = [member(1, "a"), member(2, "b", state=State.STOPPED), member(3, "c", state=State.STOPPED)]
    c = count(ms)
    assert (c.running, c.stopped, c.billing, c.price_per_hour) == (1, 2, 1, 2.0)
    assert health(fleet(count=3, min_count=3), c) is FleetState.ACTIVE
    gone = [member(1, "a"), member(2, "b", MemberStatus.GONE, State.DELETED)]
    assert health(fleet(count=3, min_count=2), count(gone)) is FleetState.DEGRADED
    unknown = count([member(1, None, MemberStatus.REQUESTED, State.UNKNOWN)])
    assert unknown.unknown_outcome == 1


def test_power_decision_prices_the_change() -> None:
    f = fleet()
    ms = [member(1, "a"), member(2, "b")]
    o = obs(f, ms, [vm("a", "vmops-train-001"), vm("b", "vmops-train-002")])
    d = decide_power(o, [], start=False, can_stop={"p": True})
    assert len(d.of(ActionKind.STOP)) == 2 and (d.cost_before, d.cost_after) == (4.0, 0.0)
    d = decide_power(o, [], start=False, can_stop={"p": False})
    assert not d.actions and len(d.held) == 2


def test_destroy_holds_vms_not_on_record_unless_asked() -> None:
    """A VM named for the fleet that the record does not hold (a hand-made look-alike on a provider without
    labels, a duplicate) was never named by the user: fleet destroy keeps it unless asked."""
    f = fleet(count=1, min_count=1)
    o = obs(f, [member(1, "a")], [vm("a", "vmops-train-001"), vm("x", "vmops-train-002")])
    sync = sync_actions(o, adopt=True)
    d = decide_destroy(o, sync, {"p": True})
    assert [a.instance_id for a in d.destroys] == ["a"] and [h.instance_id for h in d.held] == ["x"]
    assert "--include-unrecorded" in d.held[0].reason and not d.of(ActionKind.ADOPT)
    d = decide_destroy(o, sync, {"p": True}, include_unrecorded=True)
    assert sorted(a.instance_id for a in d.destroys) == ["a", "x"] and not d.held


def test_a_billing_member_without_a_known_price_is_never_counted_as_free() -> None:
    """Counts and Decisions leave an unknown price out of the totals and say how many they left out."""
    f = fleet(count=2, min_count=2)
    ms = [member(1, "a"), member(2, "b", price=None)]
    c = count(ms)
    assert c.billing == 2 and c.price_per_hour == 2.0 and c.unpriced == 1
    unpriced_vm = Instance("p", "b", "vmops-train-002", State.RUNNING, "n", "t", price_per_hour=None)
    o = obs(f, ms, [vm("a", "vmops-train-001"), unpriced_vm])
    d = decide_destroy(o, sync_actions(o, adopt=True), {"p": True})
    assert d.cost_before == 2.0
    assert any("1 billing VM(s) have no known price" in n for n in d.notes), d.notes
    assert count([member(1, "a")]).unpriced == 0


def test_a_destroy_decided_per_provider_joins_into_the_fleets_decision() -> None:
    """An unasked destroy decides each provider's part on its own lane; the view shows their join: every
    action, the summed costs, and the fleet stays destroying while any part holds something back."""
    f = fleet(count=3, min_count=1)
    a = member(1, "a", provider="p")
    b = member(2, "b", provider="q", reserved=True)
    at_p = Observation(f, [a], STORE, {"p": False}, {"p": [vm("a", a.name)]})
    at_q = Observation(f, [b], STORE, {"q": False}, {"q": [vm("b", b.name, provider="q", reserved=True)]})
    part_p = decide_destroy(at_p, sync_actions(at_p, adopt=True), {"p": True})
    part_q = decide_destroy(at_q, sync_actions(at_q, adopt=True), {"q": False})  # q cannot terminate reserved
    assert part_p.summary("at p").startswith("destroy train at p: 1 destroy;")
    joined = join_destroys("train", [part_p, part_q])
    assert [x.instance_id for x in joined.destroys] == ["a"] and [x.instance_id for x in joined.held] == ["b"]
    assert joined.cost_before == round(part_p.cost_before + part_q.cost_before, 4) == 2.0  # reserved: prepaid
    assert joined.cost_after == round(part_p.cost_after + part_q.cost_after, 4)
    assert joined.next_state == FleetState.DESTROYING.value
    assert join_destroys("train", [part_p]).next_state == FleetState.DESTROYED.value


def test_a_view_is_incomplete_only_while_a_member_that_may_exist_went_unobserved() -> None:
    from vmops.fleet.report import FleetView

    f = fleet()
    live = [member(1, "a", provider="p"), member(2, "b", provider="q")]
    view = FleetView.observed(f, live, {"q": "no answer"})
    assert view.seen(live[0]) and not view.seen(live[1])
    err = view.incomplete()
    assert err is not None and err.exit_code == 14 and "could not observe q" in err.message
    assert view.warnings == ["q: could not refresh (no answer)"] and view.to_dict()["unobserved"] == {"q": "no answer"}
    # q's only member is gone on record: nothing there can be stale, so the view is whole
    done = [live[0], member(2, "b", MemberStatus.GONE, State.DELETED, provider="q")]
    assert FleetView.observed(f, done, {"q": "no answer"}).incomplete() is None
    assert FleetView.observed(f, live, {}).incomplete() is None


def test_a_destroy_wait_notes_what_is_gone_without_a_line_per_poll(monkeypatch) -> None:
    """Accepted once, then how many are gone: at most every WAIT_NOTE_EVERY seconds while they go, and the
    moment the last one goes (a 512-VM destroy polled every second would otherwise print a line a poll)."""
    from vmops.fleet import members as members_mod
    from vmops.fleet.members import WAIT_NOTE_EVERY, Members

    clock = [100.0]
    monkeypatch.setattr(members_mod.time, "monotonic", lambda: clock[0])
    notes: list[str] = []
    tick = Members(None, None, None, note=notes.append)._gone_notes("nebius", 3)  # type: ignore[arg-type]
    assert tick is not None and notes == ["nebius: 3 delete(s) accepted; waiting until they are gone"]

    def seen(gone: int) -> dict[str, Instance]:
        return {f"i{k}": Instance("nebius", f"i{k}", f"vm{k}", State.DELETED if k < gone else State.DELETING,
                                  "x", "h100:1") for k in range(3)}

    clock[0] += 1.0
    tick(seen(1))  # changed, but too soon after the last line
    clock[0] += WAIT_NOTE_EVERY
    tick(seen(1))
    tick(seen(1))  # unchanged: no line
    clock[0] += 0.5
    tick(seen(3))  # the last one went: at once
    assert notes[1:] == [f"nebius: 1 of 3 gone ({1.0 + WAIT_NOTE_EVERY:.1f}s)",
                         f"nebius: 3 of 3 gone ({1.5 + WAIT_NOTE_EVERY:.1f}s)"]
    assert Members(None, None, None)._gone_notes("nebius", 3) is None  # type: ignore[arg-type]  # no note: no tick
