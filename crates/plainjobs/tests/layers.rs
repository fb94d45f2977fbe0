//! The crate's layers stay acyclic: every module uses only its own layer and those below it
//! (docs/ARCHITECTURE.md has the picture). Reads the sources; doc comments are not uses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers from the bottom up, each with the source paths (under `src/`) that belong to it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "error.rs",
            "model.rs",
            "params.rs",
            "settings/",
            "schedule/cron.rs",
        ],
    ),
    ("telemetry", &["telemetry/"]),
    ("store", &["store/"]),
    ("handle", &["jobs.rs", "dispatch.rs", "coalesce/"]),
    (
        "job",
        &[
            "job/",
            "registry.rs",
            "schedule/command.rs",
            "schedule/shell_command.rs",
            "schedule/mod.rs",
        ],
    ),
    ("client", &["client/"]),
    ("admin", &["admin/"]),
    ("worker", &["worker/"]),
    ("cli", &["cli/"]),
];

/// Where each top-level module or crate-root re-export lives (its layer).
const ROOT: &[(&str, &str)] = &[
    ("error", "leaves"),
    ("Error", "leaves"),
    ("Result", "leaves"),
    ("DbErrorKind", "leaves"),
    ("redact_url", "leaves"),
    ("model", "leaves"),
    ("JobRequest", "leaves"),
    ("JobProcess", "leaves"),
    ("JobResult", "leaves"),
    ("JobStatus", "leaves"),
    ("WorkerHeartbeat", "leaves"),
    ("params", "leaves"),
    ("settings", "leaves"),
    ("cron", "leaves"),
    ("telemetry", "telemetry"),
    ("store", "store"),
    ("QueueStats", "store"),
    ("Purged", "store"),
    ("ResultFilter", "store"),
    ("JobFilter", "store"),
    ("PausedQueue", "store"),
    ("jobs", "handle"),
    ("Jobs", "handle"),
    ("Backend", "handle"),
    ("ConnectOptions", "handle"),
    ("dispatch", "handle"),
    ("coalesce", "handle"),
    ("job", "job"),
    ("Job", "job"),
    ("JobContext", "job"),
    ("JobError", "job"),
    ("KeyLock", "job"),
    ("LockStrategy", "job"),
    ("Outcome", "job"),
    ("State", "job"),
    ("UniqueCheck", "job"),
    ("advisory_lock_id", "job"),
    ("registry", "job"),
    ("Registry", "job"),
    ("LoadError", "job"),
    ("schedule", "job"),
    ("client", "client"),
    ("Enqueue", "client"),
    ("Cancelled", "client"),
    ("EnqueueMany", "client"),
    ("Found", "client"),
    ("TransactionConn", "client"),
    ("MAX_NAME_LEN", "client"),
    ("Attempt", "client"),
    ("Chain", "client"),
    ("Cursor", "store"),
    ("Page", "store"),
    ("ProcessFilter", "store"),
    ("ProcessState", "store"),
    ("QueueDepth", "store"),
    ("RequestFilter", "store"),
    ("admin", "admin"),
    ("worker", "worker"),
    ("Worker", "worker"),
    ("WorkerConfig", "worker"),
    ("WorkerHandle", "worker"),
    ("cli", "cli"),
];

fn layer_index(name: &str) -> usize {
    LAYERS
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no layer {name}"))
}

/// The layer of a source file, by its path under `src/` (None for lib.rs and test support,
/// including test modules in files of their own: `tests.rs`, or files under a `tests/`).
fn layer_of(rel: &str) -> Option<usize> {
    if rel.ends_with("/tests.rs") || rel.contains("/tests/") {
        return None;
    }
    LAYERS.iter().position(|(_, paths)| {
        paths
            .iter()
            .any(|p| rel == *p || (p.ends_with('/') && rel.starts_with(p)))
    })
}

/// The first path segment of every `crate::…` use in `code`: comments and the test module
/// (`#[cfg(test)] mod …`, last in a file by convention) are left out.
fn crate_uses(code: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = code.lines().collect();
    let tests_at = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len());
    let code: String = lines[..tests_at]
        .iter()
        .filter(|l| !l.trim_start().starts_with("//"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                names.extend(module_of(item.trim()));
            }
        } else {
            names.extend(module_of(rest));
        }
    }
    names
}

/// The first segment of a path; for `schedule`, whose cron parser is a leaf and whose
/// shell-command job is a job, the item named after it.
fn module_of(path: &str) -> Option<String> {
    let first = first_segment(path)?;
    match path.strip_prefix("schedule::") {
        Some(rest) if first == "schedule" => {
            let item = first_segment(rest)?;
            let job = [
                "ScheduledCommand",
                "command",
                "ShellCommand",
                "shell_command",
            ];
            Some(if job.contains(&item.as_str()) {
                "schedule".to_string()
            } else {
                "cron".to_string()
            })
        }
        _ => Some(first),
    }
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_its_layer_and_those_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let Some(own) = layer_of(&rel) else {
            continue;
        };
        let code = std::fs::read_to_string(file).expect("read source");
        for name in crate_uses(&code) {
            let Some((_, target)) = ROOT.iter().find(|(n, _)| *n == name) else {
                panic!("{rel} uses crate::{name}, which this test does not place in a layer: add it to ROOT");
            };
            if layer_index(target) > own {
                upward.push(format!(
                    "{rel} ({}) uses crate::{name} ({target})",
                    LAYERS[own].0
                ));
            }
        }
    }
    assert!(files.len() > 30, "found the sources: {}", files.len());
    assert!(
        upward.is_empty(),
        "uses of a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_use() {
    let uses = crate_uses(
        "use crate::{worker::Core, store::Conn};\n// crate::cli is a comment\nlet x = crate::Jobs::new();\n#[cfg(test)]\nmod tests {\n use crate::cli;\n}",
    );
    let names: Vec<&str> = uses.iter().map(String::as_str).collect();
    assert_eq!(names, ["Jobs", "store", "worker"]);
}
