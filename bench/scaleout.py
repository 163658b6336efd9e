"""Scale-out: jobs per minute with 1 and 2 worker processes on SQLite and on PostgreSQL, the time from
a job's completion to its result in the chat, and the queue under 50 concurrent producers with
workers claiming at the same time.

Each run is the scaled layout on this one machine: a front-end process (``python -m bot --role
frontend``) polling the fake Telegram Bot API from the tests (over HTTP on 127.0.0.1), N worker
processes (``python -m bot --role worker``, no platform token, one torch thread each:
``OMP_NUM_THREADS=1``), on a SQLite file or on a throw-away PostgreSQL started here. Distinct users
send short real clips (1-1.5 s cut from the pinned footage, ``bench/footage.py``), doubled in frame
rate with RIFE; the bench waits until every result reached the chat.

- jobs/min: jobs / (last result made − first claim) × 60, read from the queue's own times, so the
  process start-ups (torch import, model load) are not counted.
- completion → chat: the fake API's receipt of each ``sendVideo`` less the job's ``finished_at``
  (the worker stored the result and handed it over); the front-end's courier follows the queue's
  change feed (LISTEN/NOTIFY on PostgreSQL, polling on SQLite) and uploads the result.

    .venv/bin/python -m bench --sections scale_out
    .venv/bin/python -m bench.scaleout [--jobs 6] [--workers 1 2]

Never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import imageio_ffmpeg

import storage
from bench import report
from bench.footage import FootageError, clip_path
from bench.queue_throughput import postgres_database, postgres_missing
from storage import JobState
from tests.fakes import FakeTelegram

REPO_DIR = Path(__file__).resolve().parent.parent
#: The short real clips, cut from the pinned footage: (name, source clip, start s, length s, width, height).
CLIPS = (("tree-1.5s-320x240", "tree.avi", 2.0, 1.5, 320, 240), ("world-1s-480x270", "world.mp4", 1.0, 1.0, 480, 270))
STARTUP_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 900.0
#: Each sender is another user (the per-user cap and fairness do not shape the figures).
FIRST_USER = 1000


@dataclass(frozen=True)
class RunRow:
    engine: str
    workers: int
    jobs: int
    seconds: float  # first claim → last result made
    jobs_per_min: float
    job_median_s: float  # claim → result made, per job
    to_chat_median_s: float
    to_chat_max_s: float
    models: tuple[str, ...]


@dataclass(frozen=True)
class MixedRow:
    producers: int
    workers: int
    jobs: int
    enqueue_per_s: float  # while the workers claim
    claim_complete_per_s: float  # start → last completion
    drain_after_last_enqueue_s: float  # last enqueue → last completion


async def mixed_row(url: str, producers: int, jobs_each: int, workers: int) -> MixedRow:
    """``producers`` enqueue (one user each, one shared pool) while ``workers`` (a pool each) claim and
    complete at the same time, woken by LISTEN/NOTIFY."""
    total = producers * jobs_each
    front = await storage.open_queue(url, max_queued_per_user=None)
    queues = [await storage.open_queue(url, max_queued_per_user=None) for _ in range(workers)]
    finished = 0
    enqueued_at = 0.0
    try:
        async def producer(n: int) -> None:
            for m in range(jobs_each):
                await front.enqueue("telegram", n, n, f"mixed-{m}", f"/data/in/{n}-{m}.mp4", {"fps": 60})

        async def enqueue_all() -> float:
            nonlocal enqueued_at
            began = time.perf_counter()
            await asyncio.gather(*(producer(n) for n in range(producers)))
            enqueued_at = time.perf_counter()
            return total / (enqueued_at - began)

        async def worker(queue: storage.JobQueue, name: str) -> None:
            nonlocal finished
            while finished < total:
                claim = await queue.claim(name)
                if claim is None:
                    await queue.wait_for_work(0.05)
                    continue
                await queue.complete(claim, claim.job_id)
                finished += 1

        started = time.perf_counter()
        enqueue_rate, *_ = await asyncio.gather(enqueue_all(), *(worker(q, f"w{n}") for n, q in enumerate(queues)))
        done_at = time.perf_counter()
    finally:
        for queue in (front, *queues):
            await queue.close()
    return MixedRow(producers, workers, total, enqueue_rate, total / (done_at - started), done_at - enqueued_at)


async def mixed_rows(producers: int, jobs_each: int, worker_counts: tuple[int, ...],
                     postgres_url: str | None = None) -> list[MixedRow]:
    """One fresh database per worker count, on ``postgres_url``'s server or a throw-away one."""
    rows = []
    for workers in worker_counts:
        async with postgres_database(postgres_url) as url:
            rows.append(await mixed_row(url, producers, jobs_each, workers))
    return rows


