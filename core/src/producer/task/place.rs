//! Placing batches in the queue: framing the messages appended before the content type was
//! known (the task's own open batch, sealed when full or at the end of the batch) and
//! refusing what cannot be sent.

use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::Ordering;
use tokio::time::Instant;

use super::Task;
use crate::error::Error;
use crate::producer::batch::{Batch, Framing};
use crate::producer::validate_json;

pub(super) struct Open {
    body: BytesMut,
    first_no: u64,
    msgs: u64,
    bytes: usize,
}

impl Task {
    /// Queues a batch whose turn it is (`first_no == expect_no`).
    pub(super) fn place_batch(&mut self, batch: Batch) {
        let (first, msgs) = (batch.first_no, batch.msgs);
        self.expect_no = first + msgs;
        match batch.framing {
            Framing::Unknown(items) => {
                // Framed and validated here, message by message, as the content type is
                // known now (or refused with the reason it is not).
                let body = batch.body.freeze();
                let mut pos = 0usize;
                for (no, (len, validated)) in (first..).zip(items) {
                    let end = pos + len as usize;
                    self.place(no, body.slice(pos..end), validated);
                    pos = end;
                }
                self.seal();
            }
            Framing::Json | Framing::Raw => {
                // Appends stop before a close or detach chooses its messages, so a refusal
                // here covers whole batches (the producer failed, or was stopped).
                if let Some(err) = self.refusal(first) {
                    self.seal();
                    self.machine
                        .push_refused(Instant::now(), first, msgs, batch.bytes, err);
                    return;
                }
                self.seal();
                let bytes = batch.bytes;
                self.queue_batch(first, msgs, bytes, batch.into_body(&self.shared.spares));
            }
        }
    }

    pub(super) fn refusal(&self, no: u64) -> Option<Error> {
        if let Some(e) = self.machine.terminal() {
            return Some(e.clone());
        }
        if self.refuse_from.is_some_and(|r| no >= r) {
            return Some(Error::AlreadyClosed {
                what: format!("idempotent producer for {}", self.shared.display),
            });
        }
        if self.json.is_none() {
            return Some(self.resolve_error.clone().unwrap_or_else(|| {
                Error::invalid("the stream's content type could not be determined")
            }));
        }
        None
    }

    pub(super) fn place(&mut self, no: u64, data: Bytes, validated: bool) {
        let len = data.len();
        if let Some(err) = self.refusal(no) {
            self.seal();
            self.machine.push_refused(Instant::now(), no, 1, len, err);
            return;
        }
        let json = self.json == Some(true);
        if json && !validated {
            if let Err(err) = validate_json(&data, Some(no)) {
                self.seal();
                self.machine.push_refused(Instant::now(), no, 1, len, err);
                return;
            }
        }
        let max = self.cfg.max_batch_bytes;
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.body.len() + len + 1 > max)
        {
            self.seal();
        }
        if self.open.is_none() {
            self.open = Some(Open {
                body: BytesMut::with_capacity((max + 2).min(256 * 1024).max(len + 2)),
                first_no: no,
                msgs: 0,
                bytes: 0,
            });
        }
        let full = match self.open.as_mut() {
            Some(open) => {
                if json {
                    open.body.put_u8(if open.msgs == 0 { b'[' } else { b',' });
                }
                open.body.extend_from_slice(&data);
                open.msgs += 1;
                open.bytes += len;
                open.body.len() + 1 >= max || open.msgs >= self.cfg.max_batch_messages as u64
            }
            None => false,
        };
        if full {
            self.seal();
        }
    }

    /// Closes the task's own open batch (see `open`) and queues it.
    pub(super) fn seal(&mut self) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        if self.json == Some(true) {
            open.body.put_u8(b']');
        }
        self.queue_batch(open.first_no, open.msgs, open.bytes, open.body.freeze());
    }

    /// Queues a framed batch with the next sequence number.
    pub(super) fn queue_batch(&mut self, first_no: u64, msgs: u64, bytes: usize, body: Bytes) {
        self.machine
            .push_batch(Instant::now(), first_no, msgs, bytes, body);
        self.shared
            .next_seq
            .store(self.machine.next_seq(), Ordering::Release);
    }
}
