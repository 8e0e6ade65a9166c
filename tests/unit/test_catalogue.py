"""The catalogue and GPU-shape parsing: pure data, no network."""

import pytest

from vmops.catalogue import PROVIDERS, all_shapes, provider_entry, providers_offering, resolve_type
from vmops.model import GpuShape


@pytest.mark.parametrize("text,expected", [
    ("h100", GpuShape("h100", 1)), ("H100", GpuShape("h100", 1)), ("h100:8", GpuShape("h100", 8)),
    (" a100 : 8 ", GpuShape("a100", 8)), ("h200:1", GpuShape("h200", 1)),
])
def test_shape_parse(text, expected):
    assert GpuShape.parse(text) == expected
    assert str(GpuShape.parse(text)) == f"{expected.model}:{expected.count}"


@pytest.mark.parametrize("bad", ["", "8", "h100:", "h100:x", "h100:0", "h100:8:1", "-h100"])
def test_shape_parse_rejects(bad):
    with pytest.raises(ValueError):
        GpuShape.parse(bad)


@pytest.mark.parametrize("provider,gpu,native", [
    ("crusoe", "h100:8", "h100.8x"), ("crusoe", "a100", "a100.1x"), ("crusoe", "h100.8x", "h100.8x"),
    ("lambda", "h100:8", "gpu_8x_h100"), ("lambda", "gpu_1x_a100", "gpu_1x_a100"), ("lambda", "A100:8", "gpu_8x_a100"),
    ("nebius", "h200:8", "gpu-h200-sxm/8gpu-160vcpu-2048gb"),
    ("nebius", "gpu-h100-sxm/1gpu-16vcpu-200gb", "gpu-h100-sxm/1gpu-16vcpu-200gb"),
])
def test_resolve_type(provider, gpu, native):
    assert resolve_type(provider, gpu).name == native


def test_unoffered_shape_names_what_is_offered():
    with pytest.raises(ValueError) as e:
        resolve_type("lambda", "h200")
    assert "h100:8" in str(e.value) and "gpu_8x_h100" in str(e.value)
    with pytest.raises(ValueError):
        resolve_type("crusoe", "gpu_8x_h100")  # another provider's native name


def test_regions_and_aliases():
    assert provider_entry("crusoe").resolve_region("us-west") == "us-west1"
    assert provider_entry("lambda").resolve_region("us-west") == "us-west-1"
    assert provider_entry("lambda").resolve_region("eu-west-1") == "eu-west-1"
    assert provider_entry("crusoe").resolve_region(None) is None
    with pytest.raises(ValueError, match="unknown region"):
        provider_entry("crusoe").resolve_region("us-west-1")
    with pytest.raises(ValueError, match="no regions"):
        provider_entry("nebius").resolve_region("us-west")


def test_every_type_is_consistent():
    for entry in PROVIDERS.values():
        assert entry.adapter.count(":") == 1
        for t in entry.types:
            assert t.list_price_per_hour > 0 and t.price_source
            assert entry.type_for(t.shape) is t and entry.type_named(t.name) is t
    assert [p.name for p in providers_offering(GpuShape("h100", 8))] == ["crusoe", "lambda", "nebius"]
    assert [p.name for p in providers_offering(GpuShape("h200", 1))] == ["nebius"]
    assert GpuShape("a100", 1) in all_shapes()


def test_unknown_provider():
    with pytest.raises(KeyError, match="known: crusoe, lambda, nebius"):
        provider_entry("aws")
