//! Bulk enqueue against its limit: the same rows `COPY`'d into the same table (its indexes and
//! its trigger included). `enqueue_many` of N jobs in one call first; its rows are copied out,
//! the table truncated and checkpointed, and the rows copied back in one `COPY`. Both are one
//! durable transaction.

use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::backlog;
use crate::job::Shape;
use crate::meter::r3;
use crate::server::ServerProbe;
use crate::target::Target;

/// Bytes per COPY data message.
const COPY_CHUNK: usize = 1 << 16;

pub async fn measure(target: &Target, n: u64) -> anyhow::Result<Value> {
    target.reset().await?;
    let mut p = ServerProbe::connect(&target.jobs_url()).await?;
    let jobs = target.connect(2).await?;
    p.checkpoint().await?;
    let bulk = backlog::enqueue(&jobs, n, Shape::default(), n as usize).await?;
    crate::target::close(&jobs).await;
    let rows = copy_out(&mut p).await?;
    p.execute("TRUNCATE plainjobs_jobrequest").await?;
    p.checkpoint().await?;
    let t = Instant::now();
    let copied = copy_in(&mut p, &rows).await?;
    let copy = t.elapsed();
    let bulk_rate = n as f64 / bulk.as_secs_f64().max(1e-9);
    let copy_rate = copied as f64 / copy.as_secs_f64().max(1e-9);
    Ok(json!({
        "jobs": n,
        "bulk_per_s": bulk_rate.round(),
        "copy_per_s": copy_rate.round(),
        "copy_bytes_per_row": (rows.len() as f64 / copied.max(1) as f64).round(),
        "ratio": r3(bulk_rate / copy_rate.max(1e-9)),
    }))
}

async fn copy_out(p: &mut ServerProbe) -> anyhow::Result<Vec<u8>> {
    let mut stream = p
        .conn()
        .copy_out_raw("COPY plainjobs_jobrequest TO STDOUT")
        .await
        .context("COPY TO")?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn copy_in(p: &mut ServerProbe, rows: &[u8]) -> anyhow::Result<u64> {
    let mut copy = p
        .conn()
        .copy_in_raw("COPY plainjobs_jobrequest FROM STDIN")
        .await
        .context("COPY FROM")?;
    for chunk in rows.chunks(COPY_CHUNK) {
        copy.send(chunk).await?;
    }
    Ok(copy.finish().await?)
}
