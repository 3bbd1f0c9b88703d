//! Typed reads of an oslo.config file's options, as oslo.config would read
//! them (booleans, integers with their minimum, lists, dicts, `$group.option`
//! substitution), keeping count of which entries were used: every entry of
//! the file ends up either mapped or in a [`Note`] saying why not.

use super::ini::{normalize_section, Entry, Ini};
use super::{ImportError, Note};
use std::collections::BTreeSet;

/// The options of one file, and what became of each.
pub(super) struct Options<'a> {
    ini: &'a Ini,
    used: BTreeSet<(String, String)>,
    notes: Vec<Note>,
}

/// `(section, key)` as the sets hold it.
fn id(section: &str, key: &str) -> (String, String) {
    (normalize_section(section), key.to_string())
}

impl<'a> Options<'a> {
    pub(super) fn new(ini: &'a Ini) -> Self {
        Options { ini, used: BTreeSet::new(), notes: Vec::new() }
    }

    /// Whether the file sets `[section] key`.
    pub(super) fn present(&self, section: &str, key: &str) -> bool {
        self.ini.get(section, key).is_some()
    }

    /// Count `[section] key` as mapped without reading it.
    pub(super) fn touch(&mut self, section: &str, key: &str) {
        self.used.insert(id(section, key));
    }

    /// The error for a value oslo.config would refuse.
    pub(super) fn invalid(&self, section: &str, key: &str, message: impl Into<String>) -> ImportError {
        let place = match self.ini.get(section, key) {
            Some(entry) => format!("line {}: [{section}] {key}", entry.line),
            None => format!("[{section}] {key}"),
        };
        ImportError::Value { place, message: message.into() }
    }

    /// The value of `[section] key` (substituted), if the file sets it.
    pub(super) fn raw(&mut self, section: &str, key: &str) -> Result<Option<String>, ImportError> {
        self.touch(section, key);
        match self.ini.get(section, key) {
            Some(entry) => Ok(Some(self.substitute(section, key, entry, 0)?)),
            None => Ok(None),
        }
    }

