//! An oslo.config INI reader: the file format of `persister.conf` and
//! `notification.conf`, read as oslo.config 9's `iniparser` reads it.
//!
//! - `[section]` headers; section names are compared in lower case, except
//!   `DEFAULT` (oslo.config normalises group names the same way). A section
//!   that appears twice is one section.
//! - `key = value` or `key: value` (whichever separator comes first), both
//!   sides trimmed; a value wholly inside matching `"` or `'` loses them.
//! - Lines starting with `#` or `;` are comments. There are no inline
//!   comments: `a = b # c` is the value `b # c`, as in oslo.config.
//! - An indented line continues the previous value (joined with `\n`); a
//!   blank line ends it. An indented comment with no value to continue is a
//!   comment (oslo.config refuses it; nothing is lost by reading it).
//! - A key given more than once keeps every value (multi-valued options);
//!   a single-valued option takes the last one.
//!
//! Substitution (`$group.option`) is not done here: see `options`.

/// Why a file is not valid oslo.config INI, with its line (counted from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// `[name` without the closing bracket.
    #[error("line {line}: a section header must end with `]`")]
    UnclosedSection {
        /// The line.
        line: usize,
    },
    /// `[]`.
    #[error("line {line}: a section header needs a name")]
    EmptySectionName {
        /// The line.
        line: usize,
    },
    /// A line that is neither a header, a comment nor `key = value`.
    #[error("line {line}: `{text}` is not `key = value`")]
    NoSeparator {
        /// The line.
        line: usize,
        /// The line's text, cut to 80 characters.
        text: String,
    },
    /// `= value`.
    #[error("line {line}: an option needs a name before its `=`")]
    EmptyKey {
        /// The line.
        line: usize,
    },
    /// An indented line with no option before it to continue.
    #[error("line {line}: an indented line continues a value, but no option precedes it")]
    StrayContinuation {
        /// The line.
        line: usize,
    },
    /// `key = value` before the first `[section]`.
    #[error("line {line}: an option before the first [section]")]
    NoSection {
        /// The line.
        line: usize,
    },
}

/// One `key = value` of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The option's name as written.
    pub key: String,
    /// Its value: trimmed, unquoted, continuation lines joined with `\n`.
    pub value: String,
    /// The line of the key (counted from 1).
    pub line: usize,
}

/// A section and its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name, in lower case unless it is `DEFAULT`.
    pub name: String,
    /// The line of its first header.
    pub line: usize,
    /// Every `key = value`, repeated keys included, in file order.
    pub entries: Vec<Entry>,
}

/// A parsed file: its sections in the order they first appear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    sections: Vec<Section>,
}

/// The name oslo.config looks a section up by.
pub fn normalize_section(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

/// An assignment being read (its value may continue on indented lines).
struct Pending {
    key: String,
    lines: Vec<String>,
    line: usize,
}

impl Ini {
    /// Parse a file's text.
    pub fn parse(text: &str) -> Result<Ini, IniError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ini = Ini::default();
        let mut current: Option<usize> = None;
        let mut pending: Option<Pending> = None;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim_end();
            if line.is_empty() {
                ini.flush(current, pending.take());
                continue;
            }
            if line.starts_with([' ', '\t']) {
                let content = line.trim_start();
                match pending.as_mut() {
                    Some(p) => p.lines.push(content.to_string()),
                    None if content.starts_with(['#', ';']) => {}
                    None => return Err(IniError::StrayContinuation { line: number }),
                }
                continue;
            }
            ini.flush(current, pending.take());
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(IniError::UnclosedSection { line: number });
                };
                if name.is_empty() {
                    return Err(IniError::EmptySectionName { line: number });
                }
                current = Some(ini.open_section(&normalize_section(name), number));
            } else if line.starts_with(['#', ';']) {
                continue;
            } else {
                let (key, value) = split_key_value(line, number)?;
                if current.is_none() {
                    return Err(IniError::NoSection { line: number });
                }
                pending = Some(Pending { key, lines: vec![value], line: number });
            }
        }
        ini.flush(current, pending.take());
        Ok(ini)
    }

    fn open_section(&mut self, name: &str, line: usize) -> usize {
        match self.sections.iter().position(|s| s.name == name) {
            Some(index) => index,
            None => {
                self.sections.push(Section { name: name.to_string(), line, entries: Vec::new() });
                self.sections.len() - 1
            }
        }
    }

    fn flush(&mut self, current: Option<usize>, pending: Option<Pending>) {
        if let (Some(index), Some(p)) = (current, pending) {
            if let Some(section) = self.sections.get_mut(index) {
                section.entries.push(Entry { key: p.key, value: p.lines.join("\n"), line: p.line });
            }
        }
    }

    /// Every section, in the order they first appear.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// A section by name (normalised as oslo.config does).
    pub fn section(&self, name: &str) -> Option<&Section> {
        let name = normalize_section(name);
        self.sections.iter().find(|s| s.name == name)
    }

    /// The value in force of `[section] key`: its last occurrence.
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.section(section)?.entries.iter().rev().find(|e| e.key == key)
    }

    /// Every value of a multi-valued option, in file order.
    pub fn get_all<'a>(&'a self, section: &str, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.section(section).into_iter().flat_map(move |s| s.entries.iter().filter(move |e| e.key == key))
    }
}

