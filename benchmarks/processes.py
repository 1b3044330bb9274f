"""CPU time and memory of a process and everything it started, read from /proc.

A server that runs work in child processes (this one's REST parsers, MLServer's
inference workers) is charged for all of them, so servers compare fairly.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants: a server that runs inference in worker processes
    (MLServer) is charged for all of them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def tree_memory_mb(pid: int) -> dict:
    """RSS and PSS summed over the process tree, in MB. PSS shares each page out among
    the processes that map it, so worker processes forked from one parent (sharing
    TensorFlow's libraries) are not counted twice; for one process the two are close."""
    total = {"rss_mb": 0.0, "pss_mb": 0.0}
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("Rss", "Pss"):
                    total[f"{key.lower()}_mb"] += int(value.split()[0]) / 1024
    return total
