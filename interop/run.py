"""The Python side of the interop suite: plain.jobs' own code, driven from the command line.

Run it with the interop venv's Python (interop/setup.sh prints its path), DATABASE_URL set:

    $PY interop/run.py COMMAND [options]

Every command prints one JSON object on stdout (logs go to stderr) and exits 0 unless the
command itself failed (sync-check exits 0 either way and says "clean": true/false). See
interop/README.md for each command's options and output.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _prepare_environment(args: argparse.Namespace) -> None:
    """Plain finds its app as ./app and its settings as app.settings: run from interop/."""
    os.chdir(HERE)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    if not os.environ.get("DATABASE_URL") and not os.environ.get("PLAIN_POSTGRES_URL"):
        _fail("DATABASE_URL is not set")
    for flag, setting in (
        ("heartbeat_interval", "PLAIN_JOBS_HEARTBEAT_INTERVAL"),
        ("heartbeat_timeout", "PLAIN_JOBS_HEARTBEAT_TIMEOUT"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[setting] = str(value)


def _setup_plain() -> None:
    import plain.runtime

    plain.runtime.setup()


def _out(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default, sort_keys=True) + "\n")
    sys.stdout.flush()


def _fail(message: str, **extra: Any) -> None:
    _out({"ok": False, "error": message, **extra})
    sys.exit(1)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


# plain's own CLI, as a deploy runs it


def _plain_cli(*argv: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "plain", *argv],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr


def cmd_migrate(args: argparse.Namespace) -> None:
    rc, output = _plain_cli("migrations", "apply")
    _out({"ok": rc == 0, "rc": rc, "output": output})
    sys.exit(0 if rc == 0 else 1)


def cmd_sync(args: argparse.Namespace) -> None:
    rc, output = _plain_cli("postgres", "sync")
    applied = [
        line.strip()
        for line in output.splitlines()
        if line.startswith("    ") and not line.strip().startswith("FAILED")
    ]
    _out({"ok": rc == 0, "rc": rc, "applied": applied, "output": output})
    sys.exit(0 if rc == 0 else 1)


def cmd_sync_check(args: argparse.Namespace) -> None:
    rc, output = _plain_cli("postgres", "sync", "--check")
    if rc not in (0, 1):
        _fail("plain postgres sync --check crashed", rc=rc, output=output)
    # Its output (plain/postgres/cli/sync.py _check): "Planned operations:" then one line per
    # pending migration (operations indented below it) or "  No planned migration operations.";
    # then "Convergence items to apply:" and "Blocked (requires staged rollout):" sections of
    # indented items; "Schema is in sync." when there is nothing to do.
    sections: dict[str, list[str]] = {"migrations": [], "items": [], "blocked": []}
    section = None
    for line in output.splitlines():
        if line.startswith("Planned operations:"):
            section = "migrations"
        elif line.startswith("Convergence items to apply:"):
            section = "items"
        elif line.startswith("Blocked"):
            section = "blocked"
        elif line.startswith("Schema is in sync."):
            section = None
        elif section == "migrations" and line and not line.startswith(" "):
            sections["migrations"].append(line.strip())
        elif section in ("items", "blocked") and line.startswith("  ") and not line.startswith("    "):
            sections[section].append(line.strip())
    clean = rc == 0 and "Schema is in sync." in output
    _out({"ok": True, "clean": clean, "rc": rc, **sections, "output": output})


def cmd_schema(args: argparse.Namespace) -> None:
    rc, output = _plain_cli("postgres", "schema", "--json")
    try:
        start = output.index("{")
        data = json.loads(output[start : output.rindex("}") + 1])
    except ValueError:
        _fail("plain postgres schema --json printed no JSON", rc=rc, output=output)
    _out({"ok": True, "rc": rc, "schema": data})


# Jobs


def _job_class(name: str) -> Any:
    from plain.jobs.registry import jobs_registry

    try:
        return jobs_registry.get_job_class(name)
    except KeyError:
        _fail(f"no Python job named {name!r}", known=sorted(jobs_registry.jobs))


def cmd_enqueue(args: argparse.Namespace) -> None:
    from plain.jobs.parameters import JobParameters

    job_class = _job_class(args.job_class)
    envelope = json.loads(args.params) if args.params else {"args": [], "kwargs": {}}
    envelope.setdefault("args", [])
    envelope.setdefault("kwargs", {})
    # The envelope is decoded with plain's own decoder (so "__plain://date/…" strings become
    # dates), and run_in_worker encodes the job's arguments again with plain's encoder.
    job_args, job_kwargs = JobParameters.from_json(envelope)
    job = job_class(*job_args, **job_kwargs)
    options: dict[str, Any] = {}
    if args.queue is not None:
        options["queue"] = args.queue
    if args.priority is not None:
        options["priority"] = args.priority
    if args.retries is not None:
        options["retries"] = args.retries
    if args.concurrency_key is not None:
        options["concurrency_key"] = args.concurrency_key
    if args.delay is not None:
        options["delay"] = datetime.timedelta(seconds=args.delay)
    span: dict[str, str] | None = None
    if args.span is None:
        request = job.run_in_worker(**options)
    else:
        # As a request handler would: the enqueue inside a span of the caller's. plain.jobs
        # opens its own `send {queue}` span inside it and stores that span's context.
        from opentelemetry import trace

        from app.otel import SPANS_DIR_VARIABLE

        tracer = trace.get_tracer("interop")
        with tracer.start_as_current_span(args.span) as current:
            if not current.is_recording():
                _fail(f"--span needs the span exporter: set {SPANS_DIR_VARIABLE}")
            cx = current.get_span_context()
            span = {
                "trace_id": f"0x{trace.format_trace_id(cx.trace_id)}",
                "span_id": f"0x{trace.format_span_id(cx.span_id)}",
            }
            request = job.run_in_worker(**options)
    # The caller's span, with --span only: without it the output is what it always was.
    extra = {} if span is None else {"span": span}
    if request is None:
        _out({"ok": True, "enqueued": False, **extra})
        return
    _out(
        {
            **extra,
            "ok": True,
            "enqueued": True,
            "id": request.id,
            "uuid": str(request.uuid),
            "job_class": request.job_class,
            "queue": request.queue,
            "priority": request.priority,
            "retries": request.retries,
            "retry_attempt": request.retry_attempt,
            "concurrency_key": request.concurrency_key,
            "start_at": request.start_at,
            "created_at": request.created_at,
            "parameters": request.parameters,
            "trace_id": request.trace_id,
            "span_id": request.span_id,
        }
    )


def cmd_decode(args: argparse.Namespace) -> None:
    """What plain.jobs makes of a parameters envelope (as a worker does before run())."""
    from plain.jobs.parameters import JobParameters

    job_args, job_kwargs = JobParameters.from_json(json.loads(args.params))

    def describe(value: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type(value).__name__, "value": value}
        if isinstance(value, datetime.datetime) and value.utcoffset() is not None:
            out["utcoffset_seconds"] = value.utcoffset().total_seconds()
        return out

    _out(
        {
            "ok": True,
            "args": [describe(v) for v in job_args],
            "kwargs": {k: describe(v) for k, v in job_kwargs.items()},
            "reencoded": JobParameters.to_json(tuple(job_args), job_kwargs),
        }
    )


class _StopWorker(Exception):
    pass


def cmd_worker(args: argparse.Namespace) -> None:
    from plain.jobs.workers import Worker

    # A group of its own: `kill -KILL -PID` then takes the job processes down with it
    # (a crash); `kill -TERM PID` is a clean shutdown.
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)

    maintenance_every = args.maintenance_every

    class InteropWorker(Worker):
        # plain.jobs runs its rescue and retry pass once a minute (workers.py,
        # _job_results_check_due); tests may ask for it more often. Only the timing changes.
        def _job_results_check_due(self, now: float) -> bool:
            return now - self._job_results_checked_at > maintenance_every

    worker = InteropWorker(
        queues=list(args.queue or ["default"]),
        max_processes=args.max_processes,
        max_jobs_per_process=None,
        max_pending_per_process=args.max_pending_per_process,
        stats_every=0,
    )
    stopped = {"why": "timeout"}
    started = time.monotonic()

    def stop(why: str) -> None:
        if stopped["why"] == "timeout" or why != "timeout":
            stopped["why"] = why
        worker.shutdown()

    def on_signal(signum: int, _frame: Any) -> None:
        stop("signal")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    timer = threading.Timer(args.seconds, lambda: stop("timeout"))
    timer.daemon = True
    timer.start()
    if args.until_idle:
        watcher = threading.Thread(
            target=_watch_idle,
            args=(worker, args.queue or ["default"], args.idle_grace, stop),
            daemon=True,
        )
        watcher.start()
    worker.run()
    timer.cancel()
    _out(
        {
            "ok": True,
            "worker_id": str(worker.worker_id),
            "queues": worker.queues,
            "stopped": stopped["why"],
            "seconds": round(time.monotonic() - started, 3),
        }
    )


def _watch_idle(worker: Any, queues: list[str], grace: float, stop: Any) -> None:
    """Stop the worker once its queues have no ready request, it runs nothing, and no result of
    its queues waits for plain's retry pass (the `retryable()` condition, jobs/models.py)."""
    import psycopg

    url = os.environ.get("DATABASE_URL") or os.environ["PLAIN_POSTGRES_URL"]
    idle_since: float | None = None
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            time.sleep(0.2)
            row = conn.execute(
                "SELECT (SELECT count(*) FROM plainjobs_jobrequest WHERE queue = ANY(%s)"
                " AND (start_at IS NULL OR start_at <= now()))"
                " + (SELECT count(*) FROM plainjobs_jobprocess WHERE worker_id = %s)"
                " + (SELECT count(*) FROM plainjobs_jobresult WHERE queue = ANY(%s)"
                " AND status IN ('ERRORED', 'LOST', 'CANCELLED') AND retries > 0"
                " AND retry_attempt < retries AND retry_job_request_uuid IS NULL)",
                [queues, worker.worker_id, queues],
            ).fetchone()
            busy = row[0] or len(worker._inflight_futures)
            if busy:
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= grace:
                stop("idle")
                return


