//! Both stages of the transform guest natively (no wasm, no Kafka): metrics of
//! two partitions → partials → aggregated metrics, windows closing on the
//! watermark, late metrics, idle partitions and replays.

use monasca_guest_sdk::testing::Harness;
use monasca_guest_sdk::{Effect, Message};
use serde_json::{json, Value};
use transform::{stage_one, Transform};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_733_011_200_000; // 2024-12-01 00:00:00 UTC

fn metric(name: &str, host: &str, ts: i64, value: f64) -> Vec<u8> {
    json!({"metric": {"name": name, "dimensions": {"hostname": host, "tenant_id": "t1"}, "timestamp": ts,
        "value": value}, "meta": {"tenantId": "t1", "region": "r"}, "creation_time": ts / 1000})
    .to_string()
    .into_bytes()
}

fn batch(topic: &str, partition: i32, values: Vec<Vec<u8>>) -> Vec<Message> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut m = Message::new(topic, v);
            m.partition = partition;
            m.offset = i as i64;
            m
        })
        .collect()
}

/// The values of the produce effects to `topic` (`None`: the output topic).
fn produced(effects: &[Effect], topic: Option<&str>) -> Vec<Vec<u8>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Produce(r) if r.topic.as_deref() == topic => Some(r.value.clone()),
            _ => None,
        })
        .collect()
}

fn rejected(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reject(r) => Some(r.reason.clone()),
            _ => None,
        })
        .collect()
}

fn guest(extra: &[(&str, &str)]) -> Harness<Transform> {
    let mut config = vec![("sources", "2")];
    config.extend_from_slice(extra);
    let mut h = Harness::<Transform>::new(&config).unwrap();
    h.at_time(T0 + 10 * HOUR);
    h
}

const PARTIALS: &str = "metrics_transform_partials";

#[test]
fn two_partitions_make_one_aggregate_per_window() {
    let mut h = guest(&[]);
    // Partition 0 and 1 both carry hour 0 of mem.total_mb for two hosts.
    let p0 = h
        .run(batch(
            "metrics",
            0,
            vec![metric("mem.total_mb", "a", T0 + 1000, 10.0), metric("mem.total_mb", "b", T0 + 2000, 20.0)],
        ))
        .unwrap();
    let p1 = h.run(batch("metrics", 1, vec![metric("mem.total_mb", "a", T0 + 3000, 30.0)])).unwrap();
    // Each partition says hello; nothing is closed yet.
    assert_eq!(produced(&p0, Some(PARTIALS)).len(), 1);
    assert_eq!(produced(&p1, Some(PARTIALS)).len(), 1);
    // The watermark passes the hour's end + 10 minutes on both partitions.
    let late = T0 + HOUR + 600_001;
    let c0 = h.run(batch("metrics", 0, vec![metric("mem.total_mb", "a", late, 1.0)])).unwrap();
    let c1 = h.run(batch("metrics", 1, vec![metric("mem.total_mb", "a", late, 1.0)])).unwrap();
    let mut exchange = produced(&p0, Some(PARTIALS));
    exchange.extend(produced(&p1, Some(PARTIALS)));
    exchange.extend(produced(&c0, Some(PARTIALS)));
    exchange.extend(produced(&c1, Some(PARTIALS)));
    // Stage two (partition 9 of the partials topic, apart from the metrics' state).
    let out = h.run(batch(PARTIALS, 9, exchange.clone())).unwrap();
    let metrics: Vec<Value> = produced(&out, None).iter().map(|v| serde_json::from_slice(v).unwrap()).collect();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let m = &metrics[0]["metric"];
    assert_eq!(m["name"], "mem.total_mb_agg");
    // avg per host (a: 20, b: 20), summed over hosts.
    assert_eq!(m["value"], 40.0);
    assert_eq!(m["timestamp"], T0);
    assert_eq!(m["dimensions"], json!({"aggregation_period": "hourly", "host": "all", "project_id": "all"}));
    assert_eq!(m["value_meta"]["record_count"], 3.0);
    assert_eq!(m["value_meta"]["firstrecord_timestamp_string"], "2024-12-01 00:00:01");
    assert_eq!(m["value_meta"]["lastrecord_timestamp_string"], "2024-12-01 00:00:03");
    assert_eq!(metrics[0]["meta"], json!({"tenantId": "111111", "region": "useast"}));
    // The same partials again (a replay) change nothing.
    let again = h.run(batch(PARTIALS, 9, exchange)).unwrap();
    assert!(produced(&again, None).is_empty());
    assert!(rejected(&again).is_empty(), "{:?}", rejected(&again));
    // A metric of the closed hour is late: dead-lettered with the reason.
    let effects = h.run(batch("metrics", 0, vec![metric("mem.total_mb", "a", T0 + 5, 1.0)])).unwrap();
    let reasons = rejected(&effects);
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("late metric"), "{reasons:?}");
}

