//! The open batch, filled by the appending threads themselves.
//!
//! `append` copies a message straight into the request body of the open batch (under a mutex
//! that is uncontended except at the few moments the task takes a batch), so a message costs
//! one copy and no channel send. A batch that is full is handed to the task by the appender
//! that filled it; the task takes a partial one when its linger ends, or for a control.
//! Numbering and handing over happen under the same lock, so batches reach the task in
//! message order.

use std::sync::Mutex;

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
        spares: &Spares,
    ) -> Self {
        let cap = (max_batch_bytes + 2)
            .min(START_CAPACITY_CAP)
            .max(first_len + 2);
        Batch {
            first_no,
            msgs: 0,
            bytes: 0,
            body: spares.take(cap),
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
    /// back the unused part of a large buffer (to `spares`, for the next batch).
    pub(crate) fn into_body(mut self, spares: &Spares) -> Bytes {
        if matches!(self.framing, Framing::Json) {
            self.body.put_u8(b']');
        }
        if self.body.capacity() > 2 * self.body.len() + 4096 {
            let body = Bytes::copy_from_slice(&self.body);
            spares.give(self.body);
            return body;
        }
        self.body.freeze()
    }
}

/// The most emptied batch buffers a producer keeps for its next batches.
const SPARES_MAX: usize = 2;

/// Buffers smaller than this are not worth keeping.
const SPARE_MIN_CAPACITY: usize = 1024;

/// Buffers larger than this (grown for a very large message or batch) are not kept.
const SPARE_MAX_CAPACITY: usize = 2 * START_CAPACITY_CAP;

/// Batch buffers whose requests are done, kept for the next batches while the producer is
/// busy. A fresh 1 MiB buffer can cost a page fault per 4 KiB written into it (the allocator
/// gives large freed blocks back to the kernel): about 2.8 µs each on the benchmark machine,
/// some 70 ns per 100-byte message, as much as its JSON check. At most [`SPARES_MAX`] are
/// kept, of at most 2 MiB each, and none once every appended message has settled (see
/// `Task::settle_front`), so an idle producer holds none.
#[derive(Default)]
pub(crate) struct Spares(Mutex<Vec<BytesMut>>);

impl Spares {
    /// An empty buffer of at least `cap` bytes: a spare one when there is one that large.
    pub(crate) fn take(&self, cap: usize) -> BytesMut {
        if let Ok(mut spares) = self.0.lock() {
            if let Some(i) = spares.iter().position(|b| b.capacity() >= cap) {
                return spares.swap_remove(i);
            }
        }
        BytesMut::with_capacity(cap)
    }

    /// Keeps `buf` (emptied) for a later batch, when there is room for it.
    pub(crate) fn give(&self, mut buf: BytesMut) {
        if !(SPARE_MIN_CAPACITY..=SPARE_MAX_CAPACITY).contains(&buf.capacity()) {
            return;
        }
        if let Ok(mut spares) = self.0.lock() {
            if spares.len() < SPARES_MAX {
                buf.clear();
                spares.push(buf);
            }
        }
    }

    /// Keeps the buffer of a sent body when nothing else holds it any more (the connection
    /// has let go of every part of it once the server has answered).
    pub(crate) fn give_body(&self, body: Bytes) {
        if body.len() >= SPARE_MIN_CAPACITY / 2 {
            if let Ok(buf) = body.try_into_mut() {
                self.give(buf);
            }
        }
    }

    /// Lets go of every spare buffer.
    pub(crate) fn clear(&self) {
        if let Ok(mut spares) = self.0.lock() {
            spares.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.0.lock().map_or(0, |s| s.len())
    }
}

/// The appenders' side of the producer, behind `Shared::acc`.
pub(crate) struct Acc {
    /// The number the next message gets.
    pub(crate) next_no: u64,
    pub(crate) open: Option<Batch>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn a_spare_buffer_is_used_again_for_the_next_batch() {
        let spares = Spares::default();
        let mut buf = BytesMut::with_capacity(MIB);
        buf.extend_from_slice(b"[1,2");
        let at = buf.as_ptr();
        spares.give(buf);
        assert_eq!(spares.count(), 1);
        let b = Batch::new(0, Framing::Json, MIB, 10, &spares);
        assert_eq!(b.body.as_ptr(), at, "the spare buffer was not used");
        assert!(b.body.is_empty(), "a spare buffer must come back empty");
        assert_eq!(spares.count(), 0);
        // None left: a new buffer.
        let c = Batch::new(1, Framing::Json, MIB, 10, &spares);
        assert_ne!(c.body.as_ptr(), at);
        assert!(c.body.capacity() >= MIB);
    }

    #[test]
    fn spares_are_few_large_and_large_enough() {
        let spares = Spares::default();
        spares.give(BytesMut::with_capacity(SPARE_MIN_CAPACITY / 2));
        assert_eq!(spares.count(), 0, "a small buffer is not kept");
        spares.give(BytesMut::with_capacity(SPARE_MAX_CAPACITY + 1));
        assert_eq!(spares.count(), 0, "a very large buffer is not kept");
        for _ in 0..3 {
            spares.give(BytesMut::with_capacity(128 * 1024));
        }
        assert_eq!(spares.count(), SPARES_MAX);
        // Too small for a 1 MiB batch: a fresh buffer, the spares stay.
        let b = spares.take(MIB + 2);
        assert!(b.capacity() >= MIB + 2);
        assert_eq!(spares.count(), SPARES_MAX);
        assert!(spares.take(100 * 1024).capacity() >= 100 * 1024);
        assert_eq!(spares.count(), SPARES_MAX - 1);
        spares.clear();
        assert_eq!(spares.count(), 0);
    }

    #[test]
    fn a_sent_body_is_kept_only_when_nothing_else_holds_it() {
        let spares = Spares::default();
        let mut buf = BytesMut::with_capacity(MIB);
        buf.extend_from_slice(&vec![b'x'; MIB / 2]);
        let at = buf.as_ptr();
        let body = buf.freeze();
        let part = body.slice(10..20);
        spares.give_body(body.clone());
        assert_eq!(spares.count(), 0, "kept while a part is still held");
        drop(part);
        spares.give_body(body);
        assert_eq!(spares.count(), 1);
        let again = spares.take(MIB);
        assert_eq!(again.as_ptr(), at, "not the same allocation");
        assert!(again.is_empty() && again.capacity() >= MIB);
    }

    #[test]
    fn a_small_batch_gives_its_large_buffer_back() {
        let spares = Spares::default();
        let mut b = Batch::new(0, Framing::Json, MIB, 10, &spares);
        b.push(b"{\"a\":1}", true);
        b.push(b"2", true);
        let at = b.body.as_ptr();
        let body = b.into_body(&spares);
        assert_eq!(&body[..], b"[{\"a\":1},2]");
        assert_eq!(spares.count(), 1);
        assert_eq!(spares.take(MIB).as_ptr(), at);
    }
}
