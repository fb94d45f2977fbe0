//! Issue 16's findings, each through the binary: what a new user did, and what now happens.

mod support;

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use support::*;

/// A worker run leaves three results: a failure retried later, a final failure, a success.
/// `results`, `show` and `retry` then work with any uuid of a job, and say why not when not.
#[test]
fn after_a_worker_run_results_show_and_retry_take_any_uuid_of_a_job() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let retried = enqueued(
        &pj.run(&["enqueue-command", "exit 3", "--retries", "1", "--json"])
            .ok(),
    );
    let failed = enqueued(
        &pj.run(&["enqueue-command", "echo broke >&2; exit 4", "--json"])
            .ok(),
    );
    let succeeded = enqueued(&pj.run(&["enqueue-command", "true", "--json"]).ok());
    let mut worker = start_worker(&pj);
    let list = wait_for_results(&pj, &worker, 3);
    // The failure with a retry left is announced in the log: attempt and delay (10 s).
    let announced = wait_for(WORKER_TIMEOUT, || {
        let log = worker.log();
        log.contains("job will be retried").then_some(log)
    });
    let log = announced.unwrap_or_else(|| panic!("no retry announced:\n{}", worker.log()));
    assert!(log.contains("1/1") && log.contains("10s"), "{log}");
    worker.terminate();

    let of =
        |req: &serde_json::Value| find_by(&list, "job_request_uuid", text(req, "uuid")).clone();
    let (r_retried, r_failed, r_ok) = (of(&retried), of(&failed), of(&succeeded));

    // results: a table with a header, the command, the attempt, how long it took, when it
    // ended (relative), whether it was retried, and the error's first line.
    let out = pj.run(&["results"]).ok();
    let header = out.stdout.lines().next().unwrap_or_default().to_string();
    for column in [
        "RESULT", "STATUS", "JOB", "QUEUE", "ATTEMPT", "TOOK", "ENDED", "NEXT", "ERROR",
    ] {
        assert!(header.contains(column), "no {column} in {header:?}");
    }
    let row = |uuid: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(uuid))
            .unwrap_or_else(|| panic!("no row for {uuid}: {}", out.context()))
            .to_string()
    };
    let retried_row = row(text(&r_retried, "uuid"));
    assert!(
        retried_row.contains("$ exit 3") && retried_row.contains("retried"),
        "{retried_row}"
    );
    assert!(retried_row.contains("0/1"), "{retried_row}");
    assert!(
        retried_row.contains(" ago ") || retried_row.contains("just now"),
        "{retried_row}"
    );
    assert!(
        !out.stdout.contains(SHELL_JOB),
        "the command is shown, not the job class: {}",
        out.context()
    );

    // show by the process uuid of a finished job; the state and uuid come first.
    let process_uuid = text(&r_failed, "job_process_uuid");
    let out = pj.run(&["show", process_uuid]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("state") && lines[0].contains("result ERRORED"),
        "{}",
        out.context()
    );
    assert!(
        lines[1].starts_with("uuid") && lines[1].contains(text(&r_failed, "uuid")),
        "{}",
        out.context()
    );
    out.stdout_has("took")
        .stdout_has("UTC (")
        .stdout_has("broke");
    assert_eq!(
        pj.run(&["show", process_uuid, "--json"]).ok().json()["uuid"],
        r_failed["uuid"]
    );

    // retry by the request uuid enqueue printed.
    let out = pj.run(&["retry", text(&failed, "uuid")]).ok();
    out.stdout_has("retried ");
    let again = out
        .stdout
        .split(" as ")
        .nth(1)
        .map(str::trim)
        .expect("new request uuid")
        .to_string();
    // Not retryable, each with its reason and exit 1.
    let unknown = Uuid::new_v4().to_string();
    let cases = [
        (text(&succeeded, "uuid").to_string(), "ended SUCCESSFUL"),
        (text(&retried, "uuid").to_string(), "retried already"),
        (unknown, "no job has this uuid"),
        (again.clone(), "pending"),
    ];
    for (uuid, why) in &cases {
        pj.run(&["retry", uuid]).expect(1).stderr_has(why);
    }
    let report = pj
        .run(&["retry", text(&r_ok, "uuid"), "--json"])
        .expect(1)
        .json();
    assert!(
        text(&report[0], "problem").contains("SUCCESSFUL"),
        "{report:#}"
    );
    // By filter: nothing failed in another queue; a success is not a status to retry.
    pj.run(&["retry", "--queue", "elsewhere"])
        .ok()
        .stdout_has("nothing to retry");
    pj.run(&["retry", "--failed", "--status", "SUCCESSFUL"])
        .expect(2)
        .stderr_has("only failures");
    pj.run(&["retry", "--failed", "--since", "1d", "--job", "app.Nothing"])
        .ok()
        .stdout_has("nothing to retry");
}

