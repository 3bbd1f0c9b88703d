//! For the notifiers' tests: reading one HTTP/1.1 request off a stream, as
//! the tests' small servers (plain, TLS, proxy) need.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The next request on `stream` as `head\n\nbody` (the body by its
/// `Content-Length`); `buffer` keeps what arrived beyond it for the next
/// call. `None` when the stream ends (or fails) first.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string();
                buffer.drain(..end + 4 + length);
                return Some(format!("{head}\n\n{body}"));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}
