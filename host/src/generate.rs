//! Synthetic Monasca traffic: metric envelopes (and alarm transitions) with
//! realistic names, dimensions, tenants and regions. Deterministic for a
//! given sequence number, so runs can be compared. Used by
//! `monasca-wasm generate`, the `[generator]` of `run`, tests and benchmarks.

const NAMES: &[&str] = &[
    "cpu.idle_perc",
    "cpu.user_perc",
    "cpu.system_perc",
    "mem.free_mb",
    "mem.usable_perc",
    "disk.space_used_perc",
    "disk.inode_used_perc",
    "net.in_bytes_sec",
    "net.out_bytes_sec",
    "load.avg_1_min",
    "load.avg_5_min",
    "http_status",
    "process.pid_count",
    "vm.host_alive_status",
];
const TENANTS: &[&str] =
    &["0f1c8f4a7a9e4b5b9c1d2e3f40516273", "b7e4a1d2c3f4e5d6a7b8c9d0e1f2a3b4", "5d1e0c9b8a7f6e5d4c3b2a1908f7e6d5"];
const REGIONS: &[&str] = &["RegionOne", "RegionOne", "RegionTwo"];
const BASE_MS: u64 = 1_700_000_000_000;

/// The `n`-th metric envelope: 2–5 dimensions over ~100 hosts, three
/// tenants, `value_meta` on one in ten; about 250 bytes.
pub fn metric_envelope(n: u64) -> Vec<u8> {
    let i = n as usize;
    let name = NAMES[i % NAMES.len()];
    let mut dimensions = format!(r#""hostname":"compute-{:03}","service":"monitoring""#, i % 97);
    if i.is_multiple_of(2) {
        dimensions.push_str(r#","component":"monasca-agent""#);
    }
    if i.is_multiple_of(3) {
        dimensions.push_str(&format!(r#","device":"/dev/vd{}","mount_point":"/""#, (b'a' + (i % 4) as u8) as char));
    }
    let value_meta =
        if i.is_multiple_of(10) { r#","value_meta":{"error":"timeout","detail":"after 10s"}"# } else { "" };
    let tenant = i % TENANTS.len();
    format!(
        r#"{{"metric":{{"name":"{name}","dimensions":{{{dimensions}}},"timestamp":{},"value":{}{value_meta}}},"meta":{{"tenantId":"{}","region":"{}"}},"creation_time":{}}}"#,
        BASE_MS + n * 1000,
        (n % 10_000) as f64 * 0.37,
        TENANTS[tenant],
        REGIONS[tenant],
        (BASE_MS + n * 1000) / 1000
    )
    .into_bytes()
}

/// The `n`-th `alarm-transitioned` message.
pub fn alarm_transition(n: u64) -> Vec<u8> {
    let (old, new) = if n.is_multiple_of(2) { ("OK", "ALARM") } else { ("ALARM", "OK") };
    format!(
        r#"{{"alarm-transitioned":{{"tenantId":"{}","alarmId":"a1b2c3d4-{:04}-4000-8000-000000000001","alarmDefinitionId":"d0000001-0000-4000-8000-00000000cafe","alarmName":"High CPU usage","alarmDescription":"","metrics":[{{"id":null,"name":"cpu.idle_perc","dimensions":{{"hostname":"compute-{:03}"}}}}],"oldState":"{old}","newState":"{new}","actionsEnabled":true,"stateChangeReason":"Thresholds were exceeded","severity":"HIGH","link":null,"lifecycleState":null,"subAlarms":[],"timestamp":{}}}}}"#,
        TENANTS[n as usize % TENANTS.len()],
        n % 10_000,
        n % 97,
        BASE_MS + n * 1000
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_messages_are_valid_monasca() {
        for n in 0..50 {
            monasca_guest_sdk::monasca::MetricEnvelope::parse(&metric_envelope(n)).unwrap();
            monasca_guest_sdk::monasca::AlarmTransitionedEnvelope::parse(&alarm_transition(n)).unwrap();
        }
    }
}
