"""Sandbox start-up cost: skillc's open + exec `python3 -c pass` + close, per backend,
beside the same work done directly (plain subprocess, raw bwrap, `docker run --rm`) in this run.

    .venv/bin/python bench/sandbox.py [--runs N]

Prints medians and ratios; the skillc layer should add little over the raw tool, and a
warm exec in an open docker sandbox should stay well under 0.15 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable

from compiler.sandbox import SandboxConfig, open_sandbox

IMAGE = "skillc-base:bookworm"
PY = ["/usr/bin/python3", "-c", "pass"]
RAW_BWRAP = ["bwrap", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
             "--cap-drop", "ALL", "--die-with-parent", "--ro-bind", "/usr", "/usr",
             "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
             "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
             "--tmpfs", "/tmp", "--", *PY]


def raw_docker(runtime: str) -> list[str]:
    return ["docker", "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--pids-limit", "4096", "--memory", "1g",
            "--user", "65534:65534", "--runtime", runtime, IMAGE, *PY]


def median(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm caches
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def one_shot(config: SandboxConfig) -> Callable[[], object]:
    def run() -> None:
        with open_sandbox(config) as box:
            assert box.exec(PY).ok
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    plain = median(lambda: subprocess.run(PY, check=True), runs)
    rows = [("plain subprocess", plain, plain, "")]
    raw = median(lambda: subprocess.run(RAW_BWRAP, check=True), runs)
    ours = median(one_shot(SandboxConfig(backend="bwrap")), runs)
    rows.append(("bwrap (raw CLI)", raw, plain, ""))
    rows.append(("bwrap (skillc)", ours, plain, f"{ours / raw:.2f}x raw"))
    for runtime in ("runc", "runsc"):
        config = SandboxConfig(backend="docker", image=IMAGE,
                               runtime=None if runtime == "runc" else runtime)
        raw = median(lambda r=runtime: subprocess.run(raw_docker(r), check=True,  # type: ignore[misc]
                                                      capture_output=True), max(runs // 3, 3))
        ours = median(one_shot(config), max(runs // 3, 3))
        rows.append((f"docker+{runtime} (docker run --rm)", raw, plain, ""))
        rows.append((f"docker+{runtime} (skillc)", ours, plain, f"{ours / raw:.2f}x raw"))
        with open_sandbox(config) as box:
            warm = median(lambda b=box: b.exec(PY), runs)  # type: ignore[misc]
        rows.append((f"docker+{runtime} warm exec", warm, plain, ""))
    print(f"{'what':40} {'median s':>9} {'x plain':>8}  vs raw")
    for name, value, base, note in rows:
        print(f"{name:40} {value:9.4f} {value / base:8.1f}  {note}")


if __name__ == "__main__":
    main()
