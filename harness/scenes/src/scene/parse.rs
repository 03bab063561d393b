//! Reading scene files (TOML): syntax and meaning are both checked, and every error names the
//! file, line and column it is about. The format is documented in `scenarios/README.md`.

use std::{
    collections::BTreeMap,
    ops::Range,
    path::{Path, PathBuf},
};

use hitl_wire::model::{Response, Script, ToolCall, Turn, When};
use serde::Deserialize;
use toml::Spanned;

use super::model::{Expectations, Scene};

mod call;
use call::{RawCall, earlier_approval_has_one, to_call};

/// The lab's tools; a scene that names another is a typo.
pub const LAB_TOOLS: &[&str] = &hitl_wire::mockdb::tools::ALL;

/// A scene file that is not a valid scene.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SceneError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScene {
    id: u32,
    name: String,
    #[serde(default)]
    summary: String,
    prompts: Spanned<Vec<String>>,
    #[serde(default, rename = "turn")]
    turns: Vec<Spanned<RawTurn>>,
    #[serde(default, rename = "call")]
    calls: Vec<Spanned<RawCall>>,
    #[serde(default)]
    answers: Vec<String>,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    when: Option<When>,
    call: Option<ToolCall>,
    say: Option<String>,
    respond: Option<Vec<Response>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    schema_version: Option<String>,
    #[serde(default)]
    row_counts: BTreeMap<String, u64>,
    #[serde(default)]
    reply_contains: Vec<String>,
    #[serde(default)]
    model_saw: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "turn")]
    turns: Vec<Spanned<RawTurn>>,
}

/// Parse a bare model script (turns only, as in a scene), e.g. the free-chat script.
pub fn parse_script(file: &str, text: &str) -> Result<Script, SceneError> {
    let raw: RawScript = from_toml(file, text)?;
    let turns = to_turns(file, text, raw.turns)?;
    Ok(Script {
        name: if raw.name.is_empty() {
            file.to_owned()
        } else {
            raw.name
        },
        turns,
    })
}

/// The script the scripted model plays for free-form chat (`scenarios/chat/`).
pub fn chat_script() -> anyhow::Result<Script> {
    let path = default_dir().join("chat").join("scripted-chat.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    Ok(parse_script("scenarios/chat/scripted-chat.toml", &text)?)
}

/// Parse one scene from `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scene, SceneError> {
    let at = |span: Range<usize>, message: String| locate(file, text, span, message);
    let raw: RawScene = from_toml(file, text)?;

    if raw.prompts.get_ref().is_empty() {
        return Err(at(
            raw.prompts.span(),
            "`prompts` is empty: a scene needs at least one thing the user says".into(),
        ));
    }

    let turns = to_turns(file, text, raw.turns)?;

    let mut calls = Vec::new();
    for call in raw.calls {
        let span = call.span();
        let call = call.into_inner();
        let call =
            to_call(call, text, span.clone()).map_err(|(s, m)| at(s.unwrap_or(span.clone()), m))?;
        earlier_approval_has_one(&calls, &call).map_err(|m| at(span, m))?;
        calls.push(call);
    }

    Ok(Scene {
        id: raw.id,
        name: raw.name,
        summary: raw.summary,
        file: file.to_owned(),
        prompts: raw.prompts.into_inner(),
        script: Script {
            name: file.to_owned(),
            turns,
        },
        calls,
        answers: raw.answers,
        expect: Expectations {
            schema_version: raw.expect.schema_version,
            row_counts: raw.expect.row_counts,
            reply_contains: raw.expect.reply_contains,
            model_saw: raw.expect.model_saw,
        },
    })
}

/// An error at byte `span` of `text`, with its line and column.
pub(crate) fn locate(file: &str, text: &str, span: Range<usize>, message: String) -> SceneError {
    let (line, column) = line_col(text, span.start);
    SceneError {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// Deserialize, with TOML's own errors located in the file.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, SceneError> {
    toml::from_str(text)
        .map_err(|e| locate(file, text, e.span().unwrap_or(0..0), e.message().to_owned()))
}

/// Every `[[turn]]`, each error located at its turn.
fn to_turns(file: &str, text: &str, raw: Vec<Spanned<RawTurn>>) -> Result<Vec<Turn>, SceneError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, turn)| {
            let span = turn.span();
            to_turn(turn.into_inner())
                .map_err(|m| locate(file, text, span, format!("turn {i}: {m}")))
        })
        .collect()
}

fn to_turn(raw: RawTurn) -> Result<Turn, String> {
    let inline = raw.when.is_some() || raw.call.is_some() || raw.say.is_some();
    let respond = match (raw.respond, inline) {
        (Some(_), true) => {
            return Err(
                "use either `respond = [...]` or `call`/`say`/`when` directly, not both".into(),
            );
        }
        (Some(respond), false) => respond,
        (None, _) => vec![Response {
            when: raw.when,
            call: raw.call,
            say: raw.say,
        }],
    };
    if respond.is_empty() {
        return Err("`respond` is empty: give at least one answer".into());
    }
    for (j, response) in respond.iter().enumerate() {
        if response.call.is_none() && response.say.is_none() {
            return Err(format!(
                "answer {j} neither calls a tool nor says anything: give `call` and/or `say`"
            ));
        }
        if let Some(call) = &response.call
            && !LAB_TOOLS.contains(&call.tool.as_str())
            && call.tool != crate::a2a::hitl::ASK_USER
        {
            return Err(format!(
                "the model calls unknown tool `{}`; the lab's tools are {} (and ask_user)",
                call.tool,
                LAB_TOOLS.join(", ")
            ));
        }
    }
    Ok(Turn { respond })
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The scenes directory: `<workspace>/scenarios`.
pub fn default_dir() -> PathBuf {
    hitl_lab::bins::workspace_root().join("scenarios")
}

/// The `*.toml` files directly in `dir`, in name order, each as its name (relative to the
/// workspace, for messages) and its text; `what` names them in the error when `dir` cannot
/// be read. The scenes and the attack catalogue are both read this way.
pub(crate) fn toml_files(dir: &Path, what: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading {what} from {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let name = path
                .strip_prefix(hitl_lab::bins::workspace_root())
                .unwrap_or(&path)
                .display()
                .to_string();
            Ok((name, text))
        })
        .collect()
}

/// Every `*.toml` scene under `dir`, sorted by id; duplicate ids are an error.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Scene>> {
    let mut scenes: Vec<Scene> = Vec::new();
    for (name, text) in toml_files(dir, "scenes")? {
        let scene = parse(&name, &text)?;
        if let Some(other) = scenes.iter().find(|s| s.id == scene.id) {
            anyhow::bail!(
                "{name}: scene id {} is also used by {}; ids must be unique",
                scene.id,
                other.file
            );
        }
        scenes.push(scene);
    }
    scenes.sort_by_key(|s| s.id);
    Ok(scenes)
}

/// Pick scenes by the command-line selector: a number, or `all`.
pub fn select<'a>(scenes: &'a [Scene], selector: &str) -> anyhow::Result<Vec<&'a Scene>> {
    if selector == "all" {
        return Ok(scenes.iter().collect());
    }
    let ids: Vec<String> = scenes.iter().map(|s| s.id.to_string()).collect();
    let id: u32 = selector.parse().map_err(|_| {
        anyhow::anyhow!(
            "`{selector}` is not a scene: give a number ({}) or `all`",
            ids.join(", ")
        )
    })?;
    match scenes.iter().find(|s| s.id == id) {
        Some(scene) => Ok(vec![scene]),
        None => anyhow::bail!("there is no scene {id}; the scenes are {}", ids.join(", ")),
    }
}