def cmd_rescue(args: argparse.Namespace) -> None:
    """One rescue pass as plain's worker makes it (workers.py rescue_job_results): stale
    workers' processes become LOST results, their on_aborted hooks run."""
    from plain.jobs.models import rescue_stale_workers

    results = rescue_stale_workers()
    for result in results:
        result.dispatch_aborted_hook()
    _out(
        {
            "ok": True,
            "lost": [
                {
                    "uuid": str(r.uuid),
                    "job_process_uuid": str(r.job_process_uuid),
                    "job_request_uuid": str(r.job_request_uuid),
                    "job_class": r.job_class,
                    "queue": r.queue,
                }
                for r in results
            ],
        }
    )


def cmd_retry_failed(args: argparse.Namespace) -> None:
    """plain's retry pass for the given queues (workers.py rescue_job_results, last line)."""
    from plain.jobs.models import JobResult

    queues = list(args.queue or ["default"])
    JobResult.query.where(JobResult.queue.is_in(queues)).retry_failed_jobs()
    _out({"ok": True, "queues": queues})


def cmd_runs(args: argparse.Namespace) -> None:
    from plain.postgres.db import get_connection

    from app.runs import ensure_runs_table

    ensure_runs_table()
    sql = (
        "SELECT id, side, job_class, label, job_request_uuid, job_process_uuid,"
        " retry_attempt, outcome, seen, pid, at FROM interop_runs"
    )
    params: list[Any] = []
    if args.label is not None:
        sql += " WHERE label = %s"
        params.append(args.label)
    sql += " ORDER BY id"
    with get_connection().cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c.name for c in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    for row in rows:
        # plain's connection hands jsonb back as text.
        if isinstance(row["seen"], str):
            row["seen"] = json.loads(row["seen"])
    _out({"ok": True, "runs": rows})


