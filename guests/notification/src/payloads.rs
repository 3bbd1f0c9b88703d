//! What monasca-notification's plugins send for a notification, built as a
//! host `notify` request: the channel, the destination, the attributes and
//! the body, byte for byte what the original puts on the wire (JSON as
//! Python's `json.dumps` writes it).

use crate::email;
use crate::notice::{JsonObject, Notice};
use monasca_guest_sdk::pyjson;
use serde_json::{Map, Value};

/// The plugin settings the payloads depend on.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// `[email_notifier] grafana_url`.
    pub grafana_url: Option<String>,
    /// `[pagerduty_notifier] url`.
    pub pagerduty_url: String,
}

/// One delivery for the host's notifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Host notifier channel.
    pub channel: &'static str,
    /// URL or address.
    pub destination: String,
    /// Channel attributes.
    pub attributes: Vec<(String, String)>,
    /// Payload.
    pub body: Vec<u8>,
}

/// The method types this guest can notify through.
pub const TYPES: [&str; 5] = ["email", "pagerduty", "webhook", "slack", "jira"];

/// The common body of the webhook, Slack and Jira plugins. An alarm without
/// `alarmDescription` gets `null` (the original fails to send it).
pub fn common_body(n: &Notice) -> Value {
    let mut body = Map::new();
    body.insert("alarm_id".into(), n.alarm("alarmId").clone());
    body.insert("alarm_definition_id".into(), n.alarm("alarmDefinitionId").clone());
    body.insert("alarm_name".into(), n.alarm("alarmName").clone());
    body.insert("alarm_description".into(), n.alarm("alarmDescription").clone());
    body.insert("alarm_timestamp".into(), Value::from(n.alarm_timestamp()));
    body.insert("state".into(), n.alarm("newState").clone());
    body.insert("old_state".into(), n.alarm("oldState").clone());
    body.insert("message".into(), n.alarm("stateChangeReason").clone());
    body.insert("tenant_id".into(), n.alarm("tenantId").clone());
    body.insert("metrics".into(), n.alarm("metrics").clone());
    Value::Object(body)
}

/// `json.dumps` of [`common_body`], written directly.
fn webhook_body(n: &Notice) -> String {
    let mut out = String::with_capacity(n.raw_alarm.json.len());
    let mut body = JsonObject::new(&mut out);
    body.value("alarm_id", n.alarm("alarmId"));
    body.value("alarm_definition_id", n.alarm("alarmDefinitionId"));
    body.value("alarm_name", n.alarm("alarmName"));
    body.value("alarm_description", n.alarm("alarmDescription"));
    body.raw("alarm_timestamp", &n.alarm_timestamp().to_string());
    body.value("state", n.alarm("newState"));
    body.value("old_state", n.alarm("oldState"));
    body.value("message", n.alarm("stateChangeReason"));
    body.value("tenant_id", n.alarm("tenantId"));
    body.value("metrics", n.alarm("metrics"));
    body.close();
    out
}

/// The delivery for `n` through its method type, or why there is none.
pub fn delivery(n: &Notice, settings: &PluginSettings) -> Result<Delivery, String> {
    let json = ("content-type".to_string(), "application/json".to_string());
    match n.kind.as_str() {
        "webhook" => Ok(Delivery {
            channel: "webhook",
            destination: n.address.clone(),
            attributes: vec![json],
            body: webhook_body(n).into_bytes(),
        }),
        "pagerduty" => {
            let message = n.alarm("stateChangeReason").clone();
            let mut details = Map::new();
            details.insert("alarm_id".into(), n.alarm("alarmId").clone());
            details.insert("alarm_name".into(), n.alarm("alarmName").clone());
            details.insert("current".into(), n.alarm("newState").clone());
            details.insert("message".into(), message.clone());
            let mut body = Map::new();
            body.insert("service_key".into(), Value::String(n.address.clone()));
            body.insert("event_type".into(), Value::String("trigger".into()));
            body.insert("description".into(), message);
            body.insert("client".into(), Value::String("Monasca".into()));
            body.insert("client_url".into(), Value::String(String::new()));
            body.insert("details".into(), Value::Object(details));
            Ok(Delivery {
                channel: "pagerduty",
                destination: settings.pagerduty_url.clone(),
                attributes: vec![json],
                body: pyjson::dumps_ascii(&Value::Object(body)).into_bytes(),
            })
        }
        "slack" => {
            let text = pyjson::dumps_indented_ascii(&common_body(n), 3);
            let mut body = Map::new();
            body.insert("text".into(), Value::String(text));
            Ok(Delivery {
                channel: "slack",
                destination: n.address.replace('#', "%23"),
                attributes: vec![json],
                body: pyjson::dumps_ascii(&Value::Object(body)).into_bytes(),
            })
        }
        "jira" => {
            let comment = format!("{{code}}{}{{code}}", pyjson::dumps_indented_ascii(&common_body(n), 3));
            let summary = format!(
                "Monasca alarm for alarm_defintion {} status changed to {} for the alarm_id {}",
                crate::python::str_of(n.alarm("alarmName")),
                crate::python::str_of(n.alarm("newState")),
                n.alarm_id()
            );
            Ok(Delivery {
                channel: "jira",
                destination: n.address.clone(),
                attributes: vec![
                    ("summary".into(), summary),
                    ("description".into(), "Monasca alarm".into()),
                    ("search".into(), n.alarm_id().to_string()),
                ],
                body: comment.into_bytes(),
            })
        }
        "email" => {
            let mail = email::compose(n, settings.grafana_url.as_deref());
            Ok(Delivery {
                channel: "email",
                destination: n.address.clone(),
                attributes: vec![("subject".into(), mail.subject)],
                body: mail.body.into_bytes(),
            })
        }
        other => Err(format!("notification type `{other}` is not supported")),
    }
}
