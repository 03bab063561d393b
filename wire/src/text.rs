//! Cutting text to a byte budget without splitting a character: how every bounded record is
//! cut (the admin API's body previews, hitl-extauth's denial records, mock-db-mcp's audit).

/// The longest prefix of `text` that is at most `max` bytes and ends on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn cuts_at_the_budget_or_the_character_before_it() {
        assert_eq!(prefix("abc", 5), "abc");
        assert_eq!(prefix("abc", 2), "ab");
        assert_eq!(prefix("aé", 2), "a", "é is two bytes: not split");
        assert_eq!(prefix("é", 0), "");
    }
}