#[test]
fn stage_two_waits_for_every_source() {
    let mut h = guest(&[("aggregation-period", "minutely"), ("allowed-lateness-ms", "1000")]);
    let a = h.run(batch("metrics", 0, vec![metric("cpu.idle_perc", "a", T0, 50.0)])).unwrap();
    let b = h.run(batch("metrics", 0, vec![metric("cpu.total_logical_cores", "a", T0 + 70_000, 4.0)])).unwrap();
    let mut exchange = produced(&a, Some(PARTIALS));
    exchange.extend(produced(&b, Some(PARTIALS)));
    // Only one of the two sources has spoken: nothing is emitted.
    let out = h.run(batch(PARTIALS, 9, exchange)).unwrap();
    assert!(produced(&out, None).is_empty());
    let c = h.run(batch("metrics", 1, vec![metric("cpu.total_logical_cores", "b", T0 + 70_000, 2.0)])).unwrap();
    let out = h.run(batch(PARTIALS, 9, produced(&c, Some(PARTIALS)))).unwrap();
    let names: Vec<String> = produced(&out, None)
        .iter()
        .map(|v| serde_json::from_slice::<Value>(v).unwrap()["metric"]["name"].as_str().unwrap().to_string())
        .collect();
    // Minute 0 held only an idle percentage: no total, so no utilisation.
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn an_idle_partition_closes_its_windows_on_timer_calls() {
    let mut h = guest(&[("sources", "1"), ("aggregation-period", "minutely"), ("idle-timeout-ms", "5000")]);
    h.at_time(T0 + 60_000);
    let first = h.run(batch("metrics", 3, vec![metric("mem.usable_mb", "a", T0 + 1, 8.0)])).unwrap();
    h.at_time(T0 + 62_000);
    assert!(produced(&h.tick(3).unwrap(), Some(PARTIALS)).is_empty(), "idle for less than the timeout");
    h.at_time(T0 + 60_000 + 600_000 + 60_000);
    let tick = h.tick(3).unwrap();
    let mut exchange = produced(&first, Some(PARTIALS));
    exchange.extend(produced(&tick, Some(PARTIALS)));
    let out = h.run(batch(PARTIALS, 9, exchange)).unwrap();
    let metrics = produced(&out, None);
    assert_eq!(metrics.len(), 1);
    let m: Value = serde_json::from_slice(&metrics[0]).unwrap();
    assert_eq!(m["metric"]["name"], "mem.usable_mb_agg");
    assert_eq!(m["metric"]["dimensions"]["aggregation_period"], "minutely");
}

#[test]
fn bad_messages_are_rejected_with_reasons() {
    let mut h = guest(&[]);
    let effects = h
        .run(batch(
            "metrics",
            0,
            vec![
                b"{not json".to_vec(),
                metric("mem.total_mb", "a", T0 + 100 * HOUR, 1.0),
                br#"{"metric":{"name":"mem.total_mb","timestamp":1,"value":"high"}}"#.to_vec(),
            ],
        ))
        .unwrap();
    let reasons = rejected(&effects);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[1].contains("max-future-ms"), "{reasons:?}");
    assert!(reasons[2].contains("metric.value"), "{reasons:?}");
    let effects = h.run(batch(PARTIALS, 9, vec![b"{}".to_vec()])).unwrap();
    assert!(rejected(&effects)[0].contains("partials topic"));
    assert!(Harness::<Transform>::new(&[("late-metrics", "keep")]).is_err());
    assert!(Harness::<Transform>::new(&[("transform-specs", "{\"metric_id\":\"x\"}")])
        .err()
        .unwrap()
        .contains("transform spec `x`"));
}

