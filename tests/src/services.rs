//! The other real servers the notification tests talk to: MariaDB and
//! PostgreSQL with Monasca's notification schema (`scripts/mariadb.sh`,
//! `scripts/postgres.sh`; shared by the suite, or started on first use),
//! and an SMTP server per test (`scripts/smtp.sh`, aiosmtpd) whose received
//! mail the test reads back. A server that cannot be started fails the test
//! with the script's output; nothing is skipped.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The URL (`mysql://...`) of the suite's MariaDB (`MONASCA_WASM_MARIADB`,
/// which `scripts/test.sh` sets, or one started on first use).
pub fn mariadb() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| shared("MONASCA_WASM_MARIADB", "mariadb", "MARIADB_OWNER_PID"))
}

/// The URL (`postgresql://...`) of the suite's PostgreSQL (`MONASCA_WASM_POSTGRES`).
pub fn postgres() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| shared("MONASCA_WASM_POSTGRES", "postgres", "POSTGRES_OWNER_PID"))
}

fn shared(variable: &str, server: &str, owner: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let dir = root().join("target").join(format!("{server}-tests")).join(std::process::id().to_string());
            script(server, "start", &dir, &[], owner)
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script(server: &str, command: &str, dir: &Path, options: &[&str], owner: &str) -> String {
    let path = root().join("scripts").join(format!("{server}.sh"));
    let output = std::process::Command::new(&path)
        .arg(command)
        .arg(dir)
        .args(options)
        .env(owner, std::process::id().to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "scripts/{server}.sh {command} failed ({server} is needed for this test):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// An SMTP server of one test's own.
pub struct SmtpServer {
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
}

/// One received mail.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The message as received (headers and encoded body).
    pub raw: String,
    /// The envelope: `mail_from`, `rcpt_tos`, `auth_user`, `attempt`, ...
    pub envelope: serde_json::Value,
}

impl SmtpServer {
    /// Start one (`options` as `scripts/smtp.sh` takes them, e.g.
    /// `--auth-user`, `--fail-first`); stopped when the test process exits.
    pub fn start(name: &str, options: &[&str]) -> Self {
        let dir = root().join("target/smtp-tests").join(format!("{}-{name}", std::process::id()));
        let url = script("smtp", "start", &dir, options, "SMTP_OWNER_PID");
        let address = url.trim_start_matches("smtp://");
        let (host, port) = address.rsplit_once(':').expect("host:port");
        SmtpServer { host: host.to_string(), port: port.parse().expect("port"), dir }
    }

    /// The mail received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mail = self.dir.join("mail");
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&mail)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
                    .collect()
            })
            .unwrap_or_default();
        numbered.sort();
        numbered
            .into_iter()
            .map(|(_, eml)| {
                let raw = std::fs::read_to_string(&eml).unwrap_or_default();
                let envelope = std::fs::read_to_string(eml.with_extension("json"))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                ReceivedMail { raw, envelope }
            })
            .collect()
    }

    /// Stop it.
    pub fn stop(&self) {
        script("smtp", "stop", &self.dir, &[], "SMTP_OWNER_PID");
    }
}

/// Decode a received mail with Python's `email` package (the reference
/// MIME parser): (decoded subject, decoded text body, Message-ID).
pub fn decode_mail(raw: &str) -> (String, String, String) {
    // The modern policy unfolds and decodes headers as a mail client does.
    let program = "import email, email.policy, json, sys\n\
        m = email.message_from_string(sys.stdin.read(), policy=email.policy.default)\n\
        body = m.get_payload(decode=True).decode(m.get_content_charset() or 'utf-8')\n\
        print(json.dumps([str(m['Subject'] or ''), body, str(m['Message-ID'] or '')]))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", program])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (to decode mail)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(raw.as_bytes()).expect("write mail");
    }
    let output = child.wait_with_output().expect("python3");
    assert!(output.status.success(), "cannot decode mail:\n{raw}");
    let decoded: (String, String, String) = serde_json::from_slice(&output.stdout).expect("decoded mail");
    decoded
}
