"""MicroVM start-up and warm exec beside bwrap and docker (runc), measured in one run.

    .venv/bin/python bench/microvm.py [--runs 3]

Prints boot-to-first-exec and warm-exec medians per backend, and splits a microVM boot
into QEMU's own start, the guest (kernel, init, agent — by the guest's clock) and
skillc's part, to judge what KVM would give.
"""

from __future__ import annotations

import argparse
import statistics
import time

from compiler.sandbox import SandboxConfig, open_sandbox
from compiler.sandbox.microvm import MicroVMSandbox, accelerator

PY = ["python3", "-c", "pass"]


def first_exec(config: SandboxConfig, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        with open_sandbox(config) as box:
            assert box.exec(["true"]).ok
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def warm(config: SandboxConfig, argv: list[str], runs: int = 10) -> float:
    with open_sandbox(config) as box:
        box.exec(argv)
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            assert box.exec(argv).ok
            samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    configs = {"bwrap": SandboxConfig(backend="bwrap"),
               "docker (runc)": SandboxConfig(backend="docker"),
               "microvm": SandboxConfig(backend="microvm", memory_mb=512, disk_mb=256)}
    print(f"microvm accelerator: {' — '.join(accelerator())}")
    print(f"{'backend':16} {'boot→first exec':>16} {'warm `true`':>12} {'warm python3':>13}")
    for name, config in configs.items():
        n = runs if name == "microvm" else runs * 3
        print(f"{name:16} {first_exec(config, n):15.3f}s {warm(config, ['true']):11.3f}s "
              f"{warm(config, PY):12.3f}s")
    parts = []
    for _ in range(runs):
        with MicroVMSandbox(configs["microvm"]) as vm:
            t = time.perf_counter()
            vm.exec(["true"])
            parts.append((vm.qemu_seconds, vm.guest_uptime, vm.boot_seconds,
                          time.perf_counter() - t))
    qemu, guest, boot, first = (statistics.median(p[i] for p in parts) for i in range(4))
    print("microvm boot, split (medians):")
    print(f"  QEMU start until it listens     {qemu:7.3f}s")
    print(f"  guest clock at agent ready      {guest:7.3f}s  (kernel + init + python agent)")
    print(f"  whole boot seen by skillc       {boot:7.3f}s  (rest: {boot - qemu - guest:.3f}s "
          "before the guest's clock starts — firmware, kernel decompression — and the channel)")
    print(f"  first exec after ready          {first:7.3f}s")


if __name__ == "__main__":
    main()
