//! Set-up shared by the notification tests: Monasca's configuration
//! database (the suite's MariaDB) with the test's alarm definitions,
//! notification methods and alarms, and the host configuration of the
//! notification pipelines (transitions, retries, periodic).

use monasca_wasm::config::{DatabaseConfig, Secret};
use monasca_wasm::databases::Database;
use std::path::Path;

/// The `mon` database of the suite's MariaDB.
pub struct Mon {
    db: Database,
}

/// A notification method row.
pub struct Method<'a> {
    /// Id (unique across tests).
    pub id: &'a str,
    /// Type, upper case as stored (`WEBHOOK`, `EMAIL`, ...).
    pub kind: &'a str,
    /// Name.
    pub name: &'a str,
    /// Address.
    pub address: &'a str,
    /// Period, seconds.
    pub period: i64,
}

impl Mon {
    /// Connect.
    pub fn connect() -> Self {
        let url = Secret(monasca_test_programs::mariadb().to_string());
        Mon { db: Database::open("mon", &DatabaseConfig::Mysql { url }, true).expect("MariaDB") }
    }

    /// Run one statement.
    pub async fn execute(&self, sql: &str, params: &[&str]) {
        let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        self.db.execute(sql, &params).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// (Re)create an alarm definition whose transitions to `states` notify
    /// `methods` (created or updated; their other definitions keep them).
    pub async fn define(&self, definition: &str, states: &[&str], methods: &[Method<'_>]) {
        self.execute("DELETE FROM alarm_definition WHERE id = ?", &[definition]).await;
        self.execute("INSERT INTO alarm_definition (id, tenant_id, name) VALUES (?, 't', 'test')", &[definition]).await;
        for m in methods {
            let period = m.period.to_string();
            self.execute(
                "INSERT INTO notification_method (id, tenant_id, name, type, address, period) VALUES (?, 't', ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE name = VALUES(name), type = VALUES(type), address = VALUES(address), period = VALUES(period)",
                &[m.id, m.name, m.kind, m.address, &period],
            )
            .await;
            for state in states {
                self.execute(
                    "INSERT INTO alarm_action (alarm_definition_id, alarm_state, action_id) VALUES (?, ?, ?)",
                    &[definition, state, m.id],
                )
                .await;
            }
        }
    }

    /// Set (or create) an alarm's state.
    pub async fn set_alarm(&self, alarm: &str, definition: &str, state: &str) {
        self.execute(
            "INSERT INTO alarm (id, alarm_definition_id, state) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state)",
            &[alarm, definition, state],
        )
        .await;
    }

    /// The number of ledger rows of `table` in `state`.
    pub async fn ledger_count(&self, table: &str, state: &str) -> i64 {
        let rows = self
            .db
            .query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE state = ?"), &[state.to_string()])
            .await
            .expect("ledger count");
        match rows.first().and_then(|r| r.first()) {
            Some((_, monasca_wasm::engine::types::Cell::Integer(n))) => *n,
            other => panic!("count: {other:?}"),
        }
    }
}

/// Topic names of one test.
pub struct Topics {
    /// Alarm transitions.
    pub alarms: String,
    /// Sent notifications.
    pub sent: String,
    /// Retries.
    pub retry: String,
    /// Periodic (period 2 s).
    pub periodic: String,
    /// Dead letters of the three pipelines.
    pub dead: String,
}

impl Topics {
    /// Names prefixed with `test`.
    pub fn new(test: &str) -> Self {
        Topics {
            alarms: format!("{test}-alarm-state-transitions"),
            sent: format!("{test}-alarm-notifications"),
            retry: format!("{test}-retry-notifications"),
            periodic: format!("{test}-2-seconds-notifications"),
            dead: format!("{test}-dead-letter"),
        }
    }

    /// All of them.
    pub fn all(&self) -> [&str; 5] {
        [&self.alarms, &self.sent, &self.retry, &self.periodic, &self.dead]
    }

    /// The topics of `test`, created on the test broker with `partitions` each.
    pub async fn create(test: &str, partitions: i32) -> Self {
        let topics = Topics::new(test);
        super::kafka::create_topics_on(monasca_test_programs::kafka(), &topics.all(), partitions).await;
        topics
    }
}

/// What a test's host needs to know.
pub struct Setup<'a> {
    /// Test name (group ids, ledger table).
    pub test: &'a str,
    /// Topics.
    pub topics: &'a Topics,
    /// `[notifiers] allow` entries.
    pub allow: &'a [&'a str],
    /// SMTP server port, if any.
    pub smtp_port: Option<u16>,
    /// Base URL of the PagerDuty receiver.
    pub pagerduty_url: &'a str,
    /// `max-attempts`.
    pub max_attempts: u32,
    /// Delay of the retry pipeline, seconds.
    pub retry_delay: u64,
    /// The Jira server (`[notifiers.jira] url`), if any.
    pub jira_url: Option<&'a str>,
}

