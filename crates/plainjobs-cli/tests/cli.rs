//! The `plainjobs` binary end to end: every command through the built executable against a real
//! PostgreSQL, each test in a schema of its own. Checks outputs, `--json` shapes and exit codes
//! (0 success, 1 failure, 2 usage error).
//!
//! The server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), which
//! `scripts/test` sets. The binary sees only what a test gives it: inherited `PLAINJOBS_*`,
//! `DATABASE_URL`, `RUST_LOG` and backtrace variables are removed, and it runs in an empty scratch
//! directory so that no stray `plainjobs.toml` is read.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use uuid::Uuid;

use support::*;

// ---------------------------------------------------------------------------------------------
// migrate

#[test]
fn migrate_creates_the_tables_and_runs_again() {
    let db = Db::new();
    let pj = Pj::on(&db);
    // No tables yet: a failure, not a usage error, that says what to do.
    pj.run(&["stats"])
        .expect(1)
        .stderr_has("the job tables do not exist")
        .stderr_has("run `plainjobs migrate`");
    // Migrate says what it applied, and to which database (without its password).
    pj.run(&["migrate"])
        .ok()
        .stdout_has("migrated postgres://")
        .stdout_has("to schema version")
        .stdout_has("schema is up to date");
    pj.run(&["migrate"])
        .ok()
        .stdout_has("nothing to change")
        .stdout_has("127.0.0.1");
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(stats["queues"], json!([]), "{stats:#}");
    assert_eq!(db.count("SELECT count(*) FROM plainjobs_jobrequest"), 0);
}

// ---------------------------------------------------------------------------------------------
// enqueue, enqueue-command

#[test]
fn enqueue_prints_the_request_and_skips_a_duplicate() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let args = [
        "enqueue",
        "app.jobs.Report",
        "--params",
        r#"{"day": "x"}"#,
        "--queue",
        "q",
        "--priority",
        "5",
        "--retries",
        "2",
        "--delay",
        "5m",
        "--concurrency-key",
        "k",
        "--json",
    ];
    let out = pj.run(&args).ok();
    let req = enqueued(&out);
    assert_eq!(req["job_class"], json!("app.jobs.Report"), "{req:#}");
    assert_eq!(req["queue"], json!("q"), "{req:#}");
    assert_eq!(req["priority"], json!(5), "{req:#}");
    assert_eq!(req["retries"], json!(2), "{req:#}");
    assert_eq!(req["retry_attempt"], json!(0), "{req:#}");
    assert_eq!(req["concurrency_key"], json!("k"), "{req:#}");
    assert_eq!(
        req["parameters"],
        json!({"args": [], "kwargs": {"day": "x"}}),
        "{req:#}"
    );
    let uuid = text(&req, "uuid");
    Uuid::parse_str(uuid).expect("request uuid");
    // The delay is counted in the database's clock, from the enqueue.
    let delay = time(&req, "start_at") - time(&req, "created_at");
    assert!(
        (299..=301).contains(&delay.num_seconds()),
        "start_at is {delay} after created_at: {req:#}"
    );

    // The same job with the same key while the first is pending: skipped, not an error.
    let again = pj.run(&args).ok().json();
    assert_eq!(again["enqueued"], json!(false), "{again:#}");
    assert_eq!(again["skipped"], json!(true), "{again:#}");
    assert_eq!(again["concurrency_key"], json!("k"), "{again:#}");
    assert_eq!(again["held_by"][0]["uuid"], req["uuid"], "{again:#}");
    pj.run(&args[..args.len() - 1])
        .ok()
        .stdout_has("skipped")
        .stdout_has(text(&req, "uuid"))
        .stdout_has("--concurrency-key");

    // Only the first one is stored: scheduled, five minutes out.
    let stats = pj.run(&["stats", "--json"]).ok().json();
    let q = find_by(array(&stats["queues"]), "queue", "q");
    assert_eq!(
        (q["ready"].as_i64(), q["scheduled"].as_i64()),
        (Some(0), Some(1)),
        "{stats:#}"
    );

    // `show` finds a pending request by the uuid enqueue printed.
    pj.run(&["show", uuid])
        .ok()
        .stdout_has("pending request")
        .stdout_has("app.jobs.Report");
    let shown = pj.run(&["show", uuid, "--json"]).ok().json();
    assert_eq!(shown["table"], json!("request"), "{shown:#}");
    assert_eq!(shown["uuid"], json!(uuid), "{shown:#}");

    // Text output names the job, its uuid and queue.
    let out = pj.run(&["enqueue", "app.jobs.Other"]).ok();
    out.stdout_has("enqueued app.jobs.Other ")
        .stdout_has(" on queue default");
}

