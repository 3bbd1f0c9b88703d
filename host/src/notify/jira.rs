//! The `jira` notifier, as monasca-notification's Jira plugin works: find
//! the open issue of the alarm (JQL on project, reporter and the alarm id in
//! the summary), create a Bug when there is none, reopen it when it was
//! resolved or closed, then add the guest's body as a comment. Jira's REST
//! API v2 with basic authentication.
//!
//! The destination is `https://jira.example.org/?project=KEY[&component=C]`
//! and must be on the configured server (`[notifiers.jira] url`);
//! attributes: `summary`, `description` (for a new issue), `search` (the text
//! the summary must contain, the alarm id) and optionally `issue-type` (Bug).

use super::allow::Allowlist;
use super::http::{checked_url, read_capped, snippet};
use super::{attribute, Outcome};
use crate::config::JiraConfig;
use crate::engine::types::Notification;
use serde_json::{json, Value};

/// Jira credentials; requests go through the HTTP notifier's client.
pub struct Jira {
    server: reqwest::Url,
    user: String,
    password: String,
}

impl Jira {
    /// Credentials from the configuration; the environment wins.
    pub fn new(config: &JiraConfig) -> Result<Self, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let user = env("MONASCA_WASM_JIRA_USER").or(config.user.clone());
        let password = env("MONASCA_WASM_JIRA_PASSWORD").or(config.password.as_ref().map(|p| p.0.clone()));
        let server = reqwest::Url::parse(&config.url).map_err(|e| format!("[notifiers.jira] url: {e}"))?;
        match (user, password) {
            (Some(user), Some(password)) => Ok(Jira { server, user, password }),
            _ => Err("[notifiers.jira] needs a user and a password".to_string()),
        }
    }

    /// File or update the alarm's issue and comment on it.
    pub async fn send(&self, client: &reqwest::Client, n: &Notification, allow: &Allowlist) -> Outcome {
        let url = match checked_url(&n.destination, allow) {
            Ok(url) => url,
            Err(refusal) => return refusal,
        };
        if url.origin() != self.server.origin() {
            return Outcome::Refused(format!(
                "Jira destination {} is not the configured Jira server ([notifiers.jira] url)",
                url.origin().ascii_serialization()
            ));
        }
        let query = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
        let Some(project) = query("project") else {
            return Outcome::Refused("a Jira destination needs `?project=KEY`".to_string());
        };
        let mut base = url.clone();
        base.set_query(None);
        base.set_path("");
        let base = base.as_str().trim_end_matches('/').to_string();
        match self.file(client, &base, &project, query("component"), n).await {
            Ok(()) => Outcome::Sent,
            Err(reason) => Outcome::Failed(format!("jira: {reason}")),
        }
    }

    async fn file(
        &self,
        client: &reqwest::Client,
        base: &str,
        project: &str,
        component: Option<String>,
        n: &Notification,
    ) -> Result<(), String> {
        let jql = format!(
            "project = {} and reporter = {} and summary ~ {}",
            jql_string(project),
            jql_string(&self.user),
            jql_string(attribute(n, "search").unwrap_or_default())
        );
        let found = self
            .call(client.get(format!("{base}/rest/api/2/search")).query(&[("jql", jql.as_str()), ("fields", "status")]))
            .await?;
        let issue = found.get("issues").and_then(Value::as_array).and_then(|i| i.first()).cloned();
        let key = match issue {
            Some(issue) => {
                let key = issue["key"].as_str().ok_or("search answer without an issue key")?.to_string();
                let status = issue["fields"]["status"]["name"].as_str().unwrap_or_default().to_ascii_lowercase();
                if status == "resolved" || status == "closed" {
                    self.reopen(client, base, &key).await?;
                }
                key
            }
            None => {
                let mut fields = json!({
                    "project": { "key": project },
                    "summary": attribute(n, "summary").unwrap_or_default(),
                    "description": attribute(n, "description").unwrap_or_default(),
                    "issuetype": { "name": attribute(n, "issue-type").unwrap_or("Bug") },
                });
                if let Some(component) = component {
                    fields["components"] = json!([{ "name": component }]);
                }
                let created = self
                    .call(client.post(format!("{base}/rest/api/2/issue")).json(&json!({ "fields": fields })))
                    .await?;
                created["key"].as_str().ok_or("create answer without an issue key")?.to_string()
            }
        };
        let comment = json!({ "body": String::from_utf8_lossy(&n.body) });
        self.call(client.post(format!("{base}/rest/api/2/issue/{key}/comment")).json(&comment)).await?;
        Ok(())
    }

    async fn reopen(&self, client: &reqwest::Client, base: &str, key: &str) -> Result<(), String> {
        let url = format!("{base}/rest/api/2/issue/{key}/transitions");
        let transitions = self.call(client.get(&url)).await?;
        let reopen = transitions["transitions"].as_array().and_then(|all| {
            all.iter().find(|t| t["name"].as_str().unwrap_or_default().to_ascii_lowercase().contains("reopen"))
        });
        if let Some(id) = reopen.and_then(|t| t["id"].as_str()) {
            self.call(client.post(&url).json(&json!({ "transition": { "id": id } }))).await?;
        }
        Ok(())
    }

    /// One authenticated call; its JSON answer (`null` when empty).
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let answer = request
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        let status = answer.status();
        let body = read_capped(answer).await;
        if !status.is_success() {
            return Err(format!("answered {status}: {}", snippet(&body)));
        }
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// A JQL string literal: quoted, with `\\` and `"` escaped, so a value
/// cannot change the query.
fn jql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jql_values_stay_values() {
        assert_eq!(jql_string("MON"), "\"MON\"");
        assert_eq!(jql_string("X\" or project = \"Y"), "\"X\\\" or project = \\\"Y\"");
        assert_eq!(jql_string("a\\"), "\"a\\\\\"");
    }
}
