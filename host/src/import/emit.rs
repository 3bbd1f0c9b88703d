//! Writes the generated TOML by hand: the `toml` crate cannot put comments
//! in its output, and the comments (where each value came from, what was not
//! mapped) are half of what `import-config` writes. Strings are TOML basic
//! strings with every character that needs it escaped; keys are bare when
//! TOML allows it, quoted otherwise; comments cannot break out of their line.

/// A TOML document being written, line by line.
#[derive(Debug, Default)]
pub(super) struct TomlWriter {
    out: String,
}

impl TomlWriter {
    pub(super) fn new() -> Self {
        TomlWriter::default()
    }

    /// `# text`, one comment line per line of `text`.
    pub(super) fn comment(&mut self, text: &str) {
        for line in text.split('\n') {
            let line = comment_text(line);
            if line.is_empty() {
                self.out.push_str("#\n");
            } else {
                self.out.push_str("# ");
                self.out.push_str(&line);
                self.out.push('\n');
            }
        }
    }

    /// An empty line.
    pub(super) fn blank(&mut self) {
        self.out.push('\n');
    }

    /// `[a.b]`.
    pub(super) fn table(&mut self, path: &[&str]) {
        self.out.push('[');
        self.out.push_str(&dotted(path));
        self.out.push_str("]\n");
    }

    /// `[[a]]`.
    pub(super) fn array_table(&mut self, path: &[&str]) {
        self.out.push_str("[[");
        self.out.push_str(&dotted(path));
        self.out.push_str("]]\n");
    }

    /// `key = "value"`.
    pub(super) fn str(&mut self, key: &str, value: &str) {
        self.pair(key, &quote(value));
    }

    /// `key = 42`.
    pub(super) fn int(&mut self, key: &str, value: i64) {
        self.pair(key, &value.to_string());
    }

    /// `key = true`.
    pub(super) fn bool(&mut self, key: &str, value: bool) {
        self.pair(key, if value { "true" } else { "false" });
    }

    /// `key = ["a", "b"]`.
    pub(super) fn strs(&mut self, key: &str, values: &[String]) {
        let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
        self.pair(key, &format!("[{}]", items.join(", ")));
    }

    fn pair(&mut self, key: &str, value: &str) {
        self.out.push_str(&bare_or_quoted(key));
        self.out.push_str(" = ");
        self.out.push_str(value);
        self.out.push('\n');
    }

    /// `  # text` at the end of the line just written.
    pub(super) fn trailing(&mut self, text: &str) {
        if self.out.ends_with('\n') {
            self.out.pop();
            self.out.push_str("  # ");
            self.out.push_str(&comment_text(&text.replace('\n', " ")));
            self.out.push('\n');
        }
    }

    /// Another document's text, as it is.
    pub(super) fn append(&mut self, other: TomlWriter) {
        self.out.push_str(&other.out);
    }

    pub(super) fn finish(self) -> String {
        self.out
    }
}

/// A TOML basic string: `"` and `\` escaped, control characters as escapes.
pub(super) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key as TOML allows it bare (`A-Za-z0-9_-`), else quoted.
fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        quote(key)
    }
}

fn dotted(path: &[&str]) -> String {
    path.iter().map(|part| bare_or_quoted(part)).collect::<Vec<_>>().join(".")
}

/// Text safe in a comment: TOML allows no control character but tab there.
fn comment_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push('\t'),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let awkward = "quote \" backslash \\ newline \n tab \t bell \u{7} é ${x}";
        let mut w = TomlWriter::new();
        w.comment("a comment\nwith a second line \u{1b}[31m");
        w.table(&["sinks", "tsdb"]);
        w.str("url", awkward);
        w.trailing("where it came from\nno line break");
        w.int("batch_points", 10_000);
        w.bool("db_per_tenant", true);
        w.table(&["databases", "odd name"]);
        w.strs("list", &["a".to_string(), awkward.to_string()]);
        w.array_table(&["pipeline"]);
        w.str("weird key!", "v");
        let text = w.finish();
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(table["sinks"]["tsdb"]["url"].as_str(), Some(awkward));
        assert_eq!(table["sinks"]["tsdb"]["batch_points"].as_integer(), Some(10_000));
        assert_eq!(table["databases"]["odd name"]["list"][1].as_str(), Some(awkward));
        assert_eq!(table["pipeline"][0]["weird key!"].as_str(), Some("v"));
        assert!(text.contains("# with a second line \\u001B[31m\n"), "{text}");
        assert!(text.contains("  # where it came from no line break\n"), "{text}");
    }
}