#[test]
fn enqueue_params_shapes() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let cases = [
        (r#"[1, 2]"#, json!({"args": [1, 2], "kwargs": {}})),
        (
            r#"{"day": "x"}"#,
            json!({"args": [], "kwargs": {"day": "x"}}),
        ),
        (
            r#"{"args": [1], "kwargs": {"b": 2}}"#,
            json!({"args": [1], "kwargs": {"b": 2}}),
        ),
    ];
    for (params, envelope) in cases {
        let req = enqueued(
            &pj.run(&["enqueue", "app.jobs.Sum", "--params", params, "--json"])
                .ok(),
        );
        assert_eq!(req["parameters"], envelope, "--params {params}");
    }
    let req = enqueued(&pj.run(&["enqueue", "app.jobs.Sum", "--json"]).ok());
    assert_eq!(req["parameters"], json!({"args": [], "kwargs": {}}));
}

#[test]
fn enqueue_rejects_bad_params_and_delays() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    pj.run(&["enqueue", "app.jobs.Report", "--params", "{oops"])
        .expect(2)
        .stderr_has("--params")
        .stderr_has("{oops");
    pj.run(&["enqueue", "app.jobs.Report", "--delay", "5x"])
        .expect(2)
        .stderr_has("--delay")
        .stderr_has("5x");
    pj.run(&["enqueue-command", "true", "--delay", "soon"])
        .expect(2)
        .stderr_has("--delay")
        .stderr_has("soon");
    pj.run(&["enqueue", "app.jobs.Report", "--priority", "high"])
        .expect(2)
        .stderr_has("--priority");
    // Nothing was enqueued by any of them.
    assert_eq!(db.count("SELECT count(*) FROM plainjobs_jobrequest"), 0);
}

// ---------------------------------------------------------------------------------------------
// admin

#[test]
fn admin_refuses_a_public_address_without_a_sign_in() {
    let pj = Pj::bare();
    pj.run(&["admin", "--bind", "0.0.0.0:0"])
        .expect(2)
        .stderr_has("refusing to serve the dashboard on 0.0.0.0:0 without a sign-in")
        .stderr_has("admin_token");
    pj.run(&["admin", "--bind", "localhost"])
        .expect(2)
        .stderr_has("--bind");
    // An empty token is no sign-in either.
    Pj::bare()
        .env("PLAINJOBS_ADMIN_TOKEN", "")
        .run(&["admin", "--bind", "0.0.0.0:0"])
        .expect(2)
        .stderr_has("without a sign-in");
}

// ---------------------------------------------------------------------------------------------
// worker

#[test]
fn worker_runs_a_shell_command_and_exits_0_on_sigterm() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let out = pj.run(&["enqueue-command", "echo hi"]).ok();
    out.stdout_has(&format!("enqueued {SHELL_JOB} "))
        .stdout_has(" on queue default");

    let mut worker = start_worker(&pj);
    let results = wait_for_results(&pj, &worker, 1);
    let r = &results[0];
    assert_eq!(r["job_class"], json!(SHELL_JOB), "{r:#}");
    assert_eq!(
        r["status"],
        json!("SUCCESSFUL"),
        "{r:#}\n--- worker log\n{}",
        worker.log()
    );
    assert_eq!(
        r["parameters"],
        json!({"args": ["echo hi"], "kwargs": {}}),
        "{r:#}"
    );

    // The running worker is registered and active.
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(stats["workers"]["active"], json!(1), "{stats:#}");
    assert_eq!(stats["workers"]["stale"], json!(0), "{stats:#}");
    assert_eq!(
        stats["workers"]["list"][0]["queues"],
        json!(["default"]),
        "{stats:#}"
    );
    pj.run(&["stats"])
        .ok()
        .stdout_has("workers: 1 active, 0 late, 0 stale")
        .stdout_has("alive");

    let status = worker.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "worker exit: {status}\n--- worker log\n{}",
        worker.log()
    );

    // It deregistered on its way out.
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(stats["workers"]["active"], json!(0), "{stats:#}");
    assert_eq!(stats["workers"]["stale"], json!(0), "{stats:#}");
    assert_eq!(stats["workers"]["list"], json!([]), "{stats:#}");
    let q = find_by(array(&stats["queues"]), "queue", "default");
    assert_eq!(q["results"], json!({"SUCCESSFUL": 1}), "{stats:#}");
    pj.run(&["stats"])
        .ok()
        .stdout_has("workers: 0 active, 0 late, 0 stale");
}

