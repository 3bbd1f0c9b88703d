//! The [`export!`](crate::export!) macro and the glue between the generated
//! component bindings and the SDK's plain Rust types.

/// Export a [`Processor`](crate::Processor) type as the guest's component.
///
/// ```text
/// monasca_guest_sdk::export!(MyGuest);            // world `stateless` (or `keyed` if it uses `state`)
/// monasca_guest_sdk::export!(MyGuest, stateful);  // also exports `snapshot`/`restore`
/// ```
///
/// On `wasm32` it implements the `monasca:processor` exports for the type;
/// on a native target it expands to nothing, so the same crate unit-tests
/// natively. The world is chosen here, in the guest's own crate: building
/// several guests together never changes one's world.
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        $crate::__export_processor!($ty, $crate::bindings, $crate::__private, __export_world, {});
    };
    ($ty:ty, stateful) => {
        $crate::__export_processor!(
            $ty,
            $crate::bindings::stateful,
            $crate::__private::stateful,
            __export_stateful_world,
            {
                impl $crate::bindings::stateful::exports::monasca::processor::state::Guest for __MonascaExport {
                    fn snapshot() -> ::std::vec::Vec<u8> {
                        $crate::__private::stateful::snapshot::<$ty>(&__MONASCA_GUEST)
                    }

                    fn restore(bytes: ::std::vec::Vec<u8>) -> ::core::result::Result<(), ::std::string::String> {
                        $crate::__private::stateful::restore::<$ty>(&__MONASCA_GUEST, bytes)
                    }
                }
            }
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_processor {
    ($ty:ty, $bindings:path, $glue:path, $world_macro:ident, { $($extra:item)* }) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $bindings as __bindings;
            use $glue as __glue;

            ::std::thread_local! {
                static __MONASCA_GUEST: ::core::cell::RefCell<::core::option::Option<$ty>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            struct __MonascaExport;

            impl __bindings::exports::monasca::processor::processor::Guest for __MonascaExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    __glue::init::<$ty>(&__MONASCA_GUEST, config)
                }

                fn process(
                    batch: __glue::WitBatch,
                ) -> ::core::result::Result<::std::vec::Vec<__glue::WitEffect>, __glue::WitProcessError> {
                    __glue::process::<$ty>(&__MONASCA_GUEST, batch)
                }
            }

            $($extra)*

            __bindings::$world_macro!(__MonascaExport with_types_in __bindings);
        };
    };
}

