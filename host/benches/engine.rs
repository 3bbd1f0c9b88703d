//! Engine cost per message: a 1000-message batch of Monasca metric envelopes
//! through the persister guest under wasmtime (encoded points, its default,
//! and structured points), side by side with the same persister code compiled
//! natively into the host (the limit), and with the passthrough guest (what
//! crossing the component boundary costs).
//!
//! Run: `cargo bench -p monasca-wasm --bench engine` (env `ROUNDS`, default 40).
//! Prints a table and writes `target/bench-reports/engine.md`.
//!
//! Method: the three variants run interleaved, round after round, so that
//! machine noise hits them alike; each round times 10 batches per variant;
//! the table reports the median and p90 over rounds, per message, and the
//! ratio of medians to native.

use monasca_guest_sdk::testing::Harness;
use monasca_test_programs::{PASSTHROUGH, PERSISTER};
use monasca_wasm::engine::types::Message;
use monasca_wasm::engine::{Engine, EngineSettings};
use std::time::{Duration, Instant};

/// The same allocator as the `monasca-wasm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1000;
const BATCHES_PER_ROUND: usize = 10;

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

fn host_batch(values: &[Vec<u8>]) -> Vec<Message> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Message {
            topic: "metrics".into(),
            partition: 0,
            offset: i as i64,
            timestamp_ms: Some(1_700_000_000_000),
            key: None,
            value: v.clone(),
            headers: vec![],
        })
        .collect()
}

fn sdk_batch(values: &[Vec<u8>]) -> Vec<monasca_guest_sdk::Message> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut m = monasca_guest_sdk::Message::new("metrics", v.clone());
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

    let mut series = [
        Series { name: "persister, native (the limit)", per_message_ns: vec![] },
        Series { name: "persister guest, wasm", per_message_ns: vec![] },
        Series { name: "persister guest, wasm, `encoding=points`", per_message_ns: vec![] },
        Series { name: "passthrough guest, wasm", per_message_ns: vec![] },
    ];
    for round in 0..rounds + 3 {
        let warmup = round < 3;
        // Native: the batch is cloned outside the timed region.
        let batches: Vec<_> = (0..BATCHES_PER_ROUND).map(|_| sdk_batch(&values)).collect();
        let started = Instant::now();
        for b in batches {
            std::hint::black_box(native.run(b).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        let native_elapsed = started.elapsed();

        let started = Instant::now();
        for _ in 0..BATCHES_PER_ROUND {
            std::hint::black_box(runtime.block_on(persister.process(&batch))?);
        }
        let wasm_elapsed = started.elapsed();

        let started = Instant::now();
        for _ in 0..BATCHES_PER_ROUND {
            std::hint::black_box(runtime.block_on(persister_points.process(&batch))?);
        }
        let points_elapsed = started.elapsed();

        let started = Instant::now();
        for _ in 0..BATCHES_PER_ROUND {
            std::hint::black_box(runtime.block_on(passthrough.process(&batch))?);
        }
        let pass_elapsed = started.elapsed();

        if !warmup {
            series[0].record(native_elapsed);
            series[1].record(wasm_elapsed);
            series[2].record(points_elapsed);
            series[3].record(pass_elapsed);
        }
    }

    let native_median = series[0].quantile(0.5);
    let mut table = String::new();
    table.push_str(&format!(
        "Engine cost per message, {BATCH}-message batches of metric envelopes ({rounds} rounds × {BATCHES_PER_ROUND} batches)\n\n"
    ));
    table.push_str("| variant | median µs/msg | p90 µs/msg | × native |\n|---|---:|---:|---:|\n");
    for s in &series {
        table.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:.2} |\n",
            s.name,
            s.quantile(0.5) / 1000.0,
            s.quantile(0.9) / 1000.0,
            s.quantile(0.5) / native_median
        ));
    }
    let wasm_median = series[1].quantile(0.5) / 1000.0;
    let ratio = series[1].quantile(0.5) / native_median;
    table.push_str(&format!(
        "\nTarget: persister guest ≤ 1.5 µs/msg ({}) and ≤ 2× native ({}).\n",
        if wasm_median <= 1.5 { "met" } else { "MISSED" },
        if ratio <= 2.0 { "met" } else { "MISSED" }
    ));
    print!("{table}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-reports");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("engine.md"), &table)?;
    eprintln!("report written to {}", dir.join("engine.md").display());
    Ok(())
}
