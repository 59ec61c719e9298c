"""The lab and the local cluster helpers of the tests, benchmarks and `make demo`: not part of
the shipped package (pyproject.toml packages only services and agent)."""