#[test]
fn failed_commands_show_their_error_and_can_be_retried_then_cleared() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let exit3 = enqueued(&pj.run(&["enqueue-command", "exit 3", "--json"]).ok());
    let exit5 = enqueued(
        &pj.run(&["enqueue-command", "echo oops >&2; exit 5", "--json"])
            .ok(),
    );
    let mut worker = start_worker(&pj);
    wait_for_results(&pj, &worker, 2);
    let status = worker.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "worker exit: {status}\n--- worker log\n{}",
        worker.log()
    );

    // results --status ERRORED
    let errored = pj
        .run(&["results", "--status", "ERRORED", "--json"])
        .ok()
        .json();
    let errored = array(&errored);
    assert_eq!(errored.len(), 2, "{errored:#?}");
    let r3 = find_by(errored, "job_request_uuid", text(&exit3, "uuid"));
    let r5 = find_by(errored, "job_request_uuid", text(&exit5, "uuid"));
    for r in [r3, r5] {
        assert_eq!(r["status"], json!("ERRORED"), "{r:#}");
        assert_eq!(r["job_class"], json!(SHELL_JOB), "{r:#}");
    }
    assert_eq!(
        pj.run(&["results", "--status", "SUCCESSFUL", "--json"])
            .ok()
            .json(),
        json!([])
    );
    let out = pj
        .run(&[
            "results", "--status", "errored", "--queue", "default", "--job", SHELL_JOB,
        ])
        .ok();
    out.stdout_has("ERRORED")
        .stdout_has("exit status 3")
        .stdout_has("exit status 5");

    // show, text and JSON
    let uuid3 = text(r3, "uuid");
    let out = pj.run(&["show", uuid3]).ok();
    out.stdout_has("result")
        .stdout_has("ERRORED")
        .stdout_has("error:")
        .stdout_has("exit status 3");
    let shown = pj.run(&["show", uuid3, "--json"]).ok().json();
    assert_eq!(shown["table"], json!("result"), "{shown:#}");
    assert_eq!(shown["uuid"], json!(uuid3), "{shown:#}");
    assert_eq!(shown["status"], json!("ERRORED"), "{shown:#}");
    assert!(text(&shown, "error").contains("exit status 3"), "{shown:#}");
    // The tail of the command's stderr is kept with the error.
    let shown = pj.run(&["show", text(r5, "uuid"), "--json"]).ok().json();
    assert!(text(&shown, "error").contains("exit status 5"), "{shown:#}");
    assert!(text(&shown, "error").contains("oops"), "{shown:#}");

    // retry one by uuid
    let out = pj.run(&["retry", uuid3]).ok();
    out.stdout_has(&format!("retried {uuid3} as "));
    let retry_uuid = out
        .stdout
        .split(" as ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("retry uuid");
    let shown = pj.run(&["show", retry_uuid, "--json"]).ok().json();
    assert_eq!(shown["table"], json!("request"), "{shown:#}");
    assert_eq!(shown["retry_attempt"], json!(1), "{shown:#}");
    assert_eq!(
        shown["parameters"],
        json!({"args": ["exit 3"], "kwargs": {}}),
        "{shown:#}"
    );
    // A result is retried once: asking again fails and says where the retry went.
    pj.run(&["retry", uuid3])
        .expect(1)
        .stderr_has("retried already")
        .stderr_has(retry_uuid);

    // retry --failed: the one failure not yet retried
    let report = pj.run(&["retry", "--failed", "--json"]).ok().json();
    let report = array(&report);
    assert_eq!(report.len(), 1, "{report:#?}");
    assert_eq!(report[0]["result"], r5["uuid"], "{report:#?}");
    Uuid::parse_str(text(&report[0], "retry_request")).expect("retry request uuid");
    assert_eq!(
        pj.run(&["retry", "--failed", "--json"]).ok().json(),
        json!([])
    );
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(
        total(&stats, "ready") + total(&stats, "scheduled"),
        2,
        "{stats:#}"
    );

    // retry without a target, or with a bad one: usage errors
    pj.run(&["retry"]).expect(2).stderr_has("--failed");
    pj.run(&["retry", "not-a-uuid"])
        .expect(2)
        .stderr_has("not-a-uuid");

    // clear: nothing is a day old; everything is older than 0 s
    pj.run(&["clear", "--older-than", "1d"])
        .ok()
        .stdout_has("deleted 0 results");
    pj.run(&["clear", "--older-than", "0s"])
        .ok()
        .stdout_has("deleted 2 results");
    assert_eq!(pj.run(&["results", "--json"]).ok().json(), json!([]));
    pj.run(&["results"]).ok().stdout_has("(no results)");
}

