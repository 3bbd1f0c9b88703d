//! The versions documents of monasca-log-api 2.11.0 (`GET /`, `/version`,
//! `/version/{id}`, a trailing slash ignored).

use monasca_guest_sdk::http::Request;
use monasca_guest_sdk::monasca::versions::{self, Version};

const VERSIONS: &[Version] = &[
    Version {
        id: "v2.0",
        path: "/v2.0/log/single",
        rel: "logs",
        status: "DEPRECATED",
        updated: "2015-09-01T00:00:00Z",
    },
    Version { id: "v3.0", path: "/v3.0/logs", rel: "logs", status: "CURRENT", updated: "2016-03-01T00:00:00Z" },
];

/// Whether `path` is one of the versions documents.
pub fn serves(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path.is_empty() || path == "/version" || path.starts_with("/version/")
}

/// Answer a versions request.
pub fn answer(request: Request<'_>) {
    let path = match request.path().trim_end_matches('/') {
        "" => "/",
        path => path,
    };
    versions::answer(request, path, VERSIONS);
}
