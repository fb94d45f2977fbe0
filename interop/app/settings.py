# Settings of the interop test app: plain.postgres + plain.jobs and nothing else.
#
# The database comes from DATABASE_URL (plain.postgres reads it into POSTGRES_URL).
# Any annotated setting can be overridden with a PLAIN_ environment variable, e.g.
# PLAIN_JOBS_HEARTBEAT_INTERVAL=1 (run.py's worker flags set these for you).
SECRET_KEY = "interop-not-secret"
URLS_ROUTER = "app.urls.AppRouter"
INSTALLED_PACKAGES = [
    "plain.postgres",
    "plain.jobs",
]
# stdout carries run.py's JSON; every log line goes to stderr.
LOG_STREAM = "stderr"
# Job-level logs are noisy at INFO (one line per job); warnings are enough.
FRAMEWORK_LOG_LEVEL = "WARNING"
LOG_LEVEL = "WARNING"
# `plain postgres sync` and `plain migrations apply` hold one advisory lock per database
# (plain/postgres/schema_lock.py) and retry it every 5 s by default: tests that sync several
# schemas of one database at once would wait in 5 s steps.
POSTGRES_SCHEMA_LOCK_RETRY_INTERVAL = 0.1
POSTGRES_SCHEMA_LOCK_MAX_RETRIES = 3000
# A worker is a parent and its job processes, each with a pool: keep them small (plain's
# defaults are 4 to 20 connections per process) on a server shared with other tests.
POSTGRES_POOL_MIN_SIZE = 1
POSTGRES_POOL_MAX_SIZE = 4
# A deploy's convergence creates indexes with CREATE INDEX CONCURRENTLY, which waits for every
# transaction of the database that holds an older snapshot — here the other tests', each in its
# own schema of the same database — under a lock timeout of 3 s by default. On a loaded CI
# machine one deploy timed out that way ("canceling statement due to lock timeout" on a fresh
# schema's indexes); the tests give it longer.
POSTGRES_CONVERGENCE_LOCK_TIMEOUT = "30s"
