//! The producer's sequencing as a state machine: events in, actions out, no IO.
//!
//! [`Machine`] owns the queue of batches from sealing until they settle, their sequence
//! numbers, the epoch and the in-flight window. The task (`task.rs`) feeds it what happened
//! (a batch sealed, a request answered or lost, a body written, time passing) and carries out
//! what it returns ([`Action`]: send an attempt after a delay, release a held body byte, stop
//! the producer, log a note). Time comes in as an argument; backoff delays come from a
//! [`Backoff`], so the rules can be tested with fixed delays.
//!
//! Batches live in `queue`, in sequence order, until they settle (delivered or failed);
//! settled batches leave from the front ([`Machine::take_settled`]) so receipts and flushes
//! see outcomes in message order. A batch is `Waiting` (to be sent), `InFlight` (a request or
//! its backoff is running), `Blocked` (a 409 said an earlier sequence must land first) or
//! `Done`.
//!
//! Sequence numbers are only ever changed while the server has told us they were not
//! applied: a gap repair (409 whose expected sequence belongs to no live batch) shifts the
//! later batches down, and a new epoch (auto-claim or restart) renumbers the unsettled
//! batches from 0 once no request is in flight, sending the first one alone. What each server
//! answer means is decided by the pure rules of `sequencer.rs`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::request::Accepted;
use super::sequencer::{self, Ack, Claim, Gap, Resend, Standing};
use super::Delivery;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// The sequence number of an entry that holds refused messages and is never sent.
const NO_SEQ: u64 = u64::MAX;

/// Backoff delays for retries and resends.
pub(crate) trait Backoff {
    /// Whether retry `retry_no` (0-based) of a failed request may happen.
    fn allows(&self, retry_no: u32) -> bool;
    /// The delay before retry `retry_no` (0-based).
    fn delay(&self, retry_no: u32, retry_after: Option<Duration>) -> Duration;
}

impl Backoff for RetryPolicy {
    fn allows(&self, retry_no: u32) -> bool {
        RetryPolicy::allows(self, retry_no)
    }

    fn delay(&self, retry_no: u32, retry_after: Option<Duration>) -> Duration {
        RetryPolicy::delay(self, retry_no, retry_after)
    }
}

/// The rules' settings.
pub(crate) struct Rules<B> {
    pub(crate) producer_id: String,
    pub(crate) auto_claim: bool,
    pub(crate) max_in_flight: usize,
    pub(crate) delivery_timeout: Duration,
    pub(crate) backoff: B,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Waiting,
    InFlight,
    /// A 409 said the server expects this earlier sequence first.
    Blocked(u64),
    Done,
}

struct Entry {
    id: u64,
    seq: u64,
    end_no: u64,
    body: Bytes,
    /// Message bytes (buffer room to give back).
    bytes: usize,
    msgs: u64,
    state: St,
    deadline: Instant,
    attempts: u32,
    /// Requests sent with the current (epoch, seq): 0 means no earlier attempt of this batch
    /// can have reached the server under this number, so a 204 for it is another session's.
    sent_here: u32,
    /// Times the server's sequencing answers made this batch be sent again.
    resends: u32,
    /// The current attempt's body has been handed to its connection (see `GatedBody`).
    written: bool,
    /// The current attempt's last body byte is held back (see `GatedBody`).
    held: bool,
    /// The current attempt waits out a backoff before it is sent.
    delayed: bool,
    close: bool,
    outcome: Option<Result<Delivery>>,
}

impl Entry {
    fn new(
        id: u64,
        (seq, end_no): (u64, u64),
        body: Bytes,
        (bytes, msgs): (usize, u64),
        deadline: Instant,
    ) -> Self {
        Entry {
            id,
            seq,
            end_no,
            body,
            bytes,
            msgs,
            state: St::Waiting,
            deadline,
            attempts: 0,
            sent_here: 0,
            resends: 0,
            written: false,
            held: false,
            delayed: false,
            close: false,
            outcome: None,
        }
    }

    fn done(&mut self, outcome: Result<Delivery>) {
        self.state = St::Done;
        self.outcome = Some(outcome);
    }
}

/// What the task does for the machine.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Send an attempt; its last body byte is held until a [`Action::Release`] for it.
    Send(Sending),
    /// Let the held last byte of batch `id`'s current attempt go.
    Release { id: u64 },
    /// The producer stops with this error: later appends fail with it.
    Stop(Error),
    /// Something worth a log line.
    Note(Note),
}

/// Attempt `attempt` (1-based) of batch `id`, to send as (`epoch`, `seq`) after `delay`.
#[derive(Debug, Clone)]
pub(crate) struct Sending {
    pub(crate) id: u64,
    pub(crate) attempt: u32,
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
    /// The closing request.
    pub(crate) close: bool,
    pub(crate) body: Bytes,
    pub(crate) delay: Duration,
}

/// Log lines of the rules.
#[derive(Debug, Clone)]
pub(crate) enum Note {
    /// Auto-claim moves to a new epoch.
    Claiming {
        epoch: u64,
        claiming: u64,
        error: Error,
    },
    /// Another session claimed the id after this one was acknowledged (auto-claim on).
    Fenced { epoch: u64, error: Error },
    /// Auto-claim used up its claims.
    GaveUpClaiming { claims: u32 },
    /// A batch failed: resent too often.
    ResentTooOften {
        seq: u64,
        resends: u32,
        situation: &'static str,
    },
    /// A batch was resent repeatedly and goes again.
    ResentRepeatedly {
        seq: u64,
        resends: u32,
        situation: &'static str,
        error: Error,
    },
    /// A request failed and is retried after `delay`.
    Retrying {
        seq: u64,
        delay: Duration,
        error: Error,
    },
    /// The producer moved to `epoch`, renumbering `resent_batches` batches from 0.
    NewEpoch { epoch: u64, resent_batches: u64 },
    /// A gap repair moved sequence `from` down to `to`.
    Repaired { from: u64, to: u64 },
}

/// A batch that left the queue.
pub(crate) struct Settled {
    pub(crate) id: u64,
    pub(crate) end_no: u64,
    pub(crate) msgs: u64,
    pub(crate) bytes: usize,
    pub(crate) close: bool,
    pub(crate) outcome: Result<Delivery>,
    /// The body, for its buffer to be used again.
    pub(crate) body: Bytes,
}

/// The sequencing state of one producer session.
pub(crate) struct Machine<B> {
    rules: Rules<B>,
    queue: VecDeque<Entry>,
    next_id: u64,
    epoch: u64,
    next_seq: u64,
    /// Whether the server has accepted a batch of the current epoch (until then only one
    /// request is in flight, since a new epoch must start at sequence 0).
    epoch_confirmed: bool,
    acked_max: Option<u64>,
    /// The highest sequence sent in the current epoch.
    max_sent: Option<u64>,
    /// Whether any batch of this session was acknowledged (200, or a 204 of its own
    /// resend): from then on the session owns its epoch, and a 403 fences it for good.
    acked_any: bool,
    /// Epochs taken by auto-claim (at most `MAX_AUTO_CLAIMS`).
    claims: u32,
    /// A new epoch to switch to as soon as no request is in flight.
    reepoch: Option<u64>,
    fenced_by: Option<u64>,
    /// Requests allowed in flight now: `max_in_flight`, halved whenever the server saw a
    /// batch before an earlier one (a 409 that costs a resend), grown back by one after
    /// `2 × window` batches accepted in a row.
    window: usize,
    clean_run: usize,
    in_flight: usize,
    terminal: Option<Error>,
    out: Vec<Action>,
}