// ---------------------------------------------------------------------------------------------
// stats

#[test]
fn stats_shapes() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(stats["queues"], json!([]), "{stats:#}");
    assert_eq!(stats["workers"]["active"], json!(0), "{stats:#}");
    assert_eq!(stats["workers"]["stale"], json!(0), "{stats:#}");
    pj.run(&["stats"])
        .ok()
        .stdout_has("(no jobs)")
        .stdout_has("workers: 0 active, 0 late, 0 stale");

    pj.run(&["enqueue", "app.A", "--queue", "a"]).ok();
    pj.run(&["enqueue", "app.A", "--queue", "a"]).ok();
    pj.run(&["enqueue", "app.B", "--queue", "b", "--delay", "1h"])
        .ok();
    let stats = pj.run(&["stats", "--json"]).ok().json();
    let queues = array(&stats["queues"]);
    assert_eq!(queues.len(), 2, "{stats:#}");
    for q in queues {
        assert!(q["queue"].is_string(), "{q:#}");
        for field in ["ready", "scheduled", "waiting", "running"] {
            assert!(q[field].is_i64(), "{field} in {q:#}");
        }
        assert!(q["results"].is_object(), "{q:#}");
    }
    let a = find_by(queues, "queue", "a");
    let b = find_by(queues, "queue", "b");
    assert_eq!(
        [&a["ready"], &a["scheduled"], &a["waiting"], &a["running"]],
        [&json!(2), &json!(0), &json!(0), &json!(0)],
        "{stats:#}"
    );
    assert_eq!(
        [&b["ready"], &b["scheduled"]],
        [&json!(0), &json!(1)],
        "{stats:#}"
    );
    assert!(
        stats["workers"]["active"].is_u64() && stats["workers"]["stale"].is_u64(),
        "{stats:#}"
    );
    assert!(stats["workers"]["list"].is_array(), "{stats:#}");

    let out = pj.run(&["stats"]).ok();
    let header = out.stdout.lines().next().unwrap_or_default();
    for column in [
        "QUEUE",
        "READY",
        "SCHEDULED",
        "CLAIMED",
        "RUNNING",
        "SUCCESSFUL",
        "ERRORED",
    ] {
        assert!(
            header.contains(column),
            "header lacks {column}: {}",
            out.context()
        );
    }
    let row = |name: &str| -> Vec<String> {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .expect("queue row");
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(
        row("a")[..5],
        ["a", "2", "0", "0", "0"],
        "{}",
        out.context()
    );
    assert_eq!(
        row("b")[..5],
        ["b", "0", "1", "0", "0"],
        "{}",
        out.context()
    );
    // The columns are explained.
    out.stdout_has("claimed: taken by a worker ahead of a free slot");
}

// ---------------------------------------------------------------------------------------------
// results, show: bad input

#[test]
fn results_and_show_reject_bad_input() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    pj.run(&["results", "--status", "BOGUS"])
        .expect(2)
        .stderr_has("BOGUS");
    pj.run(&["show", "not-a-uuid"])
        .expect(2)
        .stderr_has("not-a-uuid");
    let missing = Uuid::new_v4().to_string();
    pj.run(&["show", &missing])
        .expect(1)
        .stderr_has(&format!("no job with uuid {missing}"));
    assert_eq!(pj.run(&["results", "--json"]).ok().json(), json!([]));
}

