"""Both notebooks executed headless (nbclient) against simulators started by the test, plus the rendered
check: the executed dashboard exported to HTML with its widget state and photographed by headless Chromium."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import both_dialects
from tests.inventory.conftest import FAST, make_crashed_fleet
from tests.notebooks import render
from vmops.session import Session
from vmops.sim.common import Fault

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 240


@pytest.fixture
def session(vm_env) -> Iterator[Session]:
    s = Session(env=vm_env, timing=FAST)
    yield s
    s.close()


def kernel_env(vm_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    env.update(vm_env)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


class Kernel:
    """A notebook executing in a live kernel: run its cells, then inject more."""

    def __init__(self, nb: Any, client: NotebookClient) -> None:
        self.nb = nb
        self.client = client

    def run_all(self) -> None:
        for i, cell in enumerate(self.nb.cells):
            self.client.execute_cell(cell, i)

    def run(self, source: str) -> str:
        """Append a code cell, execute it and return its text output (an error output fails the test)."""
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
        return text_of(cell)

    def widget_state(self) -> dict[str, Any]:
        self.client.set_widgets_metadata()
        return self.nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def text_of(cell: Any) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            for mime in ("text/plain", "text/html"):
                if mime in o.data:
                    parts.append(o.data[mime])
        elif o.output_type == "error":
            parts.append("\n".join(o.traceback))
    return "\n".join(parts)


def open_kernel(path: Path, tmp: Path) -> tuple[Any, NotebookClient]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp)}})
    return nb, client


def test_committed_notebooks_have_no_outputs():
    for path in (NOTEBOOKS / "inventory.ipynb", NOTEBOOKS / "fleet_dashboard.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, path
        assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path} has outputs"
        assert "widgets" not in nb.metadata


def _all_text(nb: Any) -> str:
    return "\n".join(text_of(c) for c in nb.cells if c.cell_type == "code")


@both_dialects
def test_inventory_notebook_runs_top_to_bottom(sims, vm_env, session, tmp_path):
    crashed = make_crashed_fleet(session)
    nb, client = open_kernel(NOTEBOOKS / "inventory.ipynb", tmp_path)
    before = {p: sum(sim.requests.counts().values()) for p, sim in sims.items()}
    client.execute(env=kernel_env(vm_env))
    # the kernel's vmops asked the simulators of the dialect under test (its environment is ``vm_env``)
    assert all(sum(sim.requests.counts().values()) > before[p] for p, sim in sims.items())
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = _all_text(nb)
    assert "providers: crusoe, lambda, nebius" in text
    assert "missing providers: none" in text
    assert crashed.unrecorded.name in text and crashed.vanished_name in text  # the orphan view
    assert "unrecorded_vm" in text and "missing_vm" in text
    assert "2 orphan(s)" in text
    total = session_total(session)
    assert f"TOTAL: ${total:,.2f}/hour" in text
    assert "We run " in text and "costing $" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the cost plots
    assert "gpu-h100-sxm/8gpu-160vcpu-1600gb" not in text or "h100:8" in text


def session_total(session: Session) -> float:
    from vmops import inventory as inv

    return inv.total_cost(inv.cost(inv.instances(session)))["hourly"]


@both_dialects
def test_inventory_notebook_with_a_provider_down(sims, vm_env, tmp_path):
    sims["lambda"].faults.add(Fault(endpoint="*", kind="error", status=503))
    nb, client = open_kernel(NOTEBOOKS / "inventory.ipynb", tmp_path)
    client.execute(env=kernel_env({**vm_env, "VMOPS_OP_TIMEOUT": "5"}))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = _all_text(nb)
    assert "WARNING: lambda: listing instances failed" in text
    assert "missing providers: ['lambda']" in text


DRIVE_CREATE = """
import json
dash.gpu.value = "h100:1"
dash.count.value = 3
dash.policy.value = "spread"
dash.name.value = "nbfleet"
dash.plan_button.click()
planned = dict(plan=dash.plan_html.value, create_disabled=dash.create_button.disabled, message=dash.message.value)
dash.create_button.click()
print(json.dumps(dict(planned=planned, message=dash.message.value, progress=dash.progress_html.value,
                      bar=dash.progress_bar.value, fleets=dash.fleets_html.value, members=dash.members_html.value,
                      selected=dash.fleet_select.value, error=dash.last_error)))
"""

DRIVE_ERROR = """
dash.name.value = "Bad Name!"
dash.plan_button.click()
dash.plan_button.click()
print(json.dumps(dict(message=dash.message.value, error=dash.last_error)))
dash.name.value = ""
"""

DRIVE_CANCEL = """
dash.destroy_button.click()
asked = dict(display=dash.confirm_box.layout.display, question=dash.confirm_html.value)
dash.cancel_button.click()
print(json.dumps(dict(asked=asked, after=dash.confirm_box.layout.display, message=dash.message.value)))
"""

DRIVE_DESTROY = """
dash.stop_button.click()
dash.confirm_button.click()
stopped = dash.message.value
dash.destroy_button.click()
dash.confirm_button.click()
print(json.dumps(dict(stopped=stopped, message=dash.message.value, fleets=dash.fleets_html.value,
                      error=dash.last_error)))
