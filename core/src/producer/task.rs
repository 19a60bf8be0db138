//! The producer's task: the loop around the sequencing machine (`machine.rs`).
//!
//! It owns the channels, timers and requests: it takes sealed batches and controls from the
//! handles, frames the batches whose content type was unknown when they were appended, feeds
//! the machine every event (a batch queued, a request answered or lost, a body written, time
//! passing), carries out the actions the machine returns (spawning requests, releasing held
//! body bytes, stopping) and settles outcomes for receipts and flushes. Placing batches is in
//! `task/place.rs`, settling in `task/settle.rs`, flush/restart/close/detach in
//! `task/controls.rs`; requests are built and read in `request.rs`; settled outcomes are kept
//! for receipts in `outcomes.rs`.

mod controls;
mod place;
mod settle;

use controls::Control;
use place::Open;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderValue;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::batch::{Batch, Framing};
use super::machine::{Action, Machine, Note, Rules, Sending};
use super::request::{send, Accepted, Attempt, RequestTemplate, Written};
use super::sequencer;
use super::{ErrorCallback, Shared};
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
            // The open batch's linger end, even when it has just passed: `pump` found the batch
            // not due, and with no request in flight and no new batch opening nothing else would
            // wake the task (a past end fires the timer at once). While every request slot is
            // taken the batch waits for one, and a response wakes the task.
            let linger_at = if self.machine.window_full() {
                None
            } else {
                self.linger_deadline()
            };
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
        acc.open
            .as_ref()
            .map(|b| sequencer::instant_after(b.opened_at, self.cfg.linger))
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
                let due = acc.open.as_ref().is_some_and(|b| {
                    forced || sequencer::instant_after(b.opened_at, linger) <= Instant::now()
                });
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
}
