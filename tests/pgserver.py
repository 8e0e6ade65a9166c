"""A throwaway PostgreSQL server for the test session (the suite brings its own, like Chromium).

``ensure_postgres()`` installs Debian's ``postgresql`` when no server binaries are found (as root; once);
``PgCluster`` runs ``initdb`` into a temporary directory and ``pg_ctl start`` on a free 127.0.0.1 port,
as a non-root OS user when the tests run as root (the server refuses to run as root), and ``destroy()``
removes everything again. Password authentication over TCP (scram-sha-256), so wrong-password tests
mean something.

``pg_ctl`` starts the server as a daemon that no signal of the test process reaches, so each cluster also
starts a watcher (``sh``, in its own session) that stops the server and removes its files once the process
that made it is gone without ``destroy()``: a test run killed by a CI timeout or SIGKILL leaves no server.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

PG_USER = "vmops"  # the cluster's superuser (a database role, not an OS user)


class PostgresMissing(RuntimeError):
    pass


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).resolve().parent if which else None


def ensure_postgres() -> Path:
    """The directory of initdb/pg_ctl, installing Debian's postgresql first if it is missing."""
    bindir = _bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0:
        raise PostgresMissing("PostgreSQL is not installed and this is not root: run `apt-get install -y postgresql`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Only the binaries: no system-wide "main" cluster that would start and stay running on port 5432.
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("create_main_cluster = false\n")
    upd = subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=900, env=env)
    inst = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confdef",
                           "-o", "Dpkg::Options::=--force-confold", "postgresql"],
                          capture_output=True, text=True, timeout=1800, env=env)
    bindir = _bindir()
    if inst.returncode != 0 or bindir is None:
        raise PostgresMissing(f"apt-get install postgresql failed: {(upd.stderr + inst.stderr)[-800:]}")
    return bindir


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def _os_user() -> str | None:
    """The OS user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "vmops-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "vmops-pg"],
                   check=True, capture_output=True)
    return "vmops-pg"


class PgCluster:
    def __init__(self) -> None:
        self.bindir = ensure_postgres()
        self.user = _os_user()
        self.base = Path(tempfile.mkdtemp(prefix="vmops-pg-"))
        self.data = self.base / "data"
        self.password = secrets.token_hex(12)
        self.port = 0
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if self.user:
            shutil.chown(self.base, self.user)
            shutil.chown(pwfile, self.user)
        self._run("initdb", "-D", str(self.data), "-U", PG_USER, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                  "--auth-local=trust", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        self.start()
        self._watcher = self._watch()

    def _command(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def _watch(self) -> subprocess.Popen[bytes]:
        """A process that outlives this one and, once this one is gone, stops the server and removes its files."""
        stop = shlex.join(self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"))
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                  f"{stop} >/dev/null 2>&1; rm -rf {shlex.quote(str(self.base))}")
        return subprocess.Popen(["sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(self._command(tool, *args), capture_output=True, text=True, timeout=120, cwd=self.base)
        if out.returncode != 0:
            log = self.base / "log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]} {tail}")
        return out

    def start(self) -> None:
        """Start the server (again, on the same port after a stop(); a new cluster tries new free ports if
        another process took the one it picked in the meantime)."""
        for attempt in range(5):
            fresh = not self.port
            if fresh:
                self.port = _free_port()
            opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "log"), "-w", "-t", "60",
                          "start")
                return
            except RuntimeError:
                if not fresh or attempt == 4:
                    raise
                self.port = 0

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        try:
            os.killpg(self._watcher.pid, signal.SIGKILL)  # nothing left for it to do (its `sleep` too)
        except ProcessLookupError:
            pass
        self._watcher.wait()

    def url(self, dbname: str = "postgres", *, password: str | None = None, user: str = PG_USER) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{user}:{pw}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
