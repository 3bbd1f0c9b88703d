//! Who is calling: the `X-Auth-Token` of a request checked against the
//! pipeline's static tokens (`[[pipeline.http.tokens]]`). The identity goes
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
}

/// The longest token looked at (Keystone's Fernet tokens are ~200 bytes).
const MAX_TOKEN_BYTES: usize = 8192;

impl Authenticator {
    /// From the configured static tokens (their values already checked).
    pub fn new(tokens: &[StaticToken]) -> Self {
        let tokens = tokens
            .iter()
            .filter_map(|t| {
                let identity =
                    Identity { project_id: t.project_id.clone(), roles: t.roles.clone(), user_id: t.user_id.clone() };
                Some((digest(t.value()?.as_bytes()), identity))
            })
            .collect();
        Authenticator { tokens }
    }

    /// The identity of `token`, if it is one we accept.
    pub fn check(&self, token: &[u8]) -> Option<&Identity> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        self.tokens.get(&digest(token))
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_tokens_pass() {
        let token = StaticToken {
            token: Some("0123456789abcdef".into()),
            token_env: None,
            project_id: "p1".into(),
            roles: vec!["monasca-agent".into()],
            user_id: None,
        };
        let auth = Authenticator::new(&[token]);
        assert_eq!(auth.check(b"0123456789abcdef").map(|i| i.project_id.as_str()), Some("p1"));
        assert!(auth.check(b"0123456789abcdeF").is_none());
        assert!(auth.check(b"").is_none());
        assert!(auth.check(&vec![b'a'; MAX_TOKEN_BYTES + 1]).is_none());
    }
}
