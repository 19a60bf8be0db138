//! The producer's task: the single owner of batches, sequence numbers and requests.
//!
//! Batches live in `queue`, in sequence order, from sealing until they settle (delivered or
//! failed); settled batches leave from the front so receipts and flushes see outcomes in
//! message order. A batch is `Waiting` (to be sent), `InFlight` (a request or its backoff is
//! running), `Blocked` (a 409 said an earlier sequence must land first) or `Done`.
//!
//! Sequence numbers are only ever changed while the server has told us they were not
//! applied: a gap repair (409 whose expected sequence belongs to no live batch) shifts the
//! later batches down, and a new epoch (auto-claim or restart) renumbers the unsent batches
//! from 0 once no request is in flight, sending the first one alone.
//!
//! What a server answer means (a foreign duplicate, a claim, a gap, a bounded resend) is decided
//! by the pure rules of `sequencer.rs`; requests are built and read in `request.rs`; settled
//! outcomes are kept for receipts in `outcomes.rs`.

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
use super::request::{send, Accepted, Attempt, RequestTemplate, Written};
use super::sequencer::{self, Ack, Claim, Gap, Resend, Standing};
use super::{validate_json, Delivery, ErrorCallback, Shared};
use crate::error::{Error, Result};
use crate::http::is_json_content_type;
use crate::offset::Offset;
use crate::retry::RetryPolicy;
use crate::stream::DurableStream;

/// Commands handled per wake-up before the task looks at responses and timers again.
const DRAIN_LIMIT: usize = 4096;
/// The sequence number of an entry that holds refused messages and is never sent.
const NO_SEQ: u64 = u64::MAX;

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
    /// Lets the current attempt's body end (see `GatedBody`); taken when released.
    release: Option<oneshot::Sender<()>>,
    /// The current attempt waits out a backoff before it is sent.
    delayed: bool,
    close: bool,
    outcome: Option<Result<Delivery>>,
}