/// `key = value` or `key: value`, whichever separator comes first; the
/// value trimmed and unquoted (the first line only, as oslo.config does).
fn split_key_value(line: &str, number: usize) -> Result<(String, String), IniError> {
    let at = match (line.find('='), line.find(':')) {
        (None, None) => {
            let text: String = line.chars().take(80).collect();
            return Err(IniError::NoSeparator { line: number, text });
        }
        (Some(equal), None) => equal,
        (None, Some(colon)) => colon,
        (Some(equal), Some(colon)) => equal.min(colon),
    };
    let key = line[..at].trim();
    if key.is_empty() {
        return Err(IniError::EmptyKey { line: number });
    }
    let value = line[at + 1..].trim();
    let quoted = value.starts_with(['"', '\'']) && value.chars().next() == value.chars().last();
    let value = if quoted { value.get(1..value.len() - 1).unwrap_or("") } else { value };
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_comments_and_quotes() {
        let text = "# persister.conf\n[DEFAULT]\ndebug = True\n\n[Kafka_Metrics]\n; a comment\nuri = a:9092, b:9092\n\
                    group_id: 1_metrics\npassword = \"se=cret\"\nempty =\ninline = x # not a comment\n";
        let ini = Ini::parse(text).unwrap();
        let names: Vec<&str> = ini.sections().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["DEFAULT", "kafka_metrics"]);
        assert_eq!(ini.get("DEFAULT", "debug").unwrap().value, "True");
        let uri = ini.get("kafka_metrics", "uri").unwrap();
        assert_eq!((uri.value.as_str(), uri.line), ("a:9092, b:9092", 7));
        assert_eq!(ini.get("KAFKA_METRICS", "group_id").unwrap().value, "1_metrics");
        assert_eq!(ini.get("kafka_metrics", "password").unwrap().value, "se=cret");
        assert_eq!(ini.get("kafka_metrics", "empty").unwrap().value, "");
        assert_eq!(ini.get("kafka_metrics", "inline").unwrap().value, "x # not a comment");
        assert!(ini.get("default", "debug").is_none(), "only DEFAULT keeps its case");
    }

    #[test]
    fn the_first_separator_wins() {
        let ini = Ini::parse("[kafka]\nurl = host:9092\nperiodic: 60:sixty\n").unwrap();
        assert_eq!(ini.get("kafka", "url").unwrap().value, "host:9092");
        assert_eq!(ini.get("kafka", "periodic").unwrap().value, "60:sixty");
    }

    #[test]
    fn continuation_lines_join_until_a_blank_line() {
        let text = "[a]\nkey = first\n  second\n\tthird\n\n  # an indented comment\nother = 1\n";
        let ini = Ini::parse(text).unwrap();
        assert_eq!(ini.get("a", "key").unwrap().value, "first\nsecond\nthird");
        assert_eq!(ini.get("a", "other").unwrap().value, "1");
    }

    #[test]
    fn repeated_keys_and_sections_keep_every_value() {
        let text = "[a]\nk = 1\n[b]\nx = y\n[A]\nk = 2\n";
        let ini = Ini::parse(text).unwrap();
        assert_eq!(ini.sections().len(), 2);
        assert_eq!(ini.get("a", "k").unwrap().value, "2");
        let all: Vec<&str> = ini.get_all("a", "k").map(|e| e.value.as_str()).collect();
        assert_eq!(all, ["1", "2"]);
        assert_eq!(ini.section("a").unwrap().line, 1);
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            ("[a]\nk = v\n[b\n", IniError::UnclosedSection { line: 3 }),
            ("[a]\n[]\n", IniError::EmptySectionName { line: 2 }),
            ("[a]\nno separator\n", IniError::NoSeparator { line: 2, text: "no separator".into() }),
            ("[a]\n = v\n", IniError::StrayContinuation { line: 2 }),
            ("[a]\n= v\n", IniError::EmptyKey { line: 2 }),
            ("k = v\n", IniError::NoSection { line: 1 }),
            ("[a]\n\n  continued\n", IniError::StrayContinuation { line: 3 }),
        ];
        for (text, expected) in cases {
            assert_eq!(Ini::parse(text).unwrap_err(), expected, "{text:?}");
        }
        assert!(IniError::NoSection { line: 4 }.to_string().starts_with("line 4: "));
    }

    #[test]
    fn crlf_and_a_byte_order_mark_are_read() {
        let ini = Ini::parse("\u{feff}[a]\r\nk = v\r\n").unwrap();
        assert_eq!(ini.get("a", "k").unwrap().value, "v");
    }
}