/// Flags with values that cannot work are refused up front, saying what is accepted.
#[test]
fn bad_flag_values_are_refused_with_what_to_give() {
    let pj = Pj::bare();
    pj.run(&["worker", "--concurrency", "0"])
        .expect(2)
        .stderr_has("at least 1");
    let out = pj.run(&["worker", "--concurrency", "-1"]).expect(2);
    out.stderr_has("at least 1")
        .stderr_lacks("unexpected argument");
    pj.run(&["worker", "-q", ""])
        .expect(2)
        .stderr_has("queue name cannot be empty");
    pj.run(&["enqueue-command", ""])
        .expect(2)
        .stderr_has("command is empty");
    pj.run(&["enqueue-command", "true", "--delay", "7"])
        .expect(2)
        .stderr_has("7d");
    pj.run(&["results", "--since", "yesterday"])
        .expect(2)
        .stderr_has("--since");
    // Nothing was created by any of them.
    assert!(!pj.dir.path().join("plainjobs.sqlite3").exists());
    // A bare number in the configuration is refused with the units it may have meant.
    pj.dir.write("plainjobs.toml", "retention = 7\n");
    pj.run(&["config"])
        .expect(2)
        .stderr_has("retention")
        .stderr_has("7d");
}

/// Durations combine units in input and read as units in output.
#[test]
fn human_durations_in_and_out() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let req = enqueued(
        &pj.run(&["enqueue-command", "true", "--delay", "1h30m", "--json"])
            .ok(),
    );
    let delay = time(&req, "start_at") - time(&req, "created_at");
    assert!((5399..=5401).contains(&delay.num_seconds()), "{req:#}");
    pj.run(&["enqueue", "app.Later", "--delay", "2d"])
        .ok()
        .stdout_has("starting in 2d");
    let shown = pj.run(&["show", text(&req, "uuid")]).ok();
    shown.stdout_has("starts").stdout_has("(in 1h");
}