impl Entry {
    fn done(&mut self, outcome: Result<Delivery>) {
        self.state = St::Done;
        self.outcome = Some(outcome);
    }
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
    queue: VecDeque<Entry>,
    next_id: u64,
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
    /// Requests allowed in flight now: `max_in_flight`, halved whenever the server saw a
    /// batch before an earlier one (a 409 that costs a resend), grown back by one after
    /// `2 × window` batches accepted in a row.
    window: usize,
    clean_run: usize,
    in_flight: usize,
    controls: VecDeque<Control>,
    refuse_from: Option<u64>,
    first_failure: Option<Error>,
    settled: u64,
    terminal: Option<Error>,
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
    let window = cfg.max_in_flight;
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
        epoch,
        next_seq: 0,
        epoch_confirmed: false,
        acked_max: None,
        max_sent: None,
        acked_any: false,
        claims: 0,
        reepoch: None,
        fenced_by: None,
        queue: VecDeque::new(),
        next_id: 0,
        open: None,
        expect_no: 0,
        early: BTreeMap::new(),
        requests: JoinSet::new(),
        request_ids: HashMap::new(),
        written_tx,
        written_rx,
        window,
        clean_run: 0,
        in_flight: 0,
        controls: VecDeque::new(),
        refuse_from: None,
        first_failure: None,
        settled: 0,
        terminal: None,
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
            && self.queue.is_empty()
            && self.open.is_none()
            && self.early.is_empty()
            && self.controls.is_empty()
            && self.in_flight == 0
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
                    self.push_refused(first, msgs, batch.bytes, err);
                    return;
                }
                self.seal();
                let bytes = batch.bytes;
                self.queue_batch(first, msgs, bytes, batch.into_body());
            }
        }
    }

    fn refusal(&self, no: u64) -> Option<Error> {
        if let Some(e) = &self.terminal {
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
            self.push_refused(no, 1, len, err);
            return;
        }
        let json = self.json == Some(true);
        if json && !validated {
            if let Err(err) = validate_json(&data, Some(no)) {
                self.seal();
                self.push_refused(no, 1, len, err);
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

    /// Queues messages that will never be sent, merged with a neighbouring refusal.
    fn push_refused(&mut self, no: u64, msgs: u64, len: usize, err: Error) {
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
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back(Entry {
            id,
            seq: NO_SEQ,
            end_no: no + msgs,
            body: Bytes::new(),
            bytes: len,
            msgs,
            state: St::Done,
            deadline: Instant::now(),
            attempts: 0,
            sent_here: 0,
            resends: 0,
            written: false,
            release: None,
            delayed: false,
            close: false,
            outcome: Some(Err(err)),
        });
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
        let id = self.next_id;
        self.next_id += 1;
        let mut entry = Entry {
            id,
            seq: NO_SEQ,
            end_no: first_no + msgs,
            body,
            bytes,
            msgs,
            state: St::Waiting,
            deadline: Instant::now() + self.cfg.delivery_timeout,
            attempts: 0,
            sent_here: 0,
            resends: 0,
            written: false,
            release: None,
            delayed: false,
            close: false,
            outcome: None,
        };
        if let Some(err) = &self.terminal {
            entry.done(Err(err.clone()));
        } else {
            entry.seq = self.take_seq();
        }
        self.queue.push_back(entry);
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.shared.next_seq.store(self.next_seq, Ordering::Release);
        seq
    }

    // ---------------------------------------------------------------- the pump

    /// Moves everything forward that can move without waiting.
    fn pump(&mut self) {
        loop {
            let mut progressed = self.process_controls();
            self.maybe_seal();
            self.maybe_reepoch();
            self.release_blocked();
            self.start_sends();
            self.release_holds();
            progressed |= self.settle_front();
            if !progressed || self.exit {
                break;
            }
        }
    }

    /// Live (not settled) entries at the front, up to `limit`.
    fn live_count(&self, limit: usize) -> usize {
        self.queue
            .iter()
            .filter(|e| e.state != St::Done)
            .take(limit)
            .count()
    }

    /// Takes the appenders' open batch once its linger has passed and a request slot is
    /// free, or at once when the producer is stopping.
    fn maybe_seal(&mut self) {
        self.seal();
        let forced = self.input_closed || self.terminal.is_some();
        if !forced && self.live_count(self.window) >= self.window {
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

    fn maybe_reepoch(&mut self) {
        let Some(target) = self.reepoch else {
            return;
        };
        if self.in_flight > 0 {
            return;
        }
        self.reepoch = None;
        self.epoch = target;
        self.shared.epoch.store(target, Ordering::Release);
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
        self.shared.next_seq.store(seq, Ordering::Release);
        tracing::info!(
            url = %self.shared.display,
            epoch = target,
            resent_batches = seq,
            "idempotent producer moved to a new epoch"
        );
    }

    fn release_blocked(&mut self) {
        let limit = self.cfg.max_in_flight;
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

    fn on_written(&mut self, id: u64, attempt: u32) {
        if let Some(idx) = self.index_of(id) {
            let e = &mut self.queue[idx];
            if e.attempts == attempt {
                e.written = true;
            }
        }
    }

    fn start_sends(&mut self) {
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
            if live >= window || self.in_flight >= self.cfg.max_in_flight {
                break;
            }
            match self.queue[i].state {
                St::Done => continue,
                St::Waiting
                    if self.queue[i].attempts > 0 && Instant::now() >= self.queue[i].deadline =>
                {
                    let e = &self.queue[i];
                    let what = format!(
                        "delivering batch {} of epoch {} ({} messages) within {:?} after {} \
                         attempts; the batch may or may not have been stored",
                        e.seq, self.epoch, e.msgs, self.cfg.delivery_timeout, e.attempts
                    );
                    self.queue[i].done(Err(Error::Timeout { what }));
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
            if let Some(tx) = e.release.take() {
                let _ = tx.send(());
            }
            if !e.delayed {
                break;
            }
        }
    }

    fn launch(&mut self, idx: usize, delay: Duration) {
        let epoch = self.epoch;
        let content_type = self.content_type.clone();
        let e = &mut self.queue[idx];
        if e.attempts > 0 {
            self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        e.attempts = e.attempts.saturating_add(1);
        e.sent_here = e.sent_here.saturating_add(1);
        e.state = St::InFlight;
        e.written = e.body.is_empty();
        e.delayed = !delay.is_zero();
        let (release, hold) = oneshot::channel();
        e.release = Some(release);
        let attempt = Attempt {
            body: e.body.clone(),
            epoch,
            seq: e.seq,
            close: e.close,
            content_type,
            written: Some(Written {
                tx: self.written_tx.clone(),
                id: e.id,
                attempt: e.attempts,
            }),
            hold: Some(hold),
        };
        let id = e.id;
        let seq = e.seq;
        self.max_sent = Some(self.max_sent.map_or(seq, |m| m.max(seq)));
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
        self.in_flight += 1;
        self.shared
            .in_flight
            .store(self.in_flight, Ordering::Release);
    }

    // ---------------------------------------------------------------- responses

    fn on_join(
        &mut self,
        res: std::result::Result<(tokio::task::Id, Response), tokio::task::JoinError>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.shared
            .in_flight
            .store(self.in_flight, Ordering::Release);
        match res {
            Ok((task_id, resp)) => {
                self.request_ids.remove(&task_id);
                if let Some(idx) = self.index_of(resp.id) {
                    self.queue[idx].written = true;
                }
                self.record_latency(resp.latency);
                self.on_response(resp);
            }
            Err(join) => {
                // A request task that panicked or was cancelled: its batch is sent again.
                if let Some(id) = self.request_ids.remove(&join.id()) {
                    if let Some(idx) = self.index_of(id) {
                        self.queue[idx].state = St::Waiting;
                        self.queue[idx].written = true;
                    }
                }
            }
        }
    }

    fn record_latency(&self, latency: Duration) {
        let c = &self.shared.counters;
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.latency_count.fetch_add(1, Ordering::Relaxed);
        c.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        c.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        let first = self.queue.front()?.id;
        let idx = usize::try_from(id.checked_sub(first)?).ok()?;
        (idx < self.queue.len() && self.queue[idx].id == id).then_some(idx)
    }

    fn on_response(&mut self, resp: Response) {
        let Some(idx) = self.index_of(resp.id) else {
            return;
        };
        if resp.epoch != self.epoch {
            // Answered under an epoch we have left: the batch is renumbered, send it again.
            if self.queue[idx].state != St::Done {
                self.queue[idx].state = St::Waiting;
            }
            return;
        }
        let err = match resp.result {
            Ok(acc) => {
                let e = &self.queue[idx];
                let ack = sequencer::classify_ack(
                    acc.duplicate,
                    e.sent_here,
                    acc.server_seq,
                    self.max_sent,
                );
                if ack == Ack::Foreign {
                    self.on_session_conflict(idx, acc.server_seq);
                    return;
                }
                self.epoch_confirmed = true;
                self.acked_any = true;
                self.clean_run += 1;
                if self.window < self.cfg.max_in_flight && self.clean_run >= 2 * self.window {
                    self.window += 1;
                    self.clean_run = 0;
                }
                let seq = self.queue[idx].seq;
                self.acked_max = Some(self.acked_max.map_or(seq, |a| a.max(seq)));
                self.queue[idx].done(Ok(Delivery {
                    offset: acc.offset,
                    duplicate: acc.duplicate,
                    epoch: resp.epoch,
                    seq,
                }));
                return;
            }
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
                    producer_id: self.cfg.producer_id.to_string(),
                    epoch: self.epoch,
                    current_epoch,
                };
                self.claim(idx, current_epoch.max(self.epoch), fenced);
            }
            e @ (Error::StreamClosed { .. } | Error::NotFound { .. } | Error::Gone { .. }) => {
                self.fail_all(idx, e);
            }
            Error::SequenceGap { expected_seq, .. } => {
                if expected_seq < self.queue[idx].seq {
                    self.window = (self.window / 2).max(1);
                    self.clean_run = 0;
                }
                self.on_gap(idx, expected_seq);
            }
            e if e.is_retryable() => self.retry_later(idx, e),
            e => self.queue[idx].done(Err(e)),
        }
    }

    /// Another session owns or shares the epoch: claims the epoch after `above` when the
    /// rules allow it (the batch is then sent again in it), or stops the producer with `err`.
    fn claim(&mut self, idx: usize, above: u64, err: Error) {
        let standing = Standing {
            auto_claim: self.cfg.auto_claim,
            acked_any: self.acked_any,
            claims: self.claims,
            pending: self.reepoch.is_some(),
        };
        match sequencer::decide_claim(standing, above) {
            Claim::To { epoch, new } => {
                if new {
                    self.claims += 1;
                    tracing::warn!(
                        url = %self.shared.display,
                        producer_id = ?&*self.cfg.producer_id,
                        epoch = self.epoch,
                        claiming = epoch,
                        error = %err,
                        "idempotent producer claiming a new epoch; the batches not stored yet are \
                         sent again from sequence 0"
                    );
                }
                self.queue[idx].state = St::Waiting;
                self.reepoch = Some(self.reepoch.map_or(epoch, |t| t.max(epoch)));
            }
            Claim::Fenced => {
                if self.cfg.auto_claim {
                    tracing::warn!(
                        url = %self.shared.display,
                        producer_id = ?&*self.cfg.producer_id,
                        epoch = self.epoch,
                        error = %err,
                        "idempotent producer stopped: another session took its producer id after \
                         batches of this one were acknowledged (the newest claim wins)"
                    );
                }
                self.fail_all(idx, err);
            }
            Claim::Exhausted => {
                tracing::warn!(
                    url = %self.shared.display,
                    producer_id = ?&*self.cfg.producer_id,
                    claims = self.claims,
                    "idempotent producer gave up claiming new epochs"
                );
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
            producer_id: self.cfg.producer_id.to_string(),
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
    fn resend_later(&mut self, idx: usize, err: Error, situation: &str) {
        let e = &mut self.queue[idx];
        e.resends = e.resends.saturating_add(1);
        let resends = e.resends;
        let delay = self.cfg.retry.delay(resends - 1, None);
        match sequencer::resend(resends, Instant::now() + delay > e.deadline) {
            Resend::OverBudget => {
                tracing::warn!(
                    url = %self.shared.display,
                    seq = e.seq,
                    resends,
                    situation,
                    "idempotent producer batch failed: resent too often"
                );
                self.queue[idx].done(Err(err));
            }
            Resend::PastDeadline => {
                let what = format!(
                    "delivering batch {} of epoch {} ({} messages) within {:?}: {situation}, \
                     resent {} times; last answer: {err}",
                    e.seq,
                    self.epoch,
                    e.msgs,
                    self.cfg.delivery_timeout,
                    resends - 1
                );
                self.queue[idx].done(Err(Error::Timeout { what }));
            }
            go => {
                if go == Resend::GoAndWarn {
                    tracing::warn!(
                        url = %self.shared.display,
                        seq = e.seq,
                        resends,
                        situation,
                        error = %err,
                        "idempotent producer batch resent repeatedly"
                    );
                }
                self.launch(idx, delay);
            }
        }
    }

    fn retry_later(&mut self, idx: usize, err: Error) {
        let e = &self.queue[idx];
        let retry_no = e.attempts.saturating_sub(1);
        if !self.cfg.retry.allows(retry_no) {
            self.queue[idx].done(Err(err));
            return;
        }
        let delay = self.cfg.retry.delay(retry_no, err.retry_after());
        if Instant::now() + delay > e.deadline {
            let what = format!(
                "delivering batch {} of epoch {} ({} messages) within {:?}; the batch may or may \
                 not have been stored; last error: {err}",
                e.seq, self.epoch, e.msgs, self.cfg.delivery_timeout
            );
            self.queue[idx].done(Err(Error::Timeout { what }));
            return;
        }
        tracing::debug!(
            url = %self.shared.display,
            seq = e.seq,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %err,
            "retrying producer batch"
        );
        self.launch(idx, delay);
    }

    fn on_gap(&mut self, idx: usize, expected: u64) {
        let seq = self.queue[idx].seq;
        self.queue[idx].state = St::Waiting;
        let gap = Error::SequenceGap {
            expected_seq: expected,
            received_seq: seq,
        };
        let earlier_live = self.earlier_live(idx, expected, seq);
        match sequencer::on_gap(expected, seq, earlier_live, self.acked_max) {
            Gap::ResendSame => {
                self.resend_later(
                    idx,
                    gap,
                    "the server answered 409 expecting the sequence sent",
                );
            }
            Gap::Fail => self.queue[idx].done(Err(gap)),
            Gap::ResendStale => self.resend_later(
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
                for e in self.queue.iter_mut().skip(idx) {
                    if e.state != St::Done && e.seq != NO_SEQ {
                        e.seq = e.seq.saturating_sub(shift);
                    }
                }
                self.next_seq = self.next_seq.saturating_sub(shift);
                self.shared.next_seq.store(self.next_seq, Ordering::Release);
                tracing::debug!(url = %self.shared.display, from = seq, to = expected, "producer sequence repaired");
            }
        }
    }

    /// A failure that ends the producer (or the stream): every batch not in flight fails
    /// with it now, in-flight ones when they answer; later appends fail with it too.
    fn fail_all(&mut self, idx: usize, err: Error) {
        tracing::warn!(url = %self.shared.display, error = %err, "idempotent producer stopped");
        self.queue[idx].done(Err(err.clone()));
        for e in self.queue.iter_mut() {
            if e.state != St::Done && e.state != St::InFlight {
                e.done(Err(err.clone()));
            }
        }
        self.set_terminal(Some(err));
        self.seal();
    }

    fn set_terminal(&mut self, err: Option<Error>) {
        if let Ok(mut g) = self.shared.terminal.lock() {
            *g = err.clone();
        }
        self.shared
            .has_terminal
            .store(err.is_some(), Ordering::Release);
        self.terminal = err;
    }

    // ---------------------------------------------------------------- settling

    fn settle_front(&mut self) -> bool {
        let mut settled_any = false;
        let mut log = Vec::new();
        while self.queue.front().is_some_and(|e| e.state == St::Done) {
            let Some(e) = self.queue.pop_front() else {
                break;
            };
            settled_any = true;
            self.shared.release(e.bytes);
            let outcome = e
                .outcome
                .unwrap_or_else(|| Err(Error::invalid("a batch settled without an outcome")));
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
        let idle = self.queue.is_empty() && self.open.is_none();
        let step = match self.controls.front() {
            Some(Control::Flush { .. }) if settled => Step::Flush,
            Some(Control::Restart { target: None, .. }) if settled => Step::RestartBegin,
            Some(Control::Restart {
                target: Some(t), ..
            }) if self.reepoch.is_none() && self.epoch >= *t => Step::RestartEnd,
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
            Step::RestartBegin => {
                let above = self
                    .fenced_by
                    .take()
                    .map_or(self.epoch, |f| f.max(self.epoch));
                let Some(t) = sequencer::next_epoch(above) else {
                    if let Some(Control::Restart { reply, .. }) = self.controls.pop_front() {
                        let _ = reply.send(Err(Error::invalid(
                            "restart: no epoch is left below the protocol's maximum 2^53-1",
                        )));
                    }
                    return true;
                };
                if matches!(
                    self.terminal,
                    Some(Error::StaleEpoch { .. } | Error::ProducerSessionConflict { .. })
                ) {
                    self.set_terminal(None);
                }
                self.reepoch = Some(self.reepoch.map_or(t, |r| r.max(t)));
                if let Some(Control::Restart { target, .. }) = self.controls.front_mut() {
                    *target = Some(t);
                }
            }
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
        let failure = match (self.take_failure(), &self.terminal) {
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
        let id = self.next_id;
        self.next_id += 1;
        let seq = self.take_seq();
        self.queue.push_back(Entry {
            id,
            seq,
            end_no: self.expect_no,
            body,
            bytes: 0,
            msgs: 0,
            state: St::Waiting,
            deadline: Instant::now() + self.cfg.delivery_timeout,
            attempts: 0,
            sent_here: 0,
            resends: 0,
            written: false,
            release: None,
            delayed: false,
            close: true,
            outcome: None,
        });
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
