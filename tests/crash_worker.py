"""A skillc process for the reliability tests: imports first, then waits for 'go' on stdin,
so the test can kill it at a chosen moment of the operation itself."""

import sys
from pathlib import Path

from compiler import catalog
from compiler.build import Builder
from compiler.deployment import load as load_deployment
from compiler.spec import load

op, args = sys.argv[1], sys.argv[2:]
print("ready", flush=True)
sys.stdin.readline()
registry = catalog.open_local()
if op == "publish":
    catalog.publish(registry, Path(args[0]))
elif op == "build":
    Builder(registry).build(load(Path(args[0])), load_deployment(Path(args[1])), no_cache=True)
elif op == "publish-build":
    catalog.publish(registry, Path(args[0]))
    Builder(registry).build(load(Path(args[0])), load_deployment(Path(args[1])))
print("done", flush=True)
