//! Test guest built against `monasca:processor@0.4.0` (the contract before
//! `http-reply`, kept in `wit/` beside this crate), with wit-bindgen
//! directly: proves the host runs guests of an earlier patch version, their
//! imports named `@0.4.0`. Copies every message to the output topic with a
//! `built-for: 0.4.0` header, and logs once per batch through the 0.4.0
//! `log` import.

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "wit", world: "monasca:processor/stateless" });

    use exports::monasca::processor::processor::Guest;
    use monasca::processor::types::{Batch, Effect, Header, Level, Origin, OutputRecord, ProcessError};

    struct Legacy;

    impl Guest for Legacy {
        fn init(_config: Vec<(String, String)>) -> Result<(), String> {
            Ok(())
        }

        fn process(batch: Batch) -> Result<Vec<Effect>, ProcessError> {
            monasca::processor::log::log(Level::Debug, &format!("{} messages", batch.messages.len()));
            let mut start = 0usize;
            let mut out = Vec::with_capacity(batch.messages.len());
            for m in batch.messages {
                let end = (m.value_end as usize).clamp(start, batch.values.len());
                let mut headers = m.headers;
                headers.push(Header { key: "built-for".into(), value: b"0.4.0".to_vec() });
                out.push(Effect::Produce(OutputRecord {
                    topic: None,
                    key: m.key,
                    value: batch.values[start..end].to_vec(),
                    headers,
                    origin: Origin { partition: batch.partition, offset: m.offset },
                }));
                start = end;
            }
            Ok(out)
        }
    }

    export!(Legacy);
}
