"""The fleet dashboard behind notebooks/fleet_dashboard.ipynb: ipywidgets over the fleet manager, so the
notebook stays three lines and the logic is testable.

Choose GPU shape, count, policy and name; **Plan** shows the dry run (placements, price per hour, the
fleet's total) and enables **Create**; Create shows live per-provider progress; the status table (fleets,
and the selected fleet's members, counted by their real states) refreshes after every action, on **Refresh**,
and every few seconds with auto-refresh on; **Stop**/**Start**/**Destroy** go through the fleet manager
(``FleetManager.power``/``destroy``): the confirmation shows its Decision (``preview_*``: which VMs are
stopped, started or destroyed, which are left as they are and why, the cost per hour before and after),
and what is then done is exactly that Decision.
Every error is shown in the widget as one sentence (never a traceback).

Actions run synchronously in the kernel (progress still streams to the page while they run); the
auto-refresh runs on a background thread and skips a tick while an action is busy.
"""

from __future__ import annotations

import functools
import html
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

import ipywidgets as w

from vmops.catalogue import all_shapes
from vmops.errors import VmopsError
from vmops.fleet.decision import Decision
from vmops.fleet.policies import DEFAULT_POLICY, POLICIES
from vmops.fleet.progress import ProviderProgress
from vmops.model import GpuShape
from vmops.session import Session

if TYPE_CHECKING:
    from vmops.fleet.report import Table

CONFIRM_VERBS = ("stop", "start", "destroy")
_CSS = """
<style>
.vmops-dash table {border-collapse: collapse; font-size: 12px; margin: 4px 0;}
.vmops-dash th, .vmops-dash td {border: 1px solid #ccc; padding: 2px 8px; text-align: left;}
.vmops-dash th {background: #f0f3f7;}
.vmops-error {color: #b00020; font-weight: bold;}
.vmops-ok {color: #1b5e20;}
.vmops-warn {color: #8a5300;}
</style>
"""


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str = "(none)") -> str:
    if not rows:
        return f"<div class='vmops-dash'><i>{html.escape(empty)}</i></div>"

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        if isinstance(v, float):
            return f"{v:,.2f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(k))}</td>" for k, _ in columns) + "</tr>" for r in rows)
    return f"<div class='vmops-dash'><table><tr>{head}</tr>{body}</table></div>"


PLAN_COLUMNS = (("provider", "Provider"), ("region", "Region"), ("native_type", "Type"), ("capacity", "Capacity"),
                ("count", "VMs"), ("price_per_hour", "$/VM-hour"), ("subtotal_per_hour", "$/hour"))
FLEET_COLUMNS = (("name", "Fleet"), ("gpu", "GPU"), ("count", "Count"), ("policy", "Policy"), ("state", "State"),
                 ("members", "Members"), ("running", "Running"), ("stopped", "Stopped"), ("price_per_hour", "$/hour"))
ACTION_COLUMNS = (("action", "Action"), ("name", "VM"), ("provider", "Provider"), ("id", "Instance"),
                  ("reason", "Why"), ("price_per_hour", "$/hour"))


def _fleet_row(view: Any) -> dict[str, Any]:
    """A fleets-table row from a FleetView: counts by the members' real states (one rule for every view)."""
    c = view.counts
    f = view.fleet
    return {"name": f.name, "gpu": f.gpu, "count": f.count, "policy": f.policy, "state": view.state,
            "members": sum(1 for m in view.members if m.status.may_exist), "running": c.running,
            "stopped": c.stopped, "price_per_hour": c.price_per_hour}


def _touching(d: Decision) -> set[tuple[str, str, str | None]]:
    return {(a.kind.value, a.provider, a.instance_id) for a in d.actions if a.kind.touches_vm}


def _decision_html(d: Decision) -> str:
    """The Decision as the confirmation shows it: its summary, what is done and what is left as it is."""
    data = d.to_dict()
    out = f"<div class='vmops-dash'>{html.escape(d.summary())}</div>"
    acts = [a for a in data["actions"] if a["action"] in ("stop", "start", "destroy")]
    out += _table(acts, ACTION_COLUMNS, "(no VM is touched)")
    if data["held"]:
        out += "<div class='vmops-dash'><b>Left as they are:</b></div>" + _table(data["held"], ACTION_COLUMNS)
    return out
