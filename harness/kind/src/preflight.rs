//! Before `up` touches anything: is every tool there, is the Docker daemon reachable, is the
//! API key set when a real model is chosen? Every problem is reported at once, each with how
//! to fix it.

use std::fmt;

use hitl_manifests::ModelChoice;

use hitl_lab::versions;

/// What went wrong running a probe command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The program is not on PATH.
    NotFound,
    /// It ran and failed; the first line of what it said.
    Failed(String),
}

/// How pre-flight looks at the machine (a trait so the checks are testable without tools).
pub trait Probe {
    /// Run `program args…`, quietly.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), ProbeError>;
    /// An environment variable, if set and non-empty.
    fn env(&self, var: &str) -> Option<String>;
    /// Whether a file exists (relative to the workspace root).
    fn file_exists(&self, path: &str) -> bool;
}

/// The real machine.
pub struct System;

impl Probe for System {
    fn run(&self, program: &str, args: &[&str]) -> Result<(), ProbeError> {
        match std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ProbeError::NotFound),
            Err(e) => Err(ProbeError::Failed(e.to_string())),
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let line = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(ProbeError::Failed(format!(
                    "{} ({})",
                    line.trim(),
                    out.status
                )))
            }
        }
    }

    fn env(&self, var: &str) -> Option<String> {
        std::env::var(var).ok().filter(|v| !v.trim().is_empty())
    }

    fn file_exists(&self, path: &str) -> bool {
        hitl_lab::bins::workspace_root().join(path).is_file()
    }
}

/// Everything missing, each line saying how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PreflightError {
    pub problems: Vec<String>,
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "`cargo xtask up` (kind) cannot start; fix these first (or use `cargo xtask up --local`, \
             which needs none of them):"
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// What pre-flight checks, in order (for the dry run). `files` are the workspace files the run
/// reads (the kind config, the Dockerfiles).
pub fn checks(model: ModelChoice, files: &[String]) -> Vec<String> {
    let mut checks = vec![
        "docker: installed and the daemon reachable (`docker info`)".to_owned(),
        "kind: installed (`kind version`)".to_owned(),
        "helm: installed (`helm version`)".to_owned(),
        "kubectl: installed (`kubectl version --client`)".to_owned(),
    ];
    if let Some(var) = model.api_key_env() {
        checks.push(format!("{var}: set (the {} API key)", model.as_str()));
    }
    checks.push(format!("files: {}", files.join(", ")));
    checks
}

/// Check the machine; `Ok` only if everything is there.
pub fn check(
    probe: &dyn Probe,
    model: ModelChoice,
    files: &[String],
) -> Result<(), PreflightError> {
    let mut problems = Vec::new();
    match probe.run("docker", &["info", "--format", "{{.ServerVersion}}"]) {
        Ok(()) => {}
        Err(ProbeError::NotFound) => problems.push(
            "docker is not installed: install Docker Engine (https://docs.docker.com/engine/install/) \
             or Docker Desktop"
                .to_owned(),
        ),
        Err(ProbeError::Failed(why)) => problems.push(format!(
            "the Docker daemon is not reachable ({why}): start Docker, and make sure your user may \
             use it (e.g. member of the `docker` group)"
        )),
    }
    let tools = [
        (
            "kind",
            &["version"][..],
            format!(
                "install kind {}: `go install sigs.k8s.io/kind@{}` or a release binary from \
                 https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
                versions::KIND,
                versions::KIND
            ),
        ),
        (
            "helm",
            &["version", "--short"][..],
            format!(
                "install Helm {} (Helm 3): https://helm.sh/docs/intro/install/",
                versions::HELM
            ),
        ),
        (
            "kubectl",
            &["version", "--client"][..],
            "install kubectl: https://kubernetes.io/docs/tasks/tools/".to_owned(),
        ),
    ];
    for (program, args, fix) in tools {
        match probe.run(program, args) {
            Ok(()) => {}
            Err(ProbeError::NotFound) => {
                problems.push(format!("{program} is not installed: {fix}"))
            }
            Err(ProbeError::Failed(why)) => {
                problems.push(format!("{program} does not run ({why}): {fix}"))
            }
        }
    }
    if let Some(var) = model.api_key_env()
        && probe.env(var).is_none()
    {
        problems.push(format!(
            "{var} is not set: `--model {}` needs your API key in it (or use `--model scripted`, \
             which needs none)",
            model.as_str()
        ));
    }
    for file in files {
        if !probe.file_exists(file) {
            problems.push(format!(
                "{file} is missing from the workspace: `up` builds or reads it (is the checkout complete?)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PreflightError { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bare;

    impl Probe for Bare {
        fn run(&self, program: &str, _: &[&str]) -> Result<(), ProbeError> {
            match program {
                "docker" => Err(ProbeError::Failed(
                    "Cannot connect to the Docker daemon".into(),
                )),
                _ => Err(ProbeError::NotFound),
            }
        }
        fn env(&self, _: &str) -> Option<String> {
            None
        }
        fn file_exists(&self, path: &str) -> bool {
            path != "Dockerfile"
        }
    }

    struct Ready;

    impl Probe for Ready {
        fn run(&self, _: &str, _: &[&str]) -> Result<(), ProbeError> {
            Ok(())
        }
        fn env(&self, var: &str) -> Option<String> {
            (var == "OPENAI_API_KEY").then(|| "sk-test".to_owned())
        }
        fn file_exists(&self, _: &str) -> bool {
            true
        }
    }

    fn files() -> Vec<String> {
        vec![
            "Dockerfile".into(),
            "python/langgraph-agent/Dockerfile".into(),
        ]
    }

    #[test]
    fn lists_every_problem_at_once() {
        let err = check(&Bare, ModelChoice::Anthropic, &files()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 6, "{text}");
        for needle in [
            "Docker daemon",
            "kind is not installed",
            "helm is not installed",
            "kubectl is not installed",
            "ANTHROPIC_API_KEY is not set",
            "Dockerfile is missing",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn the_key_is_only_needed_for_real_models() {
        assert_eq!(check(&Ready, ModelChoice::Scripted, &files()), Ok(()));
        assert_eq!(check(&Ready, ModelChoice::Openai, &files()), Ok(()));
        let err = check(&Ready, ModelChoice::Anthropic, &files()).unwrap_err();
        assert_eq!(err.problems.len(), 1);
    }
}
