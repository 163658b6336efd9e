"""A separate process using the queue, for the crash and multi-process tests (not a test module).

    python queue_process.py hold DB WORKER [--with-result PATH]   claim one job, print its id, heartbeat forever
    python queue_process.py produce DB USER COUNT                 enqueue COUNT jobs for USER, print "done"
"""

from __future__ import annotations

import argparse
import asyncio

from storage import SqliteJobQueue

LEASE_SECONDS = 30
HEARTBEAT_PAUSE = 0  # heartbeat back to back, so the SIGKILL likely lands inside a transaction


async def hold(db: str, worker: str, result_path: str | None) -> None:
    async with SqliteJobQueue.open(db, lease_seconds=LEASE_SECONDS) as queue:
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


async def produce(db: str, user: str, count: int) -> None:
    async with SqliteJobQueue.open(db, max_queued_per_user=None) as queue:
        for message in range(count):
            await queue.enqueue("discord", f"chat-{user}", user, f"{user}-{message}", f"/in/{user}-{message}", {})
    print("done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    hold_args = commands.add_parser("hold")
    hold_args.add_argument("db")
    hold_args.add_argument("worker")
    hold_args.add_argument("--with-result")
    produce_args = commands.add_parser("produce")
    produce_args.add_argument("db")
    produce_args.add_argument("user")
    produce_args.add_argument("count", type=int)
    args = parser.parse_args()
    if args.command == "hold":
        asyncio.run(hold(args.db, args.worker, args.with_result))
    else:
        asyncio.run(produce(args.db, args.user, args.count))


if __name__ == "__main__":
    main()
