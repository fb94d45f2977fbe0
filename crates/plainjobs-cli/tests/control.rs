//! `cancel`, `pause` and `resume` through the binary, with a worker process running.

mod support;

use std::time::Duration;

use serde_json::json;

use support::*;

/// Enqueues a shell command; returns its request's uuid.
fn enqueue_command(pj: &Pj, args: &[&str]) -> String {
    let mut all = vec!["--json", "enqueue-command"];
    all.extend(args);
    let out = pj.run(&all).ok().json();
    text(&out["request"], "uuid").to_string()
}

/// The results, as `results --json` lists them.
fn results(pj: &Pj) -> Vec<serde_json::Value> {
    array(&pj.run(&["results", "--json"]).ok().json()).clone()
}

/// `cancel` stops a running command and removes a waiting one; each gets a CANCELLED result
/// saying who cancelled it. A finished job or a bad uuid is refused.
#[test]
fn cancel_stops_a_running_command_and_removes_a_waiting_one() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let running = enqueue_command(&pj, &["sleep 30"]);
    let waiting = enqueue_command(&pj, &["echo later", "--delay", "1h"]);
    let worker = start_worker(&pj);
    wait_for(Duration::from_secs(20), || {
        let stats = pj.run(&["stats", "--json"]).ok().json();
        (stats["queues"][0]["running"] == json!(1)).then_some(())
    })
    .unwrap_or_else(|| panic!("the command never ran\n{}", worker.log()));

    let out = pj.run(&["cancel", &running, &waiting]).ok();
    out.stdout_has(&format!("cancelled {running}: worker "))
        .stdout_has("is stopping it")
        .stdout_has(&format!("cancelled {waiting}: it was waiting"));
    let list = wait_for_results(&pj, &worker, 2);
    for r in &list {
        assert_eq!(r["status"], json!("CANCELLED"), "{r:#}");
        let error = text(r, "error");
        assert!(
            error.starts_with("Cancelled by plainjobs cancel ("),
            "{error}"
        );
    }

    let again = pj.run(&["cancel", &running]).expect(1);
    again.stdout_has("already finished (CANCELLED)");
    let json = pj.run(&["--json", "cancel", &running]).expect(1).json();
    assert_eq!(json[0]["cancelled"], json!(false), "{json:#}");
    pj.run(&["cancel", "not-a-uuid"])
        .expect(2)
        .stderr_has("not a uuid");
    assert_eq!(results(&pj).len(), 2, "nothing more was written");
    drop(worker);
}

/// `pause` keeps every worker off a queue (`stats` says so) until `resume`.
#[test]
fn pause_and_resume_a_queue() {
    let db = Db::new();
    let pj = Pj::migrated(&db);
    let worker = start_worker(&pj);
    pj.run(&["pause", "default"])
        .ok()
        .stdout_has("paused queue default");
    pj.run(&["pause", "default"])
        .ok()
        .stdout_has("was paused already");
    pj.run(&["stats"]).ok().stdout_has("default (paused)");
    // Told within a second (at once, on PostgreSQL).
    std::thread::sleep(Duration::from_secs(1));
    enqueue_command(&pj, &["echo paused"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        results(&pj).is_empty(),
        "claimed while paused\n{}",
        worker.log()
    );
    let stats = pj.run(&["stats", "--json"]).ok().json();
    let queue = find_by(array(&stats["queues"]), "queue", "default");
    assert_eq!(queue["paused"], json!(true), "{stats:#}");
    assert_eq!(queue["ready"], json!(1), "{stats:#}");

    pj.run(&["resume", "default"])
        .ok()
        .stdout_has("resumed queue default");
    pj.run(&["resume", "default"])
        .ok()
        .stdout_has("was not paused");
    let list = wait_for_results(&pj, &worker, 1);
    assert_eq!(list[0]["status"], json!("SUCCESSFUL"));
    pj.run(&["pause", ""]).expect(2);
}
