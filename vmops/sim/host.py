"""Run the three simulators in one background process (what `vm sim up` starts).

    python -m vmops.sim.host --state-file FILE [--crusoe-port 8001] [--lambda-port 8002]
                             [--nebius-port 50051] [--control-port 0] [--scale 1.0] [--scenario FILE]
                             [--dialect reference|cloud]

It binds 127.0.0.1 only, writes FILE (JSON: pid, addresses, control URL) once every server listens,
serves a small control API on the control port, and exits cleanly on SIGTERM/SIGINT:

    GET  /status          -> {"crusoe": {"address":..., "requests": {...}}, ...}
    POST /reset           -> every simulator back to its seed state
    POST /faults/<name>   -> add a fault (JSON body: vmops.sim.common.Fault fields)
    DELETE /faults/<name> -> clear that simulator's faults
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vmops.sim.base import Simulator
from vmops.sim.common import Fault, load_scenario, options_for

SIMULATORS = {
    "crusoe": "vmops.sim.crusoe:CrusoeSim",
    "lambda": "vmops.sim.lambdalabs:LambdaSim",
    "nebius": "vmops.sim.nebius:NebiusSim",
}
DEFAULT_PORTS = {"crusoe": 8001, "lambda": 8002, "nebius": 50051}
#: simulators of the providers' real APIs (``--dialect cloud``); providers not listed keep their reference one
CLOUD_SIMULATORS = {"nebius": "vmops.sim.nebius_cloud:NebiusCloudSim"}


def build(name: str, scenario: dict[str, Any], scale: float | None, dialect: str = "reference") -> Simulator:
    import importlib

    path = CLOUD_SIMULATORS.get(name, SIMULATORS[name]) if dialect == "cloud" else SIMULATORS[name]
    mod, _, cls = path.partition(":")
    return getattr(importlib.import_module(mod), cls)(options_for(name, scenario, scale))


def _control_handler(sims: dict[str, Simulator]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/status":
                self._send(200, {n: {"address": s.address, "time_scale": s.time_scale,
                                     "requests": s.requests.to_dict()} for n, s in sims.items()})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path == "/reset":
                for s in sims.values():
                    s.reset()
                self._send(200, {"reset": list(sims)})
            elif self.path.startswith("/faults/") and self.path[8:] in sims:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    fault = Fault.from_dict(json.loads(self.rfile.read(length) or b"{}"))
                except (ValueError, TypeError) as e:
                    self._send(400, {"error": str(e)})
                    return
                sims[self.path[8:]].faults.add(fault)
                self._send(200, {"added": fault.endpoint})
            else:
                self._send(404, {"error": "not found"})

        def do_DELETE(self) -> None:
            if self.path.startswith("/faults/") and self.path[8:] in sims:
                sims[self.path[8:]].faults.clear()
                self._send(200, {"cleared": self.path[8:]})
            else:
                self._send(404, {"error": "not found"})

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vmops.sim.host", description=__doc__.splitlines()[0])
    ap.add_argument("--state-file", required=True)
    for n, p in DEFAULT_PORTS.items():
        ap.add_argument(f"--{n}-port", type=int, default=p)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--dialect", choices=("reference", "cloud"), default="reference")
    args = ap.parse_args(argv)

    scenario = load_scenario(args.scenario) if args.scenario else {}
    sims: dict[str, Simulator] = {}
    try:
        for name in SIMULATORS:
            sim = build(name, scenario, args.scale, args.dialect)
            sims[name] = sim
            sim.start(getattr(args, f"{name}_port"), "127.0.0.1")
    except OSError as e:
        print(f"vmops sim host: {e}", file=sys.stderr)
        for s in sims.values():
            s.stop()
        return 3

    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), _control_handler(sims))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    state = {
        "pid": os.getpid(),
        "control": f"http://127.0.0.1:{control.server_address[1]}",
        "addresses": {n: s.address for n, s in sims.items()},
        "time_scale": {n: s.time_scale for n, s in sims.items()},
    }
    tmp = Path(args.state_file + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(args.state_file)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    control.shutdown()
    for s in sims.values():
        s.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
