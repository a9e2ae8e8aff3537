"""keep_freed_memory: large blocks are reused instead of being faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tensorfields.pipeline.host_allocator import keep_freed_memory

# Allocates, touches and frees a 64 MB block ten times, then prints the minor page faults the
# last nine cost: with glibc's defaults each round maps fresh pages (~16k faults a round).
PROBE = """
import resource, sys
from tensorfields.pipeline.host_allocator import keep_freed_memory
print(keep_freed_memory(), file=sys.stderr)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def touch():
    block = bytearray(64 << 20)  # zero-filled: every page is written
    del block
touch()
start = faults()
for _ in range(9):
    touch()
print(faults() - start)
"""

glibc_linux = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)


def _faults(env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip()), result.stderr.strip()


@glibc_linux
def test_freed_blocks_are_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if k != "TF_SYSTEM_MALLOC"}
    kept, took = _faults(env)
    assert took == "True"
    system, took = _faults({**env, "TF_SYSTEM_MALLOC": "1"})
    assert took == "False"
    pages_per_round = (64 << 20) // 4096
    assert system > 5 * pages_per_round  # the default: fresh pages every round
    assert kept < pages_per_round  # kept: the same pages serve every round


def test_opt_out(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TF_SYSTEM_MALLOC", "1")
    assert keep_freed_memory() is False
