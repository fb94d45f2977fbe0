"""OpenTelemetry for the interop suite's trace tests (crates/plainjobs/tests/interop_trace.rs).

When TEST_PLAIN_SPANS_DIR names a directory, every process of the app — run.py itself and each
job process plain.jobs' worker spawns — installs the SDK's tracer provider, sampling every span,
and exports each span as it ends, one JSON object a line (the SDK's `ReadableSpan.to_json`), to
`<dir>/spans-<pid>.jsonl` with the SDK's ConsoleSpanExporter. A file per process: the worker's
job processes end spans at the same time, and the test reads every file of the directory.

Without the variable nothing is installed and plain.jobs' spans stay the API's no-op ones, as
in the rest of the suite.
"""

from __future__ import annotations

import os
from pathlib import Path

SPANS_DIR_VARIABLE = "TEST_PLAIN_SPANS_DIR"

_installed_in: int | None = None


def install_from_env() -> bool:
    """Installs the exporting tracer provider once per process; returns whether it is on."""
    global _installed_in
    directory = os.environ.get(SPANS_DIR_VARIABLE)
    if not directory:
        return False
    if _installed_in == os.getpid():
        return True

    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    # Line-buffered and flushed by the exporter after every batch: a span is on disk once it
    # has ended, even if the process is killed right after (plain's worker shuts its job
    # processes down as soon as its queues are idle).
    out = open(
        Path(directory) / f"spans-{os.getpid()}.jsonl", "a", encoding="utf-8", buffering=1
    )
    # ALWAYS_ON regardless of OTEL_TRACES_SAMPLER: an unsampled send would store no context
    # (plain.jobs' jobs.py stores one only for a recording span) and the test would have
    # nothing to compare.
    provider = TracerProvider(
        sampler=ALWAYS_ON,
        resource=Resource.create({"service.name": "plain-interop"}),
    )
    provider.add_span_processor(
        SimpleSpanProcessor(
            ConsoleSpanExporter(
                out=out, formatter=lambda span: span.to_json(indent=None) + "\n"
            )
        )
    )
    trace.set_tracer_provider(provider)
    _installed_in = os.getpid()
    return True
