"""This process's peak resident memory per stage of a build: Linux resets the peak (VmHWM) when "5" is written to
/proc/self/clear_refs, so each stage's peak is measured on its own rather than the build's running maximum.

Elsewhere (no /proc, or a kernel that refuses the reset) the figure is the process's peak so far, and says so.
"""

from __future__ import annotations

import resource
from pathlib import Path

PROC = Path("/proc/self")


def reset() -> bool:
    """Start a new peak at the current resident size; False where the kernel has no such reset."""
    try:
        (PROC / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb() -> float:
    """The peak resident memory since the last reset (VmHWM), else since the process started (ru_maxrss)."""
    try:
        for line in (PROC / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
