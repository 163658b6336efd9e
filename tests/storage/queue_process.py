"""A separate process using the queue, for the crash and multi-process tests (not a test module).

    python queue_process.py hold URL WORKER [--with-result PATH]   claim one job, print its id, heartbeat forever
    python queue_process.py produce URL USER COUNT                 enqueue COUNT jobs for USER, print "done"
    python queue_process.py drain URL WORKER                       claim and complete until none waits; print the ids

URL is a queue URL (sqlite:///… or postgresql://…), as storage.open_queue takes it.
"""

from __future__ import annotations

import argparse
import asyncio

from storage import open_queue

LEASE_SECONDS = 30
HEARTBEAT_PAUSE = 0  # heartbeat back to back, so the SIGKILL likely lands inside a transaction


async def hold(url: str, worker: str, result_path: str | None) -> None:
    async with open_queue(url, lease_seconds=LEASE_SECONDS) as queue:
        claim = await queue.claim(worker)
        if claim is None:
            print("nothing", flush=True)
            return
        if result_path is not None:
            await queue.set_result(claim, result_path)
        print(f"claimed {claim.job_id}", flush=True)
        while True:  # until killed
            await queue.heartbeat(claim)
            await asyncio.sleep(HEARTBEAT_PAUSE)


async def produce(url: str, user: str, count: int) -> None:
    async with open_queue(url, max_queued_per_user=None) as queue:
        for message in range(count):
            await queue.enqueue("discord", f"chat-{user}", user, f"{user}-{message}", f"/in/{user}-{message}", {})
    print("done", flush=True)


async def drain(url: str, worker: str) -> None:
    claimed: list[int] = []
    async with open_queue(url, lease_seconds=LEASE_SECONDS) as queue:
        while (claim := await queue.claim(worker)) is not None:
            await queue.complete(claim, None)
            claimed.append(claim.job_id)
    print(" ".join(map(str, claimed)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    hold_args = commands.add_parser("hold")
    hold_args.add_argument("url")
    hold_args.add_argument("worker")
    hold_args.add_argument("--with-result")
    produce_args = commands.add_parser("produce")
    produce_args.add_argument("url")
    produce_args.add_argument("user")
    produce_args.add_argument("count", type=int)
    drain_args = commands.add_parser("drain")
    drain_args.add_argument("url")
    drain_args.add_argument("worker")
    args = parser.parse_args()
    if args.command == "hold":
        asyncio.run(hold(args.url, args.worker, args.with_result))
    elif args.command == "produce":
        asyncio.run(produce(args.url, args.user, args.count))
    else:
        asyncio.run(drain(args.url, args.worker))


if __name__ == "__main__":
    main()
