//! Sinks: where `store` effects go. Each sink is a folder; for now only the
//! InfluxDB line-protocol encoder exists (the writer comes with the sink).

pub mod influxdb;
