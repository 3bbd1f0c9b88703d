//! Agent metrics as monasca-agent and its Nova and Swift plugins report them
//! (every event type of monasca-transform's shipped specs), generated
//! deterministically: the transform guest's tests and benchmark feed them.

use serde_json::{json, Value};

pub const HOUR: i64 = 3_600_000;
/// 2024-12-01 10:00:00 UTC: the first generated hour.
pub const START: i64 = 1_733_047_200_000;

/// What to generate.
pub struct Agents {
    pub hosts: usize,
    /// Seconds between two reports of one metric.
    pub interval_s: i64,
    pub hours: i64,
    pub seed: u64,
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn value(&mut self, low: f64, high: f64) -> f64 {
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((low + x * (high - low)) * 100.0).round() / 100.0
    }
}

fn envelope(name: &str, dimensions: Value, ts: i64, value: f64, tenant: &str, region: Option<&str>) -> String {
    let mut meta = json!({"tenantId": tenant});
    if let Some(region) = region {
        meta["region"] = json!(region);
    }
    json!({"metric": {"name": name, "dimensions": dimensions, "timestamp": ts, "value": value, "value_meta": null},
        "meta": meta, "creation_time": ts / 1000})
    .to_string()
}

impl Agents {
    /// The metrics of hours `START + k·HOUR`, in the order an agent fleet
    /// sends them: by time, shuffled within a few seconds (out of order
    /// by less than the allowed lateness).
    pub fn metrics(&self) -> Vec<String> {
        let mut rng = Rng(self.seed | 1);
        let tenants = ["t-alpha", "t-beta", "t-gamma"];
        let mut out: Vec<(i64, String)> = Vec::new();
        let steps = self.hours * 3600 / self.interval_s;
        for step in 0..steps {
            for h in 0..self.hosts {
                let host = format!("compute-{h:03}");
                let ts = START + step * self.interval_s * 1000 + rng.below(self.interval_s as u64 * 1000) as i64;
                let region = if h % 5 == 0 { None } else { Some("useast") };
                let admin = "admin-project";
                let host_dims = json!({"hostname": host, "service": "monitoring"});
                let cores = [8.0, 16.0, 32.0][h % 3];
                let idle = if h % 7 == 0 { 0.0 } else { rng.value(0.0, 100.0) };
                let mut emit = |name: &str, dims: Value, value: f64, tenant: &str| {
                    out.push((ts, envelope(name, dims, ts, value, tenant, region)));
                };
                emit("cpu.total_logical_cores", host_dims.clone(), cores, admin);
                emit("cpu.idle_perc", host_dims.clone(), idle, admin);
                emit("mem.total_mb", host_dims.clone(), 65536.0, admin);
                emit("mem.usable_mb", host_dims.clone(), rng.value(1000.0, 60000.0), admin);
                emit("disk.total_space_mb", host_dims.clone(), 512000.0, admin);
                emit("disk.total_used_space_mb", host_dims.clone(), rng.value(1000.0, 500000.0), admin);
                emit("nova.vm.mem.total_allocated_mb", host_dims.clone(), rng.value(0.0, 32768.0), admin);
                emit("nova.vm.disk.total_allocated_gb", host_dims.clone(), rng.value(0.0, 400.0), admin);
                emit("nova.vm.cpu.total_allocated", host_dims.clone(), rng.below(24) as f64, admin);
                for mount in ["/srv/node/disk0", "/srv/node/disk1"] {
                    let dims = json!({"hostname": host, "mount": mount, "service": "object-storage"});
                    emit("swiftlm.diskusage.host.val.size", dims.clone(), 1_000_000.0, admin);
                    let avail = 900_000.0 - (step as f64) * 10.0 - rng.value(0.0, 5.0);
                    emit("swiftlm.diskusage.host.val.avail", dims, avail, admin);
                }
                for vm in 0..3 {
                    let tenant = tenants[(h + vm) % 3];
                    let id = format!("vm-{h:03}-{vm}");
                    let dims = json!({"hostname": host, "tenant_id": tenant, "resource_id": id});
                    emit("vm.mem.total_mb", dims.clone(), 4096.0, tenant);
                    emit("vm.mem.used_mb", dims.clone(), rng.value(100.0, 4096.0), tenant);
                    emit("vm.disk.allocation", dims.clone(), 40.0, tenant);
                    emit("vm.cpu.utilization_perc", dims, rng.value(0.0, 100.0), tenant);
                    let vcpu = json!({"hostname": host, "project_id": tenant, "resource_id": id});
                    emit("vcpus", vcpu, [1.0, 2.0, 4.0][vm], tenant);
                }
                if h % 4 == 0 {
                    let tenant = tenants[h % 3];
                    emit("storage.objects.size", json!({"project_id": tenant}), rng.value(0.0, 1e9), tenant);
                }
                // Not transformed, or dropped for a missing required field.
                emit("http_status", json!({"hostname": host, "url": "http://x"}), 0.0, admin);
                if step % 10 == 0 {
                    let dims = json!({"hostname": host, "resource_id": format!("vm-{h:03}-9")});
                    emit("vm.mem.used_mb", dims, 1.0, admin);
                }
            }
        }
        out.sort_by_key(|(ts, _)| *ts / 5000);
        // Shuffle within runs of 40: out of order by a few seconds.
        for chunk in out.chunks_mut(40) {
            for i in (1..chunk.len()).rev() {
                chunk.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        out.into_iter().map(|(_, m)| m).collect()
    }
}

/// A metric that moves a partition's watermark to `ts` (a host-level memory
/// report of a host of its own; it lands in a window that never closes).
pub fn closer(ts: i64, partition: i32) -> String {
    envelope("mem.total_mb", json!({"hostname": format!("closer-{partition}")}), ts, 1.0, "admin-project", None)
}

/// `n` open series: one `mem.total_mb` report from each of `n` hosts at
/// `ts` (one window group each under the shipped `mem_total_all` spec).
pub fn open_series(n: usize, ts: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            envelope("mem.total_mb", json!({"hostname": format!("series-{i:07}")}), ts, 1.0, "admin-project", None)
        })
        .collect()
}