impl<B: Backoff> Machine<B> {
    pub(crate) fn new(rules: Rules<B>, epoch: u64) -> Self {
        let window = rules.max_in_flight;
        Machine {
            rules,
            queue: VecDeque::new(),
            next_id: 0,
            epoch,
            next_seq: 0,
            epoch_confirmed: false,
            acked_max: None,
            max_sent: None,
            acked_any: false,
            claims: 0,
            reepoch: None,
            fenced_by: None,
            window,
            clean_run: 0,
            in_flight: 0,
            terminal: None,
            out: Vec::new(),
        }
    }

    // ------------------------------------------------------------ queries

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub(crate) fn terminal(&self) -> Option<&Error> {
        self.terminal.as_ref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a new epoch waits for the requests in flight.
    pub(crate) fn switching(&self) -> bool {
        self.reepoch.is_some()
    }

    /// Whether the requests allowed now are all taken by unsettled batches.
    pub(crate) fn window_full(&self) -> bool {
        self.live_count(self.window) >= self.window
    }

    /// The actions returned by the events so far.
    pub(crate) fn take_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.out.drain(..)
    }

    // ------------------------------------------------------------ events: input

    /// A sealed batch, queued with the next sequence number (or failed with the error that
    /// stopped the producer).
    pub(crate) fn push_batch(
        &mut self,
        now: Instant,
        first_no: u64,
        msgs: u64,
        bytes: usize,
        body: Bytes,
    ) {
        let id = self.take_id();
        let deadline = sequencer::instant_after(now, self.rules.delivery_timeout);
        let mut entry = Entry::new(id, (NO_SEQ, first_no + msgs), body, (bytes, msgs), deadline);
        if let Some(err) = &self.terminal {
            entry.done(Err(err.clone()));
        } else {
            entry.seq = self.take_seq();
        }
        self.queue.push_back(entry);
    }

    /// Messages that will never be sent, merged with a neighbouring refusal.
    pub(crate) fn push_refused(
        &mut self,
        now: Instant,
        no: u64,
        msgs: u64,
        len: usize,
        err: Error,
    ) {
        if let Some(last) = self.queue.back_mut() {
            if last.seq == NO_SEQ
                && last.end_no == no
                && matches!(&last.outcome, Some(Err(e)) if e.code() == err.code())
            {
                last.end_no += msgs;
                last.msgs += msgs;
                last.bytes += len;
                return;
            }
        }
        let id = self.take_id();
        let mut entry = Entry::new(id, (NO_SEQ, no + msgs), Bytes::new(), (len, msgs), now);
        entry.done(Err(err));
        self.queue.push_back(entry);
    }

    /// The closing request (its body framed already), after the messages before `end_no`.
    pub(crate) fn push_close(&mut self, now: Instant, end_no: u64, body: Bytes) {
        let id = self.take_id();
        let seq = self.take_seq();
        let deadline = sequencer::instant_after(now, self.rules.delivery_timeout);
        let mut entry = Entry::new(id, (seq, end_no), body, (0, 0), deadline);
        entry.close = true;
        self.queue.push_back(entry);
    }

    /// Attempt `attempt` of batch `id` handed its whole body (but the held byte) over.
    pub(crate) fn on_written(&mut self, id: u64, attempt: u32) {
        if let Some(idx) = self.index_of(id) {
            let e = &mut self.queue[idx];
            if e.attempts == attempt {
                e.written = true;
            }
        }
    }

    /// `restart()`: moves to the epoch after the current one (or after the one that fenced
    /// this session) once the requests in flight answer; returns that epoch.
    pub(crate) fn restart(&mut self) -> Result<u64> {
        let above = self
            .fenced_by
            .take()
            .map_or(self.epoch, |f| f.max(self.epoch));
        let Some(t) = sequencer::next_epoch(above) else {
            return Err(Error::invalid(
                "restart: no epoch is left below the protocol's maximum 2^53-1",
            ));
        };
        if matches!(
            self.terminal,
            Some(Error::StaleEpoch { .. } | Error::ProducerSessionConflict { .. })
        ) {
            self.terminal = None;
        }
        self.reepoch = Some(self.reepoch.map_or(t, |r| r.max(t)));
        Ok(t)
    }

    // ------------------------------------------------------------ events: requests

    /// A request task ended without an answer (it panicked or was cancelled): its batch is
    /// sent again.
    pub(crate) fn on_lost(&mut self, id: Option<u64>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(idx) = id.and_then(|id| self.index_of(id)) {
            self.queue[idx].state = St::Waiting;
            self.queue[idx].written = true;
        }
    }

