//! Internal to `monasca-guest-sdk`: the bindings of the `monasca:processor`
//! `stateful` world, in a crate of their own. wit-bindgen names its export
//! macros after the exported interfaces, so the SDK cannot generate two
//! worlds that both export `processor`; and the world a guest exports must
//! be chosen by its own `export!`, not by a Cargo feature (features are
//! unified across a build). Use the SDK's `export!(MyGuest, stateful)`.
#![allow(missing_docs)]

// The generated code names its runtime through the SDK's path, which must
// resolve both here and in a guest crate (where it is the real SDK).
#[cfg(target_arch = "wasm32")]
extern crate self as monasca_guest_sdk;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

#[cfg(target_arch = "wasm32")]
wit_bindgen::generate!({
    path: "../wit",
    world: "monasca:processor/stateful",
    pub_export_macro: true,
    export_macro_name: "__export_stateful_world",
    default_bindings_module: "monasca_guest_sdk::bindings::stateful",
    runtime_path: "monasca_guest_sdk::__private::wit_bindgen::rt",
});
