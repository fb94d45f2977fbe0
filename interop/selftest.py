"""Checks the Python side of the interop suite on its own: every run.py command, on a fresh
database that plain alone migrates (`plain postgres sync`). No Rust involved.

    PY="$(interop/setup.sh)" && "$PY" interop/selftest.py   # or: interop/selftest.sh

Needs a PostgreSQL server: PG_SERVER_URL (default postgres://postgres@127.0.0.1:5432), where it
creates and finally drops a database of its own. Ends with "N passed, M failed".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
SERVER = os.environ.get("PG_SERVER_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB = f"interop_selftest_{uuid.uuid4().hex[:8]}"
URL = f"{SERVER}/{DB}"
ENV = {**os.environ, "DATABASE_URL": URL}

passed = failed = 0


def check(name: str, ok: bool, detail: Any = "") -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}: {detail}")


def run(*argv: str, timeout: float = 120, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HERE / "run.py"), *argv],
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}


def sql(query: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(URL, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def main() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    try:
        scenario()
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def scenario() -> None:
    info = run("info")
    check("info", info.get("packages", {}).get("plain.jobs") == "0.57.5", info)

    out = run("sync-check")
    check("sync-check on an empty database lists plain.jobs' migration",
          not out.get("clean") and out.get("migrations") == ["plainjobs.0001_initial"], out)
    out = run("sync")
    check("sync creates the tables", out.get("ok") and any("CREATE INDEX" in a for a in out["applied"]), out)
    out = run("sync-check")
    check("sync-check is clean after sync", out.get("clean") is True, out)
    out = run("migrate")
    check("migrate has nothing left to apply", out.get("ok") and "No migrations to apply" in out["output"], out)
    out = run("schema")
    check("schema reports the four models",
          out.get("ok") and out["schema"]["models_checked"] == 4, out)

    r1 = run("enqueue", "app.jobs.RecordJob", "--params", '{"args": ["r1"]}')
    check("enqueue RecordJob", r1.get("enqueued") is True and r1["job_class"] == "app.jobs.RecordJob", r1)
    check("without the span exporter plain.jobs stores no trace context",
          r1.get("trace_id") is None and r1.get("span_id") is None, r1)
    k1 = run("enqueue", "app.jobs.RecordJob", "--params", '{"args": ["k1"]}', "--concurrency-key", "K")
    k2 = run("enqueue", "app.jobs.RecordJob", "--params", '{"args": ["k2"]}', "--concurrency-key", "K")
    check("a second job with the same concurrency key is refused",
          k1.get("enqueued") is True and k2 == {"ok": True, "enqueued": False}, (k1, k2))
    f1 = run("enqueue", "app.jobs.FailJob", "--params", '{"args": ["f1"]}')
    check("FailJob gets two retries by default", f1.get("retries") == 2, f1)
    p1 = run("enqueue", "app.jobs.PythonOnlyJob", "--params",
             '{"args": ["p1"], "kwargs": {"fail_times": 1}}', "--retries", "1")
    check("enqueue PythonOnlyJob with a retry", p1.get("retries") == 1, p1)
    d1 = run("enqueue", "app.jobs.DatesJob", "--params", json.dumps({"kwargs": {
        "day": "__plain://date/2026-11-28",
        "moment": "__plain://datetime/2026-11-28T10:30:00.123456+01:00",
        "label": "d1"}}), "--queue", "other", "--priority", "5", "--delay", "0.5")
    check("DatesJob's parameters are stored in plain's encoding",
          d1.get("parameters", {}).get("kwargs", {}).get("day") == "__plain://date/2026-11-28"
          and d1["parameters"]["kwargs"]["moment"] == "__plain://datetime/2026-11-28T10:30:00.123456+01:00"
          and d1["start_at"] is not None and d1["priority"] == 5 and d1["queue"] == "other", d1)

    out = run("worker", "--queue", "default", "--queue", "other", "--seconds", "60",
              "--until-idle", "--maintenance-every", "1")
    check("worker runs until idle", out.get("stopped") == "idle", out)

    runs = run("runs")["runs"]
    by_label: dict[str, list[dict]] = {}
    for row in runs:
        by_label.setdefault(row["label"], []).append(row)
    check("r1 and k1 ran once each, on the Python side",
          [r["outcome"] for r in by_label.get("r1", [])] == ["ok"]
          and [r["outcome"] for r in by_label.get("k1", [])] == ["ok"]
          and all(r["side"] == "python" for r in runs), by_label)
    check("FailJob ran three times (attempts 0, 1, 2)",
          [r["retry_attempt"] for r in by_label.get("f1", [])] == [0, 1, 2], by_label.get("f1"))
    check("PythonOnlyJob failed once, then succeeded on its retry",
          [(r["retry_attempt"], r["outcome"]) for r in by_label.get("p1", [])] == [(0, "fail"), (1, "ok")],
          by_label.get("p1"))
    d_runs = by_label.get("d1", [])
    check("DatesJob got a date and an aware datetime",
          len(d_runs) == 1 and d_runs[0]["outcome"] == "ok"
          and d_runs[0]["seen"]["day"] == {"type": "date", "value": "2026-11-28"}
          and d_runs[0]["seen"]["moment"]["value"] == "2026-11-28T10:30:00.123456+01:00", d_runs)
    statuses = dict(sql("SELECT status, count(*) FROM plainjobs_jobresult GROUP BY status"))
    check("results: 4 ERRORED (FailJob 3, PythonOnlyJob 1), 4 SUCCESSFUL",
          statuses == {"ERRORED": 4, "SUCCESSFUL": 4}, statuses)

    out = run("decode", '{"args": ["__plain://date/2026-11-28"], "kwargs": {"at": "__plain://datetime/2026-11-28T10:30:00Z"}}')
    check("decode", out.get("args", [{}])[0].get("type") == "date"
          and out["kwargs"]["at"]["type"] == "datetime" and out["kwargs"]["at"]["utcoffset_seconds"] == 0, out)

    # A worker killed mid-job (its whole process group), rescued, retried.
    slow = run("enqueue", "app.jobs.RecordJob", "--params", '{"args": ["slow"], "kwargs": {"sleep": 60}}',
               "--retries", "1")
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "run.py"), "worker", "--seconds", "120", "--heartbeat-interval", "1"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not sql(
            "SELECT 1 FROM pg_tables WHERE tablename = 'interop_runs'"
            " AND EXISTS (SELECT 1 FROM interop_runs WHERE label = 'slow')"
        ):
            time.sleep(0.2)
    finally:
        # The worker makes itself a process group leader; on a failure before it did, its pid
        # alone is killed.
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.kill()
        worker.wait()
    check("the slow job is a process of the killed worker",
          len(sql("SELECT 1 FROM plainjobs_jobprocess WHERE job_request_uuid = %s", [slow["uuid"]])) == 1)
    time.sleep(3)
    out = run("rescue", "--heartbeat-timeout", "2")
    check("rescue turns it LOST", [x["job_request_uuid"] for x in out.get("lost", [])] == [slow["uuid"]], out)
    out = run("retry-failed", "--queue", "default")
    retried = sql("SELECT retry_attempt FROM plainjobs_jobrequest WHERE job_class = 'app.jobs.RecordJob'")
    check("retry-failed re-enqueues it as attempt 1", out.get("ok") and retried == [(1,)], (out, retried))

    traces()

    out = run("sync-check")
    check("sync-check is still clean", out.get("clean") is True, out)


def traces() -> None:
    """enqueue --span and the span files of TEST_PLAIN_SPANS_DIR (app/otel.py)."""
    out = run("enqueue", "app.jobs.RecordJob", "--params", '{"args": ["no-exporter"]}',
              "--span", "request")
    check("enqueue --span without TEST_PLAIN_SPANS_DIR fails", out.get("ok") is False, out)
    with tempfile.TemporaryDirectory() as spans_dir:
        env = {"TEST_PLAIN_SPANS_DIR": spans_dir}
        # A queue of its own: the default queue still holds the slow job's retry.
        t1 = run("enqueue", "app.jobs.RecordJob", "--params", '{"args": ["t1"]}',
                 "--queue", "traces", "--span", "request", env=env)
        out = run("worker", "--queue", "traces", "--seconds", "60", "--until-idle", env=env)
        spans = [
            json.loads(line)
            for path in Path(spans_dir).glob("spans-*.jsonl")
            for line in path.read_text().splitlines()
        ]
        by_name: dict[str, list[dict]] = {}
        for span in spans:
            by_name.setdefault(span["name"], []).append(span)
        sends = [s for s in by_name.get("send traces", [])
                 if s["attributes"].get("messaging.message.id") == t1.get("uuid")]
        check("enqueue --span: plain.jobs' send span is a child of the span and its context is "
              "stored", len(sends) == 1 and t1.get("span") is not None
              and sends[0]["parent_id"] == t1["span"]["span_id"]
              and sends[0]["context"]["trace_id"] == t1["span"]["trace_id"]
              and {"trace_id": t1["trace_id"], "span_id": t1["span_id"]}
              == {k: sends[0]["context"][k] for k in ("trace_id", "span_id")}, (t1, sends))
        processes = by_name.get("process traces", [])
        check("the job process exports plain.jobs' process span, linked to the send span",
              out.get("stopped") == "idle" and len(processes) == 1
              and [link["context"]["span_id"] for link in processes[0]["links"]] == [t1.get("span_id")]
              and [link["context"]["trace_id"] for link in processes[0]["links"]] == [t1.get("trace_id")],
              (out, processes))


if __name__ == "__main__":
    main()