    /// The server's answer to a request of batch `id` sent in `epoch`.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        id: u64,
        epoch: u64,
        result: Result<Accepted>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(idx) = self.index_of(id) else {
            return;
        };
        self.queue[idx].written = true;
        if epoch != self.epoch {
            // Answered under an epoch we have left: the batch is renumbered, send it again.
            if self.queue[idx].state != St::Done {
                self.queue[idx].state = St::Waiting;
            }
            return;
        }
        let err = match result {
            Ok(acc) => return self.on_accepted(idx, epoch, acc),
            Err(err) => err,
        };
        if let Some(t) = &self.terminal {
            let t = t.clone();
            self.queue[idx].done(Err(t));
            return;
        }
        match err {
            Error::StaleEpoch { current_epoch, .. } => {
                self.fenced_by = Some(current_epoch);
                let fenced = Error::StaleEpoch {
                    producer_id: self.rules.producer_id.clone(),
                    epoch: self.epoch,
                    current_epoch,
                };
                self.claim(idx, current_epoch.max(self.epoch), fenced);
            }
            e @ (Error::StreamClosed { .. } | Error::NotFound { .. } | Error::Gone { .. }) => {
                self.fail_all(idx, e);
            }
            Error::BadRequest { .. }
                if sequencer::may_be_unstarted_epoch(self.epoch_confirmed, self.queue[idx].seq) =>
            {
                self.on_gap(now, idx, 0);
            }
            Error::SequenceGap { expected_seq, .. } => {
                if expected_seq < self.queue[idx].seq {
                    self.window = (self.window / 2).max(1);
                    self.clean_run = 0;
                }
                self.on_gap(now, idx, expected_seq);
            }
            e if e.is_retryable() => {
                if sequencer::never_stored(&e) {
                    let entry = &mut self.queue[idx];
                    entry.sent_here = entry.sent_here.saturating_sub(1);
                }
                self.retry_later(now, idx, e)
            }
            e => self.queue[idx].done(Err(e)),
        }
    }

    fn on_accepted(&mut self, idx: usize, epoch: u64, acc: Accepted) {
        let e = &self.queue[idx];
        let ack =
            sequencer::classify_ack(acc.duplicate, e.sent_here, acc.server_seq, self.max_sent);
        if ack == Ack::Foreign {
            return self.on_session_conflict(idx, acc.server_seq);
        }
        self.epoch_confirmed = true;
        self.acked_any = true;
        self.clean_run += 1;
        if self.window < self.rules.max_in_flight && self.clean_run >= 2 * self.window {
            self.window += 1;
            self.clean_run = 0;
        }
        let seq = self.queue[idx].seq;
        self.acked_max = Some(self.acked_max.map_or(seq, |a| a.max(seq)));
        self.queue[idx].done(Ok(Delivery {
            offset: acc.offset,
            duplicate: acc.duplicate,
            epoch,
            seq,
        }));
    }

    /// Another session owns or shares the epoch: claims the epoch after `above` when the
    /// rules allow it (the batch is then sent again in it), or stops the producer with `err`.
    fn claim(&mut self, idx: usize, above: u64, err: Error) {
        let standing = Standing {
            auto_claim: self.rules.auto_claim,
            acked_any: self.acked_any,
            claims: self.claims,
            pending: self.reepoch.is_some(),
        };
        match sequencer::decide_claim(standing, above) {
            Claim::To { epoch, new } => {
                if new {
                    self.claims += 1;
                    self.note(Note::Claiming {
                        epoch: self.epoch,
                        claiming: epoch,
                        error: err,
                    });
                }
                self.queue[idx].state = St::Waiting;
                self.reepoch = Some(self.reepoch.map_or(epoch, |t| t.max(epoch)));
            }
            Claim::Fenced => {
                if self.rules.auto_claim {
                    self.note(Note::Fenced {
                        epoch: self.epoch,
                        error: err.clone(),
                    });
                }
                self.fail_all(idx, err);
            }
            Claim::Exhausted => {
                self.note(Note::GaveUpClaiming {
                    claims: self.claims,
                });
                self.fail_all(idx, err);
            }
            Claim::NoEpochLeft => self.fail_all(
                idx,
                Error::parse(
                    "producer epoch",
                    "no epoch is left to claim below the protocol's maximum 2^53-1",
                ),
            ),
        }
    }

    /// A 204 for a batch this session never had stored: another session of this producer id
    /// wrote these sequence numbers in this epoch.
    fn on_session_conflict(&mut self, idx: usize, server_seq: Option<u64>) {
        let err = Error::ProducerSessionConflict {
            producer_id: self.rules.producer_id.clone(),
            epoch: self.epoch,
            server_seq,
        };
        if let Some(t) = &self.terminal {
            let t = t.clone();
            self.queue[idx].done(Err(t));
            return;
        }
        self.claim(idx, self.epoch, err);
    }

    /// Sends a batch again after the server's sequencing answer, with backoff, within the
    /// delivery deadline and at most `MAX_PROTOCOL_RESENDS` times.
    fn resend_later(&mut self, now: Instant, idx: usize, err: Error, situation: &'static str) {
        let e = &mut self.queue[idx];
        e.resends = e.resends.saturating_add(1);
        let resends = e.resends;
        let delay = self.rules.backoff.delay(resends - 1, None);
        let (seq, msgs, deadline) = (e.seq, e.msgs, e.deadline);
        match sequencer::resend(resends, sequencer::instant_after(now, delay) > deadline) {
            Resend::OverBudget => {
                self.note(Note::ResentTooOften {
                    seq,
                    resends,
                    situation,
                });
                self.queue[idx].done(Err(err));
            }
            Resend::PastDeadline => {
                let what = format!(
                    "delivering batch {seq} of epoch {} ({msgs} messages) within {:?}: \
                     {situation}, resent {} times; last answer: {err}",
                    self.epoch,
                    self.rules.delivery_timeout,
                    resends - 1
                );
                self.queue[idx].done(Err(Error::timeout_after(what, &err)));
            }
            go => {
                if go == Resend::GoAndWarn {
                    self.note(Note::ResentRepeatedly {
                        seq,
                        resends,
                        situation,
                        error: err,
                    });
                }
                self.launch(idx, delay);
            }
        }
    }

    fn retry_later(&mut self, now: Instant, idx: usize, err: Error) {
        let e = &self.queue[idx];
        let retry_no = e.attempts.saturating_sub(1);
        if !self.rules.backoff.allows(retry_no) {
            let attempts = e.attempts;
            self.queue[idx].done(Err(Error::gave_up(err, attempts)));
            return;
        }
        let delay = self.rules.backoff.delay(retry_no, err.retry_after());
        if sequencer::instant_after(now, delay) > e.deadline {
            let what = format!(
                "delivering batch {} of epoch {} ({} messages) within {:?}; the batch may or may \
                 not have been stored; last error: {err}",
                e.seq, self.epoch, e.msgs, self.rules.delivery_timeout
            );
            self.queue[idx].done(Err(Error::timeout_after(what, &err)));
            return;
        }
        self.note(Note::Retrying {
            seq: e.seq,
            delay,
            error: err,
        });
        self.launch(idx, delay);
    }

    fn on_gap(&mut self, now: Instant, idx: usize, expected: u64) {
        let seq = self.queue[idx].seq;
        self.queue[idx].state = St::Waiting;
        let gap = Error::SequenceGap {
            expected_seq: expected,
            received_seq: seq,
        };
        let earlier_live = self.earlier_live(idx, expected, seq);
        match sequencer::on_gap(expected, seq, earlier_live, self.acked_max) {
            Gap::ResendSame => self.resend_later(
                now,
                idx,
                gap,
                "the server answered 409 expecting the sequence sent",
            ),
            Gap::Fail => self.queue[idx].done(Err(gap)),
            Gap::ResendStale => self.resend_later(
                now,
                idx,
                gap,
                "the server answered 409 expecting an already acknowledged sequence",
            ),
            Gap::Wait => {
                let e = &mut self.queue[idx];
                e.state = St::Blocked(expected);
                e.resends = e.resends.saturating_add(1);
                if e.resends > sequencer::MAX_PROTOCOL_RESENDS {
                    self.queue[idx].done(Err(gap));
                }
            }
            Gap::Shift(shift) => {
                let e = &mut self.queue[idx];
                e.resends = e.resends.saturating_add(1);
                if e.resends > sequencer::MAX_PROTOCOL_RESENDS {
                    self.queue[idx].done(Err(gap));
                    return;
                }
                // The sequences expected..seq belong to batches that failed without being
                // stored: move this batch and every later one down so the stream has no hole.
                // None of them was sent under its new number (numbers only go down within an
                // epoch), so none has an attempt there that a 204 could be the duplicate of.
                for e in self.queue.iter_mut().skip(idx) {
                    if e.state != St::Done && e.seq != NO_SEQ {
                        e.seq = e.seq.saturating_sub(shift);
                        e.sent_here = 0;
                    }
                }
                self.next_seq = self.next_seq.saturating_sub(shift);
                self.note(Note::Repaired {
                    from: seq,
                    to: expected,
                });
            }
        }
    }

    /// A failure that ends the producer (or the stream): every batch not in flight fails
    /// with it now, in-flight ones when they answer; later appends fail with it too.
    fn fail_all(&mut self, idx: usize, err: Error) {
        self.queue[idx].done(Err(err.clone()));
        for e in self.queue.iter_mut() {
            if e.state != St::Done && e.state != St::InFlight {
                e.done(Err(err.clone()));
            }
        }
        self.terminal = Some(err.clone());
        self.out.push(Action::Stop(err));
    }

    // ------------------------------------------------------------ events: time

    /// Moves everything forward that can move at `now`: a pending new epoch, batches a 409
    /// blocked, sends within the window, held body bytes.
    pub(crate) fn poll(&mut self, now: Instant) {
        self.maybe_reepoch();
        self.release_blocked();
        self.start_sends(now);
        self.release_holds();
    }

    fn maybe_reepoch(&mut self) {
        let Some(target) = self.reepoch else {
            return;
        };
        if self.in_flight > 0 {
            return;
        }
        self.reepoch = None;
        self.epoch = target;
        self.epoch_confirmed = false;
        self.acked_max = None;
        self.max_sent = None;
        let mut seq = 0;
        for e in self.queue.iter_mut().filter(|e| e.state != St::Done) {
            e.seq = seq;
            e.state = St::Waiting;
            e.sent_here = 0;
            seq += 1;
        }
        self.next_seq = seq;
        self.note(Note::NewEpoch {
            epoch: target,
            resent_batches: seq,
        });
    }

    fn release_blocked(&mut self) {
        let limit = self.rules.max_in_flight;
        let mut live = 0;
        for i in 0..self.queue.len() {
            if live >= limit {
                break;
            }
            let (state, seq) = (self.queue[i].state, self.queue[i].seq);
            if state == St::Done {
                continue;
            }
            live += 1;
            if let St::Blocked(expected) = state {
                if !self.must_wait(i, expected, seq) {
                    self.queue[i].state = St::Waiting;
                }
            }
        }
    }

    /// Whether the batch at `idx` (sequence `seq`) must wait for an earlier live batch whose
    /// sequence lies in `expected..seq` before it is sent again.
    fn must_wait(&self, idx: usize, expected: u64, seq: u64) -> bool {
        if self.acked_max.is_some_and(|a| a >= expected) {
            return false;
        }
        self.earlier_live(idx, expected, seq)
    }

    /// Whether a live batch before `idx` holds a sequence in `expected..seq`.
    fn earlier_live(&self, idx: usize, expected: u64, seq: u64) -> bool {
        self.queue
            .iter()
            .take(idx)
            .any(|e| e.state != St::Done && e.seq >= expected && e.seq < seq)
    }

    fn start_sends(&mut self, now: Instant) {
        if self.reepoch.is_some() {
            return;
        }
        // One body on the wire at a time, in sequence order (see `GatedBody`).
        if self
            .queue
            .iter()
            .any(|e| e.state == St::InFlight && !e.written)
        {
            return;
        }
        let window = if self.epoch_confirmed { self.window } else { 1 };
        let mut live = 0;
        for i in 0..self.queue.len() {
            if live >= window || self.in_flight >= self.rules.max_in_flight {
                break;
            }
            match self.queue[i].state {
                St::Done => continue,
                St::Waiting if self.queue[i].attempts > 0 && now >= self.queue[i].deadline => {
                    let e = &self.queue[i];
                    let what = format!(
                        "delivering batch {} of epoch {} ({} messages) within {:?} after {} \
                         attempts; the batch may or may not have been stored",
                        e.seq, self.epoch, e.msgs, self.rules.delivery_timeout, e.attempts
                    );
                    self.queue[i].done(Err(Error::timeout(what)));
                    continue;
                }
                St::Waiting => {
                    self.launch(i, Duration::ZERO);
                    live += 1;
                    if !self.queue[i].written {
                        break;
                    }
                    continue;
                }
                St::InFlight | St::Blocked(_) => {}
            }
            live += 1;
        }
    }

    /// Lets the body of the first request still waiting for its answer end (see
    /// `GatedBody`): a later body completes only once the server has answered every earlier
    /// one, so the server takes the batches in sequence order. A request waiting out a
    /// backoff holds back no later one.
    fn release_holds(&mut self) {
        for e in self.queue.iter_mut() {
            if e.state != St::InFlight {
                continue;
            }
            if e.held {
                e.held = false;
                self.out.push(Action::Release { id: e.id });
            }
            if !e.delayed {
                break;
            }
        }
    }

    fn launch(&mut self, idx: usize, delay: Duration) {
        let e = &mut self.queue[idx];
        e.attempts = e.attempts.saturating_add(1);
        e.sent_here = e.sent_here.saturating_add(1);
        e.state = St::InFlight;
        e.written = e.body.is_empty();
        e.delayed = !delay.is_zero();
        e.held = true;
        let seq = e.seq;
        self.out.push(Action::Send(Sending {
            id: e.id,
            attempt: e.attempts,
            epoch: self.epoch,
            seq,
            close: e.close,
            body: e.body.clone(),
            delay,
        }));
        self.max_sent = Some(self.max_sent.map_or(seq, |m| m.max(seq)));
        self.in_flight += 1;
    }

    // ------------------------------------------------------------ settling

    /// The first batch, when it has settled.
    pub(crate) fn take_settled(&mut self) -> Option<Settled> {
        if self.queue.front()?.state != St::Done {
            return None;
        }
        let e = self.queue.pop_front()?;
        Some(Settled {
            id: e.id,
            end_no: e.end_no,
            msgs: e.msgs,
            bytes: e.bytes,
            close: e.close,
            outcome: e
                .outcome
                .unwrap_or_else(|| Err(Error::invalid("a batch settled without an outcome"))),
            body: e.body,
        })
    }

    // ------------------------------------------------------------ helpers

    /// Unsettled batches at the front, up to `limit`.
    fn live_count(&self, limit: usize) -> usize {
        self.queue
            .iter()
            .filter(|e| e.state != St::Done)
            .take(limit)
            .count()
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        let first = self.queue.front()?.id;
        let idx = usize::try_from(id.checked_sub(first)?).ok()?;
        (idx < self.queue.len() && self.queue[idx].id == id).then_some(idx)
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn note(&mut self, note: Note) {
        self.out.push(Action::Note(note));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::offset::Offset;
    use crate::producer::MAX_PROTOCOL_INT;
    use sequencer::{MAX_AUTO_CLAIMS, MAX_PROTOCOL_RESENDS};

    /// Retries `n` = 0, 1, 2 allowed; delay 10 ms × (n + 1), or the server's `Retry-After`.
    struct Fixed;

    impl Backoff for Fixed {
        fn allows(&self, retry_no: u32) -> bool {
            retry_no < 3
        }

        fn delay(&self, retry_no: u32, retry_after: Option<Duration>) -> Duration {
            retry_after.unwrap_or(Duration::from_millis(10 * (u64::from(retry_no) + 1)))
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn machine(auto_claim: bool, max_in_flight: usize, timeout: Duration) -> Machine<Fixed> {
        Machine::new(
            Rules {
                producer_id: "writer".to_owned(),
                auto_claim,
                max_in_flight,
                delivery_timeout: timeout,
                backoff: Fixed,
            },
            0,
        )
    }

    /// `n` one-message batches (message numbers 0..n).
    fn with_batches(m: &mut Machine<Fixed>, now: Instant, n: u64) {
        for i in 0..n {
            m.push_batch(now, i, 1, 1, Bytes::from(format!("[{i}]")));
        }
    }

    fn stored(seq: u64) -> Result<Accepted> {
        Ok(Accepted {
            offset: Some(Offset::from(format!("o{seq}"))),
            duplicate: false,
            server_seq: None,
        })
    }

    fn duplicate(server_seq: Option<u64>) -> Result<Accepted> {
        Ok(Accepted {
            offset: None,
            duplicate: true,
            server_seq,
        })
    }

    fn stale(epoch: u64, current_epoch: u64) -> Result<Accepted> {
        Err(Error::StaleEpoch {
            producer_id: "writer".to_owned(),
            epoch,
            current_epoch,
        })
    }

    fn gap(expected_seq: u64, received_seq: u64) -> Result<Accepted> {
        Err(Error::SequenceGap {
            expected_seq,
            received_seq,
        })
    }

    fn network() -> Error {
        Error::Network {
            source: None,
            url: "http://127.0.0.1:1/s".to_owned(),
            message: "connection reset".to_owned(),
        }
    }

    /// The actions returned since the last call, one line each.
    fn actions(m: &mut Machine<Fixed>) -> Vec<String> {
        m.take_actions()
            .map(|a| match a {
                Action::Send(Sending {
                    id,
                    attempt,
                    epoch,
                    seq,
                    close,
                    body,
                    delay,
                }) => format!(
                    "send {id}#{attempt} e{epoch} s{seq}{} {:?} +{}ms",
                    if close { " close" } else { "" },
                    body,
                    delay.as_millis()
                ),
                Action::Release { id } => format!("release {id}"),
                Action::Stop(e) => format!("stop {}: {e}", e.code()),
                Action::Note(n) => format!("note {}", note(&n)),
            })
            .collect()
    }

    fn note(n: &Note) -> String {
        match n {
            Note::Claiming {
                epoch,
                claiming,
                error,
            } => format!("claiming e{epoch}->e{claiming} ({})", error.code()),
            Note::Fenced { epoch, error } => format!("fenced e{epoch} ({})", error.code()),
            Note::GaveUpClaiming { claims } => format!("gave up after {claims} claims"),
            Note::ResentTooOften { seq, resends, .. } => {
                format!("s{seq} resent too often ({resends})")
            }
            Note::ResentRepeatedly { seq, resends, .. } => {
                format!("s{seq} resent repeatedly ({resends})")
            }
            Note::Retrying { seq, delay, error } => {
                format!(
                    "retrying s{seq} +{}ms ({})",
                    delay.as_millis(),
                    error.code()
                )
            }
            Note::NewEpoch {
                epoch,
                resent_batches,
            } => format!("epoch e{epoch}, {resent_batches} batches renumbered"),
            Note::Repaired { from, to } => format!("repaired s{from}->s{to}"),
        }
    }

    /// The batches settled since the last call, one line each.
    fn settled(m: &mut Machine<Fixed>) -> Vec<String> {
        std::iter::from_fn(|| m.take_settled())
            .map(|s| match s.outcome {
                Ok(d) => format!(
                    "{} ok e{} s{}{}",
                    s.id,
                    d.epoch,
                    d.seq,
                    if d.duplicate { " duplicate" } else { "" }
                ),
                Err(e) => format!("{} {}: {e}", s.id, e.code()),
            })
            .collect()
    }

    /// Sends batch 0 and acknowledges it, so the epoch is confirmed.
    fn confirm(m: &mut Machine<Fixed>, now: Instant) {
        m.poll(now);
        m.on_written(0, 1);
        m.on_answer(now, 0, 0, stored(0));
        assert_eq!(settled(m), ["0 ok e0 s0"]);
        actions(m);
    }

    #[test]
    fn a_new_epoch_sends_one_batch_then_pipelines_with_held_bytes() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 3);
        m.poll(now);
        // Only one request until the server accepted a batch of the epoch.
        assert_eq!(
            actions(&mut m),
            ["send 0#1 e0 s0 b\"[0]\" +0ms", "release 0"]
        );
        m.on_written(0, 1);
        m.poll(now);
        assert_eq!(actions(&mut m), Vec::<String>::new());
        m.on_answer(now, 0, 0, stored(0));
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 1#1 e0 s1 b\"[1]\" +0ms", "release 1"]
        );
        // The next body starts once the previous one is written, and its last byte is held
        // until the previous request is answered.
        m.poll(now);
        assert_eq!(actions(&mut m), Vec::<String>::new());
        m.on_written(1, 1);
        m.poll(now);
        assert_eq!(actions(&mut m), ["send 2#1 e0 s2 b\"[2]\" +0ms"]);
        m.on_written(2, 1);
        m.on_answer(now, 1, 0, stored(1));
        m.poll(now);
        assert_eq!(actions(&mut m), ["release 2"]);
        m.on_answer(now, 2, 0, stored(2));
        assert_eq!(settled(&mut m), ["0 ok e0 s0", "1 ok e0 s1", "2 ok e0 s2"]);
        assert!(m.is_empty());
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn a_204_on_a_first_attempt_claims_a_new_epoch_and_renumbers_from_zero() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 3);
        m.poll(now);
        actions(&mut m);
        m.on_written(0, 1);
        // A restarted writer: the server holds sequences of an earlier session.
        m.on_answer(now, 0, 0, duplicate(Some(41)));
        assert_eq!(
            actions(&mut m),
            ["note claiming e0->e1 (PRODUCER_SESSION_CONFLICT)"]
        );
        assert_eq!(settled(&mut m), Vec::<String>::new());
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            [
                "note epoch e1, 3 batches renumbered",
                "send 0#2 e1 s0 b\"[0]\" +0ms",
                "release 0"
            ]
        );
        assert_eq!((m.epoch(), m.next_seq()), (1, 3));
        m.on_written(0, 2);
        m.on_answer(now, 0, 1, stored(0));
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 1#1 e1 s1 b\"[1]\" +0ms", "release 1"]
        );
        m.on_written(1, 1);
        m.poll(now);
        assert_eq!(actions(&mut m), ["send 2#1 e1 s2 b\"[2]\" +0ms"]);
        m.on_answer(now, 1, 1, stored(1));
        m.on_answer(now, 2, 1, stored(2));
        assert_eq!(settled(&mut m), ["0 ok e1 s0", "1 ok e1 s1", "2 ok e1 s2"]);
    }

    #[test]
    fn without_auto_claim_a_foreign_duplicate_fails_everything_unsent() {
        let now = Instant::now();
        let mut m = machine(false, 4, HOUR);
        with_batches(&mut m, now, 2);
        m.poll(now);
        actions(&mut m);
        m.on_answer(now, 0, 0, duplicate(Some(9)));
        let conflict = "PRODUCER_SESSION_CONFLICT: producer id \"writer\" epoch 0: another \
                        session of this producer id has written in this epoch (the server holds \
                        sequence 9); the batch was not stored (use a new epoch: auto_claim or \
                        restart())";
        assert_eq!(actions(&mut m), [format!("stop {conflict}")]);
        assert_eq!(
            settled(&mut m),
            [format!("0 {conflict}"), format!("1 {conflict}")]
        );
        // Later batches fail with it too, and nothing is sent.
        m.push_batch(now, 2, 1, 1, Bytes::from_static(b"[2]"));
        m.poll(now);
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(settled(&mut m), [format!("2 {conflict}")]);
    }

    #[test]
    fn a_204_above_anything_sent_is_foreign_but_our_own_resend_is_a_duplicate() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        m.on_answer(now, 0, 0, Err(network()));
        assert_eq!(
            actions(&mut m),
            [
                "note retrying s0 +10ms (NETWORK_ERROR)",
                "send 0#2 e0 s0 b\"[0]\" +10ms"
            ]
        );
        // The resend meets the server holding sequence 7 of this epoch: not ours.
        m.on_answer(now, 0, 0, duplicate(Some(7)));
        assert_eq!(
            actions(&mut m),
            ["note claiming e0->e1 (PRODUCER_SESSION_CONFLICT)"]
        );

        // The same resend answered 204 at our own sequence: the lost first answer's batch.
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 1);
        m.poll(now);
        m.on_answer(now, 0, 0, Err(network()));
        actions(&mut m);
        m.on_answer(now, 0, 0, duplicate(Some(0)));
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(settled(&mut m), ["0 ok e0 s0 duplicate"]);
    }

    #[test]
    fn a_session_fenced_after_acknowledgements_stops_without_claiming_back() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 3);
        confirm(&mut m, now);
        m.poll(now);
        m.on_written(1, 1);
        m.poll(now);
        actions(&mut m);
        // Batch 1 is fenced by a newer session; batch 2 is still in flight.
        m.on_answer(now, 1, 0, stale(0, 1));
        let fenced = "STALE_EPOCH: producer id \"writer\": stale producer epoch 0, the server's \
                      current epoch is 1";
        assert_eq!(
            actions(&mut m),
            [
                "note fenced e0 (STALE_EPOCH)".to_owned(),
                format!("stop {fenced}")
            ]
        );
        assert_eq!(settled(&mut m), [format!("1 {fenced}")]);
        // The batch in flight fails with the same error when it answers, whatever it is.
        m.on_answer(now, 2, 0, Err(network()));
        assert_eq!(settled(&mut m), [format!("2 {fenced}")]);
        m.poll(now);
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(m.epoch(), 0);
        // restart() moves past the epoch that fenced it and lifts the stop.
        assert_eq!(m.restart().unwrap(), 2);
        assert!(m.terminal().is_none());
    }

    #[test]
    fn a_409_repeating_the_sent_sequence_is_bounded_by_the_budget() {
        let now = Instant::now();
        let mut m = machine(true, 1, Duration::from_secs(100_000));
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        for resend in 1..=MAX_PROTOCOL_RESENDS {
            m.on_answer(now, 0, 0, gap(0, 0));
            let send = format!(
                "send 0#{} e0 s0 b\"[0]\" +{}ms",
                resend + 1,
                10 * u64::from(resend)
            );
            let expected = if resend >= 8 && resend.is_power_of_two() {
                vec![format!("note s0 resent repeatedly ({resend})"), send]
            } else {
                vec![send]
            };
            assert_eq!(actions(&mut m), expected, "resend {resend}");
        }
        m.on_answer(now, 0, 0, gap(0, 0));
        assert_eq!(
            actions(&mut m),
            [format!(
                "note s0 resent too often ({})",
                MAX_PROTOCOL_RESENDS + 1
            )]
        );
        assert_eq!(
            settled(&mut m),
            ["0 SEQUENCE_GAP: producer sequence gap: server expected 0, received 0"]
        );
    }

    #[test]
    fn a_409_repeating_the_sent_sequence_is_bounded_by_the_deadline() {
        let now = Instant::now();
        let mut m = machine(true, 1, Duration::from_millis(25));
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        m.on_answer(now, 0, 0, gap(0, 0));
        m.on_answer(now, 0, 0, gap(0, 0));
        assert_eq!(
            actions(&mut m),
            [
                "send 0#2 e0 s0 b\"[0]\" +10ms",
                "send 0#3 e0 s0 b\"[0]\" +20ms"
            ]
        );
        // The third backoff (30 ms) would end after the 25 ms deadline.
        m.on_answer(now, 0, 0, gap(0, 0));
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(
            settled(&mut m),
            ["0 TIMEOUT: timed out: delivering batch 0 of epoch 0 (1 messages) within 25ms: the \
              server answered 409 expecting the sequence sent, resent 2 times; last answer: \
              producer sequence gap: server expected 0, received 0"]
        );
    }

    #[test]
    fn repeated_403s_under_auto_claim_are_bounded() {
        let now = Instant::now();
        let mut m = machine(true, 1, HOUR);
        with_batches(&mut m, now, 1);
        for claim in 1..=u64::from(MAX_AUTO_CLAIMS) {
            m.poll(now);
            let epoch = claim - 1;
            let mut expected = Vec::new();
            if claim > 1 {
                expected.push(format!("note epoch e{epoch}, 1 batches renumbered"));
            }
            expected.push(format!("send 0#{claim} e{epoch} s0 b\"[0]\" +0ms"));
            expected.push("release 0".to_owned());
            assert_eq!(actions(&mut m), expected);
            m.on_answer(now, 0, epoch, stale(epoch, epoch));
            assert_eq!(
                actions(&mut m),
                [format!("note claiming e{epoch}->e{claim} (STALE_EPOCH)")]
            );
        }
        m.poll(now);
        actions(&mut m);
        let last = u64::from(MAX_AUTO_CLAIMS);
        m.on_answer(now, 0, last, stale(last, last));
        let err = format!(
            "STALE_EPOCH: producer id \"writer\": stale producer epoch {last}, the server's \
             current epoch is {last}"
        );
        assert_eq!(
            actions(&mut m),
            [
                format!("note gave up after {MAX_AUTO_CLAIMS} claims"),
                format!("stop {err}")
            ]
        );
        assert_eq!(settled(&mut m), [format!("0 {err}")]);
    }

    #[test]
    fn a_403_naming_the_last_protocol_epoch_is_a_protocol_error() {
        let now = Instant::now();
        for current in [MAX_PROTOCOL_INT, u64::MAX] {
            let mut m = machine(true, 1, HOUR);
            with_batches(&mut m, now, 1);
            m.poll(now);
            actions(&mut m);
            m.on_answer(now, 0, 0, stale(0, current));
            let err = "PARSE_ERROR: could not parse producer epoch: no epoch is left to claim \
                       below the protocol's maximum 2^53-1";
            assert_eq!(actions(&mut m), [format!("stop {err}")]);
            assert_eq!(settled(&mut m), [format!("0 {err}")]);
        }
    }

    #[test]
    fn a_400_on_a_new_epoch_fails_the_batch_and_the_next_is_repaired_down() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 2);
        m.poll(now);
        m.on_answer(now, 0, 0, duplicate(None));
        m.poll(now);
        actions(&mut m);
        assert_eq!(m.epoch(), 1);
        let bad = Error::BadRequest {
            url: "http://127.0.0.1:1/s".to_owned(),
            message: None,
        };
        m.on_answer(now, 0, 1, Err(bad));
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(
            settled(&mut m),
            ["0 BAD_REQUEST: bad request to http://127.0.0.1:1/s"]
        );
        // Not retried: the next batch goes, and the server expects sequence 0 from it.
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 1#1 e1 s1 b\"[1]\" +0ms", "release 1"]
        );
        m.on_answer(now, 1, 1, gap(0, 1));
        assert_eq!(actions(&mut m), ["note repaired s1->s0"]);
        assert_eq!(m.next_seq(), 1);
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 1#2 e1 s0 b\"[1]\" +0ms", "release 1"]
        );
        m.on_answer(now, 1, 1, stored(0));
        assert_eq!(settled(&mut m), ["1 ok e1 s0"]);
    }

    #[test]
    fn a_400_to_a_later_batch_of_an_unstarted_epoch_moves_it_to_sequence_0() {
        // The protocol's answer to a new epoch that starts above sequence 0 is a 400 (the
        // reference server gives it once it holds an older epoch of the id), not a 409.
        let now = Instant::now();
        let bad = || {
            Err(Error::BadRequest {
                url: "http://127.0.0.1:1/s".to_owned(),
                message: Some("New epoch must start with sequence 0".to_owned()),
            })
        };
        let mut m = machine(false, 4, HOUR);
        with_batches(&mut m, now, 3);
        m.poll(now);
        actions(&mut m);
        // Batch 0 is refused (not stored): the epoch has no acknowledgement yet.
        m.on_answer(now, 0, 0, bad());
        assert_eq!(settled(&mut m).len(), 1);
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 1#1 e0 s1 b\"[1]\" +0ms", "release 1"]
        );
        m.on_answer(now, 1, 0, bad());
        assert_eq!(actions(&mut m), ["note repaired s1->s0"]);
        assert_eq!(m.next_seq(), 2);
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 1#2 e0 s0 b\"[1]\" +0ms", "release 1"]
        );
        // At sequence 0 a 400 is the batch's own refusal: it fails, and is not moved again.
        m.on_answer(now, 1, 0, bad());
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(
            settled(&mut m),
            ["1 BAD_REQUEST: bad request to http://127.0.0.1:1/s: New epoch must start with sequence 0"]
        );
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 2#1 e0 s1 b\"[2]\" +0ms", "release 2"]
        );
        m.on_answer(now, 2, 0, bad());
        assert_eq!(actions(&mut m), ["note repaired s1->s0"]);
        m.poll(now);
        actions(&mut m);
        m.on_answer(now, 2, 0, stored(0));
        assert_eq!(settled(&mut m), ["2 ok e0 s0"]);
        // Once the epoch has an acknowledgement a 400 is the batch's own, whatever its number.
        with_batches(&mut m, now, 1);
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 3#1 e0 s1 b\"[0]\" +0ms", "release 3"]
        );
        m.on_answer(now, 3, 0, bad());
        assert_eq!(settled(&mut m).len(), 1);
        assert_eq!(m.next_seq(), 2);
    }

    #[test]
    fn an_attempt_turned_away_unstored_does_not_make_a_204_our_own_duplicate() {
        // A restarted writer at the same epoch: its first attempt meets a 503 (or a 429, or a
        // refused connection), the retry a 204 for the earlier session's sequence 0. Nothing
        // of this batch was stored: another session's write, not a lost answer of ours.
        let now = Instant::now();
        let refused = || Error::Network {
            source: Some(crate::error::Cause::new(
                crate::error::CauseKind::ConnectionRefused,
                "connection refused",
            )),
            url: "http://127.0.0.1:1/s".to_owned(),
            message: "connection refused".to_owned(),
        };
        let limited = || Error::RateLimited {
            url: "http://127.0.0.1:1/s".to_owned(),
            retry_after: None,
            message: None,
        };
        for first in [Error::example(ErrorCode::Busy), limited(), refused()] {
            let code = first.code();
            let mut m = machine(false, 1, HOUR);
            with_batches(&mut m, now, 1);
            m.poll(now);
            actions(&mut m);
            m.on_answer(now, 0, 0, Err(first));
            actions(&mut m);
            m.on_answer(now, 0, 0, duplicate(Some(0)));
            let out = settled(&mut m);
            assert_eq!(out.len(), 1, "{code}");
            assert!(
                out[0].starts_with("0 PRODUCER_SESSION_CONFLICT"),
                "{code}: {out:?}"
            );
        }
        // A reset may come after the server stored the batch: then a 204 is our own.
        let mut m = machine(false, 1, HOUR);
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        m.on_answer(now, 0, 0, Err(network()));
        actions(&mut m);
        m.on_answer(now, 0, 0, duplicate(Some(0)));
        assert_eq!(settled(&mut m), ["0 ok e0 s0 duplicate"]);
    }

    #[test]
    fn a_batch_moved_down_is_not_our_duplicate_at_its_new_number() {
        // Batch 1 times out (it may have been stored after all); batch 2 is told the server
        // expects 1 and moves there; batch 1's late request then lands, and batch 2's resend
        // at 1 is answered 204. That sequence holds batch 1's data, not batch 2's.
        let now = Instant::now();
        let mut m = machine(false, 4, Duration::from_millis(5));
        with_batches(&mut m, now, 3);
        confirm(&mut m, now);
        m.poll(now);
        m.on_written(1, 1);
        m.poll(now);
        m.on_written(2, 1);
        m.poll(now);
        actions(&mut m);
        m.on_answer(now, 1, 0, Err(network()));
        assert_eq!(settled(&mut m).len(), 1, "batch 1 timed out");
        m.on_answer(now, 2, 0, gap(1, 2));
        assert_eq!(actions(&mut m), ["note repaired s2->s1"]);
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 2#2 e0 s1 b\"[2]\" +0ms", "release 2"]
        );
        m.on_answer(now, 2, 0, duplicate(Some(1)));
        let out = settled(&mut m);
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with("2 PRODUCER_SESSION_CONFLICT"), "{out:?}");
    }

    #[test]
    fn deadlines_past_what_an_instant_holds_are_far_off_not_a_panic() {
        let now = Instant::now();
        let mut m = machine(false, 1, Duration::MAX);
        with_batches(&mut m, now, 1);
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            ["send 0#1 e0 s0 b\"[0]\" +0ms", "release 0"]
        );
        m.on_answer(now, 0, 0, Err(network()));
        assert_eq!(
            actions(&mut m),
            [
                "note retrying s0 +10ms (NETWORK_ERROR)",
                "send 0#2 e0 s0 b\"[0]\" +10ms"
            ]
        );
        let far = sequencer::instant_after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(50 * 365 * 24 * 3600));
        assert_eq!(
            sequencer::instant_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn a_409_behind_an_earlier_batch_in_flight_waits_for_it_and_halves_the_window() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 5);
        confirm(&mut m, now);
        for id in 1..=3 {
            m.poll(now);
            m.on_written(id, 1);
        }
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            [
                "send 1#1 e0 s1 b\"[1]\" +0ms",
                "release 1",
                "send 2#1 e0 s2 b\"[2]\" +0ms",
                "send 3#1 e0 s3 b\"[3]\" +0ms",
                "send 4#1 e0 s4 b\"[4]\" +0ms"
            ]
        );
        // Batch 3 reached the server before batch 1 and 2: it waits for them.
        m.on_answer(now, 3, 0, gap(1, 3));
        m.poll(now);
        assert_eq!(actions(&mut m), Vec::<String>::new());
        m.on_answer(now, 1, 0, stored(1));
        m.poll(now);
        assert_eq!(actions(&mut m), ["release 2"]);
        m.on_answer(now, 2, 0, stored(2));
        // The window was halved (4 -> 2): batches 3 and 4 fill it.
        assert!(m.window_full());
        m.on_written(4, 1);
        m.poll(now);
        // Batch 3 goes again, and its body ends before batch 4's.
        assert_eq!(
            actions(&mut m),
            ["send 3#2 e0 s3 b\"[3]\" +0ms", "release 3"]
        );
        m.on_written(3, 2);
        m.on_answer(now, 3, 0, stored(3));
        m.poll(now);
        assert_eq!(actions(&mut m), ["release 4"]);
        m.on_answer(now, 4, 0, stored(4));
        assert_eq!(
            settled(&mut m),
            ["1 ok e0 s1", "2 ok e0 s2", "3 ok e0 s3", "4 ok e0 s4"]
        );
    }

    #[test]
    fn restart_waits_for_the_request_in_flight_then_renumbers_from_zero() {
        let now = Instant::now();
        let mut m = machine(true, 4, HOUR);
        with_batches(&mut m, now, 3);
        confirm(&mut m, now);
        m.poll(now);
        actions(&mut m);
        // restart() while batch 1 is in flight: the switch waits for its answer.
        assert_eq!(m.restart().unwrap(), 1);
        m.on_written(1, 1);
        m.poll(now);
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert!(m.switching());
        m.on_answer(now, 1, 0, stored(1));
        m.poll(now);
        assert_eq!(
            actions(&mut m),
            [
                "note epoch e1, 1 batches renumbered",
                "send 2#1 e1 s0 b\"[2]\" +0ms",
                "release 2"
            ]
        );
        m.on_answer(now, 2, 1, stored(0));
        assert_eq!(settled(&mut m), ["1 ok e0 s1", "2 ok e1 s0"]);
    }

    #[test]
    fn network_errors_retry_with_the_servers_wait_within_the_budget() {
        let now = Instant::now();
        let mut m = machine(true, 1, HOUR);
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        let limited = Error::RateLimited {
            url: "http://127.0.0.1:1/s".to_owned(),
            retry_after: Some(Duration::from_secs(2)),
            message: None,
        };
        m.on_answer(now, 0, 0, Err(limited));
        assert_eq!(
            actions(&mut m),
            [
                "note retrying s0 +2000ms (RATE_LIMITED)",
                "send 0#2 e0 s0 b\"[0]\" +2000ms"
            ]
        );
        m.on_answer(now, 0, 0, Err(network()));
        m.on_answer(now, 0, 0, Err(network()));
        actions(&mut m);
        // Retry number 3 is past the policy's budget: the batch fails with the last error,
        // wrapped as "gave up after 4 attempts" (same code).
        m.on_answer(now, 0, 0, Err(network()));
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(
            settled(&mut m),
            [
                "0 NETWORK_ERROR: network error talking to http://127.0.0.1:1/s: connection reset \
              (gave up after 4 attempts)"
            ]
        );
    }

    #[test]
    fn a_delivery_timeout_keeps_the_last_network_cause() {
        let now = Instant::now();
        let mut m = machine(true, 1, Duration::from_millis(5));
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        let refused = Error::Network {
            source: Some(crate::error::Cause::new(
                crate::error::CauseKind::ConnectionRefused,
                "connection refused",
            )),
            url: "http://127.0.0.1:1/s".to_owned(),
            message: "connection refused".to_owned(),
        };
        // The first backoff (10 ms) would end after the 5 ms deadline.
        m.on_answer(now, 0, 0, Err(refused));
        let s = m.take_settled().expect("settled");
        let err = s.outcome.expect_err("timed out");
        assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
        let cause = err.root_cause().expect("the network cause is kept");
        assert_eq!(cause.kind(), crate::error::CauseKind::ConnectionRefused);
        // A last failure without a transport cause (a 503) leaves none.
        let mut m = machine(true, 1, Duration::from_millis(5));
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        let busy = Error::example(ErrorCode::Busy);
        m.on_answer(now, 0, 0, Err(busy));
        let err = m
            .take_settled()
            .expect("settled")
            .outcome
            .expect_err("timed out");
        assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
        assert!(err.root_cause().is_none());
    }

    #[test]
    fn a_batch_waiting_past_its_deadline_times_out_when_polled() {
        let now = Instant::now();
        let mut m = machine(true, 1, Duration::from_millis(50));
        with_batches(&mut m, now, 1);
        m.poll(now);
        actions(&mut m);
        // A request task that ended without an answer: the batch waits to be sent again.
        m.on_lost(Some(0));
        m.poll(now + Duration::from_millis(60));
        assert_eq!(actions(&mut m), Vec::<String>::new());
        assert_eq!(
            settled(&mut m),
            ["0 TIMEOUT: timed out: delivering batch 0 of epoch 0 (1 messages) within 50ms after \
              1 attempts; the batch may or may not have been stored"]
        );
    }

    #[test]
    fn refusals_merge_and_take_no_sequence() {
        let now = Instant::now();
        let mut m = machine(true, 1, HOUR);
        m.push_refused(now, 0, 1, 3, Error::invalid("bad json"));
        m.push_refused(now, 1, 2, 4, Error::invalid("bad json"));
        m.push_batch(now, 3, 1, 1, Bytes::from_static(b"[3]"));
        assert_eq!(m.next_seq(), 1);
        let first = m.take_settled().unwrap();
        assert_eq!((first.end_no, first.msgs, first.bytes), (3, 3, 7));
        m.poll(now);
        // The merged refusal took one id.
        assert_eq!(
            actions(&mut m),
            ["send 1#1 e0 s0 b\"[3]\" +0ms", "release 1"]
        );
    }
}
