//! Keystone tokens, validated as keystonemiddleware validates them: the
//! host logs in as its service user (`POST /v3/auth/tokens`, password
//! method, project scope) and asks `GET /v3/auth/tokens` about each
//! caller's token. Answers are remembered, bounded: a valid token until it
//! expires or `cache_ttl_s` passes, a refused one for at most 30 seconds;
//! at most `cache_entries` tokens, the oldest forgotten first. Keystone
//! unreachable or erring is not a refusal: the request gets 503.

use super::auth::Identity;
use crate::config::KeystoneConfig;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused token is remembered at most.
const REFUSED_FOR: Duration = Duration::from_secs(30);
/// A service token this close to its expiry is renewed first.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// What Keystone says of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, acting for this identity.
    Valid(Identity),
    /// Not a valid token (unknown, expired, revoked, or not project-scoped).
    Refused,
}

/// A Keystone client with its answers cache.
pub struct Keystone {
    config: KeystoneConfig,
    password: String,
    client: reqwest::Client,
    service: tokio::sync::Mutex<Option<(String, Instant)>>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    answers: HashMap<[u8; 32], (Verdict, Instant)>,
    /// Keys in the order they were stored (for eviction).
    order: VecDeque<[u8; 32]>,
}

impl Cache {
    fn get(&self, key: &[u8; 32]) -> Option<Verdict> {
        let (verdict, until) = self.answers.get(key)?;
        (Instant::now() < *until).then(|| verdict.clone())
    }

    fn put(&mut self, key: [u8; 32], verdict: Verdict, until: Instant, max: usize) {
        if self.answers.insert(key, (verdict, until)).is_none() {
            self.order.push_back(key);
        }
        while self.answers.len() > max {
            let Some(oldest) = self.order.pop_front() else { break };
            self.answers.remove(&oldest);
        }
        // Keys of answers replaced since pile up in `order`: drop them now and then.
        if self.order.len() > 2 * max.max(1) {
            let answers = &self.answers;
            self.order.retain(|k| answers.contains_key(k));
        }
    }
}