    /// A string option.
    pub(super) fn string(&mut self, section: &str, key: &str, default: &str) -> Result<String, ImportError> {
        Ok(self.raw(section, key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A string option without a default; an empty value counts as unset.
    pub(super) fn opt_string(&mut self, section: &str, key: &str) -> Result<Option<String>, ImportError> {
        Ok(self.raw(section, key)?.filter(|v| !v.is_empty()))
    }

    /// A boolean option (`true`/`false`, `1`/`0`, `on`/`off`, `yes`/`no`, any case).
    pub(super) fn boolean(&mut self, section: &str, key: &str, default: bool) -> Result<bool, ImportError> {
        let Some(value) = self.raw(section, key)? else { return Ok(default) };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" => Ok(false),
            _ => Err(self.invalid(section, key, format!("`{value}` is not a boolean"))),
        }
    }

    /// An integer option.
    pub(super) fn int(&mut self, section: &str, key: &str, default: i64) -> Result<i64, ImportError> {
        let Some(value) = self.raw(section, key)? else { return Ok(default) };
        value
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| self.invalid(section, key, format!("`{value}` is not an integer")))
    }

    /// An integer option with oslo.config's `min` (a smaller value stops the original).
    pub(super) fn int_min(&mut self, section: &str, key: &str, default: i64, min: i64) -> Result<i64, ImportError> {
        let value = self.int(section, key, default)?;
        if value < min {
            return Err(self.invalid(section, key, format!("must be at least {min} (the original refuses {value})")));
        }
        Ok(value)
    }

    /// A port option (0 to 65535).
    pub(super) fn port(&mut self, section: &str, key: &str, default: u16) -> Result<u16, ImportError> {
        let value = self.int(section, key, default.into())?;
        u16::try_from(value).map_err(|_| self.invalid(section, key, format!("{value} is not a port")))
    }

    /// A list option: comma-separated, items trimmed, empty items dropped.
    pub(super) fn list(&mut self, section: &str, key: &str, default: &[&str]) -> Result<Vec<String>, ImportError> {
        Ok(match self.raw(section, key)? {
            Some(value) => split_list(&value),
            None => default.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// A dict option: `key:value` pairs, comma-separated. A key given twice
    /// keeps its first place and its last value, as a Python dict does.
    pub(super) fn dict(
        &mut self,
        section: &str,
        key: &str,
        default: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, ImportError> {
        let Some(value) = self.raw(section, key)? else {
            return Ok(default.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in split_list(&value) {
            let Some((k, v)) = item.split_once(':') else {
                return Err(self.invalid(section, key, format!("`{item}` is not `key:value`")));
            };
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            match pairs.iter_mut().find(|(existing, _)| *existing == k) {
                Some(pair) => pair.1 = v,
                None => pairs.push((k, v)),
            }
        }
        Ok(pairs)
    }

    /// `[section] key`, if the file sets it, has no equivalent: say why.
    /// An option is noted once (the first reason stands).
    pub(super) fn note(&mut self, section: &str, key: &str, why: impl Into<String>) {
        self.touch(section, key);
        let Some(entry) = self.ini.get(section, key) else { return };
        let section = normalize_section(section);
        if self.notes.iter().any(|n| n.section == section && n.key == key) {
            return;
        }
        self.notes.push(Note::new(&section, entry, why.into()));
    }

    /// Every entry of a section not yet used or noted has no equivalent.
    pub(super) fn note_rest_of(&mut self, section: &str, why: &str) {
        let Some(found) = self.ini.section(section) else { return };
        let keys: Vec<String> =
            found.entries.iter().filter(|e| !self.used.contains(&id(section, &e.key))).map(|e| e.key.clone()).collect();
        for key in keys {
            self.note(section, &key, why);
        }
    }

    /// The notes, with one for every entry nobody looked at (`why` says
    /// why, given the section), in file order.
    pub(super) fn finish(mut self, why: impl Fn(&str) -> String) -> Vec<Note> {
        let sections: Vec<String> = self.ini.sections().iter().map(|s| s.name.clone()).collect();
        for section in sections {
            let reason = why(&section);
            self.note_rest_of(&section, &reason);
        }
        let mut notes = self.notes;
        notes.sort_by_key(|n| n.line);
        notes
    }

    /// oslo.config's substitution: `$name`, `${name}`, `$group.name`;
    /// `$$` and `\$` are a `$`. A name without a group is looked up in the
    /// option's own section, then in `[DEFAULT]`. A reference to an option
    /// the file does not set is refused (oslo.config would use its default,
    /// which this reader does not know).
    fn substitute(&self, section: &str, key: &str, entry: &Entry, depth: usize) -> Result<String, ImportError> {
        let value = &entry.value;
        if !value.contains('$') {
            return Ok(value.clone());
        }
        if depth > 8 {
            return Err(self.invalid(section, key, "substitutions nest too deep (a loop?)"));
        }
        let mut out = String::with_capacity(value.len());
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek().copied()) {
                ('\\', Some('$')) | ('$', Some('$')) => {
                    chars.next();
                    out.push('$');
                }
                ('$', Some('{')) => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    out.push_str(&self.lookup(section, key, &name, depth)?);
                }
                ('$', Some(first)) if first == '_' || first.is_ascii_alphabetic() => {
                    let mut name = String::new();
                    while let Some(&next) = chars.peek() {
                        if next == '_' || next == '.' || next.is_ascii_alphanumeric() {
                            name.push(next);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push_str(&self.lookup(section, key, &name, depth)?);
                }
                _ => out.push(c),
            }
        }
        Ok(out)
    }

    fn lookup(&self, section: &str, key: &str, name: &str, depth: usize) -> Result<String, ImportError> {
        let candidates: Vec<(String, &str)> = match name.split_once('.') {
            Some((group, option)) => vec![(group.to_string(), option)],
            None => vec![(section.to_string(), name), ("DEFAULT".to_string(), name)],
        };
        for (group, option) in &candidates {
            if let Some(entry) = self.ini.get(group, option) {
                return self.substitute(group, option, entry, depth + 1);
            }
        }
        Err(self.invalid(
            section,
            key,
            format!("refers to `${name}`, which this file does not set (write `$$` for a literal `$`)"),
        ))
    }
}

/// oslo.config's list syntax, without brackets: comma-separated, trimmed.
pub(super) fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(text: &str, check: impl FnOnce(&mut Options)) {
        let ini = Ini::parse(text).unwrap();
        let mut options = Options::new(&ini);
        check(&mut options);
    }

    #[test]
    fn typed_values_and_defaults() {
        with("[a]\nyes = On\nno = 0\nn = 42\nl = x, y ,,z\nd = 60:a, 120 : b,60:c\nbad = maybe\n", |o| {
            assert!(o.boolean("a", "yes", false).unwrap());
            assert!(!o.boolean("a", "no", true).unwrap());
            assert!(o.boolean("a", "absent", true).unwrap());
            assert_eq!(o.int("a", "n", 0).unwrap(), 42);
            assert_eq!(o.int("a", "absent", 7).unwrap(), 7);
            assert_eq!(o.list("a", "l", &[]).unwrap(), ["x", "y", "z"]);
            assert_eq!(o.list("a", "absent", &["d"]).unwrap(), ["d"]);
            let pairs = o.dict("a", "d", &[]).unwrap();
            assert_eq!(pairs, [("60".to_string(), "c".to_string()), ("120".to_string(), "b".to_string())]);
            let error = o.boolean("a", "bad", false).unwrap_err().to_string();
            assert!(error.starts_with("line 7: [a] bad") && error.contains("maybe"), "{error}");
            let error = o.int_min("a", "n", 30, 50).unwrap_err().to_string();
            assert!(error.contains("at least 50"), "{error}");
        });
    }

    #[test]
    fn substitution_follows_oslo_config() {
        let text = "[DEFAULT]\nhost = h1\n[kafka]\nport = 9092\nuri = $host:${port}\nother = ${kafka.uri}/x\n\
                    cost = 5$$ and 6\\$\nmissing = $nope\n";
        with(text, |o| {
            assert_eq!(o.raw("kafka", "uri").unwrap().unwrap(), "h1:9092");
            assert_eq!(o.raw("kafka", "other").unwrap().unwrap(), "h1:9092/x");
            assert_eq!(o.raw("kafka", "cost").unwrap().unwrap(), "5$ and 6$");
            let error = o.raw("kafka", "missing").unwrap_err().to_string();
            assert!(error.contains("$nope"), "{error}");
        });
        with("[a]\nx = $y\ny = $x\n", |o| assert!(o.raw("a", "x").is_err(), "a loop is refused"));
    }

    #[test]
    fn every_entry_is_mapped_or_noted_once() {
        let ini = Ini::parse("[a]\nused = 1\nnoted = 2\nleft = 3\n[b]\nk = v\n").unwrap();
        let mut o = Options::new(&ini);
        o.int("a", "used", 0).unwrap();
        o.note("a", "noted", "first reason");
        o.note("a", "noted", "second reason");
        o.note("a", "absent", "not in the file: no note");
        o.note_rest_of("b", "section b");
        let notes = o.finish(|section| format!("unknown in [{section}]"));
        let shown: Vec<String> = notes.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["[a] noted = 2 — first reason", "[a] left = 3 — unknown in [a]", "[b] k = v — section b"]);
    }
}
