//! Who is calling: the `X-Auth-Token` of a request checked against the
//! pipeline's static tokens (`[[pipeline.http.tokens]]`), then Keystone's
//! (`[pipeline.http.keystone]`, see [`super::keystone`]). The identity goes
//! to the guest as the `:project-id`, `:roles` and `:user-id` headers; what
//! a role may do is the guest's policy, as in the originals.

use crate::config::StaticToken;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The project (tenant) it acts for.
    pub project_id: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Its user id, when known.
    pub user_id: Option<String>,
}

/// The credentials a pipeline accepts.
pub struct Authenticator {
    /// Identities by the SHA-256 of their token: a lookup compares digests,
    /// so its time says nothing about how much of a guessed token matched.
    tokens: HashMap<[u8; 32], Identity>,
    /// Keystone, when configured.
    keystone: Option<super::keystone::Keystone>,
}

/// The outcome of checking a request's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A caller we know.
    Known(Identity),
    /// No token, or one we do not accept.
    Refused,
    /// Keystone cannot say now (the request gets 503).
    Unavailable(String),
}

/// The longest token looked at (Keystone's Fernet tokens are ~200 bytes).
const MAX_TOKEN_BYTES: usize = 8192;

impl Authenticator {
    /// From the configured static tokens (their values already checked)
    /// and Keystone's settings.
    pub fn new(tokens: &[StaticToken], keystone: Option<&crate::config::KeystoneConfig>) -> Result<Self, String> {
        let keystone = keystone.map(super::keystone::Keystone::new).transpose()?;
        let tokens = tokens
            .iter()
            .filter_map(|t| {
                let identity =
                    Identity { project_id: t.project_id.clone(), roles: t.roles.clone(), user_id: t.user_id.clone() };
                Some((digest(t.value()?.as_bytes()), identity))
            })
            .collect();
        Ok(Authenticator { tokens, keystone })
    }

    /// Who `token` is: a static token, else what Keystone says.
    pub async fn check(&self, token: Option<&[u8]>) -> Checked {
        let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES) else {
            return Checked::Refused;
        };
        if let Some(identity) = self.tokens.get(&digest(token)) {
            return Checked::Known(identity.clone());
        }
        let (Some(keystone), Ok(token)) = (&self.keystone, std::str::from_utf8(token)) else {
            return Checked::Refused;
        };
        match keystone.check(token).await {
            Ok(super::keystone::Verdict::Valid(identity)) => Checked::Known(identity),
            Ok(super::keystone::Verdict::Refused) => Checked::Refused,
            Err(reason) => Checked::Unavailable(reason),
        }
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_configured_tokens_pass() {
        let token = StaticToken {
            token: Some("0123456789abcdef".into()),
            token_env: None,
            project_id: "p1".into(),
            roles: vec!["monasca-agent".into()],
            user_id: None,
        };
        let auth = Authenticator::new(&[token], None).unwrap();
        let known = auth.check(Some(b"0123456789abcdef")).await;
        assert!(matches!(&known, Checked::Known(i) if i.project_id == "p1"), "{known:?}");
        assert_eq!(auth.check(Some(b"0123456789abcdeF")).await, Checked::Refused);
        assert_eq!(auth.check(Some(b"")).await, Checked::Refused);
        assert_eq!(auth.check(None).await, Checked::Refused);
        assert_eq!(auth.check(Some(&vec![b'a'; MAX_TOKEN_BYTES + 1])).await, Checked::Refused);
    }
}
