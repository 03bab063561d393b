//! The one duration grammar of every service setting: `humantime`'s (`500ms`, `90s`, `5m`,
//! `12h`, `1h 30m`, `2days`), and, for a variable whose name ends in `_SEC` or `_SECS`, also
//! a bare number of seconds (the seed's `PARK_TIMEOUT_SEC=600` keeps working). Every error
//! names the variable and the grammar.

use std::time::Duration;

/// What a duration setting accepts, for error messages and help.
pub const GRAMMAR: &str = "a number with a unit: 500ms, 90s, 5m, 12h, 1h 30m (humantime)";

/// A duration setting that does not parse, or is out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={text:?}: {why}; expected {GRAMMAR}{bare}")]
pub struct DurationError {
    var: String,
    text: String,
    why: String,
    bare: &'static str,
}

/// Whether `var` takes a bare number as seconds: its name ends in `_SEC` or `_SECS`.
pub fn bare_seconds(var: &str) -> bool {
    var.ends_with("_SEC") || var.ends_with("_SECS")
}

/// `text`, the value of `var`, as a duration (zero allowed).
pub fn parse(var: &str, text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let error = |why: String| DurationError {
        var: var.to_owned(),
        text: text.to_owned(),
        why,
        bare: if bare_seconds(var) {
            ", or a bare number of seconds"
        } else {
            ""
        },
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        if !bare_seconds(var) {
            return Err(error(format!(
                "a bare number has no unit (for seconds: {trimmed}s)"
            )));
        }
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
            bare: "",
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
            bare: "",
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
            bare: "",
        });
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar_with_bare_seconds_only_where_the_name_says_seconds() {
        assert_eq!(parse("A_SEC", "600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("A_SECS", " 90 "), Ok(Duration::from_secs(90)));
        assert_eq!(parse("A_SEC", "5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("A_TTL", "12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse("A_TTL", "1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("A_TIMEOUT", "500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("A_SEC", "0"), Ok(Duration::ZERO));
        assert_eq!(parse_whole_seconds("A_TTL", "2m"), Ok(120));

        let bare = parse("A_TTL", "600").unwrap_err().to_string();
        assert!(
            bare.contains("A_TTL=\"600\"") && bare.contains("600s"),
            "{bare}"
        );
        assert!(bare.contains("humantime"), "{bare}");
        let junk = parse("A_SEC", "soon").unwrap_err().to_string();
        assert!(
            junk.contains("A_SEC") && junk.contains("bare number of seconds"),
            "{junk}"
        );
        for (var, text) in [("A_SEC", "0"), ("A_TTL", "0s")] {
            assert!(parse_positive(var, text).is_err(), "{text}");
            assert!(parse_positive_seconds(var, text).is_err(), "{text}");
        }
        let part = parse_whole_seconds("A_SEC", "1500ms").unwrap_err();
        assert!(part.to_string().contains("whole seconds"), "{part}");
    }
}
