//! The producer's task: the loop around the sequencing machine (`machine.rs`).
//!
//! It owns the channels, timers and requests: it takes sealed batches and controls from the
//! handles, frames the batches whose content type was unknown when they were appended, feeds
//! the machine every event (a batch queued, a request answered or lost, a body written, time
//! passing), carries out the actions the machine returns (spawning requests, releasing held
//! body bytes, stopping) and settles outcomes for receipts and flushes. Requests are built and
//! read in `request.rs`; settled outcomes are kept for receipts in `outcomes.rs`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use reqwest::header::HeaderValue;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::batch::{Batch, Framing};
use super::machine::{Action, Machine, Note, Rules, Sending};
use super::request::{send, Accepted, Attempt, RequestTemplate, Written};
use super::{validate_json, Delivery, ErrorCallback, Shared};
use crate::error::{Error, Result};
use crate::http::is_json_content_type;
use crate::offset::Offset;
use crate::retry::RetryPolicy;
use crate::stream::DurableStream;

/// Commands handled per wake-up before the task looks at responses and timers again.
const DRAIN_LIMIT: usize = 4096;

/// What handles send to the task.
pub(crate) enum Cmd {
    /// A sealed batch, in message order with the other batches.
    Batch(Batch),
    Flush {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
    },
    Restart {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
    },
    Close {
        upto: u64,
        body: Option<Bytes>,
        reply: oneshot::Sender<Result<Option<Offset>>>,
    },
    Detach {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
    },
}

pub(crate) struct Config {
    pub(crate) stream: DurableStream,
    pub(crate) producer_id: Arc<str>,
    pub(crate) auto_claim: bool,
    pub(crate) linger: Duration,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_batch_messages: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) delivery_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) on_error: Option<ErrorCallback>,
}

struct Open {
    body: BytesMut,
    first_no: u64,
    msgs: u64,
    bytes: usize,
}

enum Control {
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
    fn upto(&self) -> u64 {
        match self {
            Control::Flush { upto, .. }
            | Control::Restart { upto, .. }
            | Control::Close { upto, .. }
            | Control::Detach { upto, .. } => *upto,
        }
    }
}

struct Response {
    id: u64,
    epoch: u64,
    result: Result<Accepted>,
    latency: Duration,
}

struct Task {
    cfg: Config,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    settled_tx: watch::Sender<u64>,
    tpl: Arc<RequestTemplate>,
    /// JSON mode, once the content type is known.
    json: Option<bool>,
    content_type: HeaderValue,
    resolve_error: Option<Error>,
    /// Messages of an `Unknown`-framed batch being placed (sealed at the end of the batch).
    open: Option<Open>,
    /// The first message number of the next batch to place.
    expect_no: u64,
    /// Batches taken ahead of earlier ones still in the channel, or waiting for the content
    /// type, by first message number.
    early: BTreeMap<u64, Batch>,
    requests: JoinSet<Response>,
    request_ids: HashMap<tokio::task::Id, u64>,
    written_tx: mpsc::UnboundedSender<(u64, u32)>,
    written_rx: mpsc::UnboundedReceiver<(u64, u32)>,
    /// The senders that let the current attempt of a batch end its body, by batch id.
    releases: HashMap<u64, oneshot::Sender<()>>,
    /// The sequencing state and rules.
    machine: Machine<RetryPolicy>,
    /// The machine's actions being carried out (kept to reuse its allocation).
    actions: Vec<Action>,
    controls: VecDeque<Control>,
    refuse_from: Option<u64>,
    first_failure: Option<Error>,
    settled: u64,
    input_closed: bool,
    /// The last drain stopped at its limit: more commands wait.
    more_input: bool,
    exit: bool,
}

pub(crate) async fn run(
    cfg: Config,
    tpl: RequestTemplate,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    settled_tx: watch::Sender<u64>,
    epoch: u64,
) {
    let tpl = Arc::new(tpl);
    let machine = Machine::new(
        Rules {
            producer_id: cfg.producer_id.to_string(),
            auto_claim: cfg.auto_claim,
            max_in_flight: cfg.max_in_flight,
            delivery_timeout: cfg.delivery_timeout,
            backoff: cfg.retry.clone(),
        },
        epoch,
    );
    let ct = cfg.stream.content_type();
    let (written_tx, written_rx) = mpsc::unbounded_channel();
    let mut task = Task {
        json: ct.as_deref().map(is_json_content_type),
        content_type: ct
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
            .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream")),
        cfg,
        shared,
        rx,
        settled_tx,
        tpl,
        resolve_error: None,
        open: None,
        expect_no: 0,
        early: BTreeMap::new(),
        requests: JoinSet::new(),
        request_ids: HashMap::new(),
        written_tx,
        written_rx,
        releases: HashMap::new(),
        machine,
        actions: Vec::new(),
        controls: VecDeque::new(),
        refuse_from: None,
        first_failure: None,
        settled: 0,
        input_closed: false,
        more_input: false,
        exit: false,
    };
    task.run().await;
}

