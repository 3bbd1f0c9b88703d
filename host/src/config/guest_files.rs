//! `[pipeline.config_files]`: guest options whose values are read from files
//! when the configuration loads (the transform's specs, say), so that a long
//! or shared value need not be pasted into the TOML.

use super::{ConfigError, PipelineConfig};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest file a guest option may hold.
pub const MAX_BYTES: u64 = 1 << 20;

/// Read each `config_files` entry (relative to `base`) into `config`. What
/// could not be read, by its key under `config_files`.
pub(super) fn read_into_config(pipeline: &mut PipelineConfig, base: &Path, origin: &str) -> Vec<(String, ConfigError)> {
    let mut problems = Vec::new();
    for (key, file) in std::mem::take(&mut pipeline.config_files) {
        match read_one(pipeline, &key, file, base, origin) {
            Ok((path, text)) => {
                pipeline.config.insert(key.clone(), text);
                pipeline.config_files.insert(key, path);
            }
            Err(error) => problems.push((key, error)),
        }
    }
    problems
}

/// One entry: the file's path and its text.
fn read_one(
    pipeline: &PipelineConfig,
    key: &str,
    file: PathBuf,
    base: &Path,
    origin: &str,
) -> Result<(PathBuf, String), ConfigError> {
    let path = if file.is_relative() { base.join(&file) } else { file };
    let invalid = |message: String| ConfigError::Invalid {
        path: origin.to_string(),
        key: format!("pipeline `{}`: config_files.{key}", pipeline.name),
        message,
    };
    if pipeline.config.contains_key(key) {
        return Err(invalid("the option is in [pipeline.config] too; give it once".into()));
    }
    let shown = path.display().to_string();
    let read = std::fs::File::open(&path).and_then(|f| {
        let mut bytes = Vec::new();
        f.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    let bytes = read.map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(invalid(format!("{shown} is over {MAX_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|e| invalid(format!("{shown} is not UTF-8: {e}")))?;
    Ok((path, text))
}

#[cfg(test)]
mod tests {
    use crate::config::HostConfig;

    fn write(dir: &std::path::Path, specs: &str, extra: &str) -> std::path::PathBuf {
        std::fs::write(dir.join("m.wasm"), b"").unwrap();
        std::fs::write(dir.join("specs.json"), specs).unwrap();
        let path = dir.join("host.toml");
        std::fs::write(
            &path,
            format!(
                "[kafka]\nbootstrap = \"embedded\"\n[[pipeline]]\nname = \"t\"\nmodule = \"m.wasm\"\n\
                 topics = [\"metrics\"]\ngroup_id = \"g\"\n{extra}[pipeline.config_files]\n\
                 transform-specs = \"specs.json\"\n"
            ),
        )
        .unwrap();
        path
    }

    #[test]
    fn option_values_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig::load(&write(dir.path(), "{\"metric_id\":\"x\"}\n", "")).unwrap();
        assert_eq!(config.pipelines[0].config["transform-specs"], "{\"metric_id\":\"x\"}\n");
    }

    #[test]
    fn a_key_given_twice_or_a_huge_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let twice = write(dir.path(), "x", "[pipeline.config]\ntransform-specs = \"y\"\n");
        let e = HostConfig::load(&twice).unwrap_err().to_string();
        assert!(e.contains("config_files.transform-specs") && e.contains("once"), "{e}");
        let huge = "x".repeat(super::MAX_BYTES as usize + 1);
        let e = HostConfig::load(&write(dir.path(), &huge, "")).unwrap_err().to_string();
        assert!(e.contains("over 1048576 bytes"), "{e}");
        let missing = write(dir.path(), "x", "");
        std::fs::remove_file(dir.path().join("specs.json")).unwrap();
        let e = HostConfig::load(&missing).unwrap_err().to_string();
        assert!(e.contains("specs.json"), "{e}");
    }
}
