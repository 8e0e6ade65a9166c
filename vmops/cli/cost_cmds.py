"""`vm cost` / `inv vm.cost`: hourly, daily and monthly cost of what runs now, grouped by provider, GPU
shape, fleet and billing. Reads from the same function as the notebooks (``vmops.inventory.cost``);
pandas is imported inside the task body only."""

from __future__ import annotations

import sys
from typing import Any

import click

from vmops.cli.base import command, make_output, output_options, provider_option
from vmops.cli.output import Column, print_json, print_table, usage, warn
from vmops.cli.vm_cmds import raise_failures, session

GROUPS = ("provider", "gpu", "fleet", "billing", "region", "state")
DEFAULT_BY = "provider,gpu,fleet,billing"
_HEADERS = {"provider": "PROVIDER", "gpu": "GPU", "fleet": "FLEET", "billing": "BILLING", "region": "REGION",
            "state": "STATE"}
_VALUES = (
    Column("vms", "VMS", ">"),
    Column("gpus", "GPUS", ">"),
    Column("hourly", "$/HOUR", ">"),
    Column("daily", "$/DAY", ">"),
    Column("monthly", "$/MONTH", ">"),
    Column("price_origins", "PRICE FROM"),
)


def parse_by(by: str) -> list[str]:
    keys = [k.strip().lower() for k in (by or "").split(",") if k.strip()]
    bad = [k for k in keys if k not in GROUPS]
    if bad:
        raise usage(f"cannot group cost by {', '.join(bad)}", hint=f"Use a comma list of {', '.join(GROUPS)}")
    return keys


@command("cost", examples=[
    "vm cost                     # by provider, GPU, fleet and billing",
    "vm cost --by fleet -o csv   # per fleet, as CSV",
    "vm cost -p lambda --include-stopped",
])
@click.option("--by", default=DEFAULT_BY, show_default=True, help=f"Comma list of groups, any of {', '.join(GROUPS)}")
@provider_option("Only this provider (default: every enabled provider)")
@click.option("--include-stopped", is_flag=True, help="Also count stopped VMs (they normally do not bill for GPUs)")
@output_options()
def cost(by: str, provider: str | None, include_stopped: bool, output: str, as_json: bool, wide: bool) -> None:
    """What the VMs that bill now cost: hourly, daily (x24) and monthly (x730), with where each price came from."""
    out = make_output(output, as_json, wide)
    fmt = out.fmt
    keys = parse_by(by)
    with session() as s:
        names = s.provider_names(provider)
        import warnings

        from vmops.cli.preload import preload

        inventory_module = preload("vmops.inventory")  # pandas loads while the providers answer
        listed = s.instances(names)
        inventory: Any = inventory_module()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", inventory.InventoryWarning)  # reported below, once, on stderr
            frame = inventory.instances_frame([i for n in names for i in listed.results.get(n, [])], session=s,
                                              missing=listed.reasons())
            table = inventory.cost(frame, by=keys, include_stopped=include_stopped)
        totals = inventory.total_cost(table)
        if fmt == "csv":
            table.to_csv(sys.stdout, index=False)
        elif fmt == "json":
            rows = [{k: _plain(v) for k, v in r.items()} for r in table.to_dict(orient="records")]
            print_json({"groups": rows, "total": totals, "missing_providers": inventory.missing_providers(table)})
        else:
            columns = [Column(k, _HEADERS[k], keep=True) for k in keys] + list(_VALUES)
            rows = table.to_dict(orient="records")
            if keys and rows:
                rows.append({keys[0]: "TOTAL", "vms": int(table["vms"].sum()), "gpus": int(table["gpus"].sum()),
                             **totals})
            print_table(rows, columns, empty="(nothing bills)", wide=out.wide)
            unpriced = int(table["unpriced_vms"].sum())
            if unpriced:
                warn(f"{unpriced} VM(s) have no known price and are not in the sums")
        if listed.failures:
            warn("cost is incomplete: the figures above leave out " + ", ".join(listed.failures))
        raise_failures(listed.failures, names, "listed")


def _plain(v: Any) -> Any:
    """numpy scalars -> Python values for JSON."""
    if hasattr(v, "item"):
        return v.item()
    return v
