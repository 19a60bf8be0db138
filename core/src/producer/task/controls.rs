//! Controls: `flush()`, `restart()`, `close()` and detaching, answered in message order once
//! the batches before them have settled.

use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Task;
use crate::error::{Error, Result};
use crate::offset::Offset;
use crate::producer::{validate_json, Delivery};

pub(super) enum Control {
    Flush {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
    },
    Restart {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
        target: Option<u64>,
    },
    Close {
        upto: u64,
        body: Option<Bytes>,
        reply: Option<oneshot::Sender<Result<Option<Offset>>>>,
        sent: bool,
    },
    Detach {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Control {
    pub(super) fn upto(&self) -> u64 {
        match self {
            Control::Flush { upto, .. }
            | Control::Restart { upto, .. }
            | Control::Close { upto, .. }
            | Control::Detach { upto, .. } => *upto,
        }
    }
}

impl Task {
    pub(super) fn take_failure(&mut self) -> Result<()> {
        match self.first_failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Answers a flush, restart or detach with the first failure since the last answer. When
    /// its caller is gone (a cancelled `flush()`), the failure is kept for the next one: the
    /// next flush still reports every failure since the last flush that was answered.
    fn answer(&mut self, reply: oneshot::Sender<Result<()>>) {
        if let Err(Err(e)) = reply.send(self.take_failure()) {
            self.first_failure.get_or_insert(e);
        }
    }

    /// Handles the control at the head of the line if it can be; true when it moved.
    pub(super) fn process_controls(&mut self) -> bool {
        enum Step {
            Flush,
            RestartBegin,
            RestartEnd,
            Detach,
            Close,
        }
        let Some(upto) = self.controls.front().map(Control::upto) else {
            return false;
        };
        if self.expect_no < upto {
            return false;
        }
        self.seal();
        let settled = self.settled >= upto;
        let idle = self.machine.is_empty() && self.open.is_none();
        let step = match self.controls.front() {
            Some(Control::Flush { .. }) if settled => Step::Flush,
            Some(Control::Restart { target: None, .. }) if settled => Step::RestartBegin,
            Some(Control::Restart {
                target: Some(t), ..
            }) if !self.machine.switching() && self.machine.epoch() >= *t => Step::RestartEnd,
            Some(Control::Detach { .. }) if idle => Step::Detach,
            Some(Control::Close { sent: false, .. }) if idle => Step::Close,
            _ => return false,
        };
        match step {
            Step::Flush => {
                if let Some(Control::Flush { reply, .. }) = self.controls.pop_front() {
                    self.answer(reply);
                }
            }
            Step::RestartBegin => match self.machine.restart() {
                Ok(t) => {
                    self.sync_terminal();
                    if let Some(Control::Restart { target, .. }) = self.controls.front_mut() {
                        *target = Some(t);
                    }
                }
                Err(e) => {
                    if let Some(Control::Restart { reply, .. }) = self.controls.pop_front() {
                        let _ = reply.send(Err(e));
                    }
                }
            },
            Step::RestartEnd => {
                if let Some(Control::Restart { reply, .. }) = self.controls.pop_front() {
                    self.answer(reply);
                }
            }
            Step::Detach => {
                if let Some(Control::Detach { reply, .. }) = self.controls.pop_front() {
                    self.answer(reply);
                }
                self.exit = true;
            }
            Step::Close => {
                let body = match self.controls.front_mut() {
                    Some(Control::Close { sent, body, .. }) => {
                        *sent = true;
                        body.take()
                    }
                    _ => None,
                };
                self.start_close(body);
            }
        }
        true
    }

    /// Queues the closing request, or answers the close at once when it cannot be sent.
    pub(super) fn start_close(&mut self, body: Option<Bytes>) {
        let failure = match (self.take_failure(), self.machine.terminal()) {
            (Err(e), _) => Some(e),
            (Ok(()), Some(t)) => Some(t.clone()),
            (Ok(()), None) => None,
        };
        let failure = failure.or_else(|| match (&body, self.json) {
            (Some(_), None) => Some(self.resolve_error.clone().unwrap_or_else(|| {
                Error::invalid("the stream's content type could not be determined")
            })),
            (Some(b), Some(true)) => validate_json(b, None).err(),
            _ => None,
        });
        if let Some(err) = failure {
            self.reply_close(Err(err));
            return;
        }
        let body = match body {
            Some(b) if self.json == Some(true) => {
                let mut buf = BytesMut::with_capacity(b.len() + 2);
                buf.put_u8(b'[');
                buf.extend_from_slice(&b);
                buf.put_u8(b']');
                buf.freeze()
            }
            Some(b) => b,
            None => Bytes::new(),
        };
        self.machine
            .push_close(Instant::now(), self.expect_no, body);
        self.shared
            .next_seq
            .store(self.machine.next_seq(), Ordering::Release);
    }

    pub(super) fn finish_close(&mut self, outcome: Result<Delivery>) {
        match outcome {
            Ok(d) => {
                if let Some(o) = &d.offset {
                    if let Ok(mut last) = self.shared.last_offset.lock() {
                        if last.as_ref().is_none_or(|l| o > l) {
                            *last = Some(o.clone());
                        }
                    }
                }
                if let Ok(mut g) = self.shared.close_result.lock() {
                    *g = Some(d.offset.clone());
                }
                self.reply_close(Ok(d.offset));
                self.exit = true;
            }
            Err(e) => self.reply_close(Err(e)),
        }
    }

    pub(super) fn reply_close(&mut self, result: Result<Option<Offset>>) {
        if let Some(Control::Close { reply, .. }) = self.controls.front_mut() {
            if let Some(reply) = reply.take() {
                let _ = reply.send(result);
            }
            self.controls.pop_front();
        }
    }
}
