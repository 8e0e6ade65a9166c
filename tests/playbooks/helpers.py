"""Run the real ansible-playbook (and ansible ad-hoc) from the venv against the test simulators."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def recap(self) -> dict[str, int]:
        m = RECAP.search(self.out)
        assert m, f"no play recap in output:\n{self.out}\n{self.err}"
        ok, changed, unreachable, failed, skipped = (int(x) for x in m.groups())
        return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed, "skipped": skipped}

    @property
    def text(self) -> str:
        return self.out + self.err

    def changed_items(self) -> list[str]:
        """The loop items reported as changed (``changed: [localhost] => (item=...)``)."""
        return re.findall(r"^changed: \[localhost\] => \(item=(.*)\)$", self.out, re.M)

    def debug_var(self, var: str) -> Any:
        """The value a ``debug: var=VAR`` task printed (None if the task did not run)."""
        at = self.out.find(f'"{var}": ')
        if at < 0:
            return None
        start = self.out.rfind("{", 0, at)
        obj, _ = json.JSONDecoder().raw_decode(self.out[start:])
        return obj[var]

    def __str__(self) -> str:  # shown when an assertion fails
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"

    __repr__ = __str__


def ansible_env(vm_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VMOPS_", "ANSIBLE_"))}
    env.update(vm_env)
    env["ANSIBLE_CONFIG"] = str(PLAYBOOKS / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_LOCAL_TEMP"] = str(Path(vm_env["VMOPS_HOME"]) / "ansible-tmp")
    env["ANSIBLE_REMOTE_TEMP"] = str(Path(vm_env["VMOPS_HOME"]) / "ansible-tmp")
    env["HOME"] = vm_env["VMOPS_HOME"]  # keep ~/.ansible out of the real home
    return env


def playbook(name: str, vm_env: Mapping[str, str], *, check: bool = False, extra: Mapping[str, Any] | None = None,
             timeout: float = 180) -> Run:
    cmd = [str(BIN / "ansible-playbook"), str(PLAYBOOKS / f"{name}.yml")]
    if check:
        cmd += ["--check", "--diff"]
    if extra:
        cmd += ["-e", json.dumps(dict(extra))]
    p = subprocess.run(cmd, env=ansible_env(vm_env), capture_output=True, text=True, timeout=timeout,
                       cwd=str(PLAYBOOKS))
    return Run(p.returncode, p.stdout, p.stderr)


def adhoc(module: str, args: Mapping[str, Any], vm_env: Mapping[str, str], *, check: bool = False,
          timeout: float = 120) -> tuple[Run, dict[str, Any]]:
    """Run one module with `ansible localhost -m MODULE`; returns the run and the module's JSON result."""
    cmd = [str(BIN / "ansible"), "localhost", "-m", module, "-a", json.dumps(dict(args))]
    if check:
        cmd.append("--check")
    p = subprocess.run(cmd, env=ansible_env(vm_env), capture_output=True, text=True, timeout=timeout,
                       cwd=str(PLAYBOOKS))
    run = Run(p.returncode, p.stdout, p.stderr)
    m = re.search(r"localhost \| ([A-Z]+)!? => (\{.*\})\s*$", p.stdout, re.S)
    assert m, f"no module result in output: {run}"
    result = json.loads(m.group(2))
    result["failed"] = m.group(1) == "FAILED"
    return run, result