// ---------------------------------------------------------------------------------------------
// purge

#[test]
fn purge_asks_on_a_terminal_and_refuses_without_one() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    pj.run(&["enqueue", "app.A"]).ok();
    pj.run(&["enqueue", "app.A", "--delay", "1h"]).ok();
    let pending = |pj: &Pj| {
        let stats = pj.run(&["stats", "--json"]).ok().json();
        total(&stats, "ready")
            + total(&stats, "scheduled")
            + total(&stats, "waiting")
            + total(&stats, "running")
    };

    // No terminal (stdin a pipe or empty), no --yes: refused, with what to do; nothing lost.
    pj.run_with_input(&["purge"], "y\n")
        .expect(2)
        .stderr_has("no terminal")
        .stderr_has("--yes");
    pj.run(&["purge", "--json"]).expect(2).json();
    assert_eq!(pending(&pj), 2);

    // On a terminal: "n" keeps everything, "y" cancels.
    let out = pj.run_in_terminal(&["purge"], "n\n");
    assert_eq!(out.code, Some(0), "{}", out.context());
    out.stdout_has("Cancel every pending and running job?")
        .stdout_has("[y/N]")
        .stdout_has("nothing cancelled");
    assert_eq!(pending(&pj), 2);
    let out = pj.run_in_terminal(&["purge"], "y\n");
    assert_eq!(out.code, Some(0), "{}", out.context());
    out.stdout_has("cancelled 2 pending and 0 running jobs");
    assert_eq!(pending(&pj), 0);

    // --yes does not ask.
    pj.run(&["enqueue", "app.A"]).ok();
    let out = pj.run(&["purge", "--yes"]).ok();
    out.stdout_has("cancelled 1 pending and 0 running jobs");
    assert!(!out.stdout.contains("[y/N]"), "{}", out.context());
    assert_eq!(pending(&pj), 0);
}

// ---------------------------------------------------------------------------------------------
// clear

#[test]
fn clear_takes_a_duration_or_the_retention_setting() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    pj.run(&["clear", "--older-than", "forever"])
        .expect(2)
        .stderr_has("--older-than")
        .stderr_has("forever");
    pj.run(&["clear"])
        .ok()
        .stdout_has("deleted 0 results older than 7d");
    let pj = pj.env("PLAINJOBS_RETENTION", "1d");
    pj.run(&["clear"])
        .ok()
        .stdout_has("deleted 0 results older than 1d");
    pj.run(&["clear", "--older-than", "90s"])
        .ok()
        .stdout_has("deleted 0 results older than 1m30s");
    pj.run(&["clear", "--older-than", "1h30m"])
        .ok()
        .stdout_has("deleted 0 results older than 1h30m");
}

// ---------------------------------------------------------------------------------------------
// run

