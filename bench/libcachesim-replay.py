"""Replays a Strata request file through libCacheSim (PyPI `libcachesim`).

Usage: python libcachesim-replay.py REQUESTS.csv POLICY:BYTES [POLICY:BYTES ...]
Request file: one request per line, `obj_id,size_bytes,op` with op `r` or `w`.
Every request is one `cache.get(req)` (an access that inserts on a miss, at the
request's size, as libCacheSim's own simulator does); only reads count.
Prints one JSON object per run: {"policy", "budgetBytes", "reads", "readHits", "libcachesim"}.
"""

import json
import sys
from importlib.metadata import version

import libcachesim as lcs

# The parameters named here are the reference; they are also libCacheSim's defaults.
POLICIES = {
    "lru": lambda size: lcs.LRU(size, consider_obj_metadata=False),
    "lfu": lambda size: lcs.LFU(size, consider_obj_metadata=False),
    "lfuda": lambda size: lcs.LFUDA(size, consider_obj_metadata=False),
    "s3fifo": lambda size: lcs.S3FIFO(
        size,
        consider_obj_metadata=False,
        small_size_ratio=0.1,
        ghost_size_ratio=0.9,
        move_to_main_threshold=2,
    ),
}


def main() -> None:
    path, runs = sys.argv[1], sys.argv[2:]
    requests = []
    with open(path) as f:
        for line in f:
            obj_id, size, op = line.rstrip("\n").split(",")
            requests.append((int(obj_id), int(size), op == "r"))
    for run in runs:
        policy, budget = run.split(":")
        cache = POLICIES[policy](int(budget))
        req = lcs.Request()
        reads = read_hits = 0
        for obj_id, size, is_read in requests:
            req.obj_id = obj_id
            req.obj_size = size
            hit = cache.get(req)
            if is_read:
                reads += 1
                read_hits += 1 if hit else 0
        print(
            json.dumps(
                {
                    "policy": policy,
                    "budgetBytes": int(budget),
                    "reads": reads,
                    "readHits": read_hits,
                    "libcachesim": version("libcachesim"),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
