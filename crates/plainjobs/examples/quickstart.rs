//! The README's quickstart: `cargo run --example quickstart` (SQLite), or with
//! `DATABASE_URL=postgres://…`.
use std::time::Duration;

use plainjobs::{Job, JobContext, JobError, Jobs, Outcome, Worker};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct WelcomeUser {
    user_id: i64,
}

impl Job for WelcomeUser {
    // Stored in the job_class column: keep it stable across refactors.
    const NAME: &'static str = "app.jobs.WelcomeUser";

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let greeting = ctx.state::<String>()?;
        println!(
            "{greeting}, user {} (attempt {})",
            self.user_id,
            ctx.process().retry_attempt
        );
        Ok(Outcome::Success)
    }

    // At most one pending or running welcome per user.
    fn default_concurrency_key(&self) -> String {
        format!("user-{}", self.user_id)
    }

    fn default_retries(&self) -> i16 {
        3
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        Duration::from_secs(1 << (attempt - 1))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // postgres://… in production; a SQLite file needs nothing installed.
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://quickstart.sqlite3".into());
    let jobs = Jobs::connect(&url).await?;
    jobs.migrate().await?;

    jobs.enqueue(WelcomeUser { user_id: 1 })
        .priority(10)
        .await?;
    jobs.enqueue(WelcomeUser { user_id: 2 })
        .delay(Duration::from_secs(2))
        .await?;
    // A duplicate by concurrency key is skipped: Ok(None).
    assert!(jobs.enqueue(WelcomeUser { user_id: 1 }).await?.is_none());

    // Run a worker for five seconds (`.run()` runs until Ctrl-C or SIGTERM).
    Worker::new(jobs)
        .register::<WelcomeUser>()
        .state("Welcome".to_string())
        .concurrency(4)
        .run_until(tokio::time::sleep(Duration::from_secs(5)))
        .await?;
    Ok(())
}