/// The conversions between one world's generated types (the module path
/// given) and the SDK's types, stamped once per world: the keyed world's
/// types and the stateful world's are distinct Rust types.
#[cfg(target_arch = "wasm32")]
macro_rules! glue {
    ($($wit:tt)*) => {
    use $($wit)* as wit;
    use crate::{Bytes, Config, Effect, Effects, FieldValue, Header, Message, Origin, Processor, Topic};
    use std::cell::RefCell;
    use std::thread::LocalKey;

    pub use wit::{Batch as WitBatch, Effect as WitEffect, ProcessError as WitProcessError};

    /// The slot that holds the guest's instance of `P`.
    pub type Slot<P> = LocalKey<RefCell<Option<P>>>;

    /// Build the guest and keep it in its slot.
    pub fn init<P: Processor>(slot: &'static Slot<P>, config: Vec<(String, String)>) -> Result<(), String> {
        let guest = P::init(&Config::new(config))?;
        slot.with(|cell| *cell.borrow_mut() = Some(guest));
        Ok(())
    }

    /// Run one batch through the guest.
    pub fn process<P: Processor>(slot: &'static Slot<P>, batch: WitBatch) -> Result<Vec<WitEffect>, WitProcessError> {
        crate::clock::set_batch_time(batch.now_ms);
        crate::clock::set_batch_partition(batch.partition);
        let batch = messages_from_wit(batch);
        let mut out = Effects::with_capacity(batch.len());
        slot.with(|cell| match cell.borrow_mut().as_mut() {
            Some(guest) => guest.process(batch, &mut out),
            None => Err(crate::ProcessError::new("process called before init")),
        })
        .map_err(|e| WitProcessError { reason: e.reason, culprit: e.culprit.map(origin_to_wit) })?;
        Ok(out.into_vec().into_iter().map(effect_to_wit).collect())
    }

    /// The guest's state.
    pub fn snapshot<P: Processor>(slot: &'static Slot<P>) -> Vec<u8> {
        slot.with(|cell| cell.borrow().as_ref().map(|g| g.snapshot()).unwrap_or_default())
    }

    /// Replace the guest's state.
    pub fn restore<P: Processor>(slot: &'static Slot<P>, bytes: Vec<u8>) -> Result<(), String> {
        slot.with(|cell| match cell.borrow_mut().as_mut() {
            Some(guest) => guest.restore(&bytes),
            None => Err("restore called before init".to_string()),
        })
    }

    /// The batch's messages, their values views of the batch's buffer (no
    /// copies) and their topic one shared name (values beyond the buffer, or
    /// ending before they start, are cut to what it holds: the host never
    /// sends such a batch).
    fn messages_from_wit(batch: WitBatch) -> Vec<Message> {
        let values = Bytes::from(batch.values);
        let topic = Topic::from(batch.topic);
        let mut start = 0usize;
        batch
            .messages
            .into_iter()
            .map(|m| {
                let end = (m.value_end as usize).clamp(start, values.len());
                let value = values.slice(start..end);
                start = end;
                Message {
                    topic: topic.clone(),
                    partition: batch.partition,
                    offset: m.offset,
                    timestamp_ms: m.timestamp_ms,
                    key: m.key,
                    value,
                    headers: m.headers.into_iter().map(|h| Header { key: h.key, value: h.value }).collect(),
                }
            })
            .collect()
    }

    fn origin_to_wit(o: Origin) -> wit::Origin {
        wit::Origin { partition: o.partition, offset: o.offset }
    }

    fn headers_to_wit(headers: Vec<Header>) -> Vec<wit::Header> {
        headers.into_iter().map(|h| wit::Header { key: h.key, value: h.value }).collect()
    }

    fn field_to_wit(v: FieldValue) -> wit::FieldValue {
        match v {
            FieldValue::Float(f) => wit::FieldValue::Float(f),
            FieldValue::Integer(i) => wit::FieldValue::Integer(i),
            FieldValue::Unsigned(u) => wit::FieldValue::Unsigned(u),
            FieldValue::Boolean(b) => wit::FieldValue::Boolean(b),
            FieldValue::Text(s) => wit::FieldValue::Text(s),
        }
    }

    fn record_to_wit(r: crate::OutputRecord) -> wit::OutputRecord {
        wit::OutputRecord {
            topic: r.topic,
            key: r.key,
            value: r.value,
            headers: headers_to_wit(r.headers),
            origin: origin_to_wit(r.origin),
        }
    }

    fn effect_to_wit(effect: Effect) -> WitEffect {
        match effect {
            Effect::Produce(r) => WitEffect::Produce(record_to_wit(r)),
            Effect::Store(s) => WitEffect::Store(wit::SinkBatch {
                sink: s.sink,
                tenant: s.tenant,
                points: s
                    .points
                    .into_iter()
                    .map(|p| wit::Point {
                        measurement: p.measurement,
                        tags: p.tags,
                        fields: p.fields.into_iter().map(|(k, v)| (k, field_to_wit(v))).collect(),
                        timestamp_ms: p.timestamp_ms,
                    })
                    .collect(),
                origin: origin_to_wit(s.origin),
            }),
            Effect::StoreEncoded(e) => WitEffect::StoreEncoded(wit::EncodedPoints {
                sink: e.sink,
                tenant: e.tenant,
                format: wit::PointFormat::InfluxLineProtocol,
                body: e.body,
                origins: e.origins.into_iter().map(origin_to_wit).collect(),
            }),
            Effect::Notify(n) => WitEffect::Notify(wit::Notification {
                channel: n.channel,
                destination: n.destination,
                attributes: n.attributes,
                body: n.body,
                idempotency_key: n.idempotency_key,
                origin: origin_to_wit(n.origin),
                on_sent: n.on_sent.into_iter().map(record_to_wit).collect(),
                on_failed: n.on_failed.into_iter().map(record_to_wit).collect(),
            }),
            Effect::Reject(r) => {
                WitEffect::Reject(wit::Rejection { reason: r.reason, origin: origin_to_wit(r.origin) })
            }
        }
    }
    };
}

/// Conversions between the generated bindings and the SDK types. They move
/// buffers: each message's value is a view of the batch's buffer.
#[cfg(target_arch = "wasm32")]
pub mod glue {
    glue!(crate::bindings::monasca::processor::types);
}

/// The same for the `stateful` world's types.
#[cfg(target_arch = "wasm32")]
pub mod glue_stateful {
    glue!(crate::bindings::stateful::monasca::processor::types);
}
