"""What machine a benchmark ran on, printed beside its figures (timings only compare on one CPU)."""
from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """One line: CPU model, cores visible to this process, torch threads and the vector units torch sees."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = getattr(torch, "cpu", None)
    isa = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    probes = {"AVX-512 BF16": "_is_avx512_bf16_supported", "AMX": "_is_amx_tile_supported"}
    extras = [name for name, probe in probes.items() if callable(getattr(cpu, probe, None)) and getattr(cpu, probe)()]
    return f"CPU: {cpu_model()}; {cores} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, {isa}" + (
        f" + {', '.join(extras)}" if extras else ""
    )
