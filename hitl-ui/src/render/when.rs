//! Times and durations as a reviewer reads them: `2026-03-01 14:02:07 UTC`, `9m 58s`.

use time::{OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description};

/// `2026-03-01 14:02:07 UTC`.
pub fn timestamp(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.to_string())
}

/// `14:02`, UTC: when a reviewer approved, on the card.
pub fn clock(at: OffsetDateTime) -> String {
    let format = format_description!("[hour]:[minute]");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// RFC 3339, for `datetime` / `data-*` attributes read by the page's script.
pub fn machine(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// `1h 02m`, `9m 58s`, `42s`; zero or negative is `0s`.
pub fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec:02}s"),
        (hour, min, _) => format!("{hour}h {min:02}m"),
    }
}

/// `1.2 s`, `340 ms`, `3m 05s`: how long a call waited.
pub fn waited(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => span((ms / 1000) as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats() {
        assert_eq!(
            timestamp(datetime!(2026-03-01 14:02:07 +01:00)),
            "2026-03-01 13:02:07 UTC"
        );
        assert_eq!(
            machine(datetime!(2026-03-01 14:02:07 UTC)),
            "2026-03-01T14:02:07Z"
        );
        assert_eq!(span(-5), "0s");
        assert_eq!(span(42), "42s");
        assert_eq!(span(598), "9m 58s");
        assert_eq!(span(3720), "1h 02m");
        assert_eq!(waited(340), "340 ms");
        assert_eq!(waited(1_234), "1.2 s");
        assert_eq!(waited(185_000), "3m 05s");
    }
}
