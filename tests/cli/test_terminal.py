"""`vm` on a real pseudo-terminal of 80 columns, read back through a terminal emulator (pyte): tables fit the
width without wrapped rows, the live fleet progress redraws in place and ends on the final counts, and the
destroy confirmation is asked and honoured."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import pyte
import pytest

from tests.cli.helpers import VM, vm

COLS, ROWS = 80, 60
PROVIDERS = ("crusoe", "lambda", "nebius")


class Terminal:
    """A program on a pseudo-terminal of COLS x ROWS. Started with subprocess (its fork+exec runs no Python in
    the child, which matters here: the test process runs gRPC simulator threads)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_") and k != "NO_COLOR"}
        full.update({"TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)})
        full.update(env)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.proc = subprocess.Popen(VM + args, stdin=slave, stdout=slave, stderr=slave, env=full,
                                     start_new_session=True)
        os.close(slave)
        self.raw = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            return False
        self.raw += data.decode("utf-8", errors="replace")
        return bool(data)

    def expect(self, pattern: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.raw):
            if time.monotonic() > deadline or not self._read(0.2):
                raise AssertionError(f"{pattern!r} never appeared in {self.raw!r}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Everything the program writes until it exits, and its exit code."""
        deadline = time.monotonic() + timeout
        while self._read(0.2) and time.monotonic() < deadline:
            pass
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code, self.raw


def screen_of(text: str) -> list[str]:
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.Stream(screen)
    stream.feed(text.replace("\n", "\r\n") if "\r\n" not in text else text)
    return [line.rstrip() for line in screen.display]


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    code, raw = Terminal(args, env).finish()
    return code, screen_of(raw), raw


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
    code, raw = Terminal(["list"], {**vm_env, "NO_COLOR": "1"}).finish()
    assert code == 0
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
    term = Terminal(["destroy", made["name"]], vm_env)
    term.expect(r"Destroy ask-\w \(.*\) at crusoe\? \[y/N\]")
    term.send(answer + "\n")
    assert term.finish()[0] == code
    listed = json.loads(vm(["list", "-p", "crusoe", "--json"], vm_env).out)
    assert (made["id"] in {i["id"] for i in listed}) is exists


def test_destroy_yes_skips_the_prompt(vm_env):
    made = _make(vm_env, "ask-yes")
    code, out = Terminal(["destroy", made["id"], "-p", "crusoe", "-y"], vm_env).finish()
    assert code == 0, out
    assert "[y/N]" not in out and "destroyed ask-yes" in out


@pytest.mark.parametrize("verb", ["stop", "restart"])
def test_every_changing_verb_asks_on_a_terminal_and_takes_yes(vm_env, verb):
    """Not only destroy asks on a terminal: stopping or restarting a GPU box mid-job matters too. Each verb that
    asks takes -y (stop and restart used to ask with no way to say yes up front)."""
    made = _make(vm_env, f"ask-{verb}")
    term = Terminal([verb, made["name"]], vm_env)
    term.expect(rf"{verb.capitalize()} ask-{verb} \(.*\) at crusoe\? \[y/N\]")
    term.send("n\n")
    assert term.finish()[0] == 1
    code, out = Terminal([verb, made["name"], "-y"], vm_env).finish()
    assert code == 0 and "[y/N]" not in out and f"ask-{verb}" in out, out
    assert vm(["destroy", made["id"], "-p", "crusoe", "-y"], vm_env).code == 0


def test_progress_plain_on_a_terminal_is_line_per_event(vm_env):
    code, lines, raw = run_on_terminal(["fleet", "create", "-g", "h100", "-c", "2", "-n", "plain2", "--progress",
                                        "plain"], vm_env)
    assert code == 0, raw
    events = [ln for ln in lines if "requested" in ln]
    assert len(events) >= 2 and all(ln.startswith("[") and len(ln) <= COLS for ln in events)
    assert not [ln for ln in lines if ln.split()[:2] == ["PROVIDER", "REQ"]]  # no live table
    assert vm(["fleet", "destroy", "plain2"], vm_env).code == 0


@pytest.mark.parametrize("answer,code,state", [("n", 1, "active"), ("y", 0, "destroyed")])
def test_fleet_destroy_shows_its_decision_asks_and_honours_the_answer(vm_env, answer, code, state):
    """On a terminal `vm fleet destroy` prints the Decision (each VM, why, cost before and after), fitting
    80 columns, then asks; what it then does is exactly that."""
    name = f"fd-{answer}"
    assert vm(["fleet", "create", "-g", "h100", "-c", "2", "-n", name, "-q"], vm_env).code == 0
    term = Terminal(["fleet", "destroy", name], vm_env)
    term.expect(r"Destroy fleet fd-\w as shown above\? \[y/N\]")
    shown = screen_of(term.raw)
    assert any(ln.startswith(f"Decision: destroy {name}: 2 destroy") for ln in shown)
    assert sum(1 for ln in shown if ln.startswith("destroy ")) == 2 and all(len(ln) <= COLS for ln in shown)
    term.send(answer + "\n")
    assert term.finish()[0] == code
    st = json.loads(vm(["fleet", "status", name, "-o", "json"], vm_env).out)
    assert st["state"] == state


def test_a_decision_at_80_columns_cuts_the_reason_not_the_names(vm_env):
    """A reconcile's Decision with a long WHY: the VM names and actions stay whole; the reason takes the cut."""
    made = vm(["fleet", "create", "-g", "h100", "-c", "2", "-n", "cutwhy", "--json"], vm_env)
    assert made.code == 0, made.err
    gone = made.json()["members"][0]
    assert vm(["destroy", gone["id"], "-p", gone["provider"], "-y"], vm_env).code == 0
    code, lines, raw = run_on_terminal(["fleet", "reconcile", "cutwhy", "--dry-run"], vm_env)
    assert code == 0, raw
    row = next(ln for ln in lines if ln.startswith("mark_gone "))
    assert row.split()[1] == gone["name"] and len(row) <= COLS, "\n".join(lines)
    assert row.endswith("…") and "no longer exists at" in row  # the reason, cut to fit
    assert vm(["fleet", "destroy", "cutwhy", "-y"], vm_env).code == 0
