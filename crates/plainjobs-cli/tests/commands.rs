//! The commands that look at the installation (`config`, `doctor`), `--watch`, `--json` for
//! errors, and shell completions.

mod support;

use serde_json::json;

use support::*;

/// `config`: each value, where it came from, the password hidden; `config --help` and
/// docs/configuration.md describe every setting.
#[test]
fn config_shows_each_value_and_where_it_came_from() {
    let pj = Pj::bare()
        .env("PLAINJOBS_CONCURRENCY", "4")
        .env("DATABASE_URL", "postgres://app:secret@db.example/app");
    pj.dir.write(
        "plainjobs.toml",
        "retention = \"2d\"\nqueues = [\"a\", \"b\"]\n",
    );
    let out = pj.run(&["config"]).ok();
    out.stdout_has("configuration file: plainjobs.toml")
        .stdout_lacks("secret")
        .stdout_has("postgres://app:***@db.example/app");
    let line = |key: &str| -> Vec<String> {
        let l = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key}: {}", out.context()));
        l.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(line("retention")[1..], ["2d", "plainjobs.toml"]);
    assert_eq!(line("queues")[1..], ["a,b", "plainjobs.toml"]);
    assert_eq!(
        line("concurrency")[1..],
        ["4", "environment", "variable", "PLAINJOBS_CONCURRENCY"]
    );
    assert_eq!(line("heartbeat_timeout")[1..], ["5m", "default"]);
    let out = pj
        .run(&["--database-url", "sqlite://x.sqlite3", "config", "--json"])
        .ok()
        .json();
    let db = find_by(array(&out["settings"]), "key", "database_url");
    assert_eq!(db["value"], json!("sqlite://x.sqlite3"), "{out:#}");
    assert_eq!(db["from"], json!("--database-url"), "{out:#}");
    assert!(!pj.dir.path().join("x.sqlite3").exists());

    // The reference: every key and variable in `config --help` and in the docs.
    let help = pj.run(&["config", "--help"]).ok().stdout;
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    for setting in array(&out["settings"]) {
        for name in [text(setting, "key"), text(setting, "env")] {
            assert!(help.contains(name), "config --help lacks {name}");
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/configuration.md lacks `{name}`"
            );
        }
    }
    for word in ["RUST_LOG", "--log-level", "--log-format", "1h30m"] {
        assert!(help.contains(word), "config --help lacks {word}");
        assert!(docs.contains(word), "docs/configuration.md lacks {word}");
    }
}

/// `doctor`: a failed check exits 1 and says what to do; warnings say what is wrong.
#[test]
fn doctor_checks_the_database_the_schema_and_the_workers() {
    let db = Db::new();
    let pj = Pj::on(&db);
    let out = pj.run(&["doctor"]).expect(1);
    out.stdout_has("ok    database")
        .stdout_has("FAIL  schema")
        .stdout_has("plainjobs migrate");
    pj.run(&["migrate"]).ok();
    pj.run(&["enqueue", "app.Waiting"]).ok();
    let out = pj.run(&["doctor"]).ok();
    out.stdout_has("ok    schema")
        .stdout_has("WARN  workers       0 alive")
        .stdout_has("no live worker serves default (1 ready)");
    let report = pj.run(&["doctor", "--json"]).ok().json();
    assert_eq!(report["ok"], json!(true), "{report:#}");
    let checks = array(&report["checks"]);
    for name in [
        "configuration",
        "database",
        "schema",
        "indexes",
        "workers",
        "queues",
        "stuck jobs",
    ] {
        let check = find_by(checks, "name", name);
        let status = text(check, "status");
        assert!(["ok", "warn"].contains(&status), "{check:#}");
    }
    let pj = Pj::bare().env("DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x");
    let report = pj.run(&["doctor", "--json"]).expect(1).json();
    assert_eq!(report["ok"], json!(false), "{report:#}");
    let database = find_by(array(&report["checks"]), "name", "database");
    assert_eq!(database["status"], json!("fail"), "{report:#}");
}

/// With --json, errors are JSON too: usage errors (clap's included) and failures.
#[test]
fn json_errors_are_json() {
    let pj = Pj::bare().env("DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x");
    let err = pj.run(&["stats", "--json"]).expect(1).json();
    assert_eq!(err["error"]["kind"], json!("failure"), "{err:#}");
    assert_eq!(err["error"]["exit_code"], json!(1), "{err:#}");
    assert!(
        text(&err["error"], "message").contains("127.0.0.1:1"),
        "{err:#}"
    );
    let pj = Pj::bare();
    for args in [
        vec!["--json", "frobnicate"],
        vec!["worker", "--concurrency", "0", "--json"],
        vec!["show", "nope", "--json"],
        vec!["demo", "--json"],
    ] {
        let out = pj.run(&args).expect(2);
        let err = out.json();
        assert_eq!(err["error"]["kind"], json!("usage"), "{}", out.context());
        assert!(out.stderr.is_empty(), "{}", out.context());
    }
    // Help is still help.
    pj.run(&["--json", "--help"]).ok().stdout_has("Usage");
}

/// Completion scripts for the common shells name the subcommands.
#[test]
fn completions_for_each_shell() {
    let pj = Pj::bare();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = pj.run(&["completions", shell]).ok();
        out.stdout_has("enqueue-command").stdout_has("database-url");
    }
    pj.run(&["completions", "tcsh"])
        .expect(2)
        .stderr_has("tcsh");
}

/// `--watch` renders again at its interval until stopped; with --json one document a line.
#[test]
fn stats_and_results_watch() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    pj.run(&["enqueue", "app.A"]).ok();
    for args in [
        vec!["stats", "--watch", "200ms", "--json"],
        vec!["results", "--watch", "200ms"],
    ] {
        let json = args.contains(&"--json");
        let watcher = pj.spawn(&args, &[]);
        let seen = wait_for(COMMAND_TIMEOUT, || {
            let log = watcher.log();
            let views = if json {
                log.lines().filter(|l| l.starts_with("{\"queues\"")).count()
            } else {
                log.matches("every 200ms").count()
            };
            (views >= 3).then_some(log)
        });
        let log = seen.unwrap_or_else(|| panic!("fewer than 3 views: {}", watcher.log()));
        if json {
            let first = log.lines().next().unwrap_or_default();
            let v: serde_json::Value =
                serde_json::from_str(first).expect("one JSON document per line");
            assert_eq!(v["queues"][0]["ready"], json!(1), "{v:#}");
        } else {
            assert!(log.contains("(no results)"), "{log}");
        }
        drop(watcher);
    }
}