/// Run one hour of `metrics` on partition 0 of a one-source guest and close
/// it; the stage-two effects.
fn one_hour(extra: &[(&str, &str)], metrics: Vec<Vec<u8>>) -> Vec<Effect> {
    let mut config = vec![("sources", "1")];
    config.extend_from_slice(extra);
    let mut h = Harness::<Transform>::new(&config).unwrap();
    h.at_time(T0 + 10 * HOUR);
    let mut exchange = produced(&h.run(batch("metrics", 0, metrics)).unwrap(), Some(PARTIALS));
    let close = h.run(batch("metrics", 0, vec![metric("mem.total_mb", "z", T0 + HOUR + 600_001, 1.0)])).unwrap();
    exchange.extend(produced(&close, Some(PARTIALS)));
    h.run(batch(PARTIALS, 9, exchange)).unwrap()
}

#[test]
fn options_change_stamps_late_handling_and_extra_outputs() {
    // The original's processing-time stamp, and its metrics_pre_hourly records.
    let out = one_hour(
        &[("timestamp", "processing-time"), ("pre-hourly-topic", "metrics_pre_hourly")],
        vec![metric("mem.total_mb", "a", T0 + 1000, 10.0)],
    );
    let aggregate: Value = serde_json::from_slice(&produced(&out, None)[0]).unwrap();
    assert_eq!(aggregate["metric"]["timestamp"], T0 + 10 * HOUR);
    assert_eq!(aggregate["creation_time"], (T0 + 10 * HOUR) / 1000);
    let usage = produced(&out, Some("metrics_pre_hourly"));
    assert_eq!(usage.len(), 1);
    let usage: Value = serde_json::from_slice(&usage[0]).unwrap();
    assert_eq!(usage["processing_meta"]["metric_id"], "mem_total_all");
    assert_eq!(usage["aggregated_metric_name"], "mem.total_mb_agg");
    assert_eq!(usage["quantity"], 10.0);

    // Late metrics counted instead of dead-lettered.
    let mut h = Harness::<Transform>::new(&[("sources", "1"), ("late-metrics", "count")]).unwrap();
    h.at_time(T0 + 10 * HOUR);
    h.run(batch("metrics", 0, vec![metric("mem.total_mb", "a", T0 + HOUR + 600_001, 1.0)])).unwrap();
    let effects = h.run(batch("metrics", 0, vec![metric("mem.total_mb", "a", T0, 1.0)])).unwrap();
    assert!(rejected(&effects).is_empty());
    let clock: Value = serde_json::from_slice(&monasca_guest_sdk::state::get(b"c").unwrap()).unwrap();
    assert_eq!(clock["late"], 1);
}

