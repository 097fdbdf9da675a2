# chrootforge tasks. `scripts/bootstrap` installs what they need.
set shell := ["bash", "-euo", "pipefail", "-c"]

py := ".venv/bin/python"

# Run the whole test suite (as root it also runs every rootless check as the user `cftest`).
test *ARGS:
    {{py}} -m pytest -q {{ARGS}}

# The suite without the tests marked slow (those that build the synthetic stage or run emerge).
test-fast *ARGS:
    {{py}} -m pytest -q -m "not slow" {{ARGS}}

# Build the example images and run one.
demo:
    {{py}} scripts/demo.py

# Build (or find) the synthetic test world of ARCH (amd64 or arm64; built once, cached); print the
# `export` lines the example namespaces read: eval "$(.venv/bin/just world-env [arm64])"
world-env ARCH="amd64":
    @{{py}} -m tests.world.env {{ARCH}}

# Benchmarks: ratios against peer tools, run side by side.
bench:
    for b in bench/bench_*.py; do {{py}} "$b"; done

# Lint as CI does: ruff's rules, ruff's formatting, and mypy (0 errors).
lint:
    .venv/bin/ruff check chrootforge tests bench scripts
    .venv/bin/ruff format --check chrootforge tests bench scripts
    .venv/bin/mypy
