"""A cached rebuild against a full reference build of the same spec, in one run.

    .venv/bin/python bench/build_cache.py [--runs N] [--spec specs/add-webhook]

The cached path (plan + key + index lookup, no sandbox, no agent) should take well
under 5% of the full build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from compiler.build import Builder
from compiler.catalog import open_local
from compiler.deployment import load as load_deployment
from compiler.spec import load

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--spec", type=Path, default=REPO / "specs" / "add-webhook")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKILLC_HOME"] = f"{tmp}/home"
        fork = shutil.copytree(REPO / "examples" / "hostapp", f"{tmp}/fork")
        dep_path = Path(tmp) / "dep.toml"
        dep_path.write_text(f'name = "bench"\ntarget = "{fork}"\n[sandbox]\nbackend = "bwrap"\n'
                            '[agent]\nbackend = "reference"\n')
        spec, dep = load(args.spec), load_deployment(dep_path)
        builder = Builder(open_local())
        full, cached = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            assert not builder.build(spec, dep, no_cache=True).cached
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert builder.build(spec, dep).cached
            cached.append(time.perf_counter() - t)
    f, c = statistics.median(full), statistics.median(cached)
    print(f"spec {spec.name}, {args.runs} runs each (medians)")
    print(f"full reference build (bwrap)  {f * 1000:8.1f} ms")
    print(f"cached rebuild                {c * 1000:8.1f} ms")
    print(f"cached / full                 {c / f * 100:8.2f} %")


if __name__ == "__main__":
    main()
