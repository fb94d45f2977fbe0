//! `--watch`: render a view again every so often until Ctrl-C.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::cli::error::CliError;
use crate::cli::output::{to_json, when};

/// A view in both forms.
pub(crate) struct View {
    pub text: String,
    pub json: Value,
}

/// Prints `render`'s view once, or with `every` again at that interval until Ctrl-C (exit 0).
/// On a terminal each view replaces the last; elsewhere views follow each other, text under a
/// time stamp, JSON one compact document per line.
pub(crate) async fn show_or_watch<F, Fut>(
    json: bool,
    every: Option<Duration>,
    mut render: F,
) -> Result<(), CliError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<View, CliError>>,
{
    let Some(every) = every else {
        let view = render().await?;
        if json {
            println!("{}", to_json(&view.json)?);
        } else {
            println!("{}", view.text);
        }
        return Ok(());
    };
    let every = every.max(Duration::from_millis(100));
    let terminal = std::io::stdout().is_terminal();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let view = render().await?;
        if json {
            println!("{}", view.json);
        } else {
            if terminal {
                // Home, clear screen.
                print!("\x1b[H\x1b[2J");
            }
            let interval = crate::settings::format_duration(every);
            println!("{} · every {interval} · Ctrl-C to stop\n", when(Utc::now()));
            println!("{}\n", view.text);
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
    }
}
