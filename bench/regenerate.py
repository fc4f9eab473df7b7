"""`regenerate` over many deployments: nothing changed, one spec changed, and a full rebuild
of everything, beside the time to hash the files the skills touched — all in one run.

    .venv/bin/python bench/regenerate.py [--deployments 20] [--jobs 2]

Nothing changed should cost about as much as hashing the touched files; one changed spec
should cost about its own builds; the full rebuild is every (skill, deployment) build.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compiler import catalog
from compiler.build import Builder
from compiler.deployment import load as load_deployment
from compiler.install import Installer
from compiler.regenerate import Regenerator

REPO = Path(__file__).resolve().parent.parent
SKILLS = ("add-webhook", "add-telegram", "add-scheduler", "add-sqlite-memory")


def regenerate_all(deps: list[Path], jobs: int) -> tuple[float, int]:
    def one(path: Path) -> int:
        reg = catalog.open_local()
        try:
            result, _ = Regenerator(load_deployment(path), reg).regenerate()
            return sum(1 for v in result.skills.values() if v.startswith("regenerated"))
        finally:
            reg.close()

    t = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        rebuilt = sum(pool.map(one, deps))
    return time.perf_counter() - t, rebuilt


def hash_touched(forks: list[Path]) -> float:
    t = time.perf_counter()
    for fork in forks:
        lock = (fork / "skillc.lock").read_text()
        for path in sorted({p for p in fork.rglob("*") if p.is_file() and str(p.relative_to(fork))
                            in lock}):
            hashlib.sha256(path.read_bytes()).hexdigest()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["SKILLC_HOME"] = str(root / "home")
        reg = catalog.open_local()
        for name in SKILLS:
            shutil.copytree(REPO / "specs" / name, root / "specs" / name)
            catalog.publish(reg, root / "specs" / name)
        deps, forks = [], []
        for i in range(args.deployments):
            fork = shutil.copytree(REPO / "examples" / "hostapp", root / f"fork-{i}")
            dep = root / f"dep-{i}.toml"
            dep.write_text(f'name = "site-{i}"\ntarget = "{fork}"\n[sandbox]\nbackend = "bwrap"\n'
                           f'[agent]\nbackend = "reference"\n[inputs.add-webhook]\nport = {9000 + i}\n')
            deps.append(dep)
            forks.append(fork)
        t = time.perf_counter()
        for dep in deps:
            installer = Installer(load_deployment(dep), reg)
            for name in SKILLS:
                installer.install(name)
        install_time = time.perf_counter() - t
        hashing = hash_touched(forks)
        unchanged, n0 = regenerate_all(deps, args.jobs)
        skill = root / "specs" / "add-webhook" / "SKILL.md"
        skill.write_text(skill.read_text().replace("version: 1.0.0", "version: 1.0.1")
                         + "\nServe only what the deployment configures.\n")
        catalog.publish(reg, skill.parent)
        one_changed, n1 = regenerate_all(deps, args.jobs)
        t = time.perf_counter()

        def rebuild(dep: Path) -> None:
            r = catalog.open_local()
            try:
                d = load_deployment(dep)
                for name in SKILLS:
                    Builder(r).build(catalog.load_ref(r, name), d, no_cache=True)
            finally:
                r.close()

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(rebuild, deps))
        full = time.perf_counter() - t
    n = args.deployments
    print(f"{n} deployments x {len(SKILLS)} skills, -j {args.jobs} (install took {install_time:.1f}s)")
    print(f"hash the touched files            {hashing * 1000:9.1f} ms")
    print(f"regenerate, nothing changed       {unchanged * 1000:9.1f} ms  "
          f"({unchanged / hashing:.1f}x hashing, {n0} rebuilt)")
    print(f"regenerate, one spec changed      {one_changed * 1000:9.1f} ms  ({n1} rebuilt)")
    print(f"full rebuild of everything        {full * 1000:9.1f} ms  ({n * len(SKILLS)} builds)")
    print(f"nothing changed / full rebuild    {unchanged / full * 100:9.2f} %")
    print(f"one spec changed / full rebuild   {one_changed / full * 100:9.2f} %")


if __name__ == "__main__":
    main()
