//! `monasca-wasm new <name>`: write a guest crate that builds for
//! `wasm32-wasip2` and runs under `monasca-wasm test` as it is.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Arguments of `new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Crate name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// Directory to create [default: ./<name>].
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Path of the monasca-guest-sdk crate [default: the SDK of the source tree this binary was built from].
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Write the crate and say how to build and run it.
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    validate_name(&args.name)?;
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let sdk = match &args.sdk {
        Some(path) => path.clone(),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk")),
    };
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("cannot find the guest SDK at {} (pass --sdk <path to guest-sdk>)", sdk.display()))?;

    let type_name = type_name(&args.name);
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {}", dir.display()))?;
    write(&dir.join("Cargo.toml"), &cargo_toml(&args.name, &sdk))?;
    write(&dir.join("src/lib.rs"), &lib_rs(&args.name, &type_name))?;
    write(&dir.join("sample.jsonl"), SAMPLE)?;
    write(&dir.join(".gitignore"), "/target\n")?;

    let artifact = args.name.replace('-', "_");
    println!("Created guest `{}` in {}", args.name, dir.display());
    println!();
    println!("  cd {}", dir.display());
    println!("  cargo test                                        # unit tests, natively");
    println!("  cargo build --release --target wasm32-wasip2      # the component");
    println!("  monasca-wasm test --module target/wasm32-wasip2/release/{artifact}.wasm --input sample.jsonl");
    Ok(())
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !starts_well || !rest_ok {
        bail!("invalid guest name {name:?}: use lowercase letters, digits, `-` and `_`, starting with a letter");
    }
    Ok(())
}

/// `my-guest` → `MyGuest`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
# cdylib: the WebAssembly component; rlib: native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
monasca-guest-sdk = {{ path = "{sdk}" }}

# A guest is a workspace of its own, wherever it is created.
[workspace]
"#,
        sdk = sdk.display().to_string().replace('\\', "/")
    )
}

fn lib_rs(name: &str, ty: &str) -> String {
    format!(
        r#"//! `{name}`: a monasca-wasm guest.
//!
//! The host calls `process` with a batch of messages from one partition; the
//! guest answers with effects. This one copies every message to the
//! pipeline's output topic and rejects empty ones.

use monasca_guest_sdk::{{Config, Effects, Message, ProcessError, Processor}};

/// The guest. Fields hold what `init` read from the configuration.
pub struct {ty} {{
    /// Prefix added to every output value (config key `prefix`, default empty).
    prefix: String,
}}

impl Processor for {ty} {{
    fn init(config: &Config) -> Result<Self, String> {{
        Ok({ty} {{ prefix: config.get_or("prefix", "").to_string() }})
    }}

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {{
        for message in batch {{
            if message.value.is_empty() {{
                out.reject(&message, "empty message");
                continue;
            }}
            let mut value = self.prefix.as_bytes().to_vec();
            value.extend_from_slice(&message.value);
            out.produce(&message, value);
        }}
        Ok(())
    }}
}}

monasca_guest_sdk::export!({ty});

#[cfg(test)]
mod tests {{
    use super::*;
    use monasca_guest_sdk::testing::Harness;
    use monasca_guest_sdk::Effect;

    #[test]
    fn passes_messages_through_and_rejects_empty_ones() {{
        let mut guest = Harness::<{ty}>::new(&[("prefix", ">")]).unwrap();
        let effects = guest.run_values("metrics", &["{{\"a\":1}}", ""]).unwrap();
        assert_eq!(effects.len(), 2);
        match &effects[0] {{
            Effect::Produce(record) => assert_eq!(record.value, b">{{\"a\":1}}"),
            other => panic!("expected a produce effect, got {{other:?}}"),
        }}
        assert_eq!(effects[1].kind(), "reject");
    }}
}}
"#
    )
}

const SAMPLE: &str = r#"{"metric":{"name":"cpu.idle_perc","dimensions":{"hostname":"compute-01"},"timestamp":1700000000000,"value":97.5},"meta":{"tenantId":"t1","region":"RegionOne"},"creation_time":1700000000}
{"metric":{"name":"mem.free_mb","dimensions":{"hostname":"compute-01"},"timestamp":1700000001000,"value":12034.0},"meta":{"tenantId":"t1","region":"RegionOne"},"creation_time":1700000001}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name("my-guest_2"), "MyGuest2");
        assert!(validate_name("alarm-router").is_ok());
        assert!(validate_name("Alarm").is_err());
        assert!(validate_name("9lives").is_err());
        assert!(validate_name("a b").is_err());
    }
}