impl Task {
    async fn run(&mut self) {
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed_for: Option<Instant> = None;
        loop {
            self.pump();
            if self.should_exit() {
                break;
            }
            // The open batch's linger end, while it is ahead. Once it has passed, the batch
            // waits for a free request slot (a response wakes the task).
            let linger_at = self.linger_deadline().filter(|at| *at > Instant::now());
            if let Some(at) = linger_at {
                if armed_for != Some(at) {
                    sleep.as_mut().reset(at);
                    armed_for = Some(at);
                }
            }
            // Appenders fill the open batch themselves; the channel carries whole batches
            // and controls, and `wake` says a batch has opened.
            let listen = !self.input_closed && !self.more_input;
            tokio::select! {
                Some(res) = self.requests.join_next_with_id(), if !self.requests.is_empty() => {
                    self.on_join(res);
                    while let Some(res) = self.requests.try_join_next_with_id() {
                        self.on_join(res);
                    }
                }
                cmd = self.rx.recv(), if listen => match cmd {
                    Some(cmd) => {
                        self.on_cmd(cmd).await;
                    }
                    None => self.input_closed = true,
                },
                Some((id, attempt)) = self.written_rx.recv() => {
                    self.on_written(id, attempt);
                    while let Ok((id, attempt)) = self.written_rx.try_recv() {
                        self.on_written(id, attempt);
                    }
                }
                () = self.shared.wake.notified() => {}
                () = &mut sleep, if linger_at.is_some() => {
                    armed_for = None;
                }
                () = std::future::ready(()), if self.more_input => {}
            }
            self.drain().await;
        }
        if !self.early.is_empty() {
            tracing::warn!(
                url = %self.shared.display,
                batches = self.early.len(),
                "idempotent producer stopped with batches it never received in order"
            );
        }
    }

    /// When the appenders' open batch reaches its linger.
    fn linger_deadline(&self) -> Option<Instant> {
        let acc = self.shared.acc.lock().ok()?;
        acc.open.as_ref().map(|b| b.opened_at + self.cfg.linger)
    }