impl Keystone {
    /// A client for `config` (its password read at start-up).
    pub fn new(config: &KeystoneConfig) -> Result<Self, String> {
        let password = config.password().ok_or("the Keystone service user's password is not set")?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| format!("cannot build the Keystone client: {e}"))?;
        Ok(Keystone {
            config: config.clone(),
            password,
            client,
            service: Default::default(),
            cache: Default::default(),
        })
    }

    fn tokens_url(&self) -> String {
        format!("{}/v3/auth/tokens", self.config.url.trim_end_matches('/'))
    }

    /// What Keystone says of `token`; `Err` when it cannot say now.
    pub async fn check(&self, token: &str) -> Result<Verdict, String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(verdict) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(verdict);
        }
        let mut answer = self.ask(token, false).await;
        if matches!(answer, Err(Retry::ServiceToken)) {
            answer = self.ask(token, true).await;
        }
        let (verdict, expires) = match answer {
            Ok(found) => found,
            Err(Retry::ServiceToken) => return Err("Keystone refuses the host's service token".into()),
            Err(Retry::Unavailable(e)) => return Err(e),
        };
        let now = Instant::now();
        let ttl = Duration::from_secs(self.config.cache_ttl_s);
        let until = match (&verdict, expires) {
            (Verdict::Valid(_), Some(expires)) => now + ttl.min(expires),
            (Verdict::Valid(_), None) => now + ttl,
            (Verdict::Refused, _) => now + ttl.min(REFUSED_FOR),
        };
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(
            key,
            verdict.clone(),
            until,
            self.config.cache_entries,
        );
        Ok(verdict)
    }

    /// One validation request: the verdict and how long the token has left.
    async fn ask(&self, token: &str, renew: bool) -> Result<(Verdict, Option<Duration>), Retry> {
        let service = self.service_token(renew).await.map_err(Retry::Unavailable)?;
        let response = self
            .client
            .get(self.tokens_url())
            .header("X-Auth-Token", service)
            .header("X-Subject-Token", token)
            .send()
            .await
            .map_err(|e| Retry::Unavailable(format!("Keystone did not answer: {e}")))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => return Err(Retry::ServiceToken),
            400 | 404 => return Ok((Verdict::Refused, None)),
            status => return Err(Retry::Unavailable(format!("Keystone answered {status}"))),
        }
        let body: serde_json::Value =
            response.json().await.map_err(|e| Retry::Unavailable(format!("Keystone's answer is not JSON: {e}")))?;
        let token = &body["token"];
        let left = token["expires_at"].as_str().and_then(seconds_until);
        if left.is_some_and(|d| d.is_zero()) {
            return Ok((Verdict::Refused, None));
        }
        let Some(project_id) = token["project"]["id"].as_str().filter(|p| !p.is_empty()) else {
            return Ok((Verdict::Refused, None));
        };
        let roles = token["roles"]
            .as_array()
            .map(|roles| roles.iter().filter_map(|r| r["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let user_id = token["user"]["id"].as_str().map(str::to_string);
        Ok((Verdict::Valid(Identity { project_id: project_id.to_string(), roles, user_id }), left))
    }

    /// The host's own token, logging in when it has none, it is about to
    /// expire, or `renew` (Keystone refused it).
    async fn service_token(&self, renew: bool) -> Result<String, String> {
        let mut service = self.service.lock().await;
        if let (false, Some((token, until))) = (renew, service.as_ref()) {
            if Instant::now() + RENEW_BEFORE < *until {
                return Ok(token.clone());
            }
        }
        let c = &self.config;
        let body = serde_json::json!({ "auth": {
            "identity": { "methods": ["password"], "password": { "user": {
                "name": c.username, "domain": { "name": c.user_domain_name }, "password": self.password } } },
            "scope": { "project": { "name": c.project_name, "domain": { "name": c.project_domain_name } } },
        } });
        let response = self
            .client
            .post(self.tokens_url())
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("cannot log in to Keystone: {e}"))?;
        let status = response.status().as_u16();
        if status != 201 && status != 200 {
            return Err(format!("Keystone refused the host's service user `{}` ({status})", c.username));
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or("Keystone gave no X-Subject-Token")?;
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        let left = answer["token"]["expires_at"].as_str().and_then(seconds_until).unwrap_or(Duration::from_secs(3600));
        *service = Some((token.clone(), Instant::now() + left));
        Ok(token)
    }
}

/// Why a validation request must be made again or given up.
enum Retry {
    /// Keystone refused the service token: log in again, once.
    ServiceToken,
    /// Keystone cannot answer now.
    Unavailable(String),
}

/// The time left until `expires_at` (Keystone's `2026-12-06T02:00:00.000000Z`),
/// zero when past; `None` when it cannot be read.
fn seconds_until(expires_at: &str) -> Option<Duration> {
    let expires = unix_seconds(expires_at)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs(expires.saturating_sub(now).max(0) as u64))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)` as seconds since the epoch (UTC).
fn unix_seconds(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if text.as_bytes().get(10) != Some(&b'T') || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), the usual algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_times_read_as_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-12-06T02:00:00.000000Z"), Some(1_796_522_400));
        assert_eq!(unix_seconds("2000-02-29T12:30:15+00:00"), Some(951_827_415));
        assert_eq!(unix_seconds("not a time"), None);
        assert_eq!(seconds_until("2000-01-01T00:00:00Z"), Some(Duration::ZERO));
    }

    #[test]
    fn the_cache_forgets_the_oldest_past_its_bound() {
        let mut cache = Cache::default();
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..5u8 {
            cache.put([i; 32], Verdict::Refused, later, 3);
        }
        assert_eq!(cache.answers.len(), 3);
        assert!(cache.get(&[0; 32]).is_none() && cache.get(&[4; 32]).is_some());
        cache.put([9; 32], Verdict::Refused, Instant::now(), 3);
        assert!(cache.get(&[9; 32]).is_none(), "an expired answer is not used");
    }
}
