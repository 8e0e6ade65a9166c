"""vmops.doctor against the simulators of both dialects (no mocks)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import cloud_env, sim_env
from vmops.config import load_config
from vmops.doctor import run_doctor


def test_doctor_reports_dialect_credential_source_and_call(crusoe_cloud_sim, lambda_cloud_sim, nebius_cloud_sim,
                                                           public_key_file: str, tmp_path: Path) -> None:
    sims = {"crusoe": crusoe_cloud_sim, "lambda": lambda_cloud_sim, "nebius": nebius_cloud_sim}
    env = {**sim_env(tmp_path, sims), **cloud_env(sims, public_key_file)}
    report = run_doctor(load_config(env))
    by = {c.provider: c for c in report.checks}
    assert report.ok, [c.result for c in report.checks]
    c = by["crusoe"]
    assert (c.dialect, c.dialect_source, c.credential_source) == ("cloud", "env", "env:VMOPS_CRUSOE_SECRET_KEY")
    assert c.key_id == "vmop****" and "AAEC" not in str(c.to_dict())
    assert c.clock_skew_s is not None and abs(c.clock_skew_s) < 5 and "VM types" in c.result
    assert by["lambda"].dialect == "cloud" and "instance types" in by["lambda"].result
    assert by["lambda"].clock_skew_s is None
    n = by["nebius"]
    assert (n.dialect, n.credential_source, n.ok) == ("cloud", "env:VMOPS_NEBIUS_IAM_TOKEN", True)
    assert "nebius-iam-token-001" not in str(n.to_dict())


def test_doctor_failure_has_hint_and_no_secret(crusoe_cloud_sim, lambda_sim, public_key_file: str,
                                               tmp_path: Path) -> None:
    sims = {"crusoe": crusoe_cloud_sim, "lambda": lambda_sim}
    secret = "c2VjcmV0LXRoYXQtaXMtd3Jvbmc"
    env = {**sim_env(tmp_path, sims), **cloud_env({"crusoe": crusoe_cloud_sim}, public_key_file),
           "VMOPS_CRUSOE_SECRET_KEY": secret, "VMOPS_LAMBDA_API_KEY": "lambda-wrong-key-000000"}
    report = run_doctor(load_config(env))
    by = {c.provider: c for c in report.checks}
    assert not report.ok and not by["crusoe"].ok and not by["lambda"].ok
    assert "clock" in (by["crusoe"].hint or "") and by["lambda"].dialect == "reference"
    assert by["lambda"].hint
    text = str([c.to_dict() for c in report.checks])
    assert secret not in text and "lambda-wrong-key-000000" not in text
    # both are credential failures: the report's exit code is that of AuthError, not a generic failure
    assert {c.error_kind for c in report.checks} == {"auth"} and report.exit_code == 3, report.checks
    # a provider that does not answer is an outage (12), and the two kinds together are a partial failure (14)
    down = {**env, "VMOPS_LAMBDA_API_KEY": "", "VMOPS_LAMBDA_URL": "http://127.0.0.1:9"}
    mixed = run_doctor(load_config(down))
    assert {c.provider: c.exit_code for c in mixed.checks} == {"crusoe": 3, "lambda": 12}, mixed.checks
    assert mixed.exit_code == 14
    assert run_doctor(load_config(down), ["lambda"]).exit_code == 12
