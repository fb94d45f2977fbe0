//! A running command's output: each line to the log as it comes, the last few kilobytes kept
//! for the result.

use std::collections::VecDeque;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Longest piece of one line logged at once; a longer line comes in pieces.
const MAX_LINE: u64 = 4096;

/// How much of each stream is kept for the result.
pub const TAIL_BYTES: usize = 4096;

/// The last [`TAIL_BYTES`] of a stream.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: VecDeque<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, piece: &[u8]) {
        self.bytes.extend(piece);
        let over = self.bytes.len().saturating_sub(TAIL_BYTES);
        if over > 0 {
            self.bytes.drain(..over);
            self.cut = true;
        }
    }

    /// The kept text, lossily decoded, with `…` in front when earlier output was dropped.
    pub fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut raw = Vec::with_capacity(self.bytes.len());
        raw.extend_from_slice(a);
        raw.extend_from_slice(b);
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim_end();
        if self.cut {
            // The first bytes may be the middle of a character or a line.
            let start = text.find('\n').map_or(0, |i| i + 1);
            format!("…{}", &text[start..])
        } else {
            text.to_string()
        }
    }
}

/// Reads `stream` to its end: each line is logged as it comes (`stream` names it: stdout or
/// stderr) and the last [`TAIL_BYTES`] are returned. A read error ends the reading (the
/// command's exit status is what counts).
pub(crate) async fn follow(stream: impl AsyncRead + Unpin, name: &'static str) -> Tail {
    let mut reader = BufReader::new(stream);
    let mut tail = Tail::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => return tail,
            Ok(_) => {
                tail.push(&line);
                let text = String::from_utf8_lossy(&line);
                tracing::info!(stream = name, "{}", text.trim_end());
            }
            Err(e) => {
                tracing::warn!(stream = name, error = %e, "cannot read the command's output");
                return tail;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_bytes_and_marks_the_cut() {
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let tail = follow(text.as_bytes(), "stdout").await;
        let kept = tail.text();
        assert!(kept.starts_with("…line "), "{}", &kept[..20]);
        assert!(kept.ends_with("line 1999"));
        assert!(kept.len() <= TAIL_BYTES + 4);
        let short = follow(&b"one\ntwo\n"[..], "stdout").await;
        assert_eq!(short.text(), "one\ntwo");
    }

    #[tokio::test]
    async fn a_huge_line_is_read_in_bounded_pieces() {
        let line = vec![b'x'; 1_000_000];
        let tail = follow(&line[..], "stdout").await;
        assert_eq!(tail.text().trim_start_matches('…').len(), TAIL_BYTES);
    }
}