#[test]
fn run_executes_a_job_in_the_foreground() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    pj.run(&["run", SHELL_JOB, "--params", r#"["echo hi"]"#])
        .ok()
        .stdout_has(&format!("{SHELL_JOB} succeeded"));
    let out = pj
        .run(&["run", SHELL_JOB, "--params", r#"["exit 4"]"#])
        .expect(1);
    out.stderr_has(&format!("{SHELL_JOB} failed"))
        .stderr_has("exit status 4");
    pj.run(&["run", "app.Nope"])
        .expect(2)
        .stderr_has("app.Nope");
    pj.run(&["run", SHELL_JOB, "--params", "{oops"])
        .expect(2)
        .stderr_has("--params");
    pj.run(&["run", SHELL_JOB, "--params", r#"{"oops": 1}"#])
        .expect(2)
        .stderr_has(SHELL_JOB);
    // Nothing is stored by a foreground run.
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(stats["queues"], json!([]), "{stats:#}");
}

// ---------------------------------------------------------------------------------------------
// list

#[test]
fn list_names_the_registered_jobs() {
    // No database needed.
    let pj = Pj::bare();
    pj.run(&["list"]).ok().stdout_has(SHELL_JOB);
    let list = pj.run(&["list", "--json"]).ok().json();
    let list = array(&list);
    assert!(!list.is_empty());
    for entry in list {
        assert!(entry["name"].is_string(), "{entry:#}");
    }
    let shell = find_by(list, "name", SHELL_JOB);
    assert_eq!(shell["canonical"], json!(SHELL_JOB), "{shell:#}");
}

// ---------------------------------------------------------------------------------------------
// schedule

#[test]
fn schedule_prints_fire_times_across_a_dst_change() {
    // No database needed: none configured.
    let pj = Pj::bare();
    let args = [
        "schedule",
        "0 9 * * 1-5",
        "--from",
        "2026-03-06T00:00:00Z",
        "--tz",
        "America/New_York",
        "--count",
        "3",
    ];
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let times = pj.run(&json_args).ok().json();
    // Friday 9:00 EST, then (DST began Sunday 2026-03-08) Monday and Tuesday 9:00 EDT.
    assert_eq!(
        times,
        json!([
            {"utc": "2026-03-06T14:00:00+00:00", "local": "2026-03-06T09:00:00-05:00", "unix": "1772805600"},
            {"utc": "2026-03-09T13:00:00+00:00", "local": "2026-03-09T09:00:00-04:00", "unix": "1773061200"},
            {"utc": "2026-03-10T13:00:00+00:00", "local": "2026-03-10T09:00:00-04:00", "unix": "1773147600"},
        ])
    );
    let out = pj.run(&args).ok();
    out.stdout_has("Fri 2026-03-06 09:00 EST")
        .stdout_has("Mon 2026-03-09 09:00 EDT")
        .stdout_has("Tue 2026-03-10 09:00 EDT");

    pj.run(&["schedule", "70 * * * *"])
        .expect(2)
        .stderr_has("minute")
        .stderr_has("70");
    pj.run(&["schedule", "* * *"]).expect(2).stderr_has("* * *");
    pj.run(&["schedule", "@daily", "--tz", "Mars/Base"])
        .expect(2)
        .stderr_has("Mars/Base");
    pj.run(&["schedule", "@daily", "--from", "yesterday"])
        .expect(2)
        .stderr_has("--from");
}

// ---------------------------------------------------------------------------------------------
// The database URL: unreachable, missing

#[test]
fn unreachable_database_fails_with_the_password_redacted() {
    let pj = Pj::bare().env("DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x");
    let out = pj.run(&["stats"]).expect(1);
    out.stderr_has("127.0.0.1:1")
        .stderr_has("***")
        .stderr_lacks("secret");
}

#[test]
fn no_database_configured_uses_the_embedded_sqlite_file() {
    let pj = Pj::bare();
    pj.run(&["migrate"]).expect(0);
    assert!(
        pj.dir.path().join("plainjobs.sqlite3").exists(),
        "the default database is plainjobs.sqlite3 in the working directory"
    );
    pj.run(&["enqueue-command", "echo hi"])
        .expect(0)
        .stdout_has("enqueued");
    let out = pj.run(&["stats", "--json"]).expect(0);
    out.stdout_has("\"ready\": 1");
    let pj = Pj::bare().env("DATABASE_URL", "mysql://u:secret@127.0.0.1/x");
    pj.run(&["stats"])
        .expect(2)
        .stderr_has("unsupported database URL")
        .stderr_lacks("secret");
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn config_file_errors_name_the_key() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    // A typo in ./plainjobs.toml stops every command that reads settings.
    pj.dir.write("plainjobs.toml", "concurency = 3\n");
    pj.run(&["stats"])
        .expect(2)
        .stderr_has("concurency")
        .stderr_has("plainjobs.toml");
    pj.run(&["migrate"]).expect(2).stderr_has("concurency");
    pj.dir.write("plainjobs.toml", "retention = \"forever\"\n");
    pj.run(&["clear"])
        .expect(2)
        .stderr_has("retention")
        .stderr_has("forever");
}

#[test]
fn config_flag_reads_the_database_url_from_a_file() {
    let db = Db::new();
    Pj::migrated(&db);
    let elsewhere = Scratch::new();
    let file = elsewhere.write(
        "jobs.toml",
        &format!("database_url = '{}'\nretention = \"2d\"\n", db.url),
    );
    let file = file.to_str().expect("utf-8 path");
    let pj = Pj::bare();
    pj.run(&["--config", file, "stats"]).ok();
    pj.run(&["stats", "--config", file, "--json"]).ok().json();
    pj.run(&["--config", file, "clear"])
        .ok()
        .stdout_has("older than 2d");
    // Missing file
    let missing = elsewhere.path().join("missing.toml");
    pj.run(&["--config", missing.to_str().expect("utf-8"), "stats"])
        .expect(2)
        .stderr_has("missing.toml");
}

#[test]
fn environment_errors_name_the_variable() {
    let db = Db::new();
    let pj = Pj::migrated(&db).env("PLAINJOBS_BOGUS", "1");
    pj.run(&["stats"]).expect(2).stderr_has("PLAINJOBS_BOGUS");
    let pj = Pj::on(&db).env("PLAINJOBS_RETENTION", "7x");
    pj.run(&["stats"])
        .expect(2)
        .stderr_has("PLAINJOBS_RETENTION")
        .stderr_has("7x");
    let pj = Pj::on(&db).env("PLAINJOBS_CONCURRENCY", "0");
    pj.run(&["stats"])
        .expect(2)
        .stderr_has("PLAINJOBS_CONCURRENCY");
}

#[test]
fn database_url_precedence() {
    let db = Db::new();
    Pj::migrated(&db);
    let unreachable = "postgres://u:secret@127.0.0.1:1/x";
    // PLAINJOBS_DATABASE_URL wins over DATABASE_URL.
    let pj = Pj::bare()
        .env("DATABASE_URL", unreachable)
        .env("PLAINJOBS_DATABASE_URL", &db.url);
    pj.run(&["stats", "--json"]).ok();
    // --database-url wins over both, and over the file.
    let pj = Pj::bare().env("PLAINJOBS_DATABASE_URL", unreachable);
    pj.dir.write(
        "plainjobs.toml",
        &format!("database_url = '{unreachable}'\n"),
    );
    pj.run(&["--database-url", &db.url, "stats", "--json"]).ok();
}

// ---------------------------------------------------------------------------------------------
// demo, help, usage errors

#[test]
fn demo_runs_to_completion_and_shows_every_status() {
    let db = Db::new();
    let pj = Pj::on(&db);
    let out = pj.run_with(&["demo"], None, DEMO_TIMEOUT).ok();
    let rows = final_table(&out.stdout);
    let statuses: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    for status in ["SUCCESSFUL", "ERRORED", "DEFERRED", "PENDING"] {
        assert!(
            statuses.contains(status),
            "no {status} row in the final table: {}",
            out.context()
        );
    }
    out.stdout_has("Every job ended exactly once");
    let last = out
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.starts_with("Every job ended exactly once"),
        "{}",
        out.context()
    );
}

#[test]
fn help_lists_the_commands_and_worker_options() {
    let pj = Pj::bare();
    let out = pj.run(&["--help"]).ok();
    for command in [
        "migrate",
        "worker",
        "enqueue",
        "enqueue-command",
        "stats",
        "results",
        "show",
        "retry",
        "clear",
        "purge",
        "run",
        "list",
        "schedule",
        "config",
        "doctor",
        "demo",
        "completions",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "no {command}: {}",
            out.context()
        );
    }
    pj.run(&["worker", "--help"])
        .ok()
        .stdout_has("--queue")
        .stdout_has("--concurrency");
    pj.run(&["--version"]).ok().stdout_has("plainjobs ");
}

#[test]
fn usage_errors_exit_2() {
    let pj = Pj::bare();
    pj.run(&["enqueue"]).expect(2).stderr_has("<JOB_NAME>");
    pj.run(&["frobnicate"]).expect(2).stderr_has("frobnicate");
    pj.run(&[]).expect(2).stderr_has("Usage");
    pj.run(&["results", "--limit", "many"])
        .expect(2)
        .stderr_has("--limit");
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs these tests found, now fixed.

/// The demo must not declare victory while one of its own jobs is still pending.
#[test]
fn demo_waits_for_every_tour_job_even_when_reports_run() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    // As when the demo ran before on this database and its scheduled demo.Report is due, and the
    // schedule fires again during this run: two demo.Report successes early on.
    pj.run(&["enqueue", "demo.Report", "--queue", "demo"]).ok();
    pj.run(&["enqueue", "demo.Report", "--queue", "demo"]).ok();
    let out = pj.run_with(&["demo"], None, DEMO_TIMEOUT).ok();
    let rows = final_table(&out.stdout);
    let successes = |job: &str| {
        rows.iter()
            .filter(|r| {
                let cols: Vec<&str> = r.split_whitespace().collect();
                cols.first() == Some(&"SUCCESSFUL") && cols.get(1) == Some(&job)
            })
            .count()
    };
    for (job, n) in [
        ("demo.Greet", 2),
        ("demo.Flaky", 1),
        ("demo.WaitForUpload", 1),
        (SHELL_JOB, 1),
    ] {
        assert_eq!(
            successes(job),
            n,
            "SUCCESSFUL {job} rows: {}",
            out.context()
        );
    }
    let left =
        db.count("SELECT count(*) FROM plainjobs_jobrequest WHERE job_class <> 'demo.Report'");
    assert_eq!(
        left,
        0,
        "tour requests still pending after the demo said every job ended: {}",
        out.context()
    );
}

/// `enqueue` prints the request uuid; `show` follows it to the process while the job runs, and
/// should follow it to the result once it has run.
#[test]
fn show_finds_a_finished_job_by_its_request_uuid() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let req = enqueued(&pj.run(&["enqueue-command", "true", "--json"]).ok());
    let uuid = text(&req, "uuid");
    pj.run(&["show", uuid]).ok().stdout_has("pending request");
    let mut worker = start_worker(&pj);
    wait_for_results(&pj, &worker, 1);
    worker.terminate();
    let shown = pj.run(&["show", uuid, "--json"]).ok().json();
    assert_eq!(shown["table"], json!("result"), "{shown:#}");
    assert_eq!(shown["job_request_uuid"], json!(uuid), "{shown:#}");
}

/// A refused connection is reported as such, promptly; today it retries for the whole 10 s
/// connect timeout and says only "pool timed out".
#[test]
fn unreachable_database_names_the_cause() {
    let pj = Pj::bare().env("DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x");
    let out = pj.run(&["stats"]).expect(1);
    assert!(
        out.stderr.to_lowercase().contains("refused"),
        "{}",
        out.context()
    );
}

// ---------------------------------------------------------------------------------------------
// schedules from configuration

#[test]
fn the_worker_runs_schedules_from_configuration() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    // As plain's JOBS_SCHEDULE: a job name or "cmd:…", and a cron expression.
    let worker = pj.spawn(
        &["worker", "--queue", "default", "--concurrency", "2"],
        &[
            ("PLAINJOBS_HEARTBEAT_INTERVAL", "1s"),
            ("PLAINJOBS_STATS_EVERY", "0"),
            (
                "PLAINJOBS_SCHEDULE",
                "cmd:echo scheduled from config=*/5 * * * *",
            ),
        ],
    );
    let found = wait_for(WORKER_TIMEOUT, || {
        let n = db.count(
            "SELECT count(*) FROM plainjobs_jobrequest WHERE job_class = 'plain.jobs.scheduling.ScheduledCommand' \
             AND concurrency_key LIKE 'echo scheduled from config:scheduled:%' AND start_at > now()",
        );
        (n == 1).then_some(())
    });
    assert!(
        found.is_some(),
        "the next occurrence was enqueued\n--- worker log\n{}",
        worker.log()
    );
    // The occurrence is a */5 minute: its unix seconds are a multiple of 300.
    let on_the_grid = db.count(
        "SELECT count(*) FROM plainjobs_jobrequest \
         WHERE CAST(split_part(concurrency_key, ':scheduled:', 2) AS bigint) % 300 = 0 \
           AND to_timestamp(CAST(split_part(concurrency_key, ':scheduled:', 2) AS bigint)) = start_at",
    );
    assert_eq!(
        on_the_grid, 1,
        "the key names the occurrence and start_at is that time"
    );
    drop(worker);
    // A bad schedule in the configuration is refused at start with a message naming it.
    Pj::on(&db)
        .env("PLAINJOBS_SCHEDULE", "cmd:echo x=70 * * * *")
        .run(&["worker", "--queue", "default"])
        .expect(2)
        .stderr_has("minute")
        .stderr_has("70");
}
