"""Hostile command-line arguments (issue 7): property tests over provider names, GPU shapes, counts, VM and
fleet names (unicode, control characters, very long strings) and instance ids (`/`, `..`, `%2F`, `?`, `#`,
real ids with a suffix that would reach another route).

Every case must end in a clean error: a documented non-zero exit code (never 0, never 70 "internal error"),
one `error:` line with a hint, no traceback, no raw control/format characters on the terminal. And the
simulators' request logs must show that nothing was sent anywhere but the intended endpoint: no request
that reached no endpoint, no request to an endpoint the command does not use, an id endpoint only ever at
exactly the percent-encoded id, no mutating request from a read or a refused command, and the seeded VMs
untouched afterwards.

1,000+ cases run the CLI in process (``vmops.cli.main.main(argv)``, SystemExit caught, stdout/stderr
captured); a smaller sample runs the real `vm` subprocess. Hypothesis is derandomized (a fixed seed, no
example database), so every run tries the same cases.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.cli.helpers import vm as vm_subprocess
from tests.reliability.budget import trials
from tests.reliability.summary import record
from vmops.catalogue import PROVIDERS
from vmops.model import State
from vmops.session import Session, parse_shape_for
from vmops.sim.rest import NO_ENDPOINT

SCENARIO = "hostile CLI arguments"
IN_PROCESS = trials(full=3000, ci=1000)
SUBPROCESS = trials(full=100, ci=30)

#: Documented exit codes of a refused/failed command (README). 0 and 70 (internal error) are failures here.
CLEAN_CODES = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
#: Tokens that mean something else to the program (help, version, debug with tracebacks, completion).
CORE_TOKENS = frozenset({"-h", "--help", "-V", "--version", "-d", "--debug", "--list", "-l", "--complete",
                         "--print-completion-script", "-c", "--collection", "-e", "--echo", "-r", "--search-root",
                         "-f", "--config", "-p", "--pty", "-w", "--warn-only", "-T", "--command-timeout",
                         "--prompt-for-sudo-password", "-R", "--dry", "--hide", "--write-pyc", "-D", "--list-depth",
                         "-F", "--list-format", "--only-hidden", "--no-dedupe"})

CRUSOE_INSTANCES = "/v1alpha5/projects/proj-001/compute/vms/instances"
LAMBDA_INSTANCES = "/api/v1/instances"
#: REST endpoints that carry an instance id in the path -> the path prefix it must follow exactly.
ID_PATHS = {("crusoe", "get_instance"): CRUSOE_INSTANCES, ("crusoe", "patch_instance"): CRUSOE_INSTANCES,
            ("crusoe", "delete_instance"): CRUSOE_INSTANCES, ("lambda", "get_instance"): LAMBDA_INSTANCES}
#: The reads of one provider's listing (what `vm list -p P` sends): every verb may make them, since with -p an id
#: that is not found there is looked up as a name in the provider's list.
LISTING = {"list_instances", "list_reservations", "list_vm_types", "list_instance_types", "InstanceService/List",
           "ReservationService/List"}
#: Endpoints each verb may use (at the provider it names, nowhere else).
ALLOWED = {
    "get": {"get_instance", "InstanceService/Get"} | LISTING,
    "stop": {"get_instance", "patch_instance", "get_operation", "InstanceService/Get", "InstanceService/Stop"} | LISTING,
    "start": {"get_instance", "patch_instance", "get_operation", "InstanceService/Get",
              "InstanceService/Start"} | LISTING,
    "destroy": {"get_instance", "delete_instance", "get_operation", "terminate", "InstanceService/Get",
                "InstanceService/Delete"} | LISTING,
}
MUTATING_VERBS = frozenset({"stop", "start", "destroy"})
#: With every simulator up, what each kind of hostile command may end in: usage (2), not found (5), invalid
#: argument (6), failed precondition (8), unsupported (10); never "provider unavailable" (12) or success.
EXPECTED_CODES = {"get": {2, 5, 6}, "stop": {2, 5, 6, 8, 10}, "start": {2, 5, 6, 8, 10}, "destroy": {2, 5, 6, 8},
                  "create": {2}, "list": {2}, "capacity": {2}, "fleet": {2, 5}}
#: Every region name or alias any provider knows (a hostile --region must not be one of them).
REGION_WORDS = frozenset(w.lower() for e in PROVIDERS.values() for w in (*e.regions, *e.region_aliases))

# --- strategies ------------------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "", " ", "\t", ".", "..", "...", "/", "//", "../..", "../../../etc/passwd", "..%2F..%2Fetc", "%2F", "%2f",
    "%2e%2e", "%2e%2e%2f", "%252F", "a/b", "a\\b", "\\", "a?b", "?", "?x=1", "#", "a#b", "%", "%%", "%zz",
    "%00", "\x00", "a\x00b", "\n", "a\r\nX-Injected: 1", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\u202egnp.exe",
    "\u200b", "\ufeff", "\ud7ff", "ünïcödé", "名前", "😀", "a" * 129, "x" * 5000, "-", "--", "-x", "--provider",
    "=", "a=b", "--name=x", "'", '"', "`id`", "$(id)", ";rm -rf /", "*", ",", "crusoe,lambda", "null", "None",
    "[]", "{}", "0", "-1", "1e9", "NaN", "inf",
]
ID_SUFFIXES = ["/restart", "/reboot", "/reset", "?action=STOP", "#frag", "%2Frestart", "%2frestart", "/../x",
               "/.", "/", "%3F", "%23", " ", "\t", "\n", "%00", "/..", "?", "#", ";", ",other"]


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SPECIAL_STRINGS),
        st.text(max_size=40),
        st.text(alphabet=st.sampled_from("/.%?#\\ -_aZ09\x00\n\r\x1b\u202e"), min_size=1, max_size=20),
        st.builds(lambda a, b: a + b, st.sampled_from(SPECIAL_STRINGS), st.text(max_size=10)),
        st.integers(min_value=129, max_value=20000).map(lambda n: "n" * n),
    )


def _is_valid_provider(p: str) -> bool:
    return (p or "").strip().lower() in PROVIDERS


def _is_valid_gpu(provider: str, gpu: str) -> bool:
    try:
        parse_shape_for(provider, gpu)
        return True
    except Exception:  # noqa: BLE001 - any refusal means "not valid"
        return False


def usable(token: str) -> bool:
    return token not in CORE_TOKENS and "--debug" not in token


@dataclass
class Case:
    argv: list[str]
    verb: str  # get/stop/start/destroy/list/create/capacity/fleet
    provider: str | None = None  # the provider the command may talk to (None: none at all)
    instance_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Case({self.argv!r})"


@st.composite
def id_case(draw: st.DrawFn, real_ids: dict[str, list[str]]) -> Case:
    verb = draw(st.sampled_from(["get", "stop", "start", "destroy"]))
    # Integers choose the branch: hypothesis leans towards small ones, so most cases name a real provider and
    # a real id with a hostile suffix (the dangerous ones), the rest hostile providers and free-form ids.
    names = sorted(PROVIDERS)
    pick = draw(st.integers(0, 9))
    if pick < 7:
        provider = names[pick % len(names)]
    elif pick == 7:
        provider = draw(st.sampled_from(["CRUSOE", " lambda ", "Nebius"]))
    else:
        provider = draw(hostile_text().filter(lambda p: not _is_valid_provider(p)))
    key = provider.strip().lower()
    ids = real_ids.get(key) or ["00000000-0000-4000-8000-000000000000"]
    pick = draw(st.integers(0, 5))
    if pick < 2:
        iid = draw(st.sampled_from(ids)) + draw(st.sampled_from(ID_SUFFIXES))
    elif pick == 2:
        iid = draw(st.sampled_from(["../", "./", "%2F", "/", "%2e%2e%2f", " "])) + draw(st.sampled_from(ids))
    else:
        iid = draw(hostile_text())
    # a bare "--" is the end of the options, not an id: the word after it (e.g. "--json") is the id then
    assume(iid not in ids and usable(iid) and iid != "--")
    order = draw(st.sampled_from(["id-first", "flags-first", "equals"]))
    if order == "id-first":
        argv = [verb, iid, "--provider", provider]
    elif order == "flags-first":
        argv = [verb, "--provider", provider, iid]
    else:
        argv = [verb, f"--provider={provider}", iid]
    if draw(st.booleans()):
        argv.append("--json")
    return Case(argv, verb, key if key in PROVIDERS else None, iid)


@st.composite
def create_case(draw: st.DrawFn) -> Case:
    """Exactly one argument is hostile and invalid, so no case may ever make a VM."""
    provider = draw(st.sampled_from(sorted(PROVIDERS)))
    gpu, count, name = "h100:1", "1", "hostile-ok"
    bad = draw(st.sampled_from(["provider", "gpu", "count", "name", "region"]))
    extra: list[str] = []
    if bad == "provider":
        provider = draw(hostile_text().filter(lambda p: not _is_valid_provider(p) and usable(p)))
    elif bad == "gpu":
        gpu = draw(hostile_text().filter(lambda g: not _is_valid_gpu(provider, g) and usable(g)))
    elif bad == "count":
        count = draw(st.one_of(st.integers(max_value=0).map(str), st.integers(min_value=101).map(str),
                               st.sampled_from(["x", "1e3", "1.5", "", "0x10", "½", "1_000_000", "99999999999999999999999"])))
    elif bad == "name":
        name = draw(st.one_of(
            st.builds(lambda t, c, u: t + c + u, st.text(max_size=30),
                      st.sampled_from(["\n", "\x00", "\x1b", "\u202e", "\u200b", "\r", "\x7f", "\u2028"]),
                      st.text(max_size=5)),
            st.integers(min_value=129, max_value=10000).map(lambda n: "é" * n),
            st.sampled_from([" ", "   ", "\t"]),
        ).filter(usable))
    else:
        extra = ["--region", draw(hostile_text().filter(lambda r: usable(r) and r.strip() != ""
                                                          and r.strip().lower() not in REGION_WORDS))]
    argv = ["create", "--provider", provider, "--gpu", gpu, "--count", count, "--name", name, *extra]
    return Case(argv, "create", None, extras={"bad": bad})


@st.composite
def other_case(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["list-provider", "list-output", "capacity", "fleet-create", "fleet-status",
                                 "fleet-destroy", "fleet-reconcile", "fleet-count"]))
    bad_name = hostile_text().filter(lambda n: usable(n) and n != "" and not n.startswith("-"))
    if kind == "list-provider":
        p = draw(hostile_text().filter(lambda p: not _is_valid_provider(p) and p != "" and usable(p)))
        return Case(["list", "--provider", p], "list")
    if kind == "list-output":
        o = draw(hostile_text().filter(lambda o: o.lower() not in ("table", "json", "csv") and usable(o)))
        return Case(["list", "--output", o], "list")
    if kind == "capacity":
        g = draw(hostile_text().filter(lambda g: g != "" and not _is_valid_gpu("", g) and usable(g)))
        return Case(["capacity", "--gpu", g], "capacity")
    if kind == "fleet-count":
        c = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=10_001)))
        return Case(["fleet", "create", "--gpu", "h100:1", "--count", str(c), "--dry-run"], "fleet")
    from vmops.fleet.naming import _FLEET_RE  # noqa: PLC0415 - the rule the CLI enforces

    # hostile names, plus well-formed names of fleets that do not exist
    name = draw(st.one_of(bad_name.filter(lambda n: not _FLEET_RE.match(n)),
                          st.from_regex(r"\A[a-z][a-z0-9]{1,10}(-[a-z0-9]{1,5})?\Z")))
    if kind == "fleet-create":
        name = draw(bad_name.filter(lambda n: not _FLEET_RE.match(n)))
        return Case(["fleet", "create", "--gpu", "h100:1", "--count", "1", "--name", name], "fleet")
    return Case(["fleet", kind.split("-")[1], name], "fleet")


def cases(real_ids: dict[str, list[str]]) -> st.SearchStrategy[Case]:
    return st.one_of(id_case(real_ids), id_case(real_ids), create_case(), other_case())


# --- running and checking ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run_in_process(argv: list[str]) -> Outcome:
    from vmops.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["vm", *argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - anything escaping main() is a crash
            import traceback

            err.write("Traceback (escaped main):\n" + "".join(traceback.format_exception(e)))
            code = 70
        finally:
            os.environ.pop("VMOPS_DEBUG", None)
    return Outcome(code, out.getvalue(), err.getvalue())


def _unprintable(text: str) -> str | None:
    for c in text:
        if c not in "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return f"U+{ord(c):04X}"
    return None


class Snapshot:
    def __init__(self, sims: dict[str, Any]) -> None:
        self.sims = sims
        self.marks = {n: len(s.requests.records()) for n, s in sims.items()}

    def new(self) -> dict[str, list[Any]]:
        return {n: s.requests.records()[self.marks[n]:] for n, s in self.sims.items()}


def check(case: Case, res: Outcome, requests: dict[str, list[Any]]) -> str | None:
    """The first problem with this outcome, or None."""
    if res.code not in CLEAN_CODES:
        return f"exit code {res.code}; stderr={res.err[-500:]!r} stdout={res.out[-200:]!r}"
    if res.code not in EXPECTED_CODES[case.verb]:
        return f"exit code {res.code} is not one {case.verb} should end in; stderr={res.err[-300:]!r}"
    if "Traceback" in res.err or "Traceback" in res.out:
        return f"traceback: {res.err[-800:]!r}"
    bad = _unprintable(res.err)
    if bad:
        return f"raw {bad} written to stderr: {res.err[-300:]!r}"
    bad = _unprintable(res.out)
    if bad:
        return f"raw {bad} written to stdout: {res.out[-300:]!r}"
    lines = [ln for ln in res.err.splitlines() if ln.startswith("error: ")]
    if len(lines) != 1:
        return f"expected one error line, got {res.err[-500:]!r}"
    if not re.search(r"\. [A-Z`(]", lines[0]):  # "what happened. What to do." (VmopsError.render)
        return f"no hint in {lines[0][:300]!r}"
    for name, recs in requests.items():
        for r in recs:
            if r.endpoint == NO_ENDPOINT:
                return f"{name}: a request reached no endpoint: {r.path!r} ({r.outcome})"
            if case.provider != name or case.verb not in ALLOWED:
                return f"{name}: unexpected request {r.endpoint} {r.path!r} for {case.verb}"
            if r.endpoint not in ALLOWED[case.verb]:
                return f"{name}: {case.verb} used endpoint {r.endpoint} ({r.path!r})"
            if r.mutating and case.verb not in MUTATING_VERBS:
                return f"{name}: mutating {r.endpoint} from {case.verb}"
            prefix = ID_PATHS.get((name, r.endpoint))
            if prefix is not None:
                want = f"{prefix}/{quote(case.instance_id or '', safe='')}"
                if r.path != want:
                    return f"{name}: {r.endpoint} at {r.path!r}, expected exactly {want!r}"
    return None


def seeded_view(config) -> dict[tuple[str, str], State]:
    with Session(config) as s:
        out = s.instances()
        assert not out.failures, out.failures
        return {(i.provider, i.id): i.state for i in out.flat()}


@pytest.fixture
def cli_env(vm_env, monkeypatch):
    keep = {"VMOPS_RELIABILITY_LOG", "VMOPS_STRESS_BUDGET", "VMOPS_TEST_SCALE"}
    for k in list(os.environ):
        if k.startswith("VMOPS_") and k not in keep:
            monkeypatch.delenv(k)
    for k, v in vm_env.items():
        monkeypatch.setenv(k, v)
    return vm_env


def _real_ids(config) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (provider, iid) in seeded_view(config):
        out.setdefault(provider, []).append(iid)
    return out


def _run_property(name: str, examples: int, real_ids: dict[str, list[str]], sims, runner) -> tuple[int, int, str]:
    """Run ``examples`` hypothesis cases through ``runner``; returns (tried, passed, first problem)."""
    results: list[str | None] = []
    seen: Counter[str] = Counter()

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(case=cases(real_ids))
    def prop(case: Case) -> None:
        snap = Snapshot(sims)
        res = runner(case)
        if res is None:  # not representable for this runner (e.g. NUL in a subprocess argv)
            return
        reqs = snap.new()
        problem = check(case, res, reqs)
        results.append(problem)
        seen[f"{case.verb}:{res.code}"] += 1
        seen["reached a provider"] += any(reqs.values())
        assert problem is None, f"{case!r}: {problem}"

    first = ""
    try:
        prop()
    except AssertionError as e:
        first = str(e).splitlines()[0][:300]
    tried = len(results)
    passed = sum(1 for p in results if p is None)
    print(f"{name}: {tried} cases, {dict(sorted(seen.items()))}")
    return tried, passed, first


def test_hostile_arguments_in_process(cli_env, config, sims):
    before = seeded_view(config)
    tried, passed, first = _run_property("in-process", IN_PROCESS, _real_ids(config), sims,
                                         lambda c: run_in_process(c.argv))
    after = seeded_view(config)
    touched = sum(1 for k, st_ in before.items() if after.get(k) is not st_)
    extra = len(set(after) - set(before))
    record(SCENARIO, trials=tried, passed=passed, leaked=extra,
           detail=first or f"{tried} in-process cases; seeded VMs untouched")
    assert not first, first
    assert tried >= IN_PROCESS, f"only {tried} cases ran"
    assert passed == tried
    assert touched == 0 and extra == 0, (before, after)


def _subprocess_runner(env: dict[str, str]):
    def run(case: Case) -> Outcome | None:
        try:
            for a in case.argv:
                a.encode("utf-8")
        except UnicodeEncodeError:
            return None
        if any("\x00" in a for a in case.argv):
            return None
        r = vm_subprocess(case.argv, env, timeout=60)
        return Outcome(r.code, r.out, r.err)

    return run


def test_hostile_arguments_real_subprocess(vm_env, config, sims):
    before = seeded_view(config)
    tried, passed, first = _run_property("subprocess", SUBPROCESS, _real_ids(config), sims,
                                         _subprocess_runner(vm_env))
    after = seeded_view(config)
    extra = len(set(after) - set(before))
    record(SCENARIO, trials=tried, passed=passed, leaked=extra,
           detail=first or f"{tried} real `vm` processes")
    assert not first, first
    assert tried >= SUBPROCESS * 0.8, f"only {tried} cases ran"
    assert passed == tried and after == before


def test_the_checker_catches_a_request_to_another_route(crusoe_sim):
    """The request-log check itself can fail: an unencoded `id/restart` shows up as the wrong path."""
    import httpx

    snap = Snapshot({"crusoe": crusoe_sim})
    iid = next(iter(crusoe_sim.projects["proj-001"].instances))
    with httpx.Client(base_url=crusoe_sim.address, trust_env=False) as c:
        c.post(f"{CRUSOE_INSTANCES}/{iid}/restart", headers={"Authorization": "Bearer crusoe-test-key-001"})
        c.get(f"{CRUSOE_INSTANCES}/{iid}/nothing", headers={"Authorization": "Bearer crusoe-test-key-001"})
    case = Case(["destroy", f"{iid}/restart"], "destroy", "crusoe", f"{iid}/restart")
    ok = Outcome(5, "", "error: not found. List what exists with `vm list`.\n")
    problem = check(case, ok, snap.new())
    assert problem is not None and "restart_instance" in problem
    crusoe_sim.reset()


def test_hostile_names_from_a_provider_are_shown_escaped(cli_env, lambda_sim):
    """Lambda lets a rename set any name (contract): a terminal escape or a bidi override in a VM name is shown
    escaped in `vm list`, while `--json` keeps the exact name (JSON escapes it)."""
    import httpx

    hostile = "\x1b]0;owned\x07\x1b[2Jevil\u202eexe.sh"
    with httpx.Client(base_url=lambda_sim.address, trust_env=False) as c:
        key = {"Authorization": "Bearer lambda-test-key-001"}
        iid = c.get("/api/v1/instances", headers=key).json()["data"][0]["id"]
        c.post(f"/api/v1/instances/{iid}", json={"name": hostile}, headers=key)
    table = run_in_process(["list", "--provider", "lambda"])
    as_json = run_in_process(["list", "--provider", "lambda", "--json"])
    import json

    ok = (table.code == 0 and _unprintable(table.out) is None and "\\x1b]0;owned\\x07" in table.out
          and "\\u202e" in table.out and hostile in [r["name"] for r in json.loads(as_json.out)])
    record(SCENARIO, trials=1, passed=ok, detail="hostile VM name from a provider")
    assert table.code == 0 and as_json.code == 0, (table.err, as_json.err)
    assert _unprintable(table.out) is None, table.out
    assert "\\x1b]0;owned\\x07" in table.out and "\\u202e" in table.out, table.out
    assert hostile in [r["name"] for r in json.loads(as_json.out)]


WEIRD_VALID_NAMES = ["../../x", "a/b?c#d&e=f", "%2Frestart", "名前-😀", "x,y", "  spaced  "]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_odd_but_valid_names_round_trip(provider, cli_env, sims):
    """Names vmops accepts may still hold `/`, `?`, `#`, `%`, `,` and unicode: they travel in bodies and query
    parameters only, so each VM is made once with exactly that name and nothing reaches another endpoint."""
    import json

    problems: list[str] = []
    for name in WEIRD_VALID_NAMES:
        snap = Snapshot(sims)
        made = run_in_process(["create", "--provider", provider, "--gpu", "h100:1", "--name", name, "--json"])
        if made.code != 0:
            problems.append(f"{name!r}: create exit {made.code}: {made.err[-200:]}")
            continue
        iid = json.loads(made.out)[0]["id"]
        listed = json.loads(run_in_process(["list", "--provider", provider, "--json"]).out)
        if [r["name"] for r in listed].count(name) != 1:
            problems.append(f"{name!r}: listed {[r['name'] for r in listed]}")
        gone = run_in_process(["destroy", iid, "--provider", provider])
        if gone.code != 0:
            problems.append(f"{name!r}: destroy exit {gone.code}: {gone.err[-200:]}")
        stray = [r for recs in snap.new().values() for r in recs if r.endpoint == NO_ENDPOINT]
        if stray:
            problems.append(f"{name!r}: requests reached no endpoint: {stray}")
    left = [i for i in seeded_view_names(cli_env, provider) if i in WEIRD_VALID_NAMES]
    record(SCENARIO, trials=len(WEIRD_VALID_NAMES), passed=len(WEIRD_VALID_NAMES) - len(problems), leaked=len(left),
           detail=problems[0] if problems else f"odd valid names at {provider}")
    assert not problems, problems
    assert not left, left


def seeded_view_names(env: dict[str, str], provider: str) -> list[str]:
    from vmops.config import load_config

    with Session(load_config(env)) as s:
        return [i.name for i in s.provider(provider).list_instances()]
