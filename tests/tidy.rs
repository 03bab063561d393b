//! Tidy: the repository stands on its own. A plain `git clone` must pass both README commands,
//! so nothing the project runs may reach outside the checkout (external tools come in only
//! through documented environment variables, e.g. `AGENTGATEWAY_BIN`), and every copy of
//! upstream data keeps its provenance.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

fn root() -> PathBuf {
    hitl_lab::bins::workspace_root()
}

/// Every file of the checkout that is ours: not build output, not git's, not the venv.
fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(
                    name.as_ref(),
                    "target" | ".git" | "node_modules" | "__pycache__"
                ) {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out.sort();
    out
}

#[test]
fn no_source_script_or_test_reaches_outside_the_checkout() {
    // Spelled in two halves so this file does not match itself.
    let needles = [format!("../{}", "shared"), format!("/work/{}", "shared")];
    let root = root();
    let mut offenders = Vec::new();
    for path in files() {
        let rel = path.strip_prefix(&root).unwrap_or(&path);
        // `.ci/run` is CI's own script: it may hand tools found beside the checkout to the
        // project through environment variables. Prose (Markdown) may name the layout.
        if rel == Path::new(".ci/run") || rel.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // binary files
        };
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                offenders.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these refer to a directory outside the checkout, which a user's clone does not have; \
         bring the data into the repository or take a tool's path from a documented \
         environment variable:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_upstream_crd_copy_is_listed_with_its_sha256() {
    let dir = hitl_manifests::LabManifests::dir().join(hitl_manifests::CRDS_DIR);
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("manifests/crds/README.md");
    let mut yamls: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("manifests/crds")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    yamls.sort();
    assert!(!yamls.is_empty(), "no CRDs in {}", dir.display());
    let mut problems = Vec::new();
    for path in yamls {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{name}`")));
        match row {
            None => problems.push(format!("{name}: not in the README's table")),
            Some(row) if !row.contains(&sha) => {
                problems.push(format!("{name}: the README's sha256 is not {sha}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "manifests/crds/README.md is out of date:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_root_is_found_at_run_time_not_baked_in_at_compile_time() {
    // A copied checkout must drive itself: the root must be this test's own checkout, which
    // cargo tells the test process at run time.
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"));
    assert_eq!(root(), here.parent().unwrap().canonicalize().unwrap());
}

#[test]
fn every_rust_module_says_its_job_in_a_doc_comment() {
    let root = root();
    let missing: Vec<String> = files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.strip_prefix(&root).unwrap_or(&p).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these modules do not open with a `//!` comment saying what they are for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_crate_is_on_the_architecture_code_map() {
    let root = root();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members: toml::Value = toml::from_str(&manifest).unwrap();
    let members = members["workspace"]["members"].as_array().unwrap();
    let mut missing = Vec::new();
    for member in members {
        let dir = member.as_str().unwrap();
        let krate: toml::Value =
            toml::from_str(&std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap())
                .unwrap();
        let name = krate["package"]["name"].as_str().unwrap();
        if !architecture.contains(&format!("`{name}`")) {
            missing.push(format!("{name} ({dir}/)"));
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name these crates: {}",
        missing.join(", ")
    );
}

#[test]
fn no_harness_file_is_over_400_lines() {
    const LIMIT: usize = 400;
    let root = root();
    let mut problems = Vec::new();
    for path in files() {
        let rel = path.strip_prefix(&root).unwrap_or(&path);
        if !rel.starts_with("harness") || rel.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        let name = rel.to_string_lossy().replace('\\', "/");
        if lines > LIMIT {
            problems.push(format!(
                "{name}: {lines} lines; split it by job (a module per job, each under {LIMIT})"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_hitl_kind_depends_on_kube() {
    // The cluster client is the kind lab's alone: the local lab, the scenes and above all the
    // release bench client must build without it.
    let root = root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let workspace: toml::Value = toml::from_str(&manifest).unwrap();
    let mut offenders = Vec::new();
    for member in workspace["workspace"]["members"].as_array().unwrap() {
        let dir = member.as_str().unwrap();
        let krate: toml::Value =
            toml::from_str(&std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap())
                .unwrap();
        let name = krate["package"]["name"].as_str().unwrap();
        let uses_kube = ["dependencies", "dev-dependencies", "build-dependencies"]
            .iter()
            .filter_map(|table| krate.get(table))
            .any(|deps| deps.get("kube").is_some());
        if uses_kube && name != "hitl-kind" {
            offenders.push(format!("{name} ({dir}/)"));
        }
    }
    assert!(
        offenders.is_empty(),
        "only hitl-kind may depend on kube; these do too (move the cluster code into \
         hitl-kind): {}",
        offenders.join(", ")
    );
}

/// Each `fn` before the file's `#[cfg(test)]` and its length in lines, braces counted outside
/// string and char literals (good enough for rustfmt-formatted code).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .collect();
    let code = |line: &str| {
        let line = line.split("//").next().unwrap_or("");
        let (mut out, mut quoted, mut escaped) = (String::new(), false, false);
        for c in line.chars() {
            match (quoted, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (_, false, '"') => quoted = !quoted,
                (false, _, c) => out.push(c),
                _ => {}
            }
        }
        out.replace("'{'", "").replace("'}'", "")
    };
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "fn") else {
            continue;
        };
        let before_ok = words[..at]
            .iter()
            .all(|w| w.starts_with("pub") || matches!(*w, "async" | "const" | "unsafe"));
        if !before_ok || at + 1 >= words.len() {
            continue;
        }
        let name: String = words[at + 1]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut opened) = (0i32, false);
        for (end, body) in lines.iter().enumerate().skip(start) {
            let body = code(body);
            for c in body.chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth == 0) || (!opened && body.trim_end().ends_with(';')) {
                found.push((name.clone(), end - start + 1));
                break;
            }
        }
    }
    found
}

#[test]
fn no_harness_function_is_over_80_lines() {
    const LIMIT: usize = 80;
    let root = root();
    let mut problems = Vec::new();
    for path in files() {
        let rel = path.strip_prefix(&root).unwrap_or(&path);
        let is_test_file = rel.file_name().is_some_and(|n| n == "tests.rs");
        if !rel.starts_with("harness") || rel.extension().is_none_or(|e| e != "rs") || is_test_file
        {
            continue;
        }
        let file = rel.to_string_lossy().replace('\\', "/");
        for (name, lines) in function_lengths(&std::fs::read_to_string(&path).unwrap()) {
            let key = format!("{file}: {name}");
            if lines > LIMIT {
                problems.push(format!(
                    "{key}: {lines} lines; split it into the steps it is made of"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The variable names of `hitl_wire::env`: the values of its `pub const NAME: &str = "…"`
/// (the upper-case ones: names, not defaults).
fn service_env_names() -> Vec<String> {
    let dir = root().join("wire/src/env");
    let mut sources = vec![root().join("wire/src/env.rs")];
    sources.extend(
        std::fs::read_dir(&dir)
            .expect("wire/src/env")
            .flatten()
            .map(|e| e.path()),
    );
    let mut names = Vec::new();
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub const ") else {
                continue;
            };
            let Some((_, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            let value = value.trim_end_matches("\";");
            if !value.is_empty() && value.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                names.push(value.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_services_env_names_are_spelled_only_in_their_contract() {
    let names = service_env_names();
    assert!(names.contains(&"PARK_TIMEOUT_SEC".to_owned()), "{names:?}");
    let root = root();
    let contract = root.join("wire/src/env");
    let mut offenders = Vec::new();
    for path in files() {
        if path.extension().is_none_or(|e| e != "rs")
            || path.starts_with(&contract)
            || path == root.join("wire/src/env.rs")
            || path == root.join("tests/tidy.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            for name in &names {
                if line.contains(&format!("\"{name}\"")) {
                    let rel = path.strip_prefix(&root).unwrap_or(&path);
                    offenders.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these spell a service's environment variable as a string; use the constant of \
         `hitl_wire::env::<service>` so the service, the harness and the tests cannot drift:\n{}",
        offenders.join("\n")
    );
}

/// `println!(` or `print!(` as a macro call of its own (not `eprintln!`, not `sprint…`).
fn prints_to_stdout(line: &str) -> bool {
    ["println!(", "print!("].iter().any(|needle| {
        line.match_indices(needle).any(|(at, _)| {
            !line[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

#[test]
fn library_code_does_not_print() {
    let root = root();
    let mut offenders = Vec::new();
    for path in files() {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
        let edge = rel.starts_with("xtask")
            || rel.starts_with("tests")
            || rel.ends_with("src/main.rs")
            || rel.components().any(|c| c.as_os_str() == "bin")
            || rel.file_name().is_some_and(|n| n == "tests.rs");
        if edge || rel.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // Unit tests (`#[cfg(test)]` to the end of the file) may print.
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if !line.trim_start().starts_with("//") && prints_to_stdout(line) {
                offenders.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "library code prints to stdout; return the text, emit a `tracing` event or take a \
         progress callback, and let the edge (xtask, a `main.rs`) print it:\n{}",
        offenders.join("\n")
    );
}
