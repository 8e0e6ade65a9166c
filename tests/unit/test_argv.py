"""How `vm` turns what a user types into invoke's task calls."""

from vmops.cli.main import (
    debug_requested,
    describe_parse_error,
    fill_optional_positionals,
    help_first,
    rewrite_argv,
)
from vmops.cli.namespace import vm_namespace

COLLS = {"fleet", "sim", "config"}


def test_space_separated_subcommands():
    assert rewrite_argv(["vm", "fleet", "create", "--gpu", "h100"], COLLS) == ["vm", "fleet.create", "--gpu", "h100"]
    assert rewrite_argv(["vm", "--debug", "sim", "up"], COLLS) == ["vm", "--debug", "sim.up"]
    assert rewrite_argv(["vm", "list", "--json"], COLLS) == ["vm", "list", "--json"]
    assert rewrite_argv(["vm", "fleet"], COLLS) == ["vm", "--list", "fleet"]


def test_help_goes_first_so_positionals_do_not_swallow_it():
    assert help_first(["vm", "get", "--help"]) == ["vm", "--help", "get"]
    assert help_first(["vm", "fleet.status", "-h"]) == ["vm", "--help", "fleet.status"]
    assert help_first(["vm", "list"]) == ["vm", "list"]


def test_debug_only_as_a_global_flag():
    assert debug_requested(["vm", "-d", "list"])
    assert debug_requested(["vm", "list", "--debug"])
    assert not debug_requested(["vm", "fleet.create", "-d"])  # that -d is --dry-run


def test_optional_positional_is_filled_only_when_missing():
    ns = vm_namespace()
    assert fill_optional_positionals(["vm", "fleet.reconcile", "--all"], ns)[-1] == "--fleet="
    assert fill_optional_positionals(["vm", "fleet.reconcile", "f1"], ns) == ["vm", "fleet.reconcile", "f1"]
    assert fill_optional_positionals(["vm", "get", "--json"], ns) == ["vm", "get", "--json"]


def test_parse_errors_read_as_sentences():
    e = ValueError("invalid literal for int() with base 10: 'x'")
    assert describe_parse_error(e, ["vm", "create", "--count", "x"]) == "--count takes a whole number, not 'x'"
    assert describe_parse_error(e, ["vm", "create", "--count=x"]) == "--count takes a whole number, not 'x'"
    assert describe_parse_error(Exception("No idea what 'zap' is!"), ["vm", "zap"]) == "unknown command or argument 'zap'"


def test_missing_positional_names_the_argument():
    e = Exception("'fleet.status' did not receive required positional arguments: 'fleet'")
    assert describe_parse_error(e, ["vm", "fleet.status"]) == "`vm fleet status` needs FLEET"