def cmd_info(args: argparse.Namespace) -> None:
    from importlib.metadata import version

    from plain.jobs.registry import jobs_registry

    _out(
        {
            "ok": True,
            "python": sys.version.split()[0],
            "packages": {
                name: version(name) for name in ("plain", "plain.postgres", "plain.jobs")
            },
            "jobs": sorted(jobs_registry.jobs),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="versions and registered Python jobs")
    sub.add_parser("migrate", help="plain migrations apply")
    sub.add_parser("sync", help="plain postgres sync (what a Plain deploy runs)")
    sub.add_parser("sync-check", help="plain postgres sync --check")
    sub.add_parser("schema", help="plain postgres schema --json")

    p = sub.add_parser("enqueue", help="Job(...).run_in_worker(...)")
    p.add_argument("job_class", help='e.g. "app.jobs.RecordJob"')
    p.add_argument(
        "--params",
        help='plain.jobs envelope: {"args": [...], "kwargs": {...}}; '
        '"__plain://date/…" and "__plain://datetime/…" strings are decoded first',
    )
    p.add_argument("--queue")
    p.add_argument("--priority", type=int)
    p.add_argument("--retries", type=int)
    p.add_argument("--concurrency-key")
    p.add_argument("--delay", type=float, help="seconds")
    p.add_argument(
        "--span",
        metavar="NAME",
        help="enqueue inside a span of this name (needs TEST_PLAIN_SPANS_DIR: app/otel.py)",
    )

    p = sub.add_parser("decode", help="plain.jobs' decoding of a parameters envelope")
    p.add_argument("params")

    p = sub.add_parser("worker", help="plain.jobs' worker for a while")
    p.add_argument("--queue", action="append", help="repeatable; default: default")
    p.add_argument("--seconds", type=float, default=10.0, help="stop after (default 10)")
    p.add_argument(
        "--until-idle",
        action="store_true",
        help="stop earlier, once no ready request is queued, nothing runs and no failed "
        "result waits for the retry pass",
    )
    p.add_argument("--idle-grace", type=float, default=1.0, help="idle this long (s)")
    p.add_argument("--max-processes", type=int, default=2)
    p.add_argument("--max-pending-per-process", type=int, default=10)
    p.add_argument("--heartbeat-interval", type=int, help="JOBS_HEARTBEAT_INTERVAL (s)")
    p.add_argument("--heartbeat-timeout", type=int, help="JOBS_HEARTBEAT_TIMEOUT (s)")
    p.add_argument(
        "--maintenance-every",
        type=float,
        default=60.0,
        help="rescue + retry pass interval (plain: 60 s)",
    )

    p = sub.add_parser("rescue", help="rescue_stale_workers() once")
    p.add_argument("--heartbeat-timeout", type=int, help="JOBS_HEARTBEAT_TIMEOUT (s)")

    p = sub.add_parser("retry-failed", help="retry_failed_jobs() for some queues")
    p.add_argument("--queue", action="append", help="repeatable; default: default")

    p = sub.add_parser("runs", help="rows of interop_runs")
    p.add_argument("--label")

    args = parser.parse_args()
    _prepare_environment(args)
    commands = {
        "info": cmd_info,
        "migrate": cmd_migrate,
        "sync": cmd_sync,
        "sync-check": cmd_sync_check,
        "schema": cmd_schema,
        "enqueue": cmd_enqueue,
        "decode": cmd_decode,
        "worker": cmd_worker,
        "rescue": cmd_rescue,
        "retry-failed": cmd_retry_failed,
        "runs": cmd_runs,
    }
    if args.command not in ("migrate", "sync", "sync-check", "schema"):
        _setup_plain()
    commands[args.command](args)


if __name__ == "__main__":
    main()