"""


def _fleet_vms(session: Session, fleet: str) -> list[Any]:
    return [i for i in session.instances().flat() if i.name.startswith(f"vmops-{fleet}-")]


def _models(state: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [m["state"] for m in state.values() if m["model_name"] == name]


@both_dialects
def test_fleet_dashboard_drives_a_fleet_and_renders(sims, vm_env, session, tmp_path, dialect):
    tools = render.ensure_render_tools()  # installs Chromium / the widget JS if missing; FAILS if it cannot
    nb, client = open_kernel(NOTEBOOKS / "fleet_dashboard.ipynb", tmp_path)
    with client.setup_kernel(env=kernel_env(vm_env)):
        k = Kernel(nb, client)
        k.run_all()
        own_cells = len(nb.cells)
        shown = [o for o in nb.cells[-1].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert shown, "the dashboard cell displays no widget"

        out = json.loads(k.run(DRIVE_CREATE))
        assert out["error"] is None, out["error"]
        assert "Plan:" in out["planned"]["plan"] and "/hour" in out["planned"]["plan"]
        assert out["planned"]["create_disabled"] is False and "dry run" in out["planned"]["message"]
        assert "nbfleet" in out["message"] and "3 of 3 running" in out["message"]
        assert out["bar"] == 3 and all(p in out["progress"] for p in ("crusoe", "lambda", "nebius"))
        assert out["selected"] == "nbfleet" and "nbfleet" in out["fleets"]
        # ... and the fleet exists AT THE PROVIDERS, asked from this process, not from vmops' record
        vms = _fleet_vms(session, "nbfleet")
        assert len(vms) == 3 and {v.provider for v in vms} == {"crusoe", "lambda", "nebius"}
        assert all(v.state.value == "running" for v in vms)

        state = k.widget_state()
        html_values = [m.get("value", "") for m in _models(state, "HTMLModel")]
        assert any("3 of 3 running" in v for v in html_values)
        assert any("nbfleet" in v and "<table>" in v for v in html_values)
        assert [m["value"] for m in _models(state, "IntProgressModel")] == [3]
        buttons = {m["description"] for m in _models(state, "ButtonModel")}
        assert {"Plan (dry run)", "Create fleet", "Stop", "Start", "Destroy"} <= buttons
        snapshot = copy.deepcopy(nb)
        snapshot.cells = snapshot.cells[:own_cells]  # the page shows the notebook's own cells, not the test's

        err = json.loads(k.run(DRIVE_ERROR))
        assert "not a valid fleet name" in err["error"] and "vmops-error" in err["message"]
        assert "Traceback" not in err["message"]

        cancel = json.loads(k.run(DRIVE_CANCEL))
        assert cancel["asked"]["display"] == "flex" and "Destroy fleet nbfleet?" in cancel["asked"]["question"]
        assert cancel["after"] == "none" and "nothing was changed" in cancel["message"]
        assert len(_fleet_vms(session, "nbfleet")) == 3

        done = json.loads(k.run(DRIVE_DESTROY))
        assert done["error"] is None, done["error"]
        assert "stopped" in done["stopped"] and "is destroyed" in done["message"]
        assert _fleet_vms(session, "nbfleet") == []  # gone at the providers

    # -- the rendered check: what a person would see -------------------------------------------------
    if dialect != "reference":  # one rendering (the README's screenshot) is enough: the page is the same widgets
        return
    out_dir = render.ARTIFACTS / "dashboard"
    shutil.rmtree(out_dir, ignore_errors=True)
    html_path = render.export_html(snapshot, out_dir, tools)
    page = html_path.read_text()
    assert "application/vnd.jupyter.widget-state+json" in page
    assert "cdn.jsdelivr" not in page and 'src="https://' not in page
    dom = render.dump_dom(tools, html_path)
    for cls in ("jupyter-widgets", "widget-button", "widget-dropdown", "widget-html", "widget-inline-hbox"):
        assert cls in dom, f"rendered page lacks {cls}"
    assert "Create fleet" in dom and "nbfleet" in dom and "3 of 3 running" in dom
    png = render.screenshot(tools, html_path, render.ARTIFACTS / "dashboard.png")
    size, colours, inked = render.image_stats(png)
    assert size == (1280, 1100)
    assert colours > 50 and inked > 0.03, (colours, inked)
    # The README's screenshot is this artifact; refresh it deliberately (VMOPS_UPDATE_SCREENSHOT=1) so a test
    # run does not dirty the work tree with a new PNG every time.
    if os.environ.get("VMOPS_UPDATE_SCREENSHOT"):
        docs_img = ROOT / "docs" / "img" / "dashboard.png"
        docs_img.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(png, docs_img)
