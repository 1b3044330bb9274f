"""Development helpers that the tests, the benchmarks and `make loadtest` share.

- launch: `python -m serving` as a subprocess, waited for until it listens, stopped
  with SIGTERM;
- photos, handwriting: the seeded photo-like digits (MNIST's, and other hands') that
  the client's accuracy is measured on.

Not shipped: pyproject.toml's package list leaves it out, so an installed client or
server carries none of it. The helpers live here rather than under tests/ because the
benchmarks import them too, and rather than in serving/ or client/ because nothing an
application runs needs them. They run from a checkout of the repository only.
"""
