"""Performance benchmarks: `python -m bench` runs every module's `run()` (see `make bench`)."""
