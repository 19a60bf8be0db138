//! `uniffi-bindgen`: generates the Kotlin and Swift sources from the built `durable_streams_ffi`
//! library (library mode). Run it from `bindings/ffi`, where `cargo metadata` finds the crate.

fn main() {
    uniffi::uniffi_bindgen_main()
}
