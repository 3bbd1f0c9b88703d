//! The versions document that monasca-log-api and monasca-events-api serve
//! on `GET /`, `/version` and `/version/{id}`: keys sorted, links made from
//! the request's `Host`, an unknown id answered 400 `{"message": "<id> is
//! not valid version"}`.

use crate::http::{self, Request};
use crate::pyjson::write_string;

/// One version an API lists.
#[derive(Debug, Clone, Copy)]
pub struct Version {
    /// `v3.0`.
    pub id: &'static str,
    /// The path its link points to, e.g. `/v3.0/logs`.
    pub path: &'static str,
    /// The link's `rel`, e.g. `logs`.
    pub rel: &'static str,
    /// `CURRENT`, `DEPRECATED`.
    pub status: &'static str,
    /// e.g. `2016-03-01T00:00:00Z`.
    pub updated: &'static str,
}

fn link(out: &mut String, href: &str, rel: &str) {
    out.push_str("{\"href\": ");
    write_string(out, href);
    out.push_str(", \"rel\": ");
    write_string(out, rel);
    out.push('}');
}

/// Answer `request` for `path` (`/`, `/version` or `/version/<id>`, as the
/// API normalises it) with the document listing `versions`.
pub fn answer(request: Request<'_>, path: &str, versions: &[Version]) {
    let base = format!("http://{}", request.header("host").unwrap_or("localhost"));
    let wanted = path.strip_prefix("/version/");
    let chosen: Vec<&Version> = versions.iter().filter(|v| wanted.is_none_or(|w| w == v.id)).collect();
    if let (Some(id), true) = (wanted, chosen.is_empty()) {
        let mut body = String::from("{\"message\": ");
        write_string(&mut body, &format!("{id} is not valid version"));
        body.push('}');
        return http::respond_json(request.message(), 400, &body);
    }
    let mut body = String::from("{\"elements\": [");
    for (i, v) in chosen.iter().enumerate() {
        if i > 0 {
            body.push_str(", ");
        }
        body.push_str(&format!("{{\"id\": \"{}\", \"links\": [", v.id));
        link(&mut body, &format!("{base}{}", v.path), v.rel);
        body.push_str(&format!("], \"status\": \"{}\", \"updated\": \"{}\"}}", v.status, v.updated));
    }
    body.push_str("], \"links\": [");
    link(&mut body, &format!("{base}{path}"), "self");
    body.push_str(", ");
    link(&mut body, &format!("{base}/version"), "version");
    body.push_str(", ");
    link(&mut body, &format!("{base}/healthcheck"), "healthcheck");
    body.push_str("]}");
    http::respond_json(request.message(), 200, &body);
}