impl<'a> Setup<'a> {
    /// Loopback allowed, no SMTP, PagerDuty nowhere, 3 attempts, retries after 1 s.
    pub fn new(test: &'a str, topics: &'a Topics) -> Self {
        Setup {
            test,
            topics,
            allow: &["127.0.0.1"],
            smtp_port: None,
            pagerduty_url: "http://127.0.0.1:9/unused",
            max_attempts: 3,
            retry_delay: 1,
            jira_url: None,
        }
    }
}

/// The host's Prometheus metrics (its admin server; the host of `dir`'s configuration must run).
pub async fn metrics(dir: &Path) -> String {
    let url = std::fs::read_to_string(dir.join("admin.url")).expect("admin url");
    let answer = reqwest::get(format!("{url}/metrics")).await.expect("/metrics answers");
    answer.text().await.expect("metrics text")
}

/// The `dlq.reason` header of a dead letter.
pub fn dead_letter_reason(message: &rdkafka::message::OwnedMessage) -> String {
    use rdkafka::message::{Headers, Message};
    message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == "dlq.reason").and_then(|h| h.value))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Write the host configuration of the three notification pipelines to `dir/host.toml`.
pub fn write_config(dir: &Path, setup: &Setup<'_>) -> std::path::PathBuf {
    let t = setup.topics;
    let allow: Vec<String> = setup.allow.iter().map(|a| format!("{a:?}")).collect();
    let email = match setup.smtp_port {
        Some(port) => {
            format!("[notifiers.email]\nserver = \"127.0.0.1\"\nport = {port}\nfrom_addr = \"monasca@example.com\"\n")
        }
        None => String::new(),
    };
    let jira = match setup.jira_url {
        Some(url) => format!("[notifiers.jira]\nurl = \"{url}\"\nuser = \"monasca\"\npassword = \"jira-secret\"\n"),
        None => String::new(),
    };
    let guest_config = format!(
        "[pipeline.config]\nalarm-topic = \"{}\"\nnotification-topic = \"{}\"\nretry-topic = \"{}\"\n\
         periodic = \"2:{}\"\nttl-seconds = \"0\"\nmax-attempts = \"{}\"\n\
         enabled-types = \"email,pagerduty,webhook,slack,jira\"\ngrafana-url = \"http://grafana.example:3000\"\n\
         pagerduty-url = \"{}\"\n\
         [pipeline.lookups.alarm_actions]\ndatabase = \"mon\"\nttl_seconds = 0\nquery = \"SELECT id, type, name, address, period \
         FROM alarm_action AS aa JOIN notification_method AS nm ON aa.action_id = nm.id \
         WHERE aa.alarm_definition_id = ? AND aa.alarm_state = ? ORDER BY nm.id\"\n\
         [pipeline.lookups.alarm_state]\ndatabase = \"mon\"\nttl_seconds = 0\nquery = \"SELECT state FROM alarm WHERE id = ?\"\n\
         [pipeline.lookups.notification_method]\ndatabase = \"mon\"\nttl_seconds = 0\n\
         query = \"SELECT name, type, address, period FROM notification_method WHERE id = ?\"\n",
        t.alarms, t.sent, t.retry, t.periodic, setup.max_attempts, setup.pagerduty_url
    );
    let pipeline = |name: &str, topic: &str, delay: u64| {
        format!(
            "[[pipeline]]\nname = \"{name}\"\nmodule = \"{}\"\ntopics = [\"{topic}\"]\ngroup_id = \"{}-{name}\"\n\
             dead_letter_topic = \"{}\"\ndelay_seconds = {delay}\n[pipeline.batch]\nmax_wait_ms = 20\n{guest_config}",
            monasca_test_programs::NOTIFICATION,
            setup.test,
            t.dead
        )
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address").port();
    std::fs::write(dir.join("admin.url"), format!("http://127.0.0.1:{port}")).expect("admin url");
    let config = format!(
        "{}[admin]\nlisten = \"127.0.0.1:{port}\"\n[databases.mon]\ntype = \"mysql\"\nurl = \"{}\"\n\
         [notifiers]\nallow = [{}]\ntimeout_ms = 5000\n{email}\
         {jira}\
         [notifiers.ledger]\ndatabase = \"mon\"\ntable = \"ledger_{}\"\n{}{}{}",
        super::kafka::config_head("notification-cache"),
        monasca_test_programs::mariadb(),
        allow.join(", "),
        setup.test.replace('-', "_"),
        pipeline("notification", &t.alarms, 0),
        pipeline("notification-retry", &t.retry, setup.retry_delay),
        pipeline("notification-periodic", &t.periodic, 2),
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, config).expect("write config");
    path
}
