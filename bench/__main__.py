"""Run every benchmark module of this package (each exposes `run()`), or the ones named: `python -m bench ui`."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> None:
    available = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    for name in names or available:
        if name not in available:
            sys.exit(f"Unknown benchmark {name!r}; choose from {', '.join(available)}.")
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main(sys.argv[1:])