/// A long command gets a key that fits; a repeat says which job holds the key and how to
/// enqueue anyway.
#[test]
fn a_long_command_is_enqueued_and_a_repeat_says_who_holds_its_key() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let command = format!("echo {}", "x".repeat(300));
    let req = enqueued(&pj.run(&["enqueue-command", &command, "--json"]).ok());
    let key = text(&req, "concurrency_key");
    assert_eq!(key.chars().count(), 255, "{key}");
    assert!(
        key.starts_with("echo xxx") && key.contains("…md5:"),
        "{key}"
    );
    let again = pj.run(&["enqueue-command", &command]).ok();
    again
        .stdout_has("skipped")
        .stdout_has(&format!("pending: request {}", text(&req, "uuid")))
        .stdout_has("--concurrency-key");
    let forced = enqueued(
        &pj.run(&[
            "enqueue-command",
            &command,
            "--concurrency-key",
            "",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(forced["concurrency_key"], json!(""));
    assert_eq!(db.count("SELECT count(*) FROM plainjobs_jobrequest"), 2);
}

/// A file path given as the URL is answered with the URL to write; an empty
/// PLAINJOBS_DATABASE_URL leaves DATABASE_URL in force.
#[test]
fn database_url_mistakes() {
    let db = Db::new();
    Pj::migrated(&db);
    let pj = Pj::bare();
    pj.run(&["--database-url", "jobs.sqlite3", "stats"])
        .expect(2)
        .stderr_has("sqlite://jobs.sqlite3")
        .stderr_has("--database-url");
    assert!(!pj.dir.path().join("jobs.sqlite3").exists());
    let pj = Pj::on(&db).env("PLAINJOBS_DATABASE_URL", "");
    pj.run(&["stats", "--json"]).ok();
    pj.run(&["config"])
        .ok()
        .stdout_has("environment variable DATABASE_URL");
}

/// Before `migrate`: no empty SQLite file appears, and the message says what to run.
#[test]
fn commands_before_migrate_say_what_to_run_and_create_nothing() {
    let pj = Pj::bare();
    let file = pj.dir.path().join("plainjobs.sqlite3");
    let uuid = Uuid::new_v4().to_string();
    for args in [
        vec!["stats"],
        vec!["results"],
        vec!["show", &uuid],
        vec!["enqueue-command", "true"],
        vec!["retry", "--failed"],
        vec!["purge", "--yes"],
        vec!["clear"],
    ] {
        pj.run(&args)
            .expect(1)
            .stderr_has("does not exist")
            .stderr_has("plainjobs migrate");
        assert!(!file.exists(), "`{}` created {file:?}", args.join(" "));
    }
    // A file without the tables (another program's, or empty).
    std::fs::write(&file, b"").expect("empty file");
    pj.run(&["stats"])
        .expect(1)
        .stderr_has("the job tables do not exist in sqlite://plainjobs.sqlite3")
        .stderr_has("run `plainjobs migrate`");
    pj.run(&["migrate"])
        .ok()
        .stdout_has("migrated sqlite://plainjobs.sqlite3");
    pj.run(&["stats"]).ok();
}

/// A worker that stopped heartbeating is not "active": late, then dead; one on this host whose
/// process is gone is shown so at once.
#[test]
fn stats_tells_late_dead_and_gone_workers() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let rows = [
        ("elsewhere", 1, "3 minutes"),
        ("elsewhere", 2, "10 minutes"),
        (host.trim(), i32::MAX - 1, "1 second"),
    ];
    for (hostname, pid, ago) in rows {
        db.exec(&format!(
            "INSERT INTO plainjobs_workerheartbeat (worker_id, hostname, pid, queues, started_at, last_heartbeat_at)
             VALUES ('{}', '{hostname}', {pid}, '[\"default\"]', now() - interval '1 hour', now() - interval '{ago}')",
            Uuid::new_v4()
        ));
    }
    let stats = pj.run(&["stats", "--json"]).ok().json();
    assert_eq!(stats["workers"]["active"], json!(0), "{stats:#}");
    assert_eq!(stats["workers"]["late"], json!(1), "{stats:#}");
    assert_eq!(stats["workers"]["stale"], json!(2), "{stats:#}");
    let states: Vec<&str> = array(&stats["workers"]["list"])
        .iter()
        .map(|w| text(w, "state"))
        .collect();
    assert_eq!(states, ["late", "dead", "gone"], "{stats:#}");
    pj.run(&["stats"])
        .ok()
        .stdout_has("late: missed its heartbeats")
        .stdout_has("its process no longer exists on this host")
        .stdout_has("workers: 0 active, 1 late, 2 stale");
    let _ = Duration::ZERO;
}

/// Purge by queue, job name and time; results stay.
#[test]
fn purge_by_queue_job_and_time() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    for (job, queue) in [
        ("app.A", "a"),
        ("app.A", "b"),
        ("app.B", "b"),
        ("app.B", "b"),
    ] {
        pj.run(&["enqueue", job, "--queue", queue]).ok();
    }
    pj.run(&["purge", "--queue", "a", "--yes"])
        .ok()
        .stdout_has("cancelled 1 pending");
    let out = pj
        .run(&[
            "purge", "--job", "app.B", "--until", "1h", "--yes", "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["cancelled"], json!({"pending": 0, "running": 0}));
    let out = pj
        .run(&[
            "purge", "--job", "app.B", "--since", "1h", "--yes", "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["cancelled"], json!({"pending": 2, "running": 0}));
    assert_eq!(
        db.count(
            "SELECT count(*) FROM plainjobs_jobrequest WHERE queue = 'b' AND job_class = 'app.A'"
        ),
        1
    );
    assert_eq!(db.count("SELECT count(*) FROM plainjobs_jobrequest"), 1);
}

/// enqueue-command --cwd and --env run the command where and with what they say (a
/// plainjobs.ShellCommand job); --timeout stops a command that runs too long.
#[test]
fn enqueue_command_with_a_directory_variables_and_a_time_limit() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let dir = pj.dir.path().join("work");
    std::fs::create_dir_all(&dir).expect("work dir");
    let dir_text = dir.to_str().expect("utf-8 path");
    let script = r#"pwd > out.txt; echo "$GREETING" >> out.txt"#;
    let shell = enqueued(
        &pj.run(&[
            "enqueue-command",
            script,
            "--cwd",
            dir_text,
            "--env",
            "GREETING=hello there",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(
        shell["job_class"],
        json!("plainjobs.ShellCommand"),
        "{shell:#}"
    );
    assert_eq!(
        shell["parameters"]["kwargs"]["env"],
        json!({"GREETING": "hello there"})
    );
    let missing = enqueued(
        &pj.run(&["enqueue-command", "true", "--cwd", "/no/such/dir", "--json"])
            .ok(),
    );
    let slow = enqueued(
        &pj.run(&["enqueue-command", "sleep 5", "--timeout", "300ms", "--json"])
            .ok(),
    );
    pj.run(&["enqueue-command", "true", "--env", "NOEQUALS"])
        .expect(2)
        .stderr_has("NAME=VALUE");
    pj.run(&["enqueue-command", "true", "--env", "1X=y"])
        .expect(2)
        .stderr_has("variable name");

    let mut worker = start_worker(&pj);
    let list = wait_for_results(&pj, &worker, 3);
    worker.terminate();
    let of =
        |req: &serde_json::Value| find_by(&list, "job_request_uuid", text(req, "uuid")).clone();
    let ran = of(&shell);
    assert_eq!(
        ran["status"],
        json!("SUCCESSFUL"),
        "{ran:#}\n{}",
        worker.log()
    );
    let written = std::fs::read_to_string(dir.join("out.txt")).expect("out.txt in --cwd");
    let real_dir = std::fs::canonicalize(&dir).expect("canonical");
    assert_eq!(written, format!("{}\nhello there\n", real_dir.display()));
    let failed = of(&missing);
    assert_eq!(failed["status"], json!("ERRORED"));
    assert!(
        text(&failed, "error").contains("/no/such/dir"),
        "{failed:#}"
    );
    let timed_out = of(&slow);
    assert_eq!(timed_out["status"], json!("ERRORED"));
    assert!(
        text(&timed_out, "error").contains("Timed out"),
        "{timed_out:#}"
    );
    // The table shows the command, not the job name.
    pj.run(&["results"]).ok().stdout_has("$ pwd > out.txt");
}
