//! Engine cost per message: a 1000-message batch of Monasca metric envelopes
//! through the persister guest under wasmtime (encoded points, its default,
//! and structured points; `Instance::process` hands the batch over in calls
//! of 128 messages, as in a pipeline), side by side with the same persister
//! code compiled natively into the host (the limit, one call per batch), and
//! with the passthrough guest (what crossing the component boundary costs).
//!
//! Run: `cargo bench -p monasca-wasm --bench engine` (env `ROUNDS`, default 40;
//! `COMPARE_NOTIFICATION`, the path of another build of the notification
//! guest to run beside this one; `ONLY_NOTIFICATION`, set: the notification
//! table alone).
//! Prints a table and writes `target/bench-reports/engine.md`.
//!
//! Method: the three variants run interleaved, round after round, so that
//! machine noise hits them alike; each round times 10 batches per variant;
//! the table reports the median and p90 over rounds, per message, and the
//! ratio of medians to native.

use monasca_guest_sdk::testing::Harness;
use monasca_test_programs::{NOTIFICATION, PASSTHROUGH, PERSISTER};
use monasca_wasm::engine::sandbox::{LookupFuture, Row};
use monasca_wasm::engine::types::{Cell, Message};
use monasca_wasm::engine::{Engine, EngineSettings, Lookups};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same allocator as the `monasca-wasm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1000;
const BATCHES_PER_ROUND: usize = 10;
/// The most messages of one guest call (the host cuts batches there).
const CALL: usize = monasca_wasm::engine::types::CALL_MESSAGES;

/// Deterministic, realistic envelopes: agent metrics with 2–5 dimensions,
/// several tenants and regions, value_meta on one in ten.
fn envelopes() -> Vec<Vec<u8>> {
    let names = [
        "cpu.idle_perc",
        "cpu.user_perc",
        "mem.free_mb",
        "disk.space_used_perc",
        "net.in_bytes_sec",
        "load.avg_1_min",
        "http_status",
        "process.pid_count",
    ];
    let tenants =
        ["0f1c8f4a7a9e4b5b9c1d2e3f40516273", "b7e4a1d2c3f4e5d6a7b8c9d0e1f2a3b4", "5d1e0c9b8a7f6e5d4c3b2a1908f7e6d5"];
    (0..BATCH)
        .map(|i| {
            let name = names[i % names.len()];
            let mut dims = format!(r#""hostname":"compute-{:03}","service":"monitoring""#, i % 97);
            if i % 2 == 0 {
                dims.push_str(r#","component":"monasca-agent""#);
            }
            if i % 3 == 0 {
                dims.push_str(&format!(r#","device":"/dev/vd{}","mount_point":"/""#, (b'a' + (i % 4) as u8) as char));
            }
            let meta = if i % 10 == 0 { r#","value_meta":{"error":"timeout","detail":"after 10s"}"# } else { "" };
            format!(
                r#"{{"metric":{{"name":"{name}","dimensions":{{{dims}}},"timestamp":{},"value":{}{meta}}},"meta":{{"tenantId":"{}","region":"RegionOne"}},"creation_time":{}}}"#,
                1_700_000_000_000u64 + i as u64 * 1000,
                (i as f64) * 0.37,
                tenants[i % tenants.len()],
                1_700_000_000 + i
            )
            .into_bytes()
        })
        .collect()
}

/// Alarm transitions as the notification benchmark sends them: one alarm
/// definition, a hundred hosts.
fn transitions() -> Vec<Vec<u8>> {
    (0..BATCH)
        .map(|i| {
            format!(
                r#"{{"alarm-transitioned": {{"tenantId": "bench", "alarmId": "def-alarm-{i}", "alarmDefinitionId": "def", "alarmName": "cpu high", "alarmDescription": "cpu above 90% for 3 minutes", "metrics": [{{"id": null, "name": "cpu.idle_perc", "dimensions": {{"hostname": "compute-{}", "service": "compute"}}}}], "oldState": "OK", "newState": "ALARM", "actionsEnabled": true, "stateChangeReason": "Thresholds were exceeded for the sub-alarms: avg(cpu.idle_perc) < 10.0 with the values: [7.5]", "severity": "HIGH", "link": null, "lifecycleState": null, "subAlarms": [], "timestamp": {}}}}}"#,
                i % 100,
                4_000_000_000_000u64 + i as u64
            )
            .into_bytes()
        })
        .collect()
}

/// The alarm definition's one webhook.
fn webhook_row() -> Vec<(String, Cell)> {
    vec![
        ("id".to_string(), Cell::Text("m-1".to_string())),
        ("type".to_string(), Cell::Text("WEBHOOK".to_string())),
        ("name".to_string(), Cell::Text("hook".to_string())),
        ("address".to_string(), Cell::Text("http://127.0.0.1:9/hook".to_string())),
        ("period".to_string(), Cell::Integer(0)),
    ]
}

/// `alarm_actions` answered from memory, as the host's cache answers it.
struct OneWebhook;

impl Lookups for OneWebhook {
    fn query(&self, _name: &str, _params: Vec<String>) -> LookupFuture {
        let rows: Vec<Row> = vec![webhook_row()];
        Box::pin(async move { Ok(rows) })
    }
}

fn host_batch(values: &[Vec<u8>]) -> Vec<Message> {
    host_batch_of("metrics", values)
}

fn host_batch_of(topic: &str, values: &[Vec<u8>]) -> Vec<Message> {
    let topic: Arc<str> = topic.into();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Message {
            topic: topic.clone(),
            partition: 0,
            offset: i as i64,
            timestamp_ms: Some(1_700_000_000_000),
            key: None,
            value: bytes::Bytes::from(v.clone()),
            headers: vec![],
            tombstone: false,
        })
        .collect()
}

fn sdk_batch(values: &[Vec<u8>]) -> Vec<monasca_guest_sdk::Message> {
    sdk_batch_of("metrics", values)
}

fn sdk_batch_of(topic: &str, values: &[Vec<u8>]) -> Vec<monasca_guest_sdk::Message> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut m = monasca_guest_sdk::Message::new(topic, v.clone());
            m.offset = i as i64;
            m.timestamp_ms = Some(1_700_000_000_000);
            m
        })
        .collect()
}

struct Series {
    name: &'static str,
    per_message_ns: Vec<f64>,
}

impl Series {
    fn record(&mut self, elapsed: Duration) {
        self.per_message_ns.push(elapsed.as_nanos() as f64 / (BATCH * BATCHES_PER_ROUND) as f64);
    }

    fn quantile(&self, q: f64) -> f64 {
        let mut v = self.per_message_ns.clone();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(40);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let engine = Engine::new(EngineSettings { cache_dir: None, ..EngineSettings::default() })?;
    if std::env::var_os("ONLY_NOTIFICATION").is_some() {
        print!("{}", notification_table(&runtime, &engine, rounds)?);
        return Ok(());
    }
    let values = envelopes();
    let batch = host_batch(&values);

    let points = vec![("encoding".to_string(), "points".to_string())];
    let (mut persister, mut persister_points, mut passthrough) = runtime.block_on(async {
        let module = engine.load_file(PERSISTER)?;
        let persister = module.instantiate("bench", vec![]).await?;
        let persister_points = module.instantiate("bench", points).await?;
        let passthrough = engine.load_file(PASSTHROUGH)?.instantiate("bench", vec![]).await?;
        anyhow::Ok((persister, persister_points, passthrough))
    })?;
    let mut native = Harness::<persister::Persister>::new(&[]).map_err(anyhow::Error::msg)?;

    // Sanity: the variants do the work we think they do.
    // (one encoded batch per tenant: the generated metrics have three tenants).
    let mut lines = 0;
    for effect in runtime.block_on(persister.process(&batch))? {
        match effect {
            monasca_wasm::engine::types::Effect::StoreEncoded(e) => lines += e.origins.len(),
            _ => anyhow::bail!("persister guest: expected encoded batches only"),
        }
    }
    anyhow::ensure!(lines == BATCH, "persister guest: {lines} lines for {BATCH} messages");
    assert_eq!(runtime.block_on(persister_points.process(&batch))?.len(), BATCH);
    let mut lines = 0;
    for effect in native.run(sdk_batch(&values)).map_err(|e| anyhow::anyhow!("{e}"))? {
        match effect {
            monasca_guest_sdk::Effect::StoreEncoded(e) => lines += e.origins.len(),
            _ => anyhow::bail!("native persister: expected encoded batches only"),
        }
    }
    anyhow::ensure!(lines == BATCH, "native persister: {lines} lines for {BATCH} messages");

    // Another build of the persister guest, side by side (to weigh a
    // change: build the old guest elsewhere and name its .wasm in
    // `COMPARE_PERSISTER`).
    let mut other = match std::env::var("COMPARE_PERSISTER") {
        Ok(path) => {
            let mut other = runtime.block_on(engine.load_file(&path)?.instantiate("bench", vec![]))?;
            let effects = runtime.block_on(other.process(&batch))?;
            anyhow::ensure!(!effects.is_empty(), "COMPARE_PERSISTER guest: no effects");
            Some(other)
        }
        Err(_) => None,
    };
    let mut series = vec![
        Series { name: "persister, native (the limit)", per_message_ns: vec![] },
        Series { name: "persister guest, wasm", per_message_ns: vec![] },
        Series { name: "persister guest, wasm, `encoding=points`", per_message_ns: vec![] },
        Series { name: "passthrough guest, wasm", per_message_ns: vec![] },
    ];
    if other.is_some() {
        series.push(Series { name: "persister guest, wasm, `COMPARE_PERSISTER` build", per_message_ns: vec![] });
    }
    for round in 0..rounds + 3 {
        let warmup = round < 3;
        let native_elapsed = time_native(&mut native, "metrics", &values)?;
        let wasm_elapsed = time_guest(&runtime, &mut persister, &batch)?;
        let points_elapsed = time_guest(&runtime, &mut persister_points, &batch)?;
        let pass_elapsed = time_guest(&runtime, &mut passthrough, &batch)?;
        let other_elapsed = other.as_mut().map(|other| time_guest(&runtime, other, &batch)).transpose()?;

        if !warmup {
            series[0].record(native_elapsed);
            series[1].record(wasm_elapsed);
            series[2].record(points_elapsed);
            series[3].record(pass_elapsed);
            if let Some(elapsed) = other_elapsed {
                series[4].record(elapsed);
            }
        }
    }

    let native_median = series[0].quantile(0.5);
    let mut table = format!(
        "Engine cost per message, {BATCH}-message batches of metric envelopes, guest calls of {CALL} ({rounds} rounds × {BATCHES_PER_ROUND} batches)\n\n"
    );
    table.push_str(&rows(&series));
    let wasm_median = series[1].quantile(0.5) / 1000.0;
    let ratio = series[1].quantile(0.5) / native_median;
    table.push_str(&format!(
        "\nTarget: persister guest ≤ 1.5 µs/msg ({}) and ≤ 2× native ({}).\n",
        if wasm_median <= 1.5 { "met" } else { "MISSED" },
        if ratio <= 2.0 { "met" } else { "MISSED" }
    ));
    table.push_str(&notification_table(&runtime, &engine, rounds)?);
    print!("{table}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-reports");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("engine.md"), &table)?;
    eprintln!("report written to {}", dir.join("engine.md").display());
    Ok(())
}

/// The notification guest's cost per alarm transition (one webhook method):
/// wasm against the same code compiled natively, interleaved the same way.
fn notification_table(runtime: &tokio::runtime::Runtime, engine: &Engine, rounds: usize) -> anyhow::Result<String> {
    let topic = "alarm-state-transitions";
    let values = transitions();
    let batch = host_batch_of(topic, &values);
    let config = vec![("ttl-seconds".to_string(), "0".to_string())];
    let module = engine.load_file(NOTIFICATION)?;
    let mut guest = runtime.block_on(module.instantiate_with("bench", config, Arc::new(OneWebhook)))?;
    let mut native = Harness::<notification::NotificationGuest>::new(&[("ttl-seconds", "0")])
        .map_err(anyhow::Error::msg)?
        .with_lookup("alarm_actions", |_| Ok(vec![sdk_row(webhook_row())]));
    let notified = |effects: usize, what: &str| {
        // A notification and nothing else per transition.
        anyhow::ensure!(effects == BATCH, "{what}: {effects} effects for {BATCH} transitions");
        Ok(())
    };
    notified(runtime.block_on(guest.process(&batch))?.len(), "notification guest")?;
    notified(native.run(sdk_batch_of(topic, &values)).map_err(|e| anyhow::anyhow!("{e}"))?.len(), "native")?;

    // Another build of the guest, side by side (to weigh a change: build the
    // old guest elsewhere and name its .wasm in `COMPARE_NOTIFICATION`).
    let mut other = match std::env::var("COMPARE_NOTIFICATION") {
        Ok(path) => {
            let module = engine.load_file(&path)?;
            let config = vec![("ttl-seconds".to_string(), "0".to_string())];
            let mut other = runtime.block_on(module.instantiate_with("bench", config, Arc::new(OneWebhook)))?;
            notified(runtime.block_on(other.process(&batch))?.len(), "COMPARE_NOTIFICATION guest")?;
            Some(other)
        }
        Err(_) => None,
    };
    let mut series = vec![
        Series { name: "notification, native (the limit)", per_message_ns: vec![] },
        Series { name: "notification guest, wasm", per_message_ns: vec![] },
    ];
    if other.is_some() {
        series.push(Series { name: "notification guest, wasm, `COMPARE_NOTIFICATION` build", per_message_ns: vec![] });
    }
    for round in 0..rounds + 3 {
        let native_elapsed = time_native(&mut native, topic, &values)?;
        let wasm_elapsed = time_guest(runtime, &mut guest, &batch)?;
        let other_elapsed = other.as_mut().map(|other| time_guest(runtime, other, &batch)).transpose()?;
        if round >= 3 {
            series[0].record(native_elapsed);
            series[1].record(wasm_elapsed);
            if let Some(elapsed) = other_elapsed {
                series[2].record(elapsed);
            }
        }
    }
    let mut table = format!(
        "\nNotification guest cost per alarm transition, {BATCH}-transition batches, guest calls of {CALL}, one webhook method each \
         ({rounds} rounds × {BATCHES_PER_ROUND} batches)\n\n"
    );
    table.push_str(&rows(&series));
    Ok(table)
}

fn sdk_row(row: Vec<(String, Cell)>) -> monasca_guest_sdk::Row {
    row.into_iter()
        .map(|(name, cell)| {
            let cell = match cell {
                Cell::Null => monasca_guest_sdk::Cell::Null,
                Cell::Text(t) => monasca_guest_sdk::Cell::Text(t),
                Cell::Integer(i) => monasca_guest_sdk::Cell::Integer(i),
                Cell::Float(f) => monasca_guest_sdk::Cell::Float(f),
                Cell::Bytes(b) => monasca_guest_sdk::Cell::Bytes(b),
            };
            (name, cell)
        })
        .collect()
}

/// The table's rows: median and p90 per message, and the ratio of medians
/// to the first series (native).
fn rows(series: &[Series]) -> String {
    let native_median = series[0].quantile(0.5);
    let mut rows = String::from("| variant | median µs/msg | p90 µs/msg | × native |\n|---|---:|---:|---:|\n");
    for s in series {
        rows.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:.2} |\n",
            s.name,
            s.quantile(0.5) / 1000.0,
            s.quantile(0.9) / 1000.0,
            s.quantile(0.5) / native_median
        ));
    }
    rows
}

/// [`BATCHES_PER_ROUND`] batches of `values` through the native harness
/// (the batches are built outside the timed region).
fn time_native<P: monasca_guest_sdk::Processor>(
    native: &mut Harness<P>,
    topic: &str,
    values: &[Vec<u8>],
) -> anyhow::Result<Duration> {
    let batches: Vec<_> = (0..BATCHES_PER_ROUND).map(|_| sdk_batch_of(topic, values)).collect();
    let started = Instant::now();
    for b in batches {
        std::hint::black_box(native.run(b).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(started.elapsed())
}

/// [`BATCHES_PER_ROUND`] runs of `batch` through a guest instance.
fn time_guest(
    runtime: &tokio::runtime::Runtime,
    guest: &mut monasca_wasm::engine::Instance,
    batch: &[Message],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for _ in 0..BATCHES_PER_ROUND {
        std::hint::black_box(runtime.block_on(guest.process(batch))?);
    }
    Ok(started.elapsed())
}
