//! The versions documents of monasca-log-api 2.11.0: `GET /`, `/version`
//! and `/version/{id}` (keys sorted, links made from the request's host).

use monasca_guest_sdk::http::{self, Request};

/// (id, link path, status, updated) of each version the original lists.
const VERSIONS: &[(&str, &str, &str, &str)] = &[
    ("v2.0", "/v2.0/log/single", "DEPRECATED", "2015-09-01T00:00:00Z"),
    ("v3.0", "/v3.0/logs", "CURRENT", "2016-03-01T00:00:00Z"),
];

/// Whether `path` is one of the versions documents.
pub fn serves(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path.is_empty() || path == "/version" || path.starts_with("/version/")
}

fn link(href: &str, rel: &str) -> String {
    let mut out = String::from("{\"href\": ");
    monasca_guest_sdk::pyjson::write_string(&mut out, href);
    out.push_str(", \"rel\": ");
    monasca_guest_sdk::pyjson::write_string(&mut out, rel);
    out.push('}');
    out
}

/// Answer a versions request.
pub fn answer(request: Request<'_>) {
    let base = format!("http://{}", request.header("host").unwrap_or("localhost"));
    let path = match request.path().trim_end_matches('/') {
        "" => "/",
        path => path,
    };
    let wanted = path.strip_prefix("/version/");
    let chosen: Vec<_> = VERSIONS.iter().filter(|(id, ..)| wanted.is_none_or(|w| w == *id)).collect();
    if let (Some(id), true) = (wanted, chosen.is_empty()) {
        let mut body = String::from("{\"message\": ");
        monasca_guest_sdk::pyjson::write_string(&mut body, &format!("{id} is not valid version"));
        body.push('}');
        return http::respond_json(request.message(), 400, &body);
    }
    let elements: Vec<String> = chosen
        .iter()
        .map(|(id, href, status, updated)| {
            format!(
                "{{\"id\": \"{id}\", \"links\": [{}], \"status\": \"{status}\", \"updated\": \"{updated}\"}}",
                link(&format!("{base}{href}"), "logs")
            )
        })
        .collect();
    let links = [
        link(&format!("{base}{path}"), "self"),
        link(&format!("{base}/version"), "version"),
        link(&format!("{base}/healthcheck"), "healthcheck"),
    ];
    let body = format!("{{\"elements\": [{}], \"links\": [{}]}}", elements.join(", "), links.join(", "));
    http::respond_json(request.message(), 200, &body);
}
