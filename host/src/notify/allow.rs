//! The allowlist of notification destinations (`[notifiers] allow` and
//! `allow_email`): which hosts HTTP notifiers may reach and which domains
//! email may go to. No list means anything is allowed.

/// One allowed destination pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`: anything.
    Any,
    /// `host` (any port).
    Host(String),
    /// `host:port`.
    HostPort(String, u16),
    /// `*.example.org`: hosts below that domain (not the domain itself).
    Below(String),
}

/// A parsed allowlist.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    patterns: Option<Vec<Pattern>>,
}

impl Allowlist {
    /// Parse the configured patterns (`None`: allow everything). Host names
    /// compare without case.
    pub fn new(patterns: Option<&[String]>) -> Result<Self, String> {
        let Some(patterns) = patterns else { return Ok(Allowlist { patterns: None }) };
        let parsed = patterns.iter().map(|p| parse(p)).collect::<Result<_, _>>()?;
        Ok(Allowlist { patterns: Some(parsed) })
    }

    /// True when no list is configured.
    pub fn allows_everything(&self) -> bool {
        self.patterns.is_none()
    }

    /// Whether `host` (with `port`, when known) may be reached.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let Some(patterns) = &self.patterns else { return true };
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        patterns.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Host(h) => *h == host,
            Pattern::HostPort(h, want) => *h == host && port == Some(*want),
            Pattern::Below(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
        })
    }
}

fn parse(pattern: &str) -> Result<Pattern, String> {
    let p = pattern.trim().to_ascii_lowercase();
    if p == "*" {
        return Ok(Pattern::Any);
    }
    if p.is_empty() || p.contains('/') || p.contains('@') {
        return Err(format!("allowlist entry {pattern:?}: use a host, host:port, *.domain or *"));
    }
    if let Some(domain) = p.strip_prefix("*.") {
        if domain.is_empty() || domain.contains('*') {
            return Err(format!("allowlist entry {pattern:?}: `*.` needs a domain after it"));
        }
        return Ok(Pattern::Below(domain.to_string()));
    }
    if p.contains('*') {
        return Err(format!("allowlist entry {pattern:?}: `*` only as `*` or at the start of `*.domain`"));
    }
    // `host:port`, but not a bare IPv6 address; `[v6]:port` works.
    if let Some((host, port)) = p.rsplit_once(':') {
        if !host.contains(':') || host.starts_with('[') {
            let port = port.parse().map_err(|_| format!("allowlist entry {pattern:?}: bad port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            return Ok(Pattern::HostPort(host, port));
        }
    }
    Ok(Pattern::Host(p.trim_start_matches('[').trim_end_matches(']').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Allowlist {
        Allowlist::new(Some(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())).expect("valid")
    }

    #[test]
    fn hosts_ports_and_domains() {
        let allow = list(&["127.0.0.1:8080", "hooks.example.org", "*.pagerduty.com", "::1"]);
        assert!(allow.allows("127.0.0.1", Some(8080)));
        assert!(!allow.allows("127.0.0.1", Some(8081)));
        assert!(allow.allows("HOOKS.example.org", Some(443)));
        assert!(allow.allows("events.pagerduty.com", Some(443)));
        assert!(!allow.allows("pagerduty.com", Some(443)), "the domain itself is not below it");
        assert!(!allow.allows("evilpagerduty.com", Some(443)));
        assert!(allow.allows("[::1]", Some(1)));
        assert!(!allow.allows("example.org", None));
    }

    #[test]
    fn no_list_allows_everything_and_empty_list_nothing() {
        assert!(Allowlist::new(None).expect("none").allows("anything.example", Some(1)));
        assert!(!list(&[]).allows("127.0.0.1", Some(80)));
        assert!(list(&["*"]).allows("x.y", None));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["http://x", "a*b", "*.", "host:port", "a@b"] {
            assert!(Allowlist::new(Some(&[bad.to_string()])).is_err(), "{bad}");
        }
    }
}
