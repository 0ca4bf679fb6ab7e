#!/usr/bin/env python3
"""Redis memory by kind of key: every key of the Redis at PORT scanned, `MEMORY USAGE` of
each, summed by kind (the key with its hash tag, ids and numbers blanked out). Prints a table
of keys, bytes and bytes per key per kind, and the totals. Used by `BENCH_REDIS_MEMORY=1
scripts/bench.sh --store redis` at the end of a run.

    python3 scripts/redis_memory.py PORT
"""

import re
import subprocess
import sys
from collections import defaultdict

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TAG = re.compile(r"\{[^}]*\}")
NUMBER = re.compile(r"\d+")


def kind(key: str) -> str:
    key = TAG.sub("{·}", key, count=1)
    key = UUID.sub("<id>", key)
    return NUMBER.sub("N", key)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    port = sys.argv[1]
    cli = ["redis-cli", "-p", port]
    keys = subprocess.run(cli + ["--scan"], capture_output=True, text=True, check=True)
    names = [k for k in keys.stdout.splitlines() if k]
    if not names:
        print("redis memory: no keys")
        return 0
    commands = "".join(f'MEMORY USAGE "{name}" SAMPLES 0\n' for name in names)
    sizes = subprocess.run(cli, input=commands, capture_output=True, text=True, check=True)
    answers = sizes.stdout.splitlines()
    if len(answers) != len(names):
        print(f"redis memory: {len(names)} keys but {len(answers)} answers", file=sys.stderr)
        return 1
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, answer in zip(names, answers):
        entry = by_kind[kind(name)]
        entry[0] += 1
        entry[1] += int(answer) if answer.strip().isdigit() else 0
    total = sum(b for _, b in by_kind.values())
    print(f"{'kind of key':48} {'keys':>8} {'bytes':>12} {'per key':>9}")
    for name, (count, size) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:48} {count:8} {size:12} {size // count:9}")
    print(f"{'total':48} {len(names):8} {total:12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
