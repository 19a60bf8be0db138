//! Settling: batches leave the machine's queue in message order, their outcomes go to the
//! receipts' log and the metrics, failures to `on_error` and the next `flush()`.

use std::sync::atomic::Ordering;

use super::Task;
use crate::error::Result;
use crate::producer::Delivery;

impl Task {
    pub(super) fn settle_front(&mut self) -> bool {
        let mut settled_any = false;
        let mut log = Vec::new();
        while let Some(e) = self.machine.take_settled() {
            settled_any = true;
            self.releases.remove(&e.id);
            self.shared.release(e.bytes);
            self.shared.spares.give_body(e.body);
            let outcome = e.outcome;
            if e.close {
                self.finish_close(outcome);
                continue;
            }
            self.account(e.msgs, e.bytes, &outcome);
            if e.msgs > 0 {
                self.settled = e.end_no;
                log.push((e.end_no, outcome));
            }
        }
        if settled_any {
            if !log.is_empty() {
                if let Ok(mut outcomes) = self.shared.outcomes.lock() {
                    for (end, outcome) in log {
                        outcomes.push(end, outcome);
                    }
                }
            }
            self.shared
                .settled_msgs
                .store(self.settled, Ordering::Release);
            self.settled_tx.send_replace(self.settled);
            if self.machine.is_empty()
                && self.shared.next_msg.load(Ordering::Acquire) <= self.settled
            {
                // Every message appended so far has settled: the producer is idle for now.
                self.shared.spares.clear();
            }
        }
        settled_any
    }

    pub(super) fn account(&mut self, msgs: u64, bytes: usize, outcome: &Result<Delivery>) {
        let c = &self.shared.counters;
        match outcome {
            Ok(d) => {
                c.messages.fetch_add(msgs, Ordering::Relaxed);
                c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                if d.duplicate {
                    c.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(o) = &d.offset {
                    if let Ok(mut last) = self.shared.last_offset.lock() {
                        if last.as_ref().is_none_or(|l| o > l) {
                            *last = Some(o.clone());
                        }
                    }
                }
            }
            Err(err) => {
                c.failed_batches.fetch_add(1, Ordering::Relaxed);
                c.failed_messages.fetch_add(msgs, Ordering::Relaxed);
                tracing::warn!(
                    url = %self.shared.display,
                    messages = msgs,
                    error = %err,
                    "idempotent producer batch failed"
                );
                if let Some(cb) = &self.cfg.on_error {
                    let call = std::panic::AssertUnwindSafe(|| cb(err));
                    if std::panic::catch_unwind(call).is_err() {
                        tracing::error!(url = %self.shared.display, "producer on_error callback panicked");
                    }
                }
                if self.first_failure.is_none() {
                    self.first_failure = Some(err.clone());
                }
            }
        }
    }
}
