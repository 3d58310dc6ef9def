//! Per-tool scope policy for MCP (the MCP authorization specification's scope challenge
//! handling, RFC 6750 §3.1 `insufficient_scope`): which scopes a `tools/call` for each tool
//! needs, what to do with tools that have no entry, and finding the tools a JSON-RPC message
//! (or batch) calls.

use std::collections::BTreeMap;

use serde_json::Value;

/// What to do with a `tools/call` for a tool the policy does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownTools {
    /// Allow it with the scopes every request needs (the default).
    #[default]
    Allow,
    /// Refuse it (403).
    Deny,
}

/// Tool name → the scopes a call needs.
#[derive(Debug, Clone, Default)]
pub struct ToolPolicy {
    tools: BTreeMap<String, Vec<String>>,
    pub(crate) unknown: UnknownTools,
}

/// What the policy says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolRule<'a> {
    /// The call needs these scopes (possibly none).
    Needs(&'a [String]),
    /// The tool is unknown and unknown tools are denied.
    Denied,
}

impl ToolPolicy {
    pub(crate) fn insert(&mut self, name: &str, scopes: Vec<String>) {
        self.tools.insert(name.to_owned(), scopes);
    }

    /// The rule for tool `name`.
    pub fn rule(&self, name: &str) -> ToolRule<'_> {
        match self.tools.get(name) {
            Some(s) => ToolRule::Needs(s),
            None if self.unknown == UnknownTools::Deny => ToolRule::Denied,
            None => ToolRule::Needs(&[]),
        }
    }

    /// Whether the policy has anything to check (so the body must be read).
    pub fn is_active(&self) -> bool {
        !self.tools.is_empty() || self.unknown == UnknownTools::Deny
    }

    /// Every scope named by the policy, in order of first appearance.
    pub fn all_scopes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.tools.values().flatten() {
            if !out.contains(&s.as_str()) {
                out.push(s);
            }
        }
        out
    }
}

/// Why a body could not be read for the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A `tools/call` without a string `params.name`.
    #[error("tools/call needs a string params.name")]
    ToolName,
}

/// The tools called by a JSON-RPC message or batch. A body that is not JSON (or not JSON-RPC)
/// calls no tools; the MCP server itself answers it with a parse error.
pub fn tools_called(body: &[u8]) -> Result<Vec<String>, BodyError> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Ok(Vec::new());
    };
    let messages = match doc {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut out = Vec::new();
    for m in &messages {
        if m.get("method").and_then(Value::as_str) == Some("tools/call") {
            let name = m
                .get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .ok_or(BodyError::ToolName)?;
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tool_calls_in_messages_and_batches() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;
        assert_eq!(tools_called(one).unwrap(), ["whoami"]);
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"a"}},
                         {"method":"tools/call","params":{"name":"b"}}]"#;
        assert_eq!(tools_called(batch).unwrap(), ["a", "b"]);
        assert!(tools_called(b"not json").unwrap().is_empty());
        assert!(tools_called(br#"{"method":"initialize"}"#)
            .unwrap()
            .is_empty());
        assert_eq!(
            tools_called(br#"{"method":"tools/call","params":{"name":3}}"#),
            Err(BodyError::ToolName)
        );
    }

    #[test]
    fn unknown_tools_follow_the_setting() {
        let mut p = ToolPolicy::default();
        p.insert("w", vec!["mcp:write".into()]);
        assert_eq!(p.rule("w"), ToolRule::Needs(&["mcp:write".to_owned()]));
        assert_eq!(p.rule("x"), ToolRule::Needs(&[]));
        p.unknown = UnknownTools::Deny;
        assert_eq!(p.rule("x"), ToolRule::Denied);
        assert_eq!(p.all_scopes(), ["mcp:write"]);
    }
}
