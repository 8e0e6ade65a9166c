"""The dashboard's logic without a kernel: errors land in the widget, auto-refresh refreshes, and an
action needs its confirmation."""

from __future__ import annotations

import time

from tests.conftest import both_dialects
from tests.fleet.conftest import dead_url
from tests.inventory.conftest import FAST
from vmops.dashboard import FleetDashboard
from vmops.session import Session
from vmops.sim.common import Fault

pytestmark = both_dialects


def _made(dash: FleetDashboard, gpu: str, count: int, name: str) -> None:
    """Plan and create a fleet through the widget, as a user clicks it; it must succeed."""
    dash.gpu.value, dash.count.value, dash.name.value = gpu, count, name
    dash.plan_button.click()
    dash.create_button.click()
    assert dash.last_error is None, dash.last_error


def test_errors_show_in_the_widget_and_nothing_is_created_without_a_plan(sims, vm_env, dialect):
    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s, refresh_interval=0.05)
        dash.create_button.click()  # disabled until planned: a press is refused in the widget
        assert "Plan the fleet first" in dash.last_error
        sims["crusoe"].faults.add(Fault(endpoint="*", kind="error", status=503))
        sims["lambda"].faults.add(Fault(endpoint="*", kind="error", status=503))
        sims["nebius"].faults.add(Fault(endpoint="*", kind="error", grpc_code="UNAVAILABLE"))
        dash.gpu.value, dash.count.value = "h100:1", 2
        dash.plan_button.click()
        assert dash.create_button.disabled
        assert "Short by 2" in dash.plan_html.value and "could not be read" in dash.plan_html.value
        assert all(sims[p].requests.mutating_count() == 0 for p in sims)
        dash.stop_button.click()
        assert dash.last_error == "Select a fleet first" and dash.confirm_box.layout.display == "none"


def test_auto_refresh_and_confirmation(sims, vm_env):
    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s, refresh_interval=0.05)
        dash.gpu.value, dash.count.value, dash.name.value = "h100:8", 1, "auto"
        dash.plan_button.click()
        dash.create_button.click()
        assert dash.last_error is None and dash.fleet_select.value == "auto"
        before = dash.refreshes
        dash.auto_refresh.value = True
        deadline = time.monotonic() + 10
        while dash.refreshes < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        dash.auto_refresh.value = False
        assert dash.refreshes >= before + 3
        made = [i for i in s.instances().flat() if i.name.startswith("vmops-auto-")]
        assert len(made) == 1
        dash.destroy_button.click()
        assert [i for i in s.instances().flat() if i.name.startswith("vmops-auto-")] == made  # not yet confirmed
        dash.confirm_button.click()
        assert "destroyed" in dash.message.value
        assert [i for i in s.instances().flat() if i.name.startswith("vmops-auto-")] == []
        dash.close()


def test_stop_start_go_through_the_fleet_manager_and_show_its_decision(sims, vm_env):
    """Stop shows the Decision (what is stopped, what cannot be, the cost after) and does exactly it; the
    status table counts stopped members as stopped; a fleet that changed since the confirmation was shown is
    not touched."""
    from vmops.model import State

    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s)
        _made(dash, "h100:1", 3, "pw")
        mine = {i.provider: i for i in s.instances().flat() if i.name.startswith("vmops-pw-")}
        assert set(mine) == {"crusoe", "lambda", "nebius"}

        dash.stop_button.click()
        question = dash.confirm_html.value
        assert "Stop fleet pw?" in question and "2 stop" in question and "/hour -&gt; $" in question
        assert "lambda cannot stop or start VMs" in question  # held, and shown as left alone
        dash.confirm_button.click()
        assert dash.last_error is None, dash.last_error
        assert "2 member(s) stopped" in dash.message.value and "left as they are" in dash.message.value
        states = {i.provider: i.state for i in s.instances().flat() if i.name.startswith("vmops-pw-")}
        assert states == {"crusoe": State.STOPPED, "lambda": State.RUNNING, "nebius": State.STOPPED}
        row = dash.fleets_html.value
        assert "pw" in row and "<td>1</td><td>2</td>" in row  # running 1, stopped 2: from the real states

        dash.start_button.click()  # shows starting crusoe and nebius ...
        s.provider("crusoe").start(mine["crusoe"].id)  # ... but someone starts crusoe meanwhile
        dash.confirm_button.click()
        assert "changed since this was shown" in dash.last_error
        assert dash.confirm_box.layout.display == "flex" and "1 start" in dash.confirm_html.value
        states = {i.provider: i.state for i in s.instances().flat() if i.name.startswith("vmops-pw-")}
        assert states["nebius"] is State.STOPPED  # nothing was done on the changed confirmation
        dash.confirm_button.click()
        assert "1 member(s) started" in dash.message.value
        dash.destroy_button.click()
        assert "3 destroy" in dash.confirm_html.value
        dash.confirm_button.click()
        assert "is destroyed" in dash.message.value
        assert [i for i in s.instances().flat() if i.name.startswith("vmops-pw-")] == []
        dash.close()


