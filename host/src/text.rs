//! Text that a guest, a message or a client controls, made safe to show an
//! operator: control characters (C0, DEL, C1), line and paragraph
//! separators and bidirectional overrides are escaped, so no such text can
//! forge a log line or drive a terminal, and the length is capped.

use std::fmt::Write as _;

/// `text` with its control characters escaped (`\n`, `\r`, `\t`, `\\`,
/// otherwise `\u{..}`) and cut to at most `max_bytes` bytes of output, with
/// a note of how many input bytes were left out.
pub fn escape_capped(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes) + 16);
    for (at, c) in text.char_indices() {
        let before = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
        if out.len() > max_bytes {
            out.truncate(before);
            let _ = write!(out, "… ({} more bytes)", text.len() - at);
            break;
        }
    }
    out
}

/// Characters never shown as they are.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `text` would be shown as it is (no escape needed).
pub fn is_plain(text: &str) -> bool {
    !text.chars().any(|c| c == '\\' || needs_escape(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_escape_sequences_cannot_forge_lines() {
        let forged = "ok\n2026-01-01T00:00:00Z ERROR forged\r\x1b[2J\x07\u{9b}31m\u{202e}";
        let shown = escape_capped(forged, 1000);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(shown, "ok\\n2026-01-01T00:00:00Z ERROR forged\\r\\u{1b}[2J\\u{7}\\u{9b}31m\\u{202e}");
        assert_eq!(escape_capped("a\\nb", 100), "a\\\\nb", "a backslash is escaped, so escapes are unambiguous");
        assert!(is_plain("métrique ✓") && !is_plain("a\nb"));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let shown = escape_capped(&long, 11);
        assert_eq!(shown, format!("{}… (1990 more bytes)", "é".repeat(5)));
        assert_eq!(escape_capped("short", 5), "short");
        let escapes = "\n".repeat(100);
        assert_eq!(escape_capped(&escapes, 5), "\\n\\n… (98 more bytes)");
    }
}
