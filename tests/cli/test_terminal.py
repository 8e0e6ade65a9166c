"""`vm` on a real pseudo-terminal of 80 columns, read back through a terminal emulator (pyte): tables fit the
width without wrapped rows, the live fleet progress redraws in place and ends on the final counts, and the
destroy confirmation is asked and honoured."""

from __future__ import annotations

import json
import os

import pexpect
import pyte
import pytest

from tests.cli.helpers import VM, vm

COLS, ROWS = 80, 60
PROVIDERS = ("crusoe", "lambda", "nebius")


def spawn(args: list[str], env: dict[str, str]) -> pexpect.spawn:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_") and k != "NO_COLOR"}
    full.update({"TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)})
    full.update(env)
    return pexpect.spawn(VM[0], [*VM[1:], *args], env=full, dimensions=(ROWS, COLS), encoding="utf-8",
                         timeout=120)


def screen_of(text: str) -> list[str]:
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.Stream(screen)
    stream.feed(text.replace("\n", "\r\n") if "\r\n" not in text else text)
    return [line.rstrip() for line in screen.display]


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    child = spawn(args, env)
    raw = child.read()
    child.close()
    return child.exitstatus, screen_of(raw), raw


def test_list_fits_80_columns_without_wrapped_rows(vm_env):
    code, lines, raw = run_on_terminal(["list"], vm_env)
    assert code == 0, raw
    shown = [ln for ln in lines if ln]
    header = next(i for i, ln in enumerate(shown) if ln.startswith("PROVIDER"))
    rows = [ln for ln in shown[header + 1:] if not ln.startswith("(")]
    assert len(rows) == len(vm(["list", "--json"], vm_env).json())
    # every row begins with a provider: no row spilled onto a second line
    assert all(ln.split()[0] in PROVIDERS for ln in rows), "\n".join(shown)
    assert "--wide shows all" in raw  # the hidden columns are said
    assert "\x1b[" in raw  # colour on a terminal


def test_no_color_and_pipe_mean_no_escape_codes(vm_env):
    child = spawn(["list"], {**vm_env, "NO_COLOR": "1"})
    raw = child.read()
    child.close()
    assert child.exitstatus == 0
    assert "\x1b[3" not in raw and "\x1b[1m" not in raw  # no colour, no bold
    piped = vm(["list"], vm_env)  # a pipe: the full plain table, every column
    assert "\x1b" not in piped.out and "PRIVATE IP" in piped.out.splitlines()[0]


def test_wide_shows_every_column(vm_env):
    code, lines, raw = run_on_terminal(["list", "--wide"], vm_env)
    assert code == 0
    assert "PRIVATE IP" in raw and "--wide shows all" not in raw


def test_fleet_progress_redraws_in_place_and_ends_on_the_final_counts(vm_env):
    code, lines, raw = run_on_terminal(["fleet", "create", "-g", "h100", "-c", "3", "-n", "tty3"], vm_env)
    assert code == 0, raw
    shown = [ln for ln in lines if ln]
    # one progress table on the screen (redrawn in place, not one copy per update)
    headers = [ln for ln in shown if ln.split()[:2] == ["PROVIDER", "REQ"]]
    assert len(headers) == 1, "\n".join(shown)
    start = shown.index(headers[0])
    progress = []
    for ln in shown[start + 1:]:
        if not ln.split() or ln.split()[0] not in (*PROVIDERS, "all"):
            break
        progress.append(ln.split())
    by = {p[0]: p for p in progress}
    assert sum(int(by[p][3]) for p in PROVIDERS if p in by) == 3, "\n".join(shown)  # RUNNING column
    assert by["all"][3] == "3"
    assert all(len(ln) <= COLS for ln in lines)
    assert vm(["fleet", "destroy", "tty3"], vm_env).code == 0


def _make(env: dict[str, str], name: str) -> dict:
    r = vm(["create", "-p", "crusoe", "-g", "h100", "-n", name, "--json"], env)
    assert r.code == 0, r.err
    return r.json()[0]


@pytest.mark.parametrize("answer,code,exists", [("n", 1, True), ("y", 0, False)])
def test_destroy_asks_on_a_terminal_and_honours_the_answer(vm_env, answer, code, exists):
    made = _make(vm_env, f"ask-{answer}")
    child = spawn(["destroy", made["name"]], vm_env)
    child.expect(r"Destroy ask-\w \(.*\) at crusoe\? \[y/N\]")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code
    listed = json.loads(vm(["list", "-p", "crusoe", "--json"], vm_env).out)
    assert (made["id"] in {i["id"] for i in listed}) is exists


def test_destroy_yes_skips_the_prompt(vm_env):
    made = _make(vm_env, "ask-yes")
    child = spawn(["destroy", made["id"], "-p", "crusoe", "-y"], vm_env)
    out = child.read()
    child.close()
    assert child.exitstatus == 0, out
    assert "[y/N]" not in out and "destroyed ask-yes" in out
