//! The best peers, run in the same run on the same cluster as our drains, from the harness's
//! copy (`scripts/bench setup` installs them under its `.deps/`). A peer that is not installed
//! gives a row saying so.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::external::{last_json, run};
use crate::target::Target;

/// The peers worth beating: graphile_worker's Rust port with its local queue (the best in every
/// earlier run) and graphile-worker on Node.
pub const DEFAULT: &str = "rust-peer-local-queue,graphile-node";

/// Runs `peer` with the harness's arguments; its JSON line, or a row saying why not.
pub async fn run_peer(target: &Target, dir: &Path, peer: &str, n: u64, c: usize) -> Value {
    let common = vec![
        "--jobs".to_string(),
        n.to_string(),
        "--concurrency".into(),
        c.to_string(),
        "--lat-n".into(),
        "200".into(),
        "--lat-gap-ms".into(),
        "20".into(),
    ];
    let (cmd, args, needs) = match peer {
        "rust-peer-local-queue" | "rust-peer-once" => {
            let mode = peer.trim_start_matches("rust-peer-");
            let mut a = common;
            a.extend(["--drain-mode".into(), mode.to_string()]);
            (
                ".deps/cargo-target/release/rust-peer".to_string(),
                a,
                ".deps/cargo-target/release/rust-peer",
            )
        }
        "graphile-node" => {
            let mut a = vec!["graphile-node/bench.js".to_string()];
            a.extend(common);
            (
                "node".to_string(),
                a,
                ".deps/node/node_modules/graphile-worker",
            )
        }
        other => return json!({ "system": other, "skipped": "unknown peer" }),
    };
    if !dir.join(needs).exists() {
        return json!({ "system": peer, "skipped": format!("not installed ({needs} missing; run scripts/bench setup)") });
    }
    let env = [("DATABASE_URL", target.libpq_url())];
    match run(&cmd, &args, Some(dir), &env, Duration::from_secs(900))
        .await
        .and_then(|o| last_json(&o))
    {
        Ok(v) => v,
        Err(e) => json!({ "system": peer, "error": e.to_string() }),
    }
}
