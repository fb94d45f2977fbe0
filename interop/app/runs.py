"""The `interop_runs` table: one row per job run, written by Python and Rust jobs alike.

    CREATE TABLE IF NOT EXISTS interop_runs (
        id bigserial PRIMARY KEY,
        side text NOT NULL,              -- 'python' or 'rust'
        job_class text NOT NULL,
        label text NOT NULL,
        job_request_uuid uuid,
        job_process_uuid uuid,
        retry_attempt integer,
        outcome text NOT NULL,           -- 'ok' or 'fail' (the run is about to raise)
        seen jsonb,                      -- what the job observed (DatesJob: decoded types)
        pid integer NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    )

It is not a Plain model on purpose: `plain postgres sync` ignores it (plain's `schema` command
lists it among "unknown tables").
"""

from __future__ import annotations

import json
import os
from typing import Any

from plain.jobs.registry import jobs_registry
from plain.postgres.db import get_connection

CREATE_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS interop_runs (
    id bigserial PRIMARY KEY,
    side text NOT NULL,
    job_class text NOT NULL,
    label text NOT NULL,
    job_request_uuid uuid,
    job_process_uuid uuid,
    retry_attempt integer,
    outcome text NOT NULL,
    seen jsonb,
    pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def ensure_runs_table() -> None:
    with get_connection().cursor() as cursor:
        cursor.execute(CREATE_RUNS_TABLE)


def record_run(job: Any, label: str, *, outcome: str, seen: Any = None) -> None:
    process = getattr(job, "job_process", None)
    ensure_runs_table()
    with get_connection().cursor() as cursor:
        cursor.execute(
            "INSERT INTO interop_runs (side, job_class, label, job_request_uuid,"
            " job_process_uuid, retry_attempt, outcome, seen, pid)"
            " VALUES ('python', %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [
                jobs_registry.get_job_class_name(type(job)),
                label,
                process.job_request_uuid if process else None,
                process.uuid if process else None,
                process.retry_attempt if process else None,
                outcome,
                json.dumps(seen) if seen is not None else None,
                os.getpid(),
            ],
        )
