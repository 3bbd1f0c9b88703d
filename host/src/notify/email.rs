//! The `email` notifier: SMTP through a pooled `lettre` transport, with the
//! options of monasca-notification's `[email_notifier]` (server, port, user,
//! password, from address) and TLS on request. The guest gives the subject
//! (`subject` attribute) and the plain-text body; the host adds `From`, `To`,
//! `Date` and a `Message-ID` made from the idempotency key, so a receiver
//! can tell a resent mail from a new one.

use super::allow::Allowlist;
use super::{attribute, Outcome};
use crate::config::{EmailConfig, SmtpTls};
use crate::engine::types::Notification;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::SinglePart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Sends email.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Email {
    /// The transport for `config`; credentials from the environment win.
    pub fn new(config: &EmailConfig, timeout: Duration) -> Result<Self, String> {
        let from = config.from_addr.parse().map_err(|e| format!("[notifiers.email] from_addr: {e}"))?;
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.server),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.server)
                .map_err(|e| format!("[notifiers.email] server: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.server)
                .map_err(|e| format!("[notifiers.email] server: {e}"))?,
        };
        let mut builder = builder.port(config.port).timeout(Some(timeout));
        let user = std::env::var("MONASCA_WASM_SMTP_USER").ok().filter(|u| !u.is_empty()).or(config.user.clone());
        let password = std::env::var("MONASCA_WASM_SMTP_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .or(config.password.as_ref().map(|p| p.0.clone()));
        // As the original: log in only with both a user and a password.
        if let (Some(user), Some(password)) = (user, password) {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Email { transport: builder.build(), from })
    }

    /// Send one mail to the notification's address.
    pub async fn send(&self, n: &Notification, allow: &Allowlist) -> Outcome {
        let to: lettre::message::Mailbox = match n.destination.parse() {
            Ok(to) => to,
            Err(e) => return Outcome::Refused(format!("{:?} is not an email address ({e})", n.destination)),
        };
        if !allow.allows(to.email.domain(), None) {
            return Outcome::Refused(format!("email domain {} is not in [notifiers] allow_email", to.email.domain()));
        }
        let digest = hex::encode(Sha256::digest(n.idempotency_key.as_bytes()));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(attribute(n, "subject").unwrap_or_default())
            .date_now()
            .message_id(Some(format!("<{}@monasca-wasm>", &digest[..32])))
            // Base64 of the bytes, as the original: the text arrives exactly
            // as written (its `\n` line ends are not made `\r\n`).
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .header(ContentTransferEncoding::Base64)
                    .body(n.body.clone()),
            );
        let message = match message {
            Ok(message) => message,
            Err(e) => return Outcome::Refused(format!("cannot build the mail: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Sent,
            Err(e) => Outcome::Failed(format!("email to {} failed: {e}", n.destination)),
        }
    }
}
