//! What monasca-notification's plugins send for a notification, built as a
//! host `notify` request: the channel, the destination, the attributes and
//! the body, byte for byte what the original puts on the wire (JSON as
//! Python's `json.dumps` writes it).

use crate::email;
use crate::notice::{JsonObject, Notice};
use monasca_guest_sdk::pyjson::{Json, PyStr};

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

/// Why there is no delivery for a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Undeliverable {
    /// The method type is not one this guest sends.
    Unsupported(String),
    /// The original's plugin raises on this alarm before sending (an email
    /// it cannot write: see [`crate::compose_email`]): the send fails, as
    /// the original's.
    Fails(String),
}

/// The method types this guest can notify through.
pub const TYPES: [&str; 5] = ["email", "pagerduty", "webhook", "slack", "jira"];

/// The common body of the webhook, Slack and Jira plugins. An alarm without
/// `alarmDescription` gets `null` (the original fails to send it).
pub fn common_body<'a>(n: &Notice<'a>) -> Json<'a> {
    object(vec![
        ("alarm_id", n.alarm("alarmId").clone()),
        ("alarm_definition_id", n.alarm("alarmDefinitionId").clone()),
        ("alarm_name", n.alarm("alarmName").clone()),
        ("alarm_description", n.alarm("alarmDescription").clone()),
        ("alarm_timestamp", n.alarm_timestamp()),
        ("state", n.alarm("newState").clone()),
        ("old_state", n.alarm("oldState").clone()),
        ("message", n.alarm("stateChangeReason").clone()),
        ("tenant_id", n.alarm("tenantId").clone()),
        ("metrics", n.alarm("metrics").clone()),
    ])
}

/// An object of `members`, in order.
fn object<'a>(members: Vec<(&'static str, Json<'a>)>) -> Json<'a> {
    Json::Object(members.into_iter().map(|(k, v)| (PyStr::from(k), v)).collect())
}

/// A string value.
fn text(s: &str) -> Json<'static> {
    Json::Str(PyStr::from(s.to_string()))
}

/// `json.dumps` of [`common_body`], from the alarm's own JSON text (made
/// once per alarm, however many webhooks it goes to).
fn webhook_body(n: &Notice) -> String {
    n.raw_alarm
        .webhook_body(|| {
            let mut out = String::with_capacity(n.raw_alarm.json.len());
            let mut body = JsonObject::new(&mut out);
            body.raw("alarm_id", n.alarm_json("alarmId"));
            body.raw("alarm_definition_id", n.alarm_json("alarmDefinitionId"));
            body.raw("alarm_name", n.alarm_json("alarmName"));
            body.raw("alarm_description", n.alarm_json("alarmDescription"));
            body.value("alarm_timestamp", &n.alarm_timestamp());
            body.raw("state", n.alarm_json("newState"));
            body.raw("old_state", n.alarm_json("oldState"));
            body.raw("message", n.alarm_json("stateChangeReason"));
            body.raw("tenant_id", n.alarm_json("tenantId"));
            body.raw("metrics", n.alarm_json("metrics"));
            body.close();
            out
        })
        .to_string()
}

/// The delivery for `n` through its method type, or why there is none.
pub fn delivery(n: &Notice, settings: &PluginSettings) -> Result<Delivery, Undeliverable> {
    let json = ("content-type".to_string(), "application/json".to_string());
    match n.kind.as_str() {
        "webhook" => Ok(Delivery {
            channel: "webhook",
            destination: n.address.clone(),
            attributes: vec![json],
            body: webhook_body(n).into_bytes(),
        }),
        "pagerduty" => {
            let message = n.alarm("stateChangeReason");
            let details = object(vec![
                ("alarm_id", n.alarm("alarmId").clone()),
                ("alarm_name", n.alarm("alarmName").clone()),
                ("current", n.alarm("newState").clone()),
                ("message", message.clone()),
            ]);
            let body = object(vec![
                ("service_key", text(&n.address)),
                ("event_type", text("trigger")),
                ("description", message.clone()),
                ("client", text("Monasca")),
                ("client_url", text("")),
                ("details", details),
            ]);
            Ok(Delivery {
                channel: "pagerduty",
                destination: settings.pagerduty_url.clone(),
                attributes: vec![json],
                body: body.dumps_ascii().into_bytes(),
            })
        }
        "slack" => {
            let message = common_body(n).dumps_indented_ascii(3);
            let form = ("form-fallback".to_string(), crate::slack::form_body(&message));
            let body = object(vec![("text", text(&message))]);
            Ok(Delivery {
                channel: "slack",
                destination: crate::slack::url(&n.address),
                attributes: vec![json, form],
                body: body.dumps_ascii().into_bytes(),
            })
        }
        "jira" => {
            // A lone surrogate in the summary goes as the text `\ud800` (the
            // host's attributes are Unicode text; the original's JSON carries
            // the surrogate itself, which Jira cannot show either).
            let comment = format!("{{code}}{}{{code}}", common_body(n).dumps_indented_ascii(3));
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
            let mail = email::compose(n, settings.grafana_url.as_deref())
                .map_err(|e| Undeliverable::Fails(format!("the email cannot be written: {e}")))?;
            Ok(Delivery {
                channel: "email",
                destination: n.address.clone(),
                attributes: vec![("subject".into(), mail.subject)],
                body: mail.body.into_bytes(),
            })
        }
        other => Err(Undeliverable::Unsupported(format!("notification type `{other}` is not supported"))),
    }
}