    /// Takes what waits in the channel (up to a limit, so responses are not starved).
    async fn drain(&mut self) {
        self.more_input = false;
        self.place_early().await;
        if self.input_closed {
            return;
        }
        for _ in 0..DRAIN_LIMIT {
            match self.rx.try_recv() {
                Ok(cmd) => self.on_cmd(cmd).await,
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.input_closed = true;
                    return;
                }
            }
        }
        self.more_input = true;
    }

    fn should_exit(&self) -> bool {
        if self.exit {
            return true;
        }
        self.input_closed
            && self.machine.is_empty()
            && self.open.is_none()
            && self.early.is_empty()
            && self.controls.is_empty()
            && self.machine.in_flight() == 0
            && self
                .shared
                .acc
                .lock()
                .map_or(true, |acc| acc.open.is_none())
    }

    // ---------------------------------------------------------------- input

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Batch(batch) => self.on_batch(batch).await,
            Cmd::Flush { upto, reply } => self.controls.push_back(Control::Flush { upto, reply }),
            Cmd::Restart { upto, reply } => self.controls.push_back(Control::Restart {
                upto,
                reply,
                target: None,
            }),
            Cmd::Close { upto, body, reply } => {
                self.refuse_from = Some(self.refuse_from.map_or(upto, |r| r.min(upto)));
                if body.is_some() && self.json.is_none() {
                    self.resolve_content_type().await;
                }
                self.controls.push_back(Control::Close {
                    upto,
                    body,
                    reply: Some(reply),
                    sent: false,
                });
            }
            Cmd::Detach { upto, reply } => {
                self.refuse_from = Some(self.refuse_from.map_or(upto, |r| r.min(upto)));
                self.controls.push_back(Control::Detach { upto, reply });
            }
        }
    }

    async fn resolve_content_type(&mut self) {
        match self.cfg.stream.resolve_content_type().await {
            Ok(ct) => {
                self.shared.set_mode_from(&ct);
                self.json = Some(is_json_content_type(&ct));
                self.resolve_error = None;
                match HeaderValue::from_str(&ct) {
                    Ok(v) => self.content_type = v,
                    Err(_) => {
                        self.resolve_error = Some(Error::parse(
                            "content type",
                            "the stream's content type is not a valid header value",
                        ));
                        self.json = None;
                    }
                }
            }
            Err(e) => self.resolve_error = Some(e),
        }
    }

    async fn on_batch(&mut self, batch: Batch) {
        if batch.first_no != self.expect_no {
            self.early.insert(batch.first_no, batch);
            return;
        }
        if matches!(batch.framing, Framing::Unknown(_)) && self.json.is_none() {
            self.resolve_content_type().await;
        }
        self.place_batch(batch);
        self.place_early().await;
    }

    /// Places the batches that were waiting for the ones before them.
    async fn place_early(&mut self) {
        while let Some(batch) = self.early.remove(&self.expect_no) {
            if matches!(batch.framing, Framing::Unknown(_)) && self.json.is_none() {
                self.resolve_content_type().await;
            }
            self.place_batch(batch);
        }
    }

    /// Queues a batch whose turn it is (`first_no == expect_no`).
    fn place_batch(&mut self, batch: Batch) {
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
                self.queue_batch(first, msgs, bytes, batch.into_body());
            }
        }
    }

    fn refusal(&self, no: u64) -> Option<Error> {
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

    fn place(&mut self, no: u64, data: Bytes, validated: bool) {
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
    fn seal(&mut self) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        if self.json == Some(true) {
            open.body.put_u8(b']');
        }
        self.queue_batch(open.first_no, open.msgs, open.bytes, open.body.freeze());
    }

    /// Queues a framed batch with the next sequence number.
    fn queue_batch(&mut self, first_no: u64, msgs: u64, bytes: usize, body: Bytes) {
        self.machine
            .push_batch(Instant::now(), first_no, msgs, bytes, body);
        self.shared
            .next_seq
            .store(self.machine.next_seq(), Ordering::Release);
    }

    // ---------------------------------------------------------------- the pump

    /// Moves everything forward that can move without waiting.
    fn pump(&mut self) {
        loop {
            let mut progressed = self.process_controls();
            self.maybe_seal();
            self.machine.poll(Instant::now());
            self.apply();
            progressed |= self.settle_front();
            if !progressed || self.exit {
                break;
            }
        }
    }

    /// Carries out what the machine asked for, and shows its state to the handles.
    fn apply(&mut self) {
        let mut stopped = false;
        let mut actions = std::mem::take(&mut self.actions);
        actions.extend(self.machine.take_actions());
        for action in actions.drain(..) {
            match action {
                Action::Send(sending) => self.launch(sending),
                Action::Release { id } => {
                    if let Some(tx) = self.releases.remove(&id) {
                        let _ = tx.send(());
                    }
                }
                Action::Stop(err) => {
                    tracing::warn!(url = %self.shared.display, error = %err, "idempotent producer stopped");
                    stopped = true;
                }
                Action::Note(note) => self.log(note),
            }
        }
        self.actions = actions;
        if stopped {
            self.sync_terminal();
            // The task's own open batch fails with the error too.
            self.seal();
        }
        let shared = &self.shared;
        shared.epoch.store(self.machine.epoch(), Ordering::Release);
        shared
            .next_seq
            .store(self.machine.next_seq(), Ordering::Release);
        shared
            .in_flight
            .store(self.machine.in_flight(), Ordering::Release);
    }

    fn log(&self, note: Note) {
        let url = &self.shared.display;
        let producer_id = &*self.cfg.producer_id;
        match note {
            Note::Claiming {
                epoch,
                claiming,
                error,
            } => tracing::warn!(
                url = %url,
                producer_id = ?producer_id,
                epoch,
                claiming,
                error = %error,
                "idempotent producer claiming a new epoch; the batches not stored yet are sent \
                 again from sequence 0"
            ),
            Note::Fenced { epoch, error } => tracing::warn!(
                url = %url,
                producer_id = ?producer_id,
                epoch,
                error = %error,
                "idempotent producer stopped: another session took its producer id after \
                 batches of this one were acknowledged (the newest claim wins)"
            ),
            Note::GaveUpClaiming { claims } => tracing::warn!(
                url = %url,
                producer_id = ?producer_id,
                claims,
                "idempotent producer gave up claiming new epochs"
            ),
            Note::ResentTooOften {
                seq,
                resends,
                situation,
            } => tracing::warn!(
                url = %url,
                seq,
                resends,
                situation,
                "idempotent producer batch failed: resent too often"
            ),
            Note::ResentRepeatedly {
                seq,
                resends,
                situation,
                error,
            } => tracing::warn!(
                url = %url,
                seq,
                resends,
                situation,
                error = %error,
                "idempotent producer batch resent repeatedly"
            ),
            Note::Retrying { seq, delay, error } => tracing::debug!(
                url = %url,
                seq,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "retrying producer batch"
            ),
            Note::NewEpoch {
                epoch,
                resent_batches,
            } => tracing::info!(
                url = %url,
                epoch,
                resent_batches,
                "idempotent producer moved to a new epoch"
            ),
            Note::Repaired { from, to } => {
                tracing::debug!(url = %url, from, to, "producer sequence repaired");
            }
        }
    }

    /// Takes the appenders' open batch once its linger has passed and a request slot is
    /// free, or at once when the producer is stopping.
    fn maybe_seal(&mut self) {
        self.seal();
        let forced = self.input_closed || self.machine.terminal().is_some();
        if !forced && self.machine.window_full() {
            return;
        }
        let linger = self.cfg.linger;
        let taken = match self.shared.acc.lock() {
            Ok(mut acc) => {
                let due = acc
                    .open
                    .as_ref()
                    .is_some_and(|b| forced || b.opened_at + linger <= Instant::now());
                if due {
                    acc.open.take()
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        let Some(batch) = taken else {
            return;
        };
        // Earlier batches may still be in the channel, and an unframed one needs the content
        // type (an await): the loop's drain places it then.
        if batch.first_no == self.expect_no
            && (self.json.is_some() || !matches!(batch.framing, Framing::Unknown(_)))
        {
            self.place_batch(batch);
        } else {
            self.early.insert(batch.first_no, batch);
            self.more_input = true;
        }
    }

    fn on_written(&mut self, id: u64, attempt: u32) {
        self.machine.on_written(id, attempt);
    }

    /// Spawns a request after its delay.
    fn launch(&mut self, s: Sending) {
        let Sending {
            id,
            attempt,
            epoch,
            seq,
            close,
            body,
            delay,
        } = s;
        if attempt > 1 {
            self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        let (release, hold) = oneshot::channel();
        self.releases.insert(id, release);
        let attempt = Attempt {
            body,
            epoch,
            seq,
            close,
            content_type: self.content_type.clone(),
            written: Some(Written {
                tx: self.written_tx.clone(),
                id,
                attempt,
            }),
            hold: Some(hold),
        };
        let tpl = self.tpl.clone();
        let handle = self.requests.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let started = Instant::now();
            let result = send(&tpl, attempt).await;
            Response {
                id,
                epoch,
                result,
                latency: started.elapsed(),
            }
        });
        self.request_ids.insert(handle.id(), id);
    }

    // ---------------------------------------------------------------- responses

    fn on_join(
        &mut self,
        res: std::result::Result<(tokio::task::Id, Response), tokio::task::JoinError>,
    ) {
        match res {
            Ok((task_id, resp)) => {
                self.request_ids.remove(&task_id);
                self.record_latency(resp.latency);
                self.machine
                    .on_answer(Instant::now(), resp.id, resp.epoch, resp.result);
            }
            Err(join) => {
                // A request task that panicked or was cancelled: its batch is sent again.
                let id = self.request_ids.remove(&join.id());
                self.machine.on_lost(id);
            }
        }
        self.apply();
    }

    fn record_latency(&self, latency: Duration) {
        let c = &self.shared.counters;
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.latency_count.fetch_add(1, Ordering::Relaxed);
        c.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        c.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Shows the machine's terminal error to the handles.
    fn sync_terminal(&mut self) {
        let err = self.machine.terminal().cloned();
        self.shared
            .has_terminal
            .store(err.is_some(), Ordering::Release);
        if let Ok(mut g) = self.shared.terminal.lock() {
            *g = err;
        }
    }

    // ---------------------------------------------------------------- settling

    fn settle_front(&mut self) -> bool {
        let mut settled_any = false;
        let mut log = Vec::new();
        while let Some(e) = self.machine.take_settled() {
            settled_any = true;
            self.releases.remove(&e.id);
            self.shared.release(e.bytes);
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
        }
        settled_any
    }

    fn account(&mut self, msgs: u64, bytes: usize, outcome: &Result<Delivery>) {
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

    // ---------------------------------------------------------------- controls

    fn take_failure(&mut self) -> Result<()> {
        match self.first_failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Handles the control at the head of the line if it can be; true when it moved.
    fn process_controls(&mut self) -> bool {
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
                    let _ = reply.send(self.take_failure());
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
                    let _ = reply.send(self.take_failure());
                }
            }
            Step::Detach => {
                if let Some(Control::Detach { reply, .. }) = self.controls.pop_front() {
                    let _ = reply.send(self.take_failure());
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
    fn start_close(&mut self, body: Option<Bytes>) {
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

    fn finish_close(&mut self, outcome: Result<Delivery>) {
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

    fn reply_close(&mut self, result: Result<Option<Offset>>) {
        if let Some(Control::Close { reply, .. }) = self.controls.front_mut() {
            if let Some(reply) = reply.take() {
                let _ = reply.send(result);
            }
            self.controls.pop_front();
        }
    }
}
