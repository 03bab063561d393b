//! The model behind the agent (`--model`): which `models/<choice>.yaml` the kind lab applies and
//! which provider the local lab's agent talks to.

/// The model behind the agent (`--model`); in the lab state file as `as_str` writes it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelChoice {
    /// Our deterministic scripted model, deployed in the lab: no API key.
    Scripted,
    /// Anthropic's API.
    Anthropic,
    /// OpenAI's API.
    Openai,
}

impl ModelChoice {
    pub const ALL: [ModelChoice; 3] = [
        ModelChoice::Scripted,
        ModelChoice::Anthropic,
        ModelChoice::Openai,
    ];

    /// As on the command line and in `models/<choice>.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelChoice::Scripted => "scripted",
            ModelChoice::Anthropic => "anthropic",
            ModelChoice::Openai => "openai",
        }
    }

    /// The environment variable holding the API key, for real providers.
    pub fn api_key_env(self) -> Option<&'static str> {
        match self {
            ModelChoice::Scripted => None,
            ModelChoice::Anthropic => Some("ANTHROPIC_API_KEY"),
            ModelChoice::Openai => Some("OPENAI_API_KEY"),
        }
    }
}

impl std::fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
