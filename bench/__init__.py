"""vmops benchmarks: `python -m bench` / `inv bench` (see bench/README.md). Never run as unit tests."""
