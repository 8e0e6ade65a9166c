"""PostgreSQL failures as typed errors (exit 13, a hint that fits the cause), for the backend and the fleet
locks alike. The password is never in the text: libpq does not print it, and the URL is shown masked."""

from __future__ import annotations

from vmops.errors import StateError
from vmops.state.url import PostgresTarget


def pg_error(target: PostgresTarget, action: str, e: BaseException) -> StateError:
    """A typed error for a psycopg failure (its text never holds the password: libpq does not print it)."""
    text = (str(e).strip().splitlines() or [type(e).__name__])
    first = " ".join(line.strip() for line in text[:2])
    low = first.lower()
    where = f"the state database {target.masked()}"
    creds = "credentials: the URL, PGPASSWORD, ~/.pgpass, PGSERVICE or VMOPS_DB_PASSWORD_FILE"
    if "password authentication failed" in low or "no password supplied" in low or "authentication failed" in low:
        return StateError(f"{action} {where}: the server refused the login ({first})",
                          hint=f"Check the user name and password ({creds})")
    if "does not exist" in low and "database" in low:
        return StateError(f"{action} {where}: {first}",
                          hint="Create the database first (createdb), or fix the name in VMOPS_DB_URL")
    if "permission denied" in low or "must be owner" in low:
        return StateError(f"{action} {where}: the database user may not do this ({first})",
                          hint="vmops creates and migrates its own tables: let its user own the database "
                               "(ALTER DATABASE ... OWNER TO ...) or GRANT CREATE ON SCHEMA public to it")
    if "lock timeout" in low or "lock_timeout" in low:
        return StateError(f"{where} is busy: another vm process held the write lock too long ({first})",
                          hint="Retry when the other vm command has finished (VMOPS_STATE_TIMEOUT sets how long to wait)")
    if ("connection" in low or "server closed" in low or "terminating" in low or "could not" in low
            or "timeout" in low or "consuming input failed" in low):
        return StateError(f"{action} {where}: the database cannot be reached or the connection was lost ({first})",
                          hint="Check that the PostgreSQL server is up and that VMOPS_DB_URL names the right host "
                               "and port; then run `vm fleet reconcile` for any fleet this command was changing")
    return StateError(f"{action} {where} ({first})", hint=f"Check VMOPS_DB_URL and the {creds}")
