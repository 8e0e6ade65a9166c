"""Run the real `vm` program in a subprocess (the thing users run), with a given environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Mapping

VM = [sys.executable, "-m", "vmops.cli.main"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def vm(args: list[str], env: Mapping[str, str], timeout: float = 120) -> Result:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    full_env.update(env)
    p = subprocess.run(VM + args, env=full_env, capture_output=True, text=True, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)
