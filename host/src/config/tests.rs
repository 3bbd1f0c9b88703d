//! The configuration's parsing, defaults and refusals.

use super::*;

const MINIMAL: &str = r#"
    [kafka]
    bootstrap = "127.0.0.1:9092"

    [[pipeline]]
    name = "persister"
    module = "persister.wasm"
    topics = ["metrics"]
    group_id = "persister"
"#;

#[test]
fn the_default_produce_allowlist_is_what_the_configuration_names() {
    let text = r#"
        [kafka]
        bootstrap = "embedded"
        [[pipeline]]
        name = "p"
        module = "m.wasm"
        topics = ["in"]
        group_id = "g"
        output_topic = "out"
        [pipeline.config]
        retry-topic = "retry"
        periodic-topics = "a, b"
        mode = "not-a-topic"
        [[pipeline]]
        name = "q"
        module = "m.wasm"
        topics = ["in"]
        group_id = "g2"
        produce_topics = ["only"]
        [[pipeline]]
        name = "r"
        module = "m.wasm"
        topics = ["in"]
        group_id = "g3"
        produce_topics = ["*"]
    "#;
    let config: HostConfig = toml::from_str(text).expect("parses");
    let allowed = config.pipelines[0].produce_allowlist(&["sibling-in".to_string()]).expect("a list");
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    assert_eq!(allowed, ["a", "b", "in", "out", "p.dead-letter", "retry", "sibling-in"]);
    let only = config.pipelines[1].produce_allowlist(&[]).expect("a list");
    assert_eq!(only.into_iter().collect::<Vec<_>>(), ["only"]);
    assert!(config.pipelines[2].produce_allowlist(&[]).is_none(), "\"*\" allows any");
}

#[test]
fn minimal_config_gets_defaults() {
    let config = HostConfig::parse(MINIMAL, "test.toml").unwrap();
    config.validate("test.toml", false).unwrap();
    let p = &config.pipelines[0];
    assert_eq!(p.batch.max_messages, 1000);
    assert_eq!(p.dead_letter_topic(), "persister.dead-letter");
    assert_eq!(config.engine.memory_limit_mib, 64);
}

#[test]
fn the_admin_server_stays_on_loopback_and_has_no_token_unless_given_one() {
    let config = HostConfig::parse(&format!("{MINIMAL}\n[admin]\n"), "test.toml").unwrap();
    let admin = config.admin.expect("[admin]");
    assert_eq!(admin.listen, "127.0.0.1:9464");
    assert!(admin.token.is_none());
    assert!(format!("{:?}", Secret("hunter2".into())) == "***", "tokens never print");
    let p = &config.pipelines[0];
    assert_eq!((p.rollback.after_failures, p.rollback.probation_batches), (3, 100));
    assert!(p.watch_dir.is_none());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = MINIMAL.replace("group_id = \"persister\"", "group_id = \"persister\"\n        batch_size = 5");
    let err = HostConfig::parse(&text, "host.toml").unwrap_err().to_string();
    assert!(err.contains("batch_size") && err.contains("host.toml") && err.contains("line"), "{err}");
}

#[test]
fn invalid_values_name_the_key() {
    let text = MINIMAL.replace("topics = [\"metrics\"]", "topics = []");
    let err = HostConfig::parse(&text, "h.toml").unwrap().validate("h.toml", false).unwrap_err().to_string();
    assert!(err.contains("pipeline[0].topics"), "{err}");
}

#[test]
fn notifiers_and_databases_are_checked() {
    let text = format!(
        "{MINIMAL}\n[databases.mon]\ntype = \"mysql\"\nurl = \"mysql://u:secret@127.0.0.1/mon\"\n\
         [notifiers]\nallow = [\"127.0.0.1\"]\n[notifiers.ledger]\ndatabase = \"other\"\n"
    );
    let config = HostConfig::parse(&text, "host.toml").expect("parses");
    let err = config.validate("host.toml", false).expect_err("unknown ledger database").to_string();
    assert!(err.contains("notifiers.ledger.database") && err.contains("[databases.other]"), "{err}");
    assert!(!format!("{config:?}").contains("secret"), "database URLs are not shown");
    let config = HostConfig::parse(&text.replace("\"other\"", "\"mon\""), "host.toml").expect("parses");
    config.validate("host.toml", false).expect("valid");
}

#[test]
fn shipped_examples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let config = HostConfig::parse(&text, &path.display().to_string()).unwrap();
            config.validate(&path.display().to_string(), false).unwrap();
            seen += 1;
        }
    }
    assert!(seen > 0, "no example configurations found in {}", dir.display());
}

#[test]
fn an_http_source_is_checked() {
    let with = |extra_pipeline: &str, http: &str| {
        format!(
            "[kafka]\nbootstrap = \"embedded\"\n[[pipeline]]\nname = \"api\"\nmodule = \"m.wasm\"\n{extra_pipeline}\n\
             [pipeline.http]\nlisten = \"127.0.0.1:0\"\n{http}\n"
        )
    };
    let token = "[[pipeline.http.tokens]]\ntoken = \"0123456789abcdef\"\nproject_id = \"p\"\n";
    let refused = |text: String, says: &str| {
        let config = HostConfig::parse(&text, "t.toml").expect("parses");
        let error = config.validate("t.toml", false).expect_err("refused").to_string();
        assert!(error.contains(says), "{says}: {error}");
    };
    let good = HostConfig::parse(&with("", token), "t.toml").unwrap();
    good.validate("t.toml", false).unwrap();
    let http = good.pipelines[0].http.as_ref().unwrap();
    assert_eq!((http.max_body_bytes, http.max_batch_requests, http.retry_after_s), (2 << 20, 256, 5));
    refused(with("topics = [\"in\"]", token), "either topics or [pipeline.http]");
    refused(with("group_id = \"g\"", token), "consumes no group");
    refused(with("delivery = \"exactly-once\"", token), "at-least-once");
    refused(with("", ""), "give static tokens or [pipeline.http.keystone]");
    refused(with("", &token.replace("0123456789abcdef", "short")), "at least 16 characters");
    refused(with("", &format!("{token}{token}")), "the same token");
    refused(with("", &token.replace("project_id = \"p\"", "project_id = \"\"")), "project_id");
    refused(with("", &format!("max_body_bytes = 0\n{token}")), "max_body_bytes");
    // A token from the environment is looked up only when the host starts.
    let from_env = "[[pipeline.http.tokens]]\ntoken_env = \"MONASCA_WASM_TEST_UNSET_TOKEN\"\nproject_id = \"p\"\n";
    let config = HostConfig::parse(&with("", from_env), "t.toml").unwrap();
    config.validate("t.toml", false).expect("not looked up when only parsing");
    let error = config.validate("t.toml", true).expect_err("unset at start-up").to_string();
    assert!(error.contains("MONASCA_WASM_TEST_UNSET_TOKEN"), "{error}");
}

#[test]
fn an_unknown_key_of_a_database_is_an_error() {
    let text = format!("{MINIMAL}\n[databases.mon]\ntype = \"mysql\"\nurl = \"mysql://u@h/mon\"\npasword = \"x\"\n");
    let err = HostConfig::parse(&text, "host.toml").unwrap_err().to_string();
    assert!(err.contains("pasword"), "{err}");
    let text = format!("{MINIMAL}\n[databases.mon]\ntype = \"sqlite\"\npath = \"mon.db\"\n");
    assert!(HostConfig::parse(&text, "host.toml").is_ok(), "the type key itself is allowed");
}
