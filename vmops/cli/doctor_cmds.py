"""`vm doctor`: per provider, the dialect, endpoint and credential in use (masked) and where each came
from, clock skew where signatures need it, and one cheap authenticated call (vmops.doctor)."""

from __future__ import annotations

from vmops.cli.base import command, make_output, output_options, provider_option
from vmops.cli.output import Column, print_json, print_table

COLUMNS = (
    Column("provider", "PROVIDER", keep=True),
    Column("dialect", "DIALECT", keep=True),
    Column("endpoint", "ENDPOINT"),
    Column("credential", "CREDENTIAL"),
    Column("credential_source", "FROM"),
    Column("clock_skew_s", "SKEW S", ">"),
    Column("ok", "OK", keep=True),
    Column("result", "RESULT", keep=True, prose=True),
    Column("hint", "HINT", prose=True),
)


@command("doctor", examples=["vm doctor", "vm doctor -p crusoe -o json   # exit 3: credentials, 12: no answer"])
@provider_option()
@output_options(csv=False)
def doctor(provider: str | None, output: str, as_json: bool, wide: bool) -> int:
    """Check each provider's configuration and credentials with one cheap authenticated call."""
    from vmops.config import load_config
    from vmops.doctor import run_doctor

    out = make_output(output, as_json, wide)
    report = run_doctor(load_config(), [provider] if provider else None)
    rows = [c.to_dict() for c in report.checks]
    if out.json:
        print_json({"ok": report.ok, "providers": rows})
    else:
        print_table(rows, COLUMNS, wide=out.wide)
    return report.exit_code
