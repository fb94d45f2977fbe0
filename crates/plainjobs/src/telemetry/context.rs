//! plain.jobs' text form of a trace context, as its rows store it: `trace_id` is `0x` and 32
//! lower-case hex digits, `span_id` is `0x` and 16 (Python's `f"0x{format_trace_id(…)}"`).

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The columns' text for `cx`: `("0x…32", "0x…16")`.
pub fn format_context(cx: &SpanContext) -> (String, String) {
    (
        format!("0x{}", cx.trace_id()),
        format!("0x{}", cx.span_id()),
    )
}

/// The context stored in a row, read as plain.jobs reads it (`int(text, 16)`: an optional
/// `0x`, any case, surrounding blanks) into a remote, sampled context to link to. `None` when
/// either part is not hex that fits, or is zero (an invalid context).
pub fn parse_context(trace_id: &str, span_id: &str) -> Option<SpanContext> {
    let trace = TraceId::from(hex(trace_id, 32)?);
    let span = SpanId::from(u64::try_from(hex(span_id, 16)?).ok()?);
    let cx = SpanContext::new(trace, span, TraceFlags::SAMPLED, true, TraceState::NONE);
    cx.is_valid().then_some(cx)
}

/// At most `digits` hex digits, after an optional `0x`.
fn hex(text: &str, digits: usize) -> Option<u128> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if text.is_empty() || text.len() > digits {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_what_plain_writes() {
        let cx = parse_context("0x4bf92f3577b34da6a3ce929d0e0e4736", "0x00f067aa0ba902b7")
            .expect("valid");
        assert_eq!(
            format_context(&cx),
            (
                "0x4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
                "0x00f067aa0ba902b7".to_string()
            )
        );
        assert!(cx.is_remote() && cx.is_sampled());
        // int(x, 16) takes upper case and no prefix too.
        assert!(parse_context("4BF92F3577B34DA6A3CE929D0E0E4736", "F067AA0BA902B7").is_some());
    }

    #[test]
    fn refuses_what_is_not_a_context() {
        for (t, s) in [
            ("0x", "0x1"),
            ("0xzz", "0x1"),
            ("0x1", "0x00000000000000000"),
            ("0x00000000000000000000000000000000", "0x1"),
            ("0x1", "0x0"),
            ("0x4bf92f3577b34da6a3ce929d0e0e47361", "0x1"),
        ] {
            assert!(parse_context(t, s).is_none(), "{t} {s}");
        }
    }
}
