//! Every problem of a configuration file at once, each with its line:
//! what `monasca-wasm validate` reports before the checks that need the
//! network. `HostConfig::load` stops at the first problem (that is enough to
//! refuse to start); this reads the file as TOML with positions, takes each
//! table apart from the others, and after each error takes the key at fault
//! out and reads the rest again, so one mistake hides no other.
//!
//! A [`KeyPath`] names a key from the top of the file (`pipeline[0].batch`,
//! `sinks.tsdb.url`); a [`Locator`] finds its line; a [`Problem`] prints as
//! `host.toml:LINE: [section] key: message`.

use super::{ConfigError, HostConfig, InfluxDbConfig, SqliteConfig};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};
use toml::Spanned;

/// Most errors read from one table before giving up on it.
const MAX_ERRORS: usize = 200;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Key(String),
    Index(usize),
}

/// Where a key is, from the top of the file: table names and array indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Step>);

impl KeyPath {
    /// A top-level key.
    pub fn top(key: &str) -> Self {
        KeyPath(vec![Step::Key(key.to_string())])
    }

    /// The key `key` of this table.
    pub fn child(&self, key: &str) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_string()));
        KeyPath(steps)
    }

    /// The `index`th entry of this array.
    pub fn at(&self, index: usize) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        KeyPath(steps)
    }

    /// The keys of `dotted` (`keystone.url`) under this table.
    pub fn dotted(&self, dotted: &str) -> Self {
        dotted.split('.').filter(|k| !k.is_empty()).fold(self.clone(), |path, key| path.child(key))
    }

    /// Whether this path is `prefix` or under it.
    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The table (`sinks.tsdb`) and the key (`url`); the key is empty when
    /// the path ends at a table or an array entry.
    pub fn section_and_key(&self) -> (String, String) {
        match self.0.last() {
            Some(Step::Key(key)) => (KeyPath(self.0[..self.0.len() - 1].to_vec()).to_string(), key.clone()),
            _ => (self.to_string(), String::new()),
        }
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if key.is_empty() || key.contains(['.', ' ', '"', '[', ']']) {
                        write!(f, "{key:?}")?;
                    } else {
                        f.write_str(key)?;
                    }
                }
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One problem of a configuration: its line when known, its key when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line in the file, from 1.
    pub line: Option<usize>,
    /// The key at fault.
    pub path: Option<KeyPath>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// `host.toml:LINE: [section] key: message` (the parts that are known).
    pub fn render(&self, origin: &str) -> String {
        let place = match self.line {
            Some(line) => format!("{origin}:{line}"),
            None => origin.to_string(),
        };
        let (section, key) = self.path.as_ref().map(KeyPath::section_and_key).unwrap_or_default();
        match (section.is_empty(), key.is_empty()) {
            (false, false) => format!("{place}: [{section}] {key}: {}", self.message),
            (true, false) => format!("{place}: {key}: {}", self.message),
            (false, true) => format!("{place}: [{section}]: {}", self.message),
            (true, true) => format!("{place}: {}", self.message),
        }
    }
}

/// The line of every key and array entry of a file.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    lines: HashMap<KeyPath, usize>,
}

impl Locator {
    /// Index the keys of `text` (what parses of it).
    pub fn new(text: &str) -> Self {
        let (root, _) = DeTable::parse_recoverable(text);
        let mut lines = HashMap::new();
        index(text, root.get_ref(), &KeyPath::default(), &mut lines);
        Locator { lines }
    }

    /// The line of `path`, else of the nearest table above it that is in the file.
    pub fn line(&self, path: &KeyPath) -> Option<usize> {
        (1..=path.0.len()).rev().find_map(|n| self.lines.get(&KeyPath(path.0[..n].to_vec())).copied())
    }

    /// A problem of the key `path`, with its line.
    pub fn problem(&self, path: KeyPath, message: impl Into<String>) -> Problem {
        Problem { line: self.line(&path), path: Some(path), message: message.into() }
    }
}