#[test]
fn an_aggregate_that_fails_validation_is_dead_lettered_with_the_reason() {
    // A spec whose dimension takes the host, and a host monasca-common refuses.
    let pre = r#"{"event_type":"mem.total_mb","metric_id_list":["m"],"required_raw_fields_list":[]}"#;
    let spec = r#"{"metric_id":"m","aggregation_params_map":{"aggregation_pipeline":{"usage":"fetch_quantity","setters":["rollup_quantity"]},"aggregated_metric_name":"mem_agg","aggregation_period":"hourly","aggregation_group_by_list":["host"],"usage_fetch_operation":"max","setter_rollup_group_by_list":["host"],"setter_rollup_operation":"sum","dimension_list":["host"],"pre_hourly_operation":"max","pre_hourly_group_by_list":["default"]}}"#;
    let out = one_hour(
        &[("pre-transform-specs", pre), ("transform-specs", spec), ("dead-letter-topic", "dlq")],
        vec![metric("mem.total_mb", "a,b", T0 + 1000, 10.0), metric("mem.total_mb", "ok", T0 + 2000, 5.0)],
    );
    assert_eq!(produced(&out, None).len(), 1, "the valid host's aggregate");
    let dead: Vec<&monasca_guest_sdk::OutputRecord> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Produce(r) if r.topic.as_deref() == Some("dlq") => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(dead.len(), 1);
    let reason = dead[0].headers.iter().find(|h| h.key == "dlq.reason").map(|h| String::from_utf8_lossy(&h.value));
    let reason = reason.unwrap_or_default();
    assert!(reason.contains("spec `m`") && reason.contains("a,b"), "{reason}");
}

#[test]
fn a_big_window_goes_out_in_pages_across_calls() {
    // 12,000 open groups (hosts) of one window on one partition.
    let mut h = Harness::<Transform>::new(&[("sources", "1")]).unwrap();
    h.at_time(T0 + 10 * HOUR);
    let hosts: Vec<Vec<u8>> = (0..12_000).map(|i| metric("mem.total_mb", &format!("h{i:05}"), T0 + i, 1.0)).collect();
    for chunk in hosts.chunks(1000) {
        h.run(batch("metrics", 0, chunk.to_vec())).unwrap();
    }
    let first = h.run(batch("metrics", 0, vec![metric("mem.total_mb", "z", T0 + HOUR + 600_001, 1.0)])).unwrap();
    let page = produced(&first, Some(PARTIALS));
    assert_eq!(page.len(), stage_one::CLOSE_PER_CALL as usize, "one page, and no progress yet");
    assert!(page.iter().all(|v| serde_json::from_slice::<Value>(v).unwrap()["kind"] == "partial"));
    let mut exchange = page;
    for _ in 0..2 {
        exchange.extend(produced(&h.tick(0).unwrap(), Some(PARTIALS)));
    }
    let kinds: Vec<String> =
        exchange.iter().map(|v| serde_json::from_slice::<Value>(v).unwrap()["kind"].as_str().unwrap().into()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "partial").count(), 12_000);
    assert_eq!(kinds.last().map(String::as_str), Some("progress"), "progress once every group is out");
    // Stage two merges at most about MERGE_PER_CALL (20,000) partials a
    // call, whole windows: three windows of 12,000 groups each (the others
    // from other sources) go out two in the first call, one on a timer call.
    let moved = |source: &str, hours: i64| -> Vec<Vec<u8>> {
        exchange
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.contains("partial"))
            .map(|v| {
                v.replace("\"metrics/0\"", &format!("\"{source}\""))
                    .replace(&(T0 + HOUR).to_string(), &(T0 + hours * HOUR).to_string())
                    .into_bytes()
            })
            .collect()
    };
    let progress = |source: &str, closed: i64| {
        format!(r#"{{"kind":"progress","source":"{source}","closed":{closed}}}"#).into_bytes()
    };
    let mut all = exchange.clone();
    all.extend(moved("metrics/1", 2));
    all.extend(moved("metrics/2", 3));
    for source in ["metrics/0", "metrics/1", "metrics/2"] {
        all.push(progress(source, T0 + 4 * HOUR));
    }
    let mut h2 = Harness::<Transform>::new(&[("sources", "3")]).unwrap();
    h2.at_time(T0 + 10 * HOUR);
    let out = h2.run(batch(PARTIALS, 9, all)).unwrap();
    assert_eq!(produced(&out, None).len(), 2, "the first two windows");
    let out = h2.tick(9).unwrap();
    assert_eq!(produced(&out, None).len(), 1, "the third window, on the timer call");
    assert!(produced(&h2.tick(9).unwrap(), None).is_empty());
}
