//! The exact run-twice check: every handler records its request's uuid (in memory, written to
//! a file by a worker process as it ends); no uuid may appear twice.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use uuid::Uuid;

/// Writes run records, 16 bytes per run.
pub fn write(path: &Path, runs: &[Uuid]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for u in runs {
        out.write_all(u.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// Reads run records written by [`write`].
pub fn read(path: &Path) -> anyhow::Result<Vec<Uuid>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes
        .chunks_exact(16)
        .filter_map(|c| Uuid::from_slice(c).ok())
        .collect())
}

/// (distinct jobs that ran, runs beyond the first of a job).
pub fn tally(runs: &[Uuid]) -> (u64, u64) {
    let distinct: HashSet<&Uuid> = runs.iter().collect();
    let d = distinct.len() as u64;
    (d, runs.len() as u64 - d)
}

/// Writes latency samples, 8 bytes (little-endian ns) each.
pub fn write_samples(path: &Path, ns: &[u64]) -> anyhow::Result<()> {
    let bytes: Vec<u8> = ns.iter().flat_map(|n| n.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads samples written by [`write_samples`] (none when the file is missing).
pub fn read_samples(path: &Path) -> Vec<u64> {
    std::fs::read(path)
        .map(|b| {
            b.chunks_exact(8)
                .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_of_a_job_is_counted() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_eq!(tally(&[a, b]), (2, 0));
        assert_eq!(tally(&[a, b, a]), (2, 1));
    }

    #[test]
    fn records_survive_the_file() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("pj-bench-runs-{}", std::process::id()));
        let runs = vec![Uuid::now_v7(), Uuid::now_v7()];
        write(&dir, &runs)?;
        assert_eq!(read(&dir)?, runs);
        write_samples(&dir, &[1, 2, u64::MAX])?;
        assert_eq!(read_samples(&dir), vec![1, 2, u64::MAX]);
        std::fs::remove_file(&dir)?;
        Ok(())
    }
}
