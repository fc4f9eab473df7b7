"""How the index's cost grows: lookup, search and publish with 10,000 builds and 1,000 specs,
against 10 of each, measured in one run.

    .venv/bin/python bench/index.py [--large-builds 10000] [--large-specs 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from registry.digest import digest_bytes
from registry.index import BuildRow, Index, SpecRow

WORDS = ["webhook", "telegram", "slack", "scheduler", "cron", "memory", "sqlite", "redis",
         "postgres", "search", "email", "calendar", "weather", "github", "jira", "billing",
         "invoices", "oauth", "metrics", "logging"]


def populate(index: Index, specs: int, builds: int) -> list[str]:
    rng = random.Random(7)
    with index.transaction() as db:
        for i in range(specs):
            words = " ".join(rng.sample(WORDS, 4))
            cur = db.execute("INSERT INTO specs VALUES (?, ?, ?, ?, ?, 0, NULL)",
                             (f"skill-{i}", "1.0.0", digest_bytes(f"s{i}".encode()),
                              f"Integrates {words}", time.time()))
            db.execute("INSERT INTO specs_fts(rowid, name, description, body) VALUES (?,?,?,?)",
                       (cur.lastrowid, f"skill-{i}", f"Integrates {words}", words * 20))
    keys = []
    rows = []
    for i in range(builds):
        key = digest_bytes(f"k{i}".encode())
        keys.append(key)
        rows.append(BuildRow(f"{i:012x}", key, f"skill-{i % max(specs, 1)}", "1.0.0",
                             digest_bytes(b"s"), f"dep-{i % 20}", digest_bytes(b"d"), "passed",
                             "reference", None, "{}", None, digest_bytes(b"o"), None, None, None,
                             None, {}, {}, None, time.time() + i))
    with index.transaction() as db:
        for row in rows:
            values = [v if not isinstance(v, dict) else "{}" for v in vars(row).values()]
            db.execute(f"INSERT INTO builds VALUES ({', '.join('?' * len(values))})", values)
    return keys


def median_ms(fn: Callable[[], object], runs: int = 200) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def measure(tmp: Path, specs: int, builds: int) -> dict[str, float]:
    index = Index(tmp / f"index-{specs}-{builds}.sqlite3")
    keys = populate(index, specs, builds)
    rng = random.Random(1)
    counter = iter(range(10**9))
    results = {
        "lookup by key": median_ms(lambda: index.build_by_key(rng.choice(keys))),
        "latest build of a skill": median_ms(lambda: index.builds("dep-3", "skill-3", limit=1)),
        "search": median_ms(lambda: index.search(" ".join(rng.sample(WORDS, 2)))),
        "publish": median_ms(lambda: index.add_spec(SpecRow(
            f"new-{next(counter)}", "1.0.0", digest_bytes(b"n"), "a new skill", time.time()),
            "body text"), runs=100),
    }
    index.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large-builds", type=int, default=10_000)
    parser.add_argument("--large-specs", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = measure(Path(tmp), 10, 10)
        large = measure(Path(tmp), args.large_specs, args.large_builds)
    print(f"{'operation':24} {'10/10 ms':>10} {f'{args.large_specs}/{args.large_builds} ms':>14}"
          f" {'ratio':>7}")
    for name in small:
        print(f"{name:24} {small[name]:10.3f} {large[name]:14.3f} {large[name] / small[name]:7.2f}")


if __name__ == "__main__":
    main()