def mixed_table(rows: list[MixedRow]) -> str:
    header = ["producers", "workers", "jobs", "enqueue while claiming (jobs/s)", "claim+complete (jobs/s)",
              "last enqueue → last completion (s)"]
    cells = [[str(r.producers), str(r.workers), str(r.jobs), f"{r.enqueue_per_s:.0f}", f"{r.claim_complete_per_s:.0f}",
              f"{r.drain_after_last_enqueue_s:.2f}"] for r in rows]
    return report.markdown_table(header, cells)


def roles_missing() -> str | None:
    """Why ``python -m bot --role worker`` cannot run here (the roles split is not in this checkout), or None."""
    try:
        from bot.__main__ import ROLES  # noqa: F401 (only present with the roles split)
    except ImportError:
        return "python -m bot has no --role frontend/worker in this checkout"
    return None


def cut_clips(workdir: Path) -> list[Path]:
    """The short real clips as H.264 MP4s (what a phone sends)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    clips = []
    for name, source, start, length, _, _ in CLIPS:
        target = workdir / f"{name}.mp4"
        subprocess.run([ffmpeg, "-v", "error", "-y", "-ss", str(start), "-t", str(length), "-i", str(clip_path(source)),
                        "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(target)], check=True, timeout=120)
        clips.append(target)
    return clips


def environment(tg: FakeTelegram, queue_url: str, data_dir: Path) -> dict[str, str]:
    keep = {key: value for key, value in os.environ.items()
            if not key.startswith("SMOOTHBOT_") and key not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    return keep | {
        "PYTHONPATH": str(REPO_DIR), "SMOOTHBOT_QUEUE_URL": queue_url, "SMOOTHBOT_DATA_DIR": str(data_dir),
        "SMOOTHBOT_DEFAULT_MODEL": "rife", "SMOOTHBOT_MAX_QUEUED_PER_USER": "100",
        "SMOOTHBOT_TELEGRAM_BASE_URL": tg.base_url, "SMOOTHBOT_TELEGRAM_BASE_FILE_URL": tg.base_file_url,
    }


@contextlib.contextmanager
def processes(commands: list[tuple[list[str], dict[str, str]]], logs: Path) -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    try:
        for index, (argv, env) in enumerate(commands):
            with (logs / f"process-{index}.log").open("wb") as log:
                started.append(subprocess.Popen(argv, cwd=logs, env=env, stdout=subprocess.DEVNULL, stderr=log))
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


async def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def one_run(engine: str, queue_url: str, workers: int, jobs: int, clips: list[Path], workdir: Path,
                  log: Callable[[str], None]) -> RunRow:
    data_dir = workdir / f"data-{engine}-{workers}"
    logs = workdir / f"logs-{engine}-{workers}"
    logs.mkdir()
    async with FakeTelegram() as tg:
        env = environment(tg, queue_url, data_dir)
        worker_env = env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        front = ([sys.executable, "-m", "bot", "--role", "frontend"], env | {"TELEGRAM_TOKEN": tg.token})
        commands = [front, *([[sys.executable, "-m", "bot", "--role", "worker"], worker_env] for _ in range(workers))]
        async with storage.open_queue(queue_url) as queue:
            with processes([(list(argv), dict(e)) for argv, e in commands], logs):
                await tg.wait_until_polling(timeout=STARTUP_TIMEOUT_S)

                async def all_registered() -> bool:
                    return sum(w.status.value in ("idle", "busy") for w in await queue.workers()) == workers

                await wait_for(all_registered, STARTUP_TIMEOUT_S, f"{workers} workers registering")
                wall_to_monotonic = time.time() - time.monotonic()

                def send(user: int, index: int) -> None:
                    clip = clips[index % len(clips)]
                    _, _, _, length, width, height = CLIPS[index % len(clips)]
                    ref = tg.add_file(clip.read_bytes(), mime_type="video/mp4", file_name=clip.name, width=width,
                                      height=height, duration=max(1, round(length)))
                    tg.send_user_message(user, user, video=ref)

                # One warm-up job per worker first: each loads its model on its first job.
                for n in range(workers):
                    send(FIRST_USER - 1 - n, 0)
                await tg.wait_for_all("sendVideo", workers, lambda call: call.ok, timeout=RUN_TIMEOUT_S)
                warm = len(tg.calls_to("sendVideo"))
                users = [FIRST_USER + n for n in range(jobs)]
                for n, user in enumerate(users):
                    send(user, n)
                await tg.wait_for_all("sendVideo", warm + jobs, lambda call: call.ok, timeout=RUN_TIMEOUT_S)
                sent = tg.calls_to("sendVideo")[warm:]
                finished = {}
                for user in users:
                    (job,) = await queue.jobs_for_user("telegram", user, user, include_finished=True)
                    finished[user] = job
        log(f"  {engine}, {workers} worker(s): {jobs} jobs delivered")
    states = {job.state for job in finished.values()}
    if states != {JobState.DONE}:
        raise RuntimeError(f"jobs ended {states}, expected all done")
    first_claim = min(job.started_at.timestamp() for job in finished.values())
    last_done = max(job.finished_at.timestamp() for job in finished.values())
    to_chat = []
    for call in sent:
        user = int(call.params["chat_id"])
        to_chat.append(call.at + wall_to_monotonic - finished[user].finished_at.timestamp())
    models = tuple(sorted({model for call in sent for model in ("rife", "flow", "blend", "dain")
                           if model in call.params["caption"].splitlines()[0].lower()}))
    seconds = last_done - first_claim
    return RunRow(
        engine=engine, workers=workers, jobs=jobs, seconds=seconds, jobs_per_min=jobs / seconds * 60,
        job_median_s=statistics.median(
            (job.finished_at - job.started_at).total_seconds() for job in finished.values()),
        to_chat_median_s=statistics.median(to_chat), to_chat_max_s=max(to_chat), models=models,
    )


async def runs(jobs: int, worker_counts: tuple[int, ...], log: Callable[[str], None],
               with_postgres: bool) -> list[RunRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-scaleout-") as tmp:
        workdir = Path(tmp)
        clips = cut_clips(workdir)
        for workers in worker_counts:
            rows.append(await one_run("SQLite", f"sqlite:///{workdir}/queue-{workers}.sqlite3", workers, jobs, clips,
                                      workdir, log))
            if with_postgres:
                async with postgres_database(None) as url:
                    rows.append(await one_run("PostgreSQL", url, workers, jobs, clips, workdir, log))
    return rows


def run_table(rows: list[RunRow]) -> str:
    header = ["queue", "worker processes", "jobs", "first claim → last result (s)", "jobs/min",
              "claim → result per job, median (s)", "completion → chat, median / max (s)"]
    cells = [[row.engine, str(row.workers), str(row.jobs), f"{row.seconds:.1f}", f"{row.jobs_per_min:.1f}",
              f"{row.job_median_s:.1f}", f"{row.to_chat_median_s:.2f} / {row.to_chat_max_s:.2f}"] for row in rows]
    return report.markdown_table(header, cells)


def section(full: bool, log: Callable[[str], None]) -> report.Section:
    """The report section (bench/__main__.py's CONTRIBUTED)."""
    title = "Scale-out: worker processes, completion to chat, a busy PostgreSQL queue"
    jobs = 12 if full else 6
    notes: list[str] = []
    tables: list[str] = []
    summary: list[str] = []
    data: dict[str, object] = {}
    intro: list[str] = []
    pg_missing = postgres_missing()
    missing = roles_missing()
    try:
        for _, source, *_ in CLIPS:
            clip_path(source)
    except FootageError as error:
        missing = missing or f"footage not available ({error})"
    if missing is not None:
        notes.append(f"scale-out runs (jobs/min, completion → chat): not run ({missing})")
    else:
        rows = asyncio.run(runs(jobs, (1, 2), log, with_postgres=pg_missing is None))
        tables.append(run_table(rows))
        log(tables[-1])
        data["runs"] = [asdict(row) for row in rows]
        by = {(row.engine, row.workers): row for row in rows}
        for engine in ("SQLite", "PostgreSQL"):
            if (engine, 1) in by and (engine, 2) in by:
                one, two = by[(engine, 1)], by[(engine, 2)]
                summary.append(
                    f"Scale-out on {engine}: {one.jobs_per_min:.1f} jobs/min with 1 worker process, "
                    f"{two.jobs_per_min:.1f} with 2 ({two.jobs_per_min / one.jobs_per_min:.2f}×; RIFE, one torch "
                    f"thread each, short real clips, 2 shared cores); completion → chat median "
                    f"{two.to_chat_median_s:.2f} s, max {max(one.to_chat_max_s, two.to_chat_max_s):.2f} s.")
        models = ", ".join(sorted({model for row in rows for model in row.models}))
        intro.append(
            f"`bench/scaleout.py`: one front-end process (`python -m bot --role frontend`, the fake Telegram Bot "
            f"API on 127.0.0.1) and 1 or 2 worker processes (`--role worker`, `OMP_NUM_THREADS=1`), on a SQLite "
            f"file and on a PostgreSQL started here (fsync off). {jobs} users each send one short real clip "
            f"({', '.join(name for name, *_ in CLIPS)}, alternating), doubled in frame rate with RIFE (the model "
            f"that ran: {models}), after one uncounted warm-up job per worker (its model load). jobs/min counts "
            "from the first claim to the last result made (process start-ups left out); completion → chat is the fake API's receipt of sendVideo less the job's "
            "finished_at. This machine's 2 cores are shared by the front-end, the workers, ffmpeg and the "
            "database, so 2 workers cannot double the rate here; on separate machines each brings its own.")
    if pg_missing is not None:
        notes.append(f"scale-out on PostgreSQL: not run ({pg_missing})")
    else:
        jobs_each = 40 if full else 20
        mixed = asyncio.run(mixed_rows(50, jobs_each, (1, 4)))
        tables.append(mixed_table(mixed))
        log(tables[-1])
        data["mixed"] = [asdict(row) for row in mixed]
        intro.append(
            f"The queue alone, busy: 50 concurrent producers (one user each, one shared pool of 10) enqueue "
            f"{50 * jobs_each} jobs into PostgreSQL while 1 or 4 workers (a pool each, woken by LISTEN/NOTIFY) "
            "claim and complete them at the same time (no model: the queue's own cost).")
        four = mixed[-1]
        summary.append(
            f"PostgreSQL queue under 50 producers with 4 workers claiming at once: {four.enqueue_per_s:.0f} "
            f"enqueues/s, {four.claim_complete_per_s:.0f} claim+complete/s.")
    return report.Section(key="scale_out", title=title, intro="\n\n".join(intro), tables=tables,
                          summary=summary, notes=notes, data=data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--mixed-only", action="store_true", help="only the busy PostgreSQL queue (no model)")
    args = parser.parse_args()
    if not args.no_postgres:
        print(mixed_table(asyncio.run(mixed_rows(50, 20, (1, 4)))))
    if args.mixed_only:
        return
    missing = roles_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        raise SystemExit(2)
    rows = asyncio.run(runs(args.jobs, tuple(args.workers), print, with_postgres=not args.no_postgres))
    print(run_table(rows))


if __name__ == "__main__":
    main()
