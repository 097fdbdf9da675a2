"""gzip layer bytes are a function of the input alone: not of the machine's CPU, not of the threads.

Reproducible digests across machines (issue 10) rest on this. zlib-ng picks its match finders by
CPU feature at run time; these tests pin the output and replay it on emulated older CPUs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chrootforge.oci import compress

REPO = Path(__file__).resolve().parents[2]
# sha256 of ParallelGzip(payload()) with zlib-ng 2.3.3 at level 4. If this changes, every gzip layer's
# digest changes: that must be a deliberate choice (a zlib-ng or level bump), never a side effect.
GOLDEN = "7f4790106af7bdd81a0b19223f412a7b9759d6748e4be320351ae7cca86efa4f"

SCRIPT = """
import hashlib, sys
from chrootforge.oci import compress
from tests.oci.test_gzip_bytes import payload
out = []
gz = compress.ParallelGzip(out.append, threads=int(sys.argv[1]))
gz.write(payload())
gz.close()
print(hashlib.sha256(b"".join(out)).hexdigest())
"""


def payload() -> bytes:
    """3 MiB + a bit of text-like data from a fixed LCG (no library PRNG whose sequence may change)."""
    state, words = 12345, []
    for _ in range(3000):
        state = (state * 1103515245 + 12345) % 2**31
        words.append(bytes(97 + (state >> s) % 10 for s in range(2 + state % 8)))
    out = bytearray()
    while len(out) < 3 * compress.GZIP_BLOCK + 777:
        state = (state * 1103515245 + 12345) % 2**31
        out += words[state % 3000] + b" "
    return bytes(out[: 3 * compress.GZIP_BLOCK + 777])


def _digest(threads: int) -> str:
    out: list[bytes] = []
    gz = compress.ParallelGzip(out.append, threads=threads)
    gz.write(payload())
    gz.close()
    blob = b"".join(out)
    import gzip

    assert gzip.decompress(blob) == payload()
    return hashlib.sha256(blob).hexdigest()


def test_gzip_bytes_are_pinned():
    assert compress.zlib_ng.ZLIBNG_RUNTIME_VERSION == compress.ZLIBNG_PINNED
    assert _digest(1) == _digest(3) == GOLDEN


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["qemu64", "Nehalem", "Haswell"])
def test_gzip_bytes_do_not_depend_on_the_cpu(cpu):
    """The same bytes on an emulated x86-64 baseline (SSE2), SSE4.2 and AVX2 CPU as on this one."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-x86_64 (package qemu-user) is not installed; scripts/bootstrap installs it")
    done = subprocess.run(
        [qemu, "-cpu", cpu, sys.executable, "-c", SCRIPT, "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == GOLDEN
