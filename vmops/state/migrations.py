"""Ordered schema migrations. Each runs once, inside its own write transaction, and bumps
``schema_version``. Never edit a released migration: append a new one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # sqlite-utils loads when a store is opened (vmops.state.store), not at import
    from vmops.state.sqlite_light import Database

Migration = Callable[["Database"], None]


def _m1_initial(db: Database) -> None:
    db["fleet"].create(
        {
            "id": int,
            "name": str,
            "gpu": str,
            "count": int,
            "min_count": int,
            "policy": str,
            "state": str,
            "allow_unterminable_reserved": int,
            "created_at": str,
            "updated_at": str,
            "last_error": str,
            "owner_pid": int,
            "owner_host": str,
        },
        pk="id",
        not_null=["name", "gpu", "count", "min_count", "policy", "state", "created_at", "updated_at"],
        defaults={"allow_unterminable_reserved": 0},
    )
    db["fleet"].create_index(["name"], unique=True)
    db["member"].create(
        {
            "id": int,
            "fleet_id": int,
            "seq": int,
            "name": str,
            "provider": str,
            "instance_id": str,
            "region": str,
            "native_type": str,
            "status": str,
            "state": str,
            "reserved": int,
            "reservation_id": str,
            "price_per_hour": float,
            "idempotency_key": str,
            "created_at": str,
            "updated_at": str,
            "last_seen_at": str,
            "last_error": str,
        },
        pk="id",
        foreign_keys=[("fleet_id", "fleet", "id")],
        not_null=["fleet_id", "seq", "name", "provider", "native_type", "status", "state", "idempotency_key",
                  "created_at", "updated_at"],
        defaults={"reserved": 0},
    )
    db["member"].create_index(["fleet_id", "seq"], unique=True)
    # SQLite treats NULLs as distinct, so many not-yet-answered members may share a NULL instance_id,
    # but one provider VM can never be recorded twice.
    db["member"].create_index(["provider", "instance_id"], unique=True)
    db["event"].create(
        {
            "id": int,
            "fleet_id": int,
            "member_id": int,
            "at": str,
            "kind": str,
            "from_state": str,
            "to_state": str,
            "message": str,
        },
        pk="id",
        foreign_keys=[("fleet_id", "fleet", "id")],
        not_null=["fleet_id", "at", "kind"],
    )
    db["event"].create_index(["fleet_id", "id"])


def _m2_member_ip_and_name_index(db: Database) -> None:
    db["member"].add_column("public_ip", str)
    db["member"].create_index(["name"])


#: Index i holds the migration that takes the schema from version i to i+1.
MIGRATIONS: tuple[Migration, ...] = (
    _m1_initial,
    _m2_member_ip_and_name_index,
)

SCHEMA_VERSION = len(MIGRATIONS)
