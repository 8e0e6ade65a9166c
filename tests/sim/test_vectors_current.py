"""The vendored copy of the contract vectors matches ../shared/wire whenever that is present."""

import pytest

from tests.wire import SHARED, VENDORED


@pytest.mark.parametrize("name", ["crusoe", "lambda", "nebius"])
def test_vendored_vectors_match_shared(name):
    vendored = (VENDORED / f"{name}.jsonl").read_bytes()
    assert vendored.count(b"\n") > 10
    shared = SHARED / f"{name}.jsonl"
    if shared.exists():
        assert shared.read_bytes() == vendored, f"tests/vectors/{name}.jsonl is stale: copy it from {shared}"
