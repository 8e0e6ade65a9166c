"""The inventory frames against the three simulators: instances, cost, capacity/offers, fleets/members,
a provider down, and the orphan view after a simulated crash."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vmops import inventory as inv
from vmops.catalogue import PROVIDERS
from vmops.fleet.manager import FleetManager, FleetSpec
from vmops.model import GpuShape
from vmops.sim.common import Fault


def _names_at(sim_session, provider: str) -> set[str]:
    return {i.name for i in sim_session.provider(provider).list_instances()}


def test_instances_one_row_per_vm_everywhere(sims, session):
    df = inv.instances(session)
    assert list(df.columns) == list(inv.INSTANCE_COLUMNS)
    assert inv.missing_providers(df) == []
    for p in ("crusoe", "lambda", "nebius"):
        assert set(df.loc[df["provider"] == p, "name"]) == _names_at(session, p)
        assert (df["provider"] == p).sum() >= 1
    assert df["id"].is_unique
    assert set(df["state"]) <= {"creating", "running", "stopping", "stopped", "starting", "deleting", "deleted",
                                "error", "unknown"}
    # Nebius' API has no prices: its rows carry the catalogue's dated list price, and say so.
    neb = df[df["provider"] == "nebius"]
    assert (neb["price_origin"] == "catalogue").all()
    for row in neb.itertuples():
        listed = PROVIDERS["nebius"].type_named(row.native_type)
        assert row.price_per_hour == pytest.approx(listed.list_price_per_hour)
        assert "nebius published list price" in row.price_source
        assert row.region == "-"
    # Crusoe reports prices itself (vm types, reservations).
    assert (df.loc[df["provider"] == "crusoe", "price_origin"] == "provider").all()
    assert df["price_per_hour"].notna().all()
    assert (df["billing"] == df["reserved"].map({True: "reserved", False: "on-demand"})).all()


@pytest.mark.parametrize("down", ["crusoe", "lambda", "nebius"])
def test_provider_down_is_a_warning_and_an_attribute(sims, session, down):
    sims[down].faults.add(Fault(endpoint="*", kind="error", status=503, grpc_code="UNAVAILABLE"))
    with pytest.warns(inv.InventoryWarning, match=down):
        df = inv.instances(session)
    assert inv.missing_providers(df) == [down]
    assert down in df.attrs["errors"] and down in df.attrs["errors"][down]
    assert down not in set(df["provider"])
    up = {"crusoe", "lambda", "nebius"} - {down}
    assert set(df["provider"]) == up
    # the attribute follows the frame into the cost table, and the orphan view does not call the down
    # provider's recorded members missing
    assert inv.missing_providers(inv.cost(df)) == [down]
    with pytest.warns(inv.InventoryWarning, match=down):
        off = inv.offers("h100:1", session=session)
    assert inv.missing_providers(off) == [down] and set(off["provider"]) == up


def test_orphans_after_a_simulated_crash(sims, session, crashed):
    df = inv.instances(session)
    by_name = df.set_index("name")
    rec = by_name.loc[crashed.recorded.name]
    assert rec["fleet"] == crashed.name and rec["member_status"] == "running" and not rec["orphan"]
    lost = by_name.loc[crashed.unrecorded.name]
    assert pd.isna(lost["fleet"]) and lost["claimed_fleet"] == crashed.name and lost["orphan"]
    assert crashed.vanished_name not in set(df["name"])

    orphans = inv.orphans(session, frame=df)
    got = {(r.kind, r.provider, r.name) for r in orphans.itertuples()}
    assert got == {
        (inv.UNRECORDED, "lambda", crashed.unrecorded.name),
        (inv.MISSING, "nebius", crashed.vanished_name),
    }
    unrec = orphans[orphans["kind"] == inv.UNRECORDED].iloc[0]
    assert unrec["id"] == crashed.unrecorded.id and unrec["price_per_hour"] > 0
    assert "reconcile" in unrec["reason"]
    missing = orphans[orphans["kind"] == inv.MISSING].iloc[0]
    assert missing["id"] == crashed.vanished_id and "no longer has" in missing["reason"]

    # members/fleets: the record as it is, and refreshed (read-only) from the providers
    m = inv.members(crashed.name, session=session, refresh=True).set_index("name")
    assert m.loc[crashed.recorded.name, "exists"] == True  # noqa: E712 (nullable boolean)
    assert m.loc[crashed.unrecorded.name, "exists"] == True  # found by its name  # noqa: E712
    assert m.loc[crashed.vanished_name, "exists"] == False  # noqa: E712
    assert m.loc[crashed.vanished_name, "observed_state"] == "deleted"
    f = inv.fleets(session).set_index("name").loc[crashed.name]
    assert f["state"] == "creating" and f["members"] == 3 and f["running"] == 2
    fr = inv.fleets(session, refresh=True).set_index("name").loc[crashed.name]
    assert fr["running"] == 2  # crusoe (recorded) + lambda (found by name); nebius is gone
    assert fr["price_per_hour"] == pytest.approx(crashed.recorded.price_per_hour + crashed.unrecorded.price_per_hour)

    # The fleet manager's reconcile agrees with the orphan view: afterwards there is nothing to report.
    with FleetManager(session) as mgr:
        mgr.reconcile(crashed.name)
        assert inv.orphans(session).empty
        mgr.destroy(crashed.name)
    after = inv.instances(session)
    assert not after["name"].str.startswith(f"vmops-{crashed.name}-").any()
    assert inv.orphans(session, frame=after).empty


def test_unrecorded_fleet_and_label_ownership(sims, session):
    """A VM named for a fleet vmops has no record of is an orphan (on Crusoe the name is all there is); on
    Nebius it must also carry the fleet's and this state store's labels: a label alone, or the name with the
    fleet label but without the store's, is not vmops' (the ownership rule, vmops.fleet.ownership)."""
    from vmops.fleet.ownership import FLEET_LABEL, labels_for
    from vmops.model import CreateRequest
    from vmops.state import open_store

    with open_store(session.config.state_path) as st:
        store_id = st.identity
    neb = "gpu-h100-sxm/1gpu-16vcpu-200gb"
    a = session.provider("crusoe").create(CreateRequest(name="vmops-ghost-001", native_type="h100.1x"))
    session.provider("nebius").create(CreateRequest(name="worker", native_type=neb, labels={FLEET_LABEL: "ghost"}))
    c = session.provider("nebius").create(CreateRequest(name="vmops-ghost-002", native_type=neb,
                                                        labels=labels_for("ghost", store_id)))
    session.provider("nebius").create(CreateRequest(name="vmops-ghost-003", native_type=neb,
                                                    labels={FLEET_LABEL: "ghost"}))
    o = inv.orphans(session)
    assert set(zip(o["id"], o["fleet"])) == {(a.id, "ghost"), (c.id, "ghost")}
    assert o["reason"].str.contains("not recorded").all()
    assert set(o["kind"]) == {inv.UNRECORDED}


def test_cost_groups_match_the_plan_and_skip_stopped(sims, session):
    spec = FleetSpec(gpu=GpuShape.parse("h100:1"), count=3, name="costly", policy="spread")
    with FleetManager(session) as mgr:
        plan = mgr.plan(spec)
        result = mgr.create(spec)
    assert len(result.running) == 3
    df = inv.instances(session)
    by_fleet = inv.cost(df, by="fleet").set_index("fleet")
    assert by_fleet.loc["costly", "vms"] == 3 and by_fleet.loc["costly", "gpus"] == 3
    assert by_fleet.loc["costly", "hourly"] == pytest.approx(plan.total_per_hour)
    assert by_fleet.loc["costly", "daily"] == pytest.approx(24 * plan.total_per_hour, abs=0.01)
    assert by_fleet.loc["costly", "monthly"] == pytest.approx(730 * plan.total_per_hour, abs=0.01)
    assert set(by_fleet.loc["costly", "price_origins"].split(",")) == {"provider", "catalogue"}

    full = inv.cost(df)  # provider x gpu x fleet x billing
    assert list(full.columns[:4]) == ["provider", "gpu", "fleet", "billing"]
    total = inv.total_cost(full)["hourly"]
    assert total == pytest.approx(df.loc[df["billed"], "price_per_hour"].sum())
    for key in ("provider", "gpu", "billing"):
        assert inv.cost(df, by=key)["hourly"].sum() == pytest.approx(total)
    billing = inv.cost(df, by="billing").set_index("billing")
    assert billing.loc["reserved", "hourly"] == pytest.approx(df.loc[df["reserved"], "price_per_hour"].sum())

    # A stopped VM does not bill (unless asked to count it).
    member = next(m for m in result.members if m.provider == "crusoe")
    session.provider("crusoe").stop(member.instance_id)
    df2 = inv.instances(session)
    after = inv.cost(df2, by="fleet").set_index("fleet").loc["costly"]
    assert after["vms"] == 2
    assert after["hourly"] == pytest.approx(plan.total_per_hour - member.price_per_hour)
    assert inv.cost(df2, by="fleet", include_stopped=True).set_index("fleet").loc["costly", "vms"] == 3
    with pytest.raises(ValueError, match="cannot group"):
        inv.cost(df, by="colour")
    with FleetManager(session) as mgr:
        mgr.destroy("costly")


def test_offers_and_capacity_match_the_providers(sims, session):
    crusoe = sims["crusoe"]
    off = inv.offers("h100:8", session=session)
    assert set(off["gpu"]) == {"h100:8"}
    assert set(off["provider"]) == {"crusoe", "lambda", "nebius"}
    od = off[(off["provider"] == "crusoe") & (off["billing"] == "on-demand")].set_index("region")
    for region in PROVIDERS["crusoe"].regions:
        assert od.loc[region, "available"] == crusoe.on_demand[(region, "h100.8x")]
    lam = off[(off["provider"] == "lambda") & (off["billing"] == "on-demand")]
    assert lam["available"].isna().all() and lam["has_capacity"].notna().all()
    neb = off[off["provider"] == "nebius"]
    assert (neb["price_origin"] == "catalogue").all()
    assert (off["price_per_gpu_hour"] * 8 - off["price_per_hour"]).abs().max() < 0.01

    cap = inv.capacity("h100:8", session=session)
    row = cap[(cap["provider"] == "crusoe") & (cap["region"] == "us-west1")].iloc[0]
    assert row["on_demand_vms"] == crusoe.on_demand[("us-west1", "h100.8x")]
    assert row["capacity"] in ("yes", "no")
    assert (row["capacity"] == "yes") == (row["on_demand_vms"] + row["reserved_vms"] > 0)
    assert set(cap.loc[cap["provider"] == "lambda", "capacity"]) <= {"yes", "no"}
    assert not math.isnan(cap["cheapest_per_hour"].min())
    every = inv.capacity(session=session)
    assert {"a100:8", "h100:8", "h200:8"} <= set(every["gpu"])


def test_no_state_file_means_no_fleets_and_none_is_created(sims, session):
    assert not session.config.state_path.exists()
    assert inv.fleets(session).empty
    assert inv.members(session=session).empty
    assert not session.config.state_path.exists()
    from vmops.errors import NotFound

    with pytest.raises(NotFound):
        inv.members("nope", session=session)
