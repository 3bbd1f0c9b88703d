//! A native test harness: run a guest's logic under `cargo test`, without
//! building wasm. The harness plays the host's part: it calls `init` with a
//! configuration, hands batches to `process`, answers lookups from closures
//! the test provides, and collects log lines.
//!
//! ```
//! use monasca_guest_sdk::testing::Harness;
//! # use monasca_guest_sdk::{Config, Effects, Message, ProcessError, Processor};
//! # struct Echo;
//! # impl Processor for Echo {
//! #     fn init(_: &Config) -> Result<Self, String> { Ok(Echo) }
//! #     fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
//! #         for m in batch { out.produce(&m, m.value.clone()); }
//! #         Ok(())
//! #     }
//! # }
//! let mut harness = Harness::<Echo>::new(&[]).unwrap();
//! let effects = harness.run_values("metrics", &["{}", "[]"]).unwrap();
//! assert_eq!(effects.len(), 2);
//! ```

#[cfg(not(target_arch = "wasm32"))]
pub use native::Harness;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use crate::log::Level;
    use crate::lookup::Row;
    use crate::{Config, Effect, Effects, Message, ProcessError, Processor};

    /// Runs a guest type natively, as the host would run its component.
    pub struct Harness<P: Processor> {
        guest: P,
        next_offset: i64,
    }

    impl<P: Processor> Harness<P> {
        /// Initialise the guest with `key=value` configuration pairs.
        pub fn new(config: &[(&str, &str)]) -> Result<Self, String> {
            let config: Config = config.iter().map(|(k, v)| (*k, *v)).collect();
            Ok(Harness { guest: P::init(&config)?, next_offset: 0 })
        }

        /// Answer the lookup `name` with `answer` (called with the query's parameters).
        pub fn with_lookup(self, name: &str, answer: impl Fn(&[&str]) -> Result<Vec<Row>, String> + 'static) -> Self {
            crate::lookup::set_native_answer(name, Box::new(answer));
            self
        }

        /// Set the time the next batches are handed over at (what
        /// [`crate::clock::now_ms`] reads in the guest).
        pub fn at_time(&mut self, now_ms: i64) -> &mut Self {
            crate::clock::set_batch_time(now_ms);
            self
        }

        /// Process a batch of messages and return the effects.
        pub fn run(&mut self, batch: Vec<Message>) -> Result<Vec<Effect>, ProcessError> {
            let partition = batch.first().map_or(0, |m| m.partition);
            crate::state::set_native_partition(partition);
            crate::clock::set_batch_partition(partition);
            let mut out = Effects::with_capacity(batch.len());
            self.guest.process(batch, &mut out)?;
            Ok(out.into_vec())
        }

        /// Process one batch made of these values on `topic`, partition 0, with
        /// offsets continuing from the previous call.
        pub fn run_values<V: AsRef<[u8]>>(&mut self, topic: &str, values: &[V]) -> Result<Vec<Effect>, ProcessError> {
            let batch = values
                .iter()
                .map(|value| {
                    let mut message = Message::new(topic, value.as_ref().to_vec());
                    message.offset = self.next_offset;
                    self.next_offset += 1;
                    message
                })
                .collect();
            self.run(batch)
        }

        /// A timer call: an empty batch of `partition`, as the host makes
        /// for an idle partition of a keyed guest.
        pub fn tick(&mut self, partition: i32) -> Result<Vec<Effect>, ProcessError> {
            crate::state::set_native_partition(partition);
            crate::clock::set_batch_partition(partition);
            let mut out = Effects::new();
            self.guest.process(Vec::new(), &mut out)?;
            Ok(out.into_vec())
        }

        /// The guest, for assertions on its state.
        pub fn guest(&self) -> &P {
            &self.guest
        }

        /// The guest, mutably.
        pub fn guest_mut(&mut self) -> &mut P {
            &mut self.guest
        }

        /// The answers to HTTP requests given since the last call
        /// ([`crate::http::respond`]).
        pub fn take_replies(&mut self) -> Vec<crate::http::Reply> {
            crate::http::take_native_replies()
        }

        /// The log lines written since the last call.
        pub fn take_logs(&mut self) -> Vec<(Level, String)> {
            crate::log::take_native_lines()
        }
    }

    impl<P: Processor> Drop for Harness<P> {
        fn drop(&mut self) {
            crate::lookup::clear_native_answers();
        }
    }

    #[allow(dead_code)]
    type _AssertAnswerIsUsed = crate::lookup::Answer;
}
