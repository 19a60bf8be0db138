//! uniffi bindings of `durable-streams-client`, for Kotlin (JVM, through JNA) and Swift.
//!
//! The exported surface mirrors the core: `stream::DurableStream` (create, connect, head,
//! append, close, delete, read), `read::StreamResponse` (pull one batch at a time, or
//! everything at once), `producer::IdempotentProducer` with its receipts, and the error
//! enum `error::DurableStreamError`. Every async function
//! runs on one lazily built multi-thread tokio runtime (module `runtime`); cancelling the foreign
//! coroutine or task drops the Rust future and aborts the request. Protocol rules live in the
//! core crate: this crate only converts values.

// `DurableStreamError` carries its details by value (uniffi serializes it into a buffer at the
// boundary, and records cannot be boxed), so it is larger than clippy's result-size threshold.
#![allow(clippy::result_large_err)]

mod callbacks;
mod error;
mod fast;
mod producer;
mod read;
mod runtime;
mod stream;
mod subscriptions;
mod values;

uniffi::setup_scaffolding!();