def test_a_create_whose_providers_all_went_down_shows_each_cause(sims, vm_env):
    """Planned while the providers answered, created after all went down: the widget shows the sentence and,
    under it, each provider's cause (the error's table) as a table."""
    with Session(env={**vm_env, "VMOPS_BREAKER_SECONDS": "0"}, timing=FAST) as s:
        dash = FleetDashboard(s, refresh_interval=0.05)
        dash.gpu.value, dash.count.value, dash.name.value = "h100:1", 2, "gone"
        dash.plan_button.click()
        assert not dash.create_button.disabled
        sims["crusoe"].faults.add(Fault(endpoint="*", kind="error", status=503))
        sims["lambda"].faults.add(Fault(endpoint="*", kind="error", status=503))
        sims["nebius"].faults.add(Fault(endpoint="*", kind="error", grpc_code="UNAVAILABLE"))
        dash.create_button.click()
        assert (dash.last_error or "").startswith("no provider could be asked for h100:1 capacity; "
                                                  "nothing was created")
        shown = dash.message.value
        assert "<th>PROVIDER</th><th>WHY</th>" in shown
        assert all(f"<tr><td>{p}</td>" in shown for p in ("crusoe", "lambda", "nebius"))
        assert all(sims[p].requests.mutating_count() == 0 for p in sims)


def test_create_says_which_provider_it_could_not_ask(sims, vm_env):
    """A provider that is down: the fleet is made without it, and the widget says so under the outcome."""
    with Session(env={**vm_env, "VMOPS_LAMBDA_URL": dead_url(), "VMOPS_BREAKER_SECONDS": "0"}, timing=FAST) as s:
        dash = FleetDashboard(s)
        _made(dash, "h100:1", 2, "lo")
        assert "is active" in dash.message.value
        assert "vmops-warn" in dash.message.value and "lambda was not used" in dash.message.value
        dash.close()


def test_members_whose_provider_cannot_be_observed_are_marked_as_last_recorded(sims, vm_env):
    """The same rule as `vm fleet status` (FleetView.shown): a member whose provider is down shows its
    recorded state with a ``?``, and the widget says why; the others are shown as their providers report."""
    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s)
        _made(dash, "h100:1", 3, "half")
        dash.close()
    with Session(env={**vm_env, "VMOPS_LAMBDA_URL": dead_url(), "VMOPS_BREAKER_SECONDS": "0"}, timing=FAST) as s:
        dash = FleetDashboard(s)
        dash.refresh(select="half")
        assert "lambda: could not refresh" in (dash.last_error or ""), dash.last_error
        html = dash.members_html.value
        assert html.count("running") >= 3, html
        lambda_row = next(r for r in html.split("<tr") if ">lambda<" in r)
        assert lambda_row.count("running?") == 2 and html.count("running?") == 2, html  # its status and state
        dash.close()
    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s)
        dash.refresh(select="half")
        assert "running?" not in dash.members_html.value
        dash.fleet_select.value = "half"
        dash.destroy_button.click()
        dash.confirm_button.click()
        assert "destroyed" in dash.message.value, dash.message.value
        dash.close()


def test_planning_an_unfinished_fleets_name_shows_the_resume_and_renaming_asks_for_a_new_plan(sims, vm_env):
    """The Plan button is the create's own preview (FleetManager.preview_create): for a half-made fleet's name
    it shows the resume and plans only the missing VM; editing the name makes that plan stale."""
    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s, refresh_interval=0.05)
        _made(dash, "h100:1", 2, "halfd")
        from vmops.fleet.manager import FleetManager

        with FleetManager(s) as mgr:
            f = mgr.store.get_fleet("halfd")
            with mgr.store.write() as db:
                db.execute("UPDATE fleet SET state='partial', count=3, owner_pid=NULL WHERE id=?", (f.id,))
        dash.count.value = 3
        dash.plan_button.click()
        assert dash.last_error is None, dash.last_error
        assert "Resume of fleet halfd (was partial): keeps 2 of its 3 VM(s); creates 1 more" in dash.plan_html.value
        assert "If a chosen option refuses, then" in dash.plan_html.value  # the failover options, as the CLI shows
        assert dash.last_plan.count == 1 and not dash.create_button.disabled
        dash.name.value = "other"
        assert dash.create_button.disabled  # the plan shown was for another name
        with FleetManager(s) as mgr:
            mgr.destroy("halfd")


def test_a_create_with_unconfirmed_members_is_a_warning_not_a_success(sims, vm_env):
    """Crusoe accepts its creates, then cannot be read while they boot: the fleet is not rolled back and the
    widget says which VMs are unconfirmed (they may bill) instead of showing a green success."""
    sims["crusoe"].faults.add(Fault(endpoint="list_instances", kind="error", status=503, nth=tuple(range(2, 500))))
    sims["crusoe"].faults.add(Fault(endpoint="get_instance", kind="error", status=503))
    with Session(env=vm_env, timing=FAST) as s:
        dash = FleetDashboard(s, refresh_interval=0.05)
        dash.gpu.value, dash.count.value, dash.name.value, dash.policy.value = "h100:1", 6, "unsure", "spread"
        dash.plan_button.click()
        dash.create_button.click()
        assert dash.last_error is None, dash.last_error
        assert dash.progress_bar.bar_style == "warning"
        assert "is creating" in dash.message.value and "unknown outcome" in dash.message.value
        assert "vm fleet reconcile unsure" in dash.message.value
