//! External commands (docker, kind, helm, kubectl) as data: what the dry run prints is exactly
//! what the real run executes. Commands run in the workspace root, so paths in them are
//! relative and the printed plan is the same on every machine.

use std::{fmt, process::Stdio};

use anyhow::Context as _;

/// One command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(hitl_lab::bins::workspace_root())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Run with output shown (long builds and installs: the user sees them progress).
    pub async fn run(&self) -> anyhow::Result<()> {
        let status = self
            .command()
            .status()
            .await
            .with_context(|| format!("starting `{self}` (is {} installed?)", self.program))?;
        anyhow::ensure!(status.success(), "`{self}` failed ({status})");
        Ok(())
    }

    /// Run quietly and return stdout; on failure the error carries stderr.
    pub async fn output(&self) -> anyhow::Result<String> {
        let output = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("starting `{self}` (is {} installed?)", self.program))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            anyhow::bail!(
                "`{self}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quote for a POSIX shell when needed, so a printed command can be pasted.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '@' | '+')
        });
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let cmd = Cmd::new("helm").args(["--set", "a.b=c", "--set-string", "x=it's", ""]);
        assert_eq!(
            cmd.to_string(),
            r"helm --set a.b=c --set-string 'x=it'\''s' ''"
        );
    }
}
