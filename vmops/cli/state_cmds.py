"""`vm state import|export|check`: move a single user's state into the team store and back, and compare
the record with the providers (parse, call vmops.state.transfer / vmops.fleet.check, render)."""

from __future__ import annotations

import click

from vmops.cli.base import command, group, make_output, output_options
from vmops.cli.output import Column, note, print_json, print_table

DIFF_COLUMNS = (
    Column("fleet", "FLEET", keep=True),
    Column("vm", "VM", keep=True),
    Column("provider", "PROVIDER", keep=True),
    Column("id", "ID"),
    Column("difference", "DIFFERENCE", keep=True, prose=True),
)


@group("state")
def state() -> None:
    """The state store: import/export fleet records, check them against the providers."""


def _transfer_output(res: object, as_json: bool) -> None:
    d = res.to_dict()  # type: ignore[attr-defined]
    if as_json:
        print_json(d)
        return
    print(f"{d['source']} -> {d['destination']}")
    print(f"copied: {', '.join(d['copied']) or '(none)'}")
    if d["unchanged"]:
        print(f"already there, left as they are: {', '.join(d['unchanged'])}")


@command("import", examples=["vm state import --from sqlite:////home/me/.vmops/state.db",
                             "vm state import --from sqlite:///old/state.db -o json"])
@click.option("--from", "from_url", required=True, metavar="URL",
              help="The store to copy from (sqlite:///relative, sqlite:////absolute, postgresql://...)")
@output_options(csv=False)
def import_(from_url: str, output: str, as_json: bool, wide: bool) -> None:
    """Copy every fleet of another store into the configured one (all or nothing; a second run changes
    nothing; a name clash refuses the whole import, exit 13)."""
    from vmops.config import load_config
    from vmops.state.transfer import import_state

    out = make_output(output, as_json, wide)
    _transfer_output(import_state(load_config(), from_url), out.json)


@command("export", examples=["vm state export --to sqlite:///backup.db",
                             "vm state export --to sqlite:////srv/vmops/state.db -o json"])
@click.option("--to", "to_url", required=True, metavar="URL", help="The store to copy to (created if missing)")
@output_options(csv=False)
def export(to_url: str, output: str, as_json: bool, wide: bool) -> None:
    """Copy every fleet of the configured store into another one (the reverse of import)."""
    from vmops.config import load_config
    from vmops.state.transfer import export_state

    out = make_output(output, as_json, wide)
    _transfer_output(export_state(load_config(), to_url), out.json)


@command("check", examples=["vm state check", "vm state check -o json   # exit 14 when they differ"])
@output_options(csv=False)
def check(output: str, as_json: bool, wide: bool) -> int:
    """Compare the record with the providers for every fleet (what reconcile would do), changing nothing:
    exit 0 when they agree, 14 when they do not (or a provider could not be asked)."""
    from vmops.fleet.check import check_state
    from vmops.fleet.manager import FleetManager

    from vmops.cli.vm_cmds import session

    out = make_output(output, as_json, wide)
    with FleetManager(session(), note=note) as mgr:
        report = check_state(mgr)
    if out.json:
        print_json(report.to_dict())
    else:
        rows = [d.to_dict() for d in report.differences]
        asked = (f"the providers that answered (not {' or '.join(sorted(report.unreachable))})"
                 if report.unreachable else "the providers")
        print_table(rows, DIFF_COLUMNS, empty=f"(the record and {asked} agree: {report.fleets} fleet(s))",
                    wide=out.wide)
        for p, why in report.unreachable.items():
            note(f"{p} could not be asked: {why}")
    return report.exit_code


for _c in (import_, export, check):
    state.add_command(_c)