fn index(text: &str, table: &DeTable<'_>, at: &KeyPath, lines: &mut HashMap<KeyPath, usize>) {
    for (key, value) in table.iter() {
        let here = at.child(key.get_ref());
        lines.insert(here.clone(), line_at(text, key.span().start));
        match value.get_ref() {
            DeValue::Table(inner) => index(text, inner, &here, lines),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let entry = here.at(i);
                    lines.insert(entry.clone(), line_at(text, item.span().start));
                    if let DeValue::Table(inner) = item.get_ref() {
                        index(text, inner, &entry, lines);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The line (from 1) of byte `offset` of `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// A configuration file read with every problem found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The configuration (paths resolved, files read), even if some of its
    /// values cannot work; when keys were taken out for their errors
    /// (`taken`), what is left of it.
    pub config: Option<HostConfig>,
    /// Every problem, in file order where the line is known.
    pub problems: Vec<Problem>,
    /// Lines of the file's keys, for the problems found later.
    pub locator: Locator,
    /// The keys (and tables) taken out because they could not be read.
    pub taken: Vec<KeyPath>,
}

impl Checked {
    /// Whether `path` is, holds or is under a key taken out: a problem
    /// there may come from its absence.
    fn near_taken(&self, path: &KeyPath) -> bool {
        self.taken.iter().any(|t| path.starts_with(t) || t.starts_with(path))
    }
}

/// Read `path` and find every problem of it: TOML syntax, unknown keys,
/// values of the wrong type, values that cannot work, and (when
/// `check_files`) missing modules and guest option files.
pub fn check_file(path: &Path, check_files: bool) -> Checked {
    let origin = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let problem = Problem { line: None, path: None, message: format!("cannot read the file: {e}") };
            return Checked { problems: vec![problem], ..Checked::default() };
        }
    };
    let mut checked = check_text(&text);
    if let Some(mut config) = checked.config.take() {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut found: Vec<(KeyPath, String)> =
            config.resolve(base, &origin).into_iter().map(|(at, error)| (at, detail(&error))).collect();
        found.extend(config.problems(check_files).into_iter().map(|invalid| (invalid.path, invalid.message)));
        for (at, message) in found {
            if !checked.near_taken(&at) {
                checked.problems.push(checked.locator.problem(at, message));
            }
        }
        checked.config = Some(config);
    }
    checked.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    checked
}

/// What a [`ConfigError`] says, without the file's name.
fn detail(error: &ConfigError) -> String {
    match error {
        ConfigError::Read { path, source } => format!("cannot read {path}: {source}"),
        ConfigError::Parse { message, .. } | ConfigError::Invalid { message, .. } => message.clone(),
    }
}

/// Parse `text` and find every syntax, key and type problem of it (not
/// those [`HostConfig::problems`] finds, nor files).
pub fn check_text(text: &str) -> Checked {
    let locator = Locator::new(text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    let mut problems: Vec<Problem> = syntax
        .iter()
        .map(|e| Problem {
            line: e.span().map(|s| line_at(text, s.start)),
            path: None,
            message: e.message().to_string(),
        })
        .collect();
    if !problems.is_empty() {
        // What follows a syntax error is not worth reading as settings.
        return Checked { config: None, problems, locator, taken: Vec::new() };
    }
    let (span, mut table) = (root.span(), root.into_inner());
    // Each [[pipeline]] on its own, so that their indexes stay put.
    let split = matches!(
        table.get("pipeline").map(|v| v.get_ref()),
        Some(DeValue::Array(items)) if items.iter().all(|item| item.get_ref().is_table())
    );
    let pipelines = if split { table.remove("pipeline").map(Spanned::into_inner) } else { None };
    let mut reader = Reader { text, problems: &mut problems, taken: Vec::new() };
    let root = reader.read::<HostConfig>(Spanned::new(span, table), &KeyPath::default());
    let (mut read, mut every) = (Vec::new(), true);
    if let Some(DeValue::Array(items)) = pipelines {
        for (i, item) in items.into_iter().enumerate() {
            let item_span = item.span();
            if let DeValue::Table(pipeline) = item.into_inner() {
                let at = KeyPath::top("pipeline").at(i);
                match reader.read::<super::PipelineConfig>(Spanned::new(item_span, pipeline), &at) {
                    Some(p) => read.push(p),
                    None => every = false,
                }
            }
        }
    }
    let taken = reader.taken;
    let config = match root {
        // The file as `run` reads it: what the pieces accepted, it accepts.
        Some(_) if taken.is_empty() => match HostConfig::parse(text, "") {
            Ok(config) => Some(config),
            Err(error) => {
                problems.push(Problem { line: None, path: None, message: detail(&error) });
                None
            }
        },
        // What is left, for the checks of values (indexes must hold).
        Some(mut rest) if every => {
            rest.pipelines = read;
            Some(rest)
        }
        _ => None,
    };
    Checked { config, problems, locator, taken }
}

/// Reads tables, collecting their errors.
struct Reader<'r> {
    text: &'r str,
    problems: &'r mut Vec<Problem>,
    /// The keys taken out so far.
    taken: Vec<KeyPath>,
}

impl Reader<'_> {
    /// `T` from `table` (at `at` in the file) once every error in it is
    /// recorded and the key at fault taken out; `None` when what is left
    /// does not read either (a required key is missing).
    fn read<T: DeserializeOwned>(&mut self, mut table: Spanned<DeTable<'_>>, at: &KeyPath) -> Option<T> {
        // Keys taken out after an error: their "missing field" is no news.
        let mut taken: HashSet<KeyPath> = HashSet::new();
        for _ in 0..MAX_ERRORS {
            let error = match T::deserialize(Deserializer::from(table.clone())) {
                Ok(value) => {
                    self.taken.extend(taken);
                    return Some(value);
                }
                Err(error) => error,
            };
            let (span, message) = refine(table.get_ref(), at, error);
            let span = span.filter(|s| s.start < s.end);
            let missing = quoted(&message, "missing field `");
            let removed = span.as_ref().and_then(|s| take_out(table.get_mut(), s, at));
            let Some(path) = removed else {
                // At the top of this table: nothing left to take out.
                let seen = missing.as_ref().is_some_and(|field| taken.contains(&at.child(field)));
                if !seen {
                    let line = span.map(|s| line_at(self.text, s.start));
                    let path = missing.as_ref().map_or_else(|| at.clone(), |field| at.child(field));
                    self.problems.push(Problem { line, path: Some(path), message });
                }
                self.taken.extend(taken);
                self.taken.push(at.clone());
                return None;
            };
            // A table taken out for a missing key: the problem is that key.
            let seen = missing.as_ref().is_some_and(|field| taken.contains(&path.child(field)));
            if !seen {
                let line = span.map(|s| line_at(self.text, s.start));
                let shown = missing.as_ref().map_or_else(|| path.clone(), |field| path.child(field));
                self.problems.push(Problem { line, path: Some(shown), message });
            }
            taken.insert(path);
        }
        self.taken.extend(taken);
        self.taken.push(at.clone());
        None
    }
}

/// The text between `prefix` and the next backtick in `message`.
fn quoted(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// A better place (and message) for an error that points at a whole table:
/// an unknown key's own line, and a sink's settings read as its type's
/// (serde reads a tagged table as a whole and loses the key's position).
fn refine(root: &DeTable<'_>, at: &KeyPath, error: toml::de::Error) -> (Option<Range<usize>>, String) {
    let (span, message) = (error.span(), error.message().to_string());
    let Some(span) = span else { return (None, message) };
    let Some((path, table)) = table_at(root, &span, at) else { return (Some(span), message) };
    if let Some(key) = quoted(&message, "unknown field `") {
        if let Some((k, _)) = table.get_key_value(key.as_str()) {
            return (Some(k.span()), message);
        }
    }
    if message.starts_with("unknown variant") {
        if let Some(kind) = table.get("type") {
            return (Some(kind.span()), message);
        }
    }
    // `[sinks.<name>]`: read its keys (less `type`) as the settings of its type.
    let is_sink = path.0.len() == 2 && path.0.first() == Some(&Step::Key("sinks".to_string()));
    let kind = table.get("type").and_then(|v| v.get_ref().as_str()).map(str::to_string);
    if let (true, Some(kind)) = (is_sink, kind) {
        let mut settings = table.clone();
        settings.remove("type");
        let settings = Spanned::new(span.clone(), settings);
        let inner = match kind.as_str() {
            "influxdb" => InfluxDbConfig::deserialize(Deserializer::from(settings)).err(),
            "sqlite" => SqliteConfig::deserialize(Deserializer::from(settings)).err(),
            _ => None,
        };
        if let Some(inner) = inner {
            let (inner_span, inner_message) = (inner.span(), inner.message().to_string());
            if let Some(key) = quoted(&inner_message, "unknown field `") {
                if let Some((k, _)) = table.get_key_value(key.as_str()) {
                    return (Some(k.span()), inner_message);
                }
            }
            return (inner_span.or(Some(span)), inner_message);
        }
    }
    (Some(span), message)
}

/// The table whose value spans exactly `span` (a `[header]` or an inline
/// table), under `table` at `at`, with its path.
fn table_at<'t, 'i>(table: &'t DeTable<'i>, span: &Range<usize>, at: &KeyPath) -> Option<(KeyPath, &'t DeTable<'i>)> {
    for (key, value) in table.iter() {
        let here = at.child(key.get_ref());
        match value.get_ref() {
            DeValue::Table(inner) => {
                if value.span() == *span {
                    return Some((here, inner));
                }
                if let Some(found) = table_at(inner, span, &here) {
                    return Some(found);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        if item.span() == *span {
                            return Some((here.at(i), inner));
                        }
                        if let Some(found) = table_at(inner, span, &here.at(i)) {
                            return Some(found);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `outer` (a non-empty span) includes `inner`.
fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start < outer.end && outer.start <= inner.start && inner.end <= outer.end
}

/// Whether something inside `value` (a key, a value, an entry) covers `span`.
fn holds(value: &DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(t) => {
            t.iter().any(|(k, v)| covers(&k.span(), span) || covers(&v.span(), span) || holds(v.get_ref(), span))
        }
        DeValue::Array(items) => items.iter().any(|item| covers(&item.span(), span) || holds(item.get_ref(), span)),
        _ => false,
    }
}

/// Take the innermost key or array entry that covers `span` out of
/// `table` (at `at`); its path, or `None` when nothing in it covers `span`.
fn take_out(table: &mut DeTable<'_>, span: &Range<usize>, at: &KeyPath) -> Option<KeyPath> {
    let key = table
        .iter()
        .find(|(k, v)| covers(&k.span(), span) || covers(&v.span(), span) || holds(v.get_ref(), span))
        .map(|(k, _)| k.get_ref().to_string())?;
    let here = at.child(&key);
    let value = table.get_mut(key.as_str())?;
    if holds(value.get_ref(), span) {
        match value.get_mut() {
            DeValue::Table(inner) => return take_out(inner, span, &here),
            DeValue::Array(items) => {
                let position =
                    items.iter().position(|item| covers(&item.span(), span) || holds(item.get_ref(), span))?;
                let entry = here.at(position);
                if holds(items[position].get_ref(), span) {
                    if let Some(DeValue::Table(inner)) = items.get_mut(position).map(|item| item.get_mut()) {
                        return take_out(inner, span, &entry);
                    }
                }
                let kept: DeArray<'_> = std::mem::replace(items, DeArray::new())
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| *i != position)
                    .map(|(_, item)| item)
                    .collect();
                *items = kept;
                return Some(entry);
            }
            _ => {}
        }
    }
    table.remove(key.as_str());
    Some(here)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[kafka]\nbootstrap = \"embedded\"\n\n[[pipeline]]\nname = \"p\"\nmodule = \"m.wasm\"\n\
                        topics = [\"in\"]\ngroup_id = \"g\"\n";

    fn rendered(text: &str) -> Vec<String> {
        let checked = check_text(text);
        let mut lines: Vec<String> = checked.problems.iter().map(|p| p.render("host.toml")).collect();
        if let Some(config) = &checked.config {
            lines.extend(
                config
                    .problems(false)
                    .into_iter()
                    .filter(|i| !checked.near_taken(&i.path))
                    .map(|i| checked.locator.problem(i.path, i.message).render("host.toml")),
            );
        }
        lines
    }

    #[test]
    fn a_good_file_has_no_problem() {
        let checked = check_text(GOOD);
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert_eq!(checked.config.expect("parsed").pipelines[0].name, "p");
    }

    #[test]
    fn every_error_is_found_with_its_line() {
        let text = format!(
            "{GOOD}concurrency = \"two\"\nbatch_size = 5\n\n[sinks.tsdb]\ntype = \"influxdb\"\nurl = \"http://x:8086\"\n\
             gzipp = true\ntimeout_ms = \"slow\"\n\n[engine]\nmemory_limit_mib = -1\n"
        );
        let found = rendered(&text);
        let expect = [
            "host.toml:9: [pipeline[0]] concurrency: invalid type",
            "host.toml:10: [pipeline[0]] batch_size: unknown field `batch_size`",
            "host.toml:15: [sinks.tsdb] gzipp: unknown field `gzipp`",
            "host.toml:16: [sinks.tsdb] timeout_ms: invalid type",
            "host.toml:19: [engine] memory_limit_mib: invalid value",
        ];
        for line in expect {
            assert!(found.iter().any(|f| f.starts_with(line)), "{line} not in {found:#?}");
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn a_missing_table_and_invalid_values_are_named() {
        let found = rendered("[[pipeline]]\nname = \"p\"\nmodule = \"m.wasm\"\ntopics = [\"in\"]\ngroup_id = \"g\"\n");
        assert!(found.iter().any(|f| f.contains("missing field `kafka`")), "{found:#?}");
        let found = rendered(&GOOD.replace("topics = [\"in\"]", "topics = []"));
        assert_eq!(
            found,
            ["host.toml:7: [pipeline[0]] topics: must list at least one topic (or have [pipeline.http])"]
        );
    }

    #[test]
    fn values_are_checked_beside_keys_that_do_not_read() {
        let text = format!(
            "{GOOD}concurrency = 0
batch_size = 5
"
        );
        let found = rendered(&text);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().any(|f| f.starts_with("host.toml:10: [pipeline[0]] batch_size: unknown field")));
        assert!(found.iter().any(|f| f == "host.toml:9: [pipeline[0]] concurrency: must be at least 1"));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let found = rendered("[kafka]\nbootstrap = \"a\" \"b\"\n");
        assert!(found.iter().any(|f| f.starts_with("host.toml:2: ")), "{found:#?}");
    }
}
