"""How `vm` reads what a user types and lays out what it prints: the pure helpers behind the CLI (the
commands themselves are tested as real processes in tests/cli)."""

from vmops.cli.base import suggest
from vmops.cli.inv import to_argv
from vmops.cli.main import debug_first, debug_requested
from vmops.cli.output import GAP, Column, fit_columns, prose_widths


def test_debug_only_as_a_global_flag():
    assert debug_requested(["vm", "-d", "list"])
    assert debug_requested(["vm", "list", "--debug"])
    assert not debug_requested(["vm", "fleet", "create", "-d"])
    assert not debug_requested(["vm", "get", "--", "--debug"])  # after --, an argument (a VM's name)


def test_a_debug_flag_after_the_command_is_the_global_one():
    """"Rerun with --debug" is usually done by adding it at the end: click takes it before the command."""
    assert debug_first(["vm", "fleet", "create", "-g", "h100", "--debug"]) == ["vm", "--debug", "fleet", "create",
                                                                                 "-g", "h100"]
    assert debug_first(["vm", "--debug", "list"]) == ["vm", "--debug", "list"]
    assert debug_first(["vm", "list"]) == ["vm", "list"]
    assert debug_first(["vm", "get", "--", "--debug"]) == ["vm", "get", "--", "--debug"]


def test_suggestions():
    commands = ["list", "create", "capacity", "cost", "types"]
    assert suggest("lst", commands) == " (did you mean 'list'?)"
    assert suggest("crate", commands) == " (did you mean 'create'?)"
    assert suggest("zzz", commands) == ""
    assert "'capacity'" in suggest("cap", commands)  # a prefix


def test_invoke_task_arguments_become_vm_arguments():
    from vmops.cli.fleet_cmds import create, reconcile

    argv = to_argv(create, {"gpu": "h100:8", "count": "3", "name": "", "dry_run": True, "json": False,
                            "output": "", "min": "", "policy": ""})  # --min, --policy: not given
    assert argv == ["--gpu", "h100:8", "--count", "3", "--dry-run"]
    assert to_argv(reconcile, {"fleet": None, "all": True}) == ["--all"]
    assert to_argv(reconcile, {"fleet": "f1"}) == ["f1"]  # `inv fleet.reconcile --fleet f1` = `vm fleet reconcile f1`


def test_columns_are_hidden_from_the_right_keeping_the_kept_ones():
    cols = [Column("a", "A", keep=True), Column("b", "B"), Column("c", "C", keep=True), Column("d", "D")]
    rows = [{"a": "x" * 10, "b": "y" * 10, "c": "z" * 10, "d": "w" * 10}]
    shown, hidden = fit_columns(rows, cols, 80)
    assert [c.key for c in shown] == ["a", "b", "c", "d"] and hidden == 0
    shown, hidden = fit_columns(rows, cols, 40)
    assert [c.key for c in shown] == ["a", "b", "c"] and hidden == 1
    shown, hidden = fit_columns(rows, cols, 20)
    assert [c.key for c in shown] == ["a", "c"] and hidden == 2  # kept ones stay (the renderer cuts them)


def test_a_table_too_wide_cuts_its_prose_and_keeps_names_whole():
    cols = [Column("action", "ACTION", keep=True), Column("name", "NAME", keep=True),
            Column("why", "WHY", keep=True, prose=True), Column("note", "NOTE", keep=True, prose=True)]
    rows = [{"action": "mark_gone", "name": "vmops-train-003", "why": "w" * 60, "note": "n" * 12}]
    assert prose_widths(rows, cols, 200) == {}  # it fits: nothing is cut
    cut = prose_widths(rows, cols, 80)
    assert cut == {"note": 12, "why": 80 - 9 - 15 - 12 - 3 * GAP}  # the short note whole, the reason takes the cut
    assert prose_widths(rows, cols, 40) == {}  # not even the prose cut to the least fits: every column is cut
