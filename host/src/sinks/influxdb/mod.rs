//! The InfluxDB 1.x sink. `encode` renders points as line protocol, byte for
//! byte as monasca-persister 9.0.0 does.

pub mod encode;
