//! The lab's two agents that must behave identically: kagent's declarative `dba-assistant`
//! (`requireApproval`) and the BYO LangGraph `dba-assistant-langgraph` (an `interrupt()` that
//! kagent-langgraph turns into the same approval card), and how a command picks among them.

use serde::{Deserialize, Serialize};

/// One of the lab's agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// kagent's declarative agent on kagent-adk (`manifests/agent/dba-assistant.yaml`).
    Declarative,
    /// The BYO LangGraph agent on kagent-langgraph (`python/langgraph-agent/`).
    Langgraph,
}

impl AgentKind {
    /// Both, in the order reports list them.
    pub const ALL: [AgentKind; 2] = [AgentKind::Declarative, AgentKind::Langgraph];

    /// As `--agent` and the reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Declarative => "declarative",
            AgentKind::Langgraph => "langgraph",
        }
    }

    /// The Agent's name in `manifests/agent/`.
    pub fn resource_name(self) -> &'static str {
        match self {
            AgentKind::Declarative => "dba-assistant",
            AgentKind::Langgraph => "dba-assistant-langgraph",
        }
    }

    /// The local lab's process (and log) name.
    pub fn process_name(self) -> &'static str {
        match self {
            AgentKind::Declarative => crate::components::kagent::NAME,
            AgentKind::Langgraph => crate::components::langgraph::NAME,
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--agent declarative|langgraph|all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentSelection {
    #[default]
    All,
    One(AgentKind),
}

impl AgentSelection {
    pub fn agents(self) -> Vec<AgentKind> {
        match self {
            AgentSelection::All => AgentKind::ALL.to_vec(),
            AgentSelection::One(kind) => vec![kind],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentSelection::All => "all",
            AgentSelection::One(kind) => kind.as_str(),
        }
    }
}
