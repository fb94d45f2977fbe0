# Every process that sets Plain up imports this package first (its settings are app.settings),
# including the job processes plain.jobs' worker spawns: the one place that reaches them all
# before a job runs. Installs the trace tests' span exporter when TEST_PLAIN_SPANS_DIR is set
# (app/otel.py); otherwise does nothing.
from .otel import install_from_env

install_from_env()
