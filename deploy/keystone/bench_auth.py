"""Token validation latency of the api's Keystone authenticator against a running Keystone.

    deploy/keystone/up /tmp/ks >/dev/null
    .venv/bin/python deploy/keystone/bench_auth.py /tmp/ks [-n 200]

Uncached: the cache is emptied before each call (one GET /v3/auth/tokens to Keystone each,
Keystone's own cache warm); first sight: a new token each time (issued beforehand); cached:
the same token again. Prints median and p95 in milliseconds. Needs cindermesh's venv.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cindermesh.settings import KeystoneAuthtokenSettings
from deploy.keystone.keystone_up import start_keystone
from services.api.edge.keystone import KeystoneAuth


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"{name}: n={len(ordered)} median={statistics.median(ordered):.3f} ms p95={p95:.3f} ms"


async def run(state_dir: str, n: int) -> None:
    keystone = start_keystone(state_dir)
    settings = KeystoneAuthtokenSettings(
        auth_url=keystone.auth_url,
        username=keystone.service_username,
        password=keystone.service_password,
        project_name=keystone.service_project,
    )
    token = keystone.issue_token("admin", keystone.admin_password, "admin")
    auth = KeystoneAuth(settings)
    await auth.caller(token)  # the service token, connections
    uncached, cached = [], []
    for _ in range(n):
        auth._cache.clear()
        start = time.perf_counter()
        await auth.caller(token)
        uncached.append((time.perf_counter() - start) * 1000)
    fresh = [keystone.issue_token("admin", keystone.admin_password, "admin") for _ in range(n)]
    first = []
    for each in fresh:
        start = time.perf_counter()
        await auth.caller(each)
        first.append((time.perf_counter() - start) * 1000)
    for _ in range(n * 10):
        start = time.perf_counter()
        await auth.caller(token)
        cached.append((time.perf_counter() - start) * 1000)
    await auth.close()
    print(summary("uncached", uncached))
    print(summary("first sight", first))
    print(summary("cached", cached))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_dir")
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.state_dir, args.n))


if __name__ == "__main__":
    main()
