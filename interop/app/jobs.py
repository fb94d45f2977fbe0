"""Python job types of the interop suite.

Every job records each of its runs as a row of `interop_runs` (see `runs.py`), so a test can
tell which side ran what, how often, and at which attempt. A Rust job that registers under the
same name (for example "app.jobs.RecordJob") is the same job type to both sides.

- RecordJob(label, fail_times=0, sleep=0): records the run; sleeps `sleep` seconds (a worker
  can be killed meanwhile); fails while its retry_attempt < fail_times.
- FailJob(label): records the run, then always fails. Two retries by default, no delay.
- PythonOnlyJob(label, fail_times=0): RecordJob under a name no Rust worker registers.
- DatesJob(day, moment, label=""): checks that plain.jobs decoded `day` to a datetime.date
  (not a datetime) and `moment` to a timezone-aware datetime.datetime, and records what it got.
  It fails when a type is wrong.
"""

from __future__ import annotations

import datetime
import time

from plain.jobs import Job, register_job

from .runs import record_run


class _Recording(Job):
    def __init__(self, label: str, fail_times: int = 0, sleep: float = 0) -> None:
        self.label = label
        self.fail_times = fail_times
        self.sleep = sleep

    def _attempt(self) -> int:
        return self.job_process.retry_attempt if self.job_process else 0

    def run(self) -> None:
        attempt = self._attempt()
        failing = attempt < self.fail_times
        record_run(self, self.label, outcome="fail" if failing else "ok")
        if self.sleep:
            time.sleep(self.sleep)
        if failing:
            raise RuntimeError(
                f"{self.label}: failing on purpose (attempt {attempt} < {self.fail_times})"
            )


@register_job
class RecordJob(_Recording):
    pass


@register_job
class PythonOnlyJob(_Recording):
    pass


@register_job
class FailJob(Job):
    def __init__(self, label: str) -> None:
        self.label = label

    def default_retries(self) -> int:
        return 2

    def run(self) -> None:
        record_run(self, self.label, outcome="fail")
        raise RuntimeError(f"{self.label}: always fails")


@register_job
class DatesJob(Job):
    def __init__(
        self, day: datetime.date, moment: datetime.datetime, label: str = ""
    ) -> None:
        self.day = day
        self.moment = moment
        self.label = label

    def run(self) -> None:
        day_ok = isinstance(self.day, datetime.date) and not isinstance(
            self.day, datetime.datetime
        )
        moment_ok = (
            isinstance(self.moment, datetime.datetime)
            and self.moment.tzinfo is not None
        )
        seen = {
            "day": {"type": type(self.day).__name__, "value": _iso(self.day)},
            "moment": {
                "type": type(self.moment).__name__,
                "value": _iso(self.moment),
                "utcoffset_seconds": _offset(self.moment),
            },
        }
        record_run(
            self, self.label, outcome="ok" if day_ok and moment_ok else "fail", seen=seen
        )
        if not (day_ok and moment_ok):
            raise TypeError(f"DatesJob got {seen}")


def _iso(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _offset(value: object) -> float | None:
    if isinstance(value, datetime.datetime) and value.utcoffset() is not None:
        return value.utcoffset().total_seconds()
    return None
