//! The open batch, filled by the appending threads themselves.
//!
//! `append` copies a message straight into the request body of the open batch (under a mutex
//! that is uncontended except at the few moments the task takes a batch), so a message costs
//! one copy and no channel send. A batch that is full is handed to the task by the appender
//! that filled it; the task takes a partial one when its linger ends, or for a control.
//! Numbering and handing over happen under the same lock, so batches reach the task in
//! message order.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

/// How the messages of a batch are laid out in its body.
pub(crate) enum Framing {
    /// A JSON array being built: `[` first, `,` between messages; `]` is added at sealing.
    Json,
    /// Plain concatenation (a byte stream).
    Raw,
    /// The stream's content type was not known yet: the messages are concatenated and the task
    /// frames them (and validates JSON ones) once it knows. `(length, validated)` per message.
    Unknown(Vec<(u32, bool)>),
}

/// A batch of consecutive messages.
pub(crate) struct Batch {
    pub(crate) first_no: u64,
    pub(crate) msgs: u64,
    /// Message bytes (without framing): the buffer room to give back.
    pub(crate) bytes: usize,
    pub(crate) body: BytesMut,
    pub(crate) framing: Framing,
    pub(crate) opened_at: Instant,
}

/// Start capacity of a batch body: a full batch never reallocates, and a sealed batch much
/// smaller than its buffer is copied to an exact-size one (see [`Batch::into_body`]).
const START_CAPACITY_CAP: usize = 1 << 20;

impl Batch {
    pub(crate) fn new(
        first_no: u64,
        framing: Framing,
        max_batch_bytes: usize,
        first_len: usize,
    ) -> Self {
        let cap = (max_batch_bytes + 2)
            .min(START_CAPACITY_CAP)
            .max(first_len + 2);
        Batch {
            first_no,
            msgs: 0,
            bytes: 0,
            body: BytesMut::with_capacity(cap),
            framing,
            opened_at: Instant::now(),
        }
    }

    /// Whether adding `len` bytes would take a non-empty batch beyond `max_batch_bytes`.
    #[inline]
    pub(crate) fn would_overflow(&self, len: usize, max_batch_bytes: usize) -> bool {
        self.msgs > 0 && self.body.len() + len + 1 > max_batch_bytes
    }

    #[inline]
    pub(crate) fn push(&mut self, data: &[u8], validated: bool) {
        match &mut self.framing {
            Framing::Json => self.body.put_u8(if self.msgs == 0 { b'[' } else { b',' }),
            Framing::Raw => {}
            Framing::Unknown(items) => {
                // Callers refuse messages of 4 GiB or more before they get here.
                items.push((u32::try_from(data.len()).unwrap_or(u32::MAX), validated));
            }
        }
        self.body.extend_from_slice(data);
        self.msgs += 1;
        self.bytes += data.len();
    }

    /// Whether the batch must be sealed now.
    #[inline]
    pub(crate) fn is_full(&self, max_batch_bytes: usize, max_batch_messages: usize) -> bool {
        self.body.len() + 1 >= max_batch_bytes || self.msgs >= max_batch_messages as u64
    }

    /// The request body of a framed (not `Unknown`) batch: closes a JSON array and gives
    /// back the unused part of a large buffer.
    pub(crate) fn into_body(mut self) -> Bytes {
        if matches!(self.framing, Framing::Json) {
            self.body.put_u8(b']');
        }
        if self.body.capacity() > 2 * self.body.len() + 4096 {
            return Bytes::copy_from_slice(&self.body);
        }
        self.body.freeze()
    }
}

/// The appenders' side of the producer, behind `Shared::acc`.
pub(crate) struct Acc {
    /// The number the next message gets.
    pub(crate) next_no: u64,
    pub(crate) open: Option<Batch>,
}