MEMBER_COLUMNS = (("name", "Member"), ("provider", "Provider"), ("id", "Instance"), ("region", "Region"),
                  ("status", "Status"), ("state", "State"), ("price_per_hour", "$/hour"), ("last_error", "Error"))


class FleetDashboard:
    """The widget; display it (it is the last expression of a cell) or use ``.widget``."""

    def __init__(self, session: Session | None = None, *, refresh_interval: float = 5.0) -> None:
        self.session = session or Session()
        self.refresh_interval = refresh_interval
        self._lock = threading.RLock()
        self._planned: tuple[str, int, str, str] | None = None  # the inputs the shown plan is for
        self._pending: tuple[str, str, Decision] | None = None  # (verb, fleet, Decision shown) awaiting yes
        self._auto: threading.Event | None = None
        self.refreshes = 0
        self.last_error: str | None = None

        shapes = [str(s) for s in all_shapes()]
        self.gpu = w.Dropdown(options=shapes, value="h100:8" if "h100:8" in shapes else shapes[0],
                              description="GPU shape")
        self.count = w.BoundedIntText(value=2, min=1, max=256, description="VMs")
        self.policy = w.Dropdown(options=list(POLICIES), value=DEFAULT_POLICY, description="Policy")
        self.name = w.Text(value="", placeholder="generated if empty", description="Name")
        self.plan_button = w.Button(description="Plan (dry run)", icon="list", button_style="info")
        self.create_button = w.Button(description="Create fleet", icon="play", button_style="success",
                                      disabled=True, tooltip="Plan first")
        self.plan_html = w.HTML(value="<i>Choose a shape and count, then Plan to see where it would run and "
                                      "what it costs per hour.</i>")
        self.progress_bar = w.IntProgress(value=0, min=0, max=1, description="Running", bar_style="info")
        self.progress_html = w.HTML(value="")
        self.message = w.HTML(value="")

        self.fleet_select = w.Dropdown(options=[], description="Fleet")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.auto_refresh = w.Checkbox(value=False, description=f"Auto-refresh ({refresh_interval:g}s)")
        self.fleets_html = w.HTML(value="")
        self.members_html = w.HTML(value="")
        self.stop_button = w.Button(description="Stop", icon="pause", button_style="warning")
        self.start_button = w.Button(description="Start", icon="play")
        self.destroy_button = w.Button(description="Destroy", icon="trash", button_style="danger")
        self.confirm_html = w.HTML(value="")
        self.confirm_button = w.Button(description="Yes, do it", button_style="danger")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm_box = w.HBox([self.confirm_html, self.confirm_button, self.cancel_button],
                                  layout=w.Layout(display="none"))

        self.plan_button.on_click(self._guard(lambda _b: self.plan()))
        self.create_button.on_click(self._guard(lambda _b: self.create()))
        self.refresh_button.on_click(self._guard(lambda _b: self.refresh()))
        self.stop_button.on_click(self._guard(lambda _b: self.request("stop")))
        self.start_button.on_click(self._guard(lambda _b: self.request("start")))
        self.destroy_button.on_click(self._guard(lambda _b: self.request("destroy")))
        self.confirm_button.on_click(self._guard(lambda _b: self.confirm()))
        self.cancel_button.on_click(self._guard(lambda _b: self.cancel()))
        self.fleet_select.observe(self._guard(lambda _c: self._show_members()), names="value")
        self.auto_refresh.observe(self._guard(lambda c: self._set_auto(bool(c["new"]))), names="value")
        for box in (self.gpu, self.count, self.policy, self.name):
            box.observe(lambda _c: self._inputs_changed(), names="value")

        self.widget = w.VBox([
            w.HTML(_CSS + "<h3 style='margin:4px 0'>vmops fleet dashboard</h3>"),
            w.HBox([self.gpu, self.count]),
            w.HBox([self.policy, self.name]),
            w.HBox([self.plan_button, self.create_button]),
            self.plan_html,
            w.HBox([self.progress_bar, self.progress_html]),
            self.message,
            w.HTML("<h4 style='margin:8px 0 2px'>Fleets</h4>"),
            w.HBox([self.fleet_select, self.refresh_button, self.auto_refresh]),
            self.fleets_html,
            self.members_html,
            w.HBox([self.stop_button, self.start_button, self.destroy_button]),
            self.confirm_box,
        ], layout=w.Layout(width="100%"))
        self._guard(lambda: self.refresh(sync=False))()

    # ---- display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ---- messages ------------------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Run a handler; any error becomes one sentence in the widget, never a traceback."""

        @functools.wraps(fn)
        def run(*args: Any) -> Any:
            try:
                return fn(*args)
            except VmopsError as e:
                self.error(e.render(), getattr(e, "tables", ()))
            except Exception as e:  # a bug: still a sentence in the widget
                self.error(f"internal error ({type(e).__name__}: {e}); please report it")
            return None

        return run

    def error(self, text: str, details: Sequence[Table] = ()) -> None:
        """Show an error: its sentence, then its tables of details (``err.tables``: each provider's cause, a
        fleet's attempts) the way the widget shows every table."""
        self.last_error = text
        first, _, rest = text.partition("\n")
        extra = f"<pre style='margin:2px 0'>{html.escape(rest)}</pre>" if rest else ""
        tables = "".join((f"<div>{html.escape(t.title)}</div>" if t.title else "") + _table(t.rows, t.columns)
                         for t in details)
        self.message.value = f"<div class='vmops-error'>&#9888; {html.escape(first)}</div>{extra}{tables}"

    def info(self, text: str, warnings: Sequence[str] = ()) -> None:
        """Show an outcome, and under it what the user should know about it (``warnings``, one line each)."""
        self.last_error = None
        self.message.value = f"<div class='vmops-ok'>{html.escape(text)}</div>" + "".join(
            f"<div class='vmops-warn'>&#9888; {html.escape(w)}</div>" for w in warnings)

    # ---- plan / create -------------------------------------------------------------------------
    def _spec(self) -> Any:
        from vmops.fleet.manager import FleetSpec

        try:
            shape = GpuShape.parse(self.gpu.value)
        except ValueError as e:
            from vmops.errors import UsageError

            raise UsageError(str(e)) from None
        return FleetSpec(gpu=shape, count=int(self.count.value), name=self.name.value.strip() or None,
                         policy=self.policy.value)

    def _manager(self, progress: Callable[[list[ProviderProgress]], None] | None = None) -> Any:
        from vmops.fleet.manager import FleetManager

        return FleetManager(self.session, progress=progress, note=self.info)

    def _inputs(self) -> tuple[str, int, str, str]:
        """What a plan depends on (a name may be a fleet to resume: its plan is only the rest)."""
        return (self.gpu.value, int(self.count.value), self.policy.value, self.name.value.strip())

    def _inputs_changed(self) -> None:
        if self._planned != self._inputs():
            self.create_button.disabled = True
            self.create_button.tooltip = "Plan first"

    def plan(self) -> Any:
        """The dry run: where the fleet would go and what it would cost per hour. Changes nothing."""
        with self._lock:
            spec = self._spec()
            with self._manager() as mgr:
                preview = mgr.preview_create(spec)
            plan = preview.plan
            total = plan.total_per_hour
            summary = (f"<b>Plan:</b> {plan.planned} of {plan.count} x {plan.gpu} by policy <b>{plan.policy}</b>; "
                       f"total <b>${total:,.2f}/hour</b> (${total * 24:,.2f}/day)" if total is not None
                       else f"<b>Plan:</b> {plan.planned} of {plan.count} x {plan.gpu}; total price unknown")
            resume = preview.summary()
            if resume is not None:
                summary = f"{html.escape(resume)} ({html.escape('; '.join(preview.terms))})<br>" + summary
            short = (f"<div class='vmops-error'>Short by {plan.shortfall} VM(s): not enough capacity now.</div>"
                     if plan.shortfall else "")
            skipped = "".join(f"<li>{html.escape(s.provider)} {html.escape(s.region or '')}: "
                              f"{html.escape(s.reason)}</li>" for s in plan.skipped)
            skipped = f"<details><summary>Not used ({len(plan.skipped)})</summary><ul>{skipped}</ul></details>" \
                if plan.skipped else ""
            fallbacks = plan.fallbacks()
            offer_columns = [c for c in PLAN_COLUMNS if c[0] not in ("count", "subtotal_per_hour")]
            fallbacks_html = (f"<details><summary>If a chosen option refuses, then ({len(fallbacks)})</summary>"
                              + _table(fallbacks, offer_columns) + "</details>" if fallbacks else "")
            self.plan_html.value = (f"<div class='vmops-dash'>{summary}</div>{short}"
                                    + _table(plan.rows(), PLAN_COLUMNS, "(nothing can be placed)") + fallbacks_html
                                    + skipped)
            self.last_plan = plan
            self._planned = self._inputs()
            self.create_button.disabled = plan.planned == 0
            self.create_button.tooltip = "Create the planned fleet" if plan.planned else "Nothing to create"
            self.info("Planned (dry run): nothing was created. Press Create fleet to make it.")
            return plan

    def _on_progress(self, snap: list[ProviderProgress]) -> None:
        running = sum(p.running for p in snap)
        self.progress_bar.value = min(running, self.progress_bar.max)
        self.progress_html.value = " &nbsp;|&nbsp; ".join(
            f"<b>{html.escape(p.provider)}</b>: {html.escape(p.counts())}" for p in snap)

    def create(self) -> Any:
        """Create the planned fleet (plan first), with live per-provider progress."""
        with self._lock:
            if self.create_button.disabled:
                self.error("Plan the fleet first (press Plan), then create it")
                return None
            spec = self._spec()
            self.create_button.disabled = True
            self.plan_button.disabled = True
            self.progress_bar.max = spec.count
            self.progress_bar.value = 0
            self.progress_bar.bar_style = "info"
            self.info(f"Creating {spec.count} x {spec.gpu} ...")
            try:
                with self._manager(self._on_progress) as mgr:
                    result = mgr.create(spec)
            except Exception:
                self.progress_bar.bar_style = "danger"
                raise
            finally:
                self.plan_button.disabled = False
                self._planned = None
                self._inputs_changed()
                self.refresh(sync=False)
            self.progress_bar.value = len(result.running)
            problem = result.error()  # creates whose outcome is unknown: VMs that may exist and bill
            self.progress_bar.bar_style = "warning" if problem is not None else "success"
            short = f"; short by {result.shortfall}" if result.shortfall else ""
            self.info(f"Fleet {result.fleet.name!r} is {result.fleet.state.value}: "
                      f"{len(result.running)} of {spec.count} running{short}.",
                      [*result.left_out(), *([problem.render()] if problem is not None else [])])
            self.refresh(select=result.fleet.name, sync=False)  # just recorded: what a refresh would show
            return result

    # ---- status --------------------------------------------------------------------------------
    def _views(self) -> list[Any]:
        """Every recorded fleet as a FleetView (counts by the members' real states; state shows degraded)."""
        with self._manager() as mgr:
            return mgr.list()

    def refresh(self, select: str | None = None, sync: bool = True) -> None:
        """Refresh the fleets table, and the selected fleet from its providers (``sync``)."""
        with self._lock:
            views = self._views()
            names = [v.fleet.name for v in views if v.state != "destroyed"] + \
                    [v.fleet.name for v in views if v.state == "destroyed"]
            current = select or self.fleet_select.value
            if current not in names:
                current = names[0] if names else None
            seen: Any = None  # the selected fleet as its providers were just seen (its unobserved ones marked)
            if sync and current:
                with self._manager() as mgr:
                    seen = mgr.status(current, refresh=True)
                for msg in seen.warnings:
                    self.error(msg)
                views = self._views()
            self.fleet_select.options = names
            self.fleet_select.value = current
            self.fleets_html.value = _table([_fleet_row(v) for v in views], FLEET_COLUMNS, "(no fleets recorded)")
            self._show_members(views, seen)
            self.refreshes += 1

    def _show_members(self, views: Sequence[Any] | None = None, seen: Any = None) -> None:
        """The selected fleet's members; ``seen``: that fleet just observed (FleetView.shown: a member's status
        and state as the CLI shows them)."""
        name = self.fleet_select.value
        if not name:
            self.members_html.value = ""
            return
        view = next((v for v in (views if views is not None else self._views()) if v.fleet.name == name), None)
        marks = seen if seen is not None and seen.fleet.name == name else view
        rows = [marks.shown(m) for m in view.members] if view is not None else []
        self.members_html.value = (f"<div class='vmops-dash'><b>Members of {html.escape(name)}</b></div>"
                                   + _table(rows, MEMBER_COLUMNS, "(no members)"))

    def _set_auto(self, on: bool) -> None:
        if self._auto is not None:
            self._auto.set()
            self._auto = None
        if not on:
            return
        stop = threading.Event()
        self._auto = stop

        def loop() -> None:
            while not stop.wait(self.refresh_interval):
                if self._lock.acquire(blocking=False):
                    try:
                        self._guard(self.refresh)()
                    finally:
                        self._lock.release()

        threading.Thread(target=loop, name="vmops-dashboard-refresh", daemon=True).start()

    # ---- stop / start / destroy with confirmation ----------------------------------------------
    def _preview(self, verb: str, name: str) -> Decision:
        with self._manager() as mgr:
            if verb == "destroy":
                return mgr.preview_destroy(name)
            return mgr.preview_power(name, start=verb == "start")

    def request(self, verb: str) -> None:
        """Show what ``verb`` (stop, start or destroy) would do to the selected fleet (the fleet manager's
        Decision) and ask for confirmation."""
        if verb not in CONFIRM_VERBS:
            raise ValueError(f"unknown action {verb!r}")
        name = self.fleet_select.value
        if not name:
            self.error("Select a fleet first")
            return
        decision = self._preview(verb, name)
        self._pending = (verb, name, decision)
        warn = " Its VMs will be deleted and stop billing." if verb == "destroy" else ""
        self.confirm_html.value = (f"<b>{verb.capitalize()} fleet {html.escape(name)}?</b>{html.escape(warn)}"
                                   + _decision_html(decision))
        self.confirm_button.description = f"Yes, {verb} {name}"
        self.confirm_box.layout.display = "flex"

    def cancel(self) -> None:
        self._pending = None
        self.confirm_box.layout.display = "none"
        self.info("Cancelled; nothing was changed.")

    def confirm(self) -> Any:
        """Carry out the confirmed action through the fleet manager, exactly as shown: if the fleet changed
        since (the Decision now touches other VMs), nothing is done and the new Decision is shown instead."""
        from vmops.fleet.manager import Cancelled

        if self._pending is None:
            self.error("Nothing to confirm")
            return None
        verb, name, shown = self._pending
        self._pending = None
        self.confirm_box.layout.display = "none"

        def same(d: Decision) -> bool:
            return _touching(d) == _touching(shown)

        with self._lock:
            try:
                with self._manager() as mgr:
                    if verb == "destroy":
                        view = mgr.destroy(name, confirm=same)
                        self.info(f"Fleet {name!r} is {view.fleet.state.value}.")
                        return view
                    view = mgr.power(name, start=verb == "start", confirm=same)
            except Cancelled:
                self.request(verb)
                self.error(f"Fleet {name!r} changed since this was shown; nothing was done. Review the new "
                           "confirmation.")
                return None
            finally:
                self.refresh(select=name)
            done = len([a for a in view.decision.actions if a.kind.touches_vm])
            past = "stopped" if verb == "stop" else "started"
            held = f" ({len(view.decision.held)} left as they are: " + "; ".join(
                f"{h.name}: {h.reason}" for h in view.decision.held) + ")" if view.decision.held else ""
            self.info(f"Fleet {name!r}: {done} member(s) {past}{held}.")
            return view

    def close(self) -> None:
        self._set_auto(False)
