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
