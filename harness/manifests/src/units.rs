//! The two unit syntaxes the manifests use: Go durations (`30s`, `11m`, `1h30m`, `500ms`) and
//! Kubernetes byte quantities (`65536`, `64Ki`, `1Mi`).

use std::time::Duration;

/// Parse a Go-style duration as Kubernetes APIs write them: one or more `<digits><unit>` with
/// unit `h`, `m`, `s` or `ms` (the pattern the agentgateway CRD enforces). `None` if malformed.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return None;
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

/// Parse a byte count written as a Kubernetes quantity: a plain integer, or an integer with a
/// binary (`Ki`, `Mi`, `Gi`) or decimal (`k`, `M`, `G`) suffix. `None` if malformed or it
/// does not fit in a u64. (Fractions and exponents are valid quantities but never byte sizes
/// in these manifests, so they are refused rather than rounded.)
pub fn parse_byte_quantity(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let n: u64 = text[..digits].parse().ok()?;
    let factor: u64 = match &text[digits..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("11m"), Some(Duration::from_secs(660)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1m500ms"),
            Some(Duration::from_millis(60_500))
        );
        for bad in ["", "m", "10", "10x", "1.5s", "-1s", "10 s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn byte_quantities() {
        assert_eq!(parse_byte_quantity("65536"), Some(65_536));
        assert_eq!(parse_byte_quantity("64Ki"), Some(65_536));
        assert_eq!(parse_byte_quantity("1Mi"), Some(1_048_576));
        assert_eq!(parse_byte_quantity("2k"), Some(2_000));
        for bad in ["", "Ki", "1.5Ki", "64KB", "-1", "1e3"] {
            assert_eq!(parse_byte_quantity(bad), None, "{bad:?}");
        }
    }
}
