//! `NAME_FILE` beside a secret `NAME`: the one way every service takes a secret either from
//! its environment variable or from a file (a mounted Kubernetes Secret, a Docker secret),
//! so the value need not sit in the process environment. Both set is a mistake, not a
//! preference: the service refuses to start and says which two. The file must be a regular
//! file (a symlink to one, as Kubernetes mounts them, is fine) of at most [`MAX_FILE`] bytes,
//! and a single value holds no control character (a stray second newline would otherwise end
//! up inside an `Authorization` header, failing far from its cause).

use std::{io::Read as _, path::Path};

/// Largest secret file read.
pub const MAX_FILE: u64 = 64 * 1024;

/// A secret's two sources disagree, or its file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{name} and {file_name} are both set: set one of them (the value, or a file holding it)"
    )]
    Both {
        name: &'static str,
        file_name: &'static str,
    },
    #[error("{file_name}={path} (the file for {name}): {source}")]
    Unreadable {
        name: &'static str,
        file_name: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{file_name}={path} (the file for {name}) is empty")]
    Empty {
        name: &'static str,
        file_name: &'static str,
        path: String,
    },
    #[error("{file_name}={path} (the file for {name}): {why}")]
    Unusable {
        name: &'static str,
        file_name: &'static str,
        path: String,
        why: &'static str,
    },
}

/// The secret `name`: `value` (from `name`), or the text of `file` (from `file_name`) less one
/// trailing newline (`\n` or `\r\n`, as editors and `echo` leave), or `None` when neither is
/// set. Both set, an unreadable file, or an empty one: an error naming both variables.
pub fn value_or_file(
    name: &'static str,
    value: Option<String>,
    file_name: &'static str,
    file: Option<&Path>,
) -> Result<Option<String>, SecretError> {
    read(name, value, file_name, file, false)
}

/// [`value_or_file`]; `lines`: the file may hold several lines (a list).
fn read(
    name: &'static str,
    value: Option<String>,
    file_name: &'static str,
    file: Option<&Path>,
    lines: bool,
) -> Result<Option<String>, SecretError> {
    let Some(path) = file else {
        return Ok(value);
    };
    if value.is_some() {
        return Err(SecretError::Both { name, file_name });
    }
    let shown = path.display().to_string();
    let unusable = |why| SecretError::Unusable {
        name,
        file_name,
        path: shown.clone(),
        why,
    };
    let unreadable = |source| SecretError::Unreadable {
        name,
        file_name,
        path: shown.clone(),
        source,
    };
    // Checked before opening (opening a FIFO would wait for a writer), and again once open:
    // what is read is what was checked.
    if !std::fs::metadata(path).map_err(unreadable)?.is_file() {
        return Err(unusable("not a regular file"));
    }
    let opened = std::fs::File::open(path).map_err(unreadable)?;
    let meta = opened.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(unusable("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(unusable("larger than 64 KiB: not a secret"));
    }
    let mut text = String::new();
    opened
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(SecretError::Empty {
            name,
            file_name,
            path: shown,
        });
    }
    let allowed = |c: char| lines && (c == '\n' || c == '\r');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(unusable(
            "holds a control character (a second line?): one value, at most one newline at the end",
        ));
    }
    Ok(Some(text.to_owned()))
}

/// [`value_or_file`] for a list (`a,b` in the variable): the file may hold one item a line,
/// or the same comma-separated list. Empty items are dropped.
pub fn list_or_file(
    name: &'static str,
    values: Vec<String>,
    file_name: &'static str,
    file: Option<&Path>,
) -> Result<Vec<String>, SecretError> {
    let value = (!values.is_empty()).then(|| values.join(","));
    Ok(read(name, value, file_name, file, true)?
        .unwrap_or_default()
        .split([',', '\n'])
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn dir(test: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("hitl-wire-secret-{test}-{}", std::process::id()))
    }

    #[test]
    fn the_value_or_the_file_less_one_trailing_newline() {
        let dir = dir("read");
        assert_eq!(
            value_or_file("T", Some("v".into()), "T_FILE", None).unwrap(),
            Some("v".into())
        );
        assert_eq!(value_or_file("T", None, "T_FILE", None).unwrap(), None);
        for (text, read) in [("s3cret\n", "s3cret"), ("s3cret\r\n", "s3cret")] {
            let path = file(&dir, "t", text);
            assert_eq!(
                value_or_file("T", None, "T_FILE", Some(&path)).unwrap(),
                Some(read.into()),
                "{text:?}"
            );
        }
        let urls = file(&dir, "urls", "https://a\nhttps://b,https://c\n\n");
        assert_eq!(
            list_or_file("U", vec![], "U_FILE", Some(&urls)).unwrap(),
            ["https://a", "https://b", "https://c"]
        );
        assert_eq!(
            list_or_file("U", vec!["x".into()], "U_FILE", None).unwrap(),
            ["x"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_is_no_single_small_value_is_refused_without_showing_it() {
        let dir = dir("refused");
        let two_lines = file(&dir, "two", "tok\n\n");
        let big = file(&dir, "big", &"x".repeat(70 * 1024));
        for (path, why) in [
            (two_lines, "control character"),
            (big, "64 KiB"),
            (dir.clone(), "not a regular file"),
        ] {
            let error = value_or_file("T", None, "T_FILE", Some(&path))
                .unwrap_err()
                .to_string();
            assert!(error.contains("T_FILE") && error.contains(why), "{error}");
            assert!(!error.contains("tok") && !error.contains("xxx"), "{error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn both_set_a_missing_or_an_empty_file_is_refused_naming_both() {
        let dir = dir("refuse");
        let path = file(&dir, "t", "x");
        let both = value_or_file("TOKEN", Some("v".into()), "TOKEN_FILE", Some(&path));
        let missing = value_or_file("T", None, "T_FILE", Some(&dir.join("nope")));
        let empty = value_or_file("T", None, "T_FILE", Some(&file(&dir, "e", "\n")));
        let _ = std::fs::remove_dir_all(&dir);
        let both = both.unwrap_err().to_string();
        assert!(both.contains("TOKEN and TOKEN_FILE are both set"), "{both}");
        for error in [missing.unwrap_err(), empty.unwrap_err()] {
            let text = error.to_string();
            assert!(
                text.contains("T_FILE=") && text.contains("for T)"),
                "{text}"
            );
        }
    }
}
