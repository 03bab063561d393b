//! The one duration grammar of every service setting: `humantime`'s (`500ms`, `90s`, `5m`,
//! `12h`, `1h 30m`, `2days`), and a bare number of seconds — what every duration setting took
//! before (the seed's `PARK_TIMEOUT_SEC=600`, `APPROVAL_TTL=86400`), so no deployment's value
//! changes meaning or stops working. Every error names the variable and the grammar.

use std::time::Duration;

/// What a duration setting accepts, for error messages and help.
pub const GRAMMAR: &str =
    "a number with a unit: 500ms, 90s, 5m, 12h, 1h 30m (humantime), or a bare number of seconds";

/// A duration setting that does not parse, or is out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={text:?}: {why}; expected {GRAMMAR}")]
pub struct DurationError {
    var: String,
    text: String,
    why: String,
}

/// `text`, the value of `var`, as a duration (zero allowed).
pub fn parse(var: &str, text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let error = |why: String| DurationError {
        var: var.to_owned(),
        text: text.to_owned(),
        why,
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| error("too large".into()));
    }
    humantime::parse_duration(trimmed).map_err(|e| error(e.to_string()))
}

/// [`parse`], refusing zero.
pub fn parse_positive(var: &str, text: &str) -> Result<Duration, DurationError> {
    let duration = parse(var, text)?;
    if duration.is_zero() {
        return Err(DurationError {
            var: var.to_owned(),
            text: text.to_owned(),
            why: "must be longer than zero".into(),
        });
    }
    Ok(duration)
}

/// [`parse`] for a setting kept in whole seconds: `5m` is 300, `1500ms` is refused.
pub fn parse_whole_seconds(var: &str, text: &str) -> Result<u64, DurationError> {
    let duration = parse(var, text)?;
    if duration.subsec_nanos() != 0 {
        return Err(DurationError {
            var: var.to_owned(),
            text: text.to_owned(),
            why: "this setting counts whole seconds".into(),
        });
    }
    Ok(duration.as_secs())
}

/// [`parse_whole_seconds`], refusing zero.
pub fn parse_positive_seconds(var: &str, text: &str) -> Result<u64, DurationError> {
    let secs = parse_whole_seconds(var, text)?;
    if secs == 0 {
        return Err(DurationError {
            var: var.to_owned(),
            text: text.to_owned(),
            why: "must be longer than zero".into(),
        });
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar_and_bare_seconds_everywhere() {
        assert_eq!(parse("A_SEC", "600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("A_SECS", " 90 "), Ok(Duration::from_secs(90)));
        // As before this grammar: a bare number is seconds whatever the name.
        assert_eq!(parse("A_TTL", "86400"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("A_SEC", "5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("A_TTL", "12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse("A_TTL", "1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("A_TIMEOUT", "500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("A_SEC", "0"), Ok(Duration::ZERO));
        assert_eq!(parse_whole_seconds("A_TTL", "2m"), Ok(120));

        let junk = parse("A_TTL", "soon").unwrap_err().to_string();
        assert!(
            junk.contains("A_TTL=\"soon\"") && junk.contains("bare number of seconds"),
            "{junk}"
        );
        assert!(junk.contains("humantime"), "{junk}");
        for (var, text) in [("A_SEC", "0"), ("A_TTL", "0s")] {
            assert!(parse_positive(var, text).is_err(), "{text}");
            assert!(parse_positive_seconds(var, text).is_err(), "{text}");
        }
        let part = parse_whole_seconds("A_SEC", "1500ms").unwrap_err();
        assert!(part.to_string().contains("whole seconds"), "{part}");
    }
}
