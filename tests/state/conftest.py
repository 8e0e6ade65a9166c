"""The state tests use the fleet tests' manager fixture."""

from tests.fleet.conftest import make_manager  # noqa: F401 - a fixture, found by name
