//! napi-rs bindings of `durable-streams-client`: the native half of the npm package
//! `durable-streams-client`.
//!
//! The classes here are deliberately low-level (`Native*`): the package's TypeScript layer
//! (node/src) turns them into the API of `@durable-streams/client` (option objects, error
//! classes, `AbortSignal`, async iterators). Every protocol rule stays in the core.

mod error;
mod producer;
mod response;
mod runtime;
mod stream;
mod values;

pub use producer::{producer_append, NativeProducer};
pub use response::{NativeBatch, NativeReader, NativeResponse};
pub use runtime::CancelToken;
pub use stream::NativeStream;
