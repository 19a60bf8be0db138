//! Subscriptions (PROTOCOL §6–7): management and the lease protocol (`Subscriptions`), a held
//! wake (`Wake`, whose token stays here and never reaches the foreign side), a pull-wake
//! worker in its pull form (`WorkQueue` of `WorkJob`s; the Kotlin and Swift layers build the
//! handler form on it) and webhook signature checks (`WebhookVerifier`). Every rule lives in
//! the core; this file converts values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_streams_client as core;
use durable_streams_client::{Offset, PullWakeWorker, SubscriptionStatus};

use crate::error::DurableStreamError;
use crate::runtime;
use crate::values::{extras, RetryOptions};

/// How a subscriptions handle is built.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct SubscriptionsOptions {
    /// Headers sent with every request (a service token, say).
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Query parameters sent with every request.
    #[uniffi(default)]
    pub params: HashMap<String, String>,
    /// Retries of the idempotent requests; the core's default when absent.
    #[uniffi(default = None)]
    pub retry: Option<RetryOptions>,
}

/// The configuration of a subscription: exactly one of `wake_stream` (pull-wake) and
/// `webhook_url` (webhook), and at least one of `pattern` and `streams`. Checked before any
/// request.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SubscriptionConfig {
    /// The wake stream (stream-root-relative) of a pull-wake subscription.
    #[uniffi(default = None)]
    pub wake_stream: Option<String>,
    /// The receiver URL of a webhook subscription.
    #[uniffi(default = None)]
    pub webhook_url: Option<String>,
    /// A glob over stream-root-relative paths (`*` one segment, `**` any number).
    #[uniffi(default = None)]
    pub pattern: Option<String>,
    /// Explicit stream-root-relative stream paths.
    #[uniffi(default)]
    pub streams: Vec<String>,
    /// The lease in milliseconds (1 000 to 600 000; the server's default, 30 s, when absent).
    #[uniffi(default = None)]
    pub lease_ms: Option<u64>,
    /// A human-readable description.
    #[uniffi(default = None)]
    pub description: Option<String>,
}

/// One linked stream and its cursor.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StreamLink {
    /// Stream-root-relative path.
    pub path: String,
    /// `glob` or `explicit`.
    pub link_type: String,
    /// The last processed offset (inclusive).
    pub acked_offset: String,
}

/// Webhook signing metadata.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SigningInfo {
    /// The algorithm (`ed25519`).
    pub alg: String,
    /// The active key id.
    pub kid: String,
    /// Where the server's JWK Set lives.
    pub jwks_url: String,
}

/// A subscription as the server reports it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Subscription {
    /// The id.
    pub id: String,
    /// `pull-wake` or `webhook`.
    pub kind: String,
    /// The glob pattern.
    pub pattern: Option<String>,
    /// The linked streams with their cursors.
    pub streams: Vec<StreamLink>,
    /// The wake stream of a pull-wake subscription.
    pub wake_stream: Option<String>,
    /// The receiver URL of a webhook subscription.
    pub webhook_url: Option<String>,
    /// Signing metadata of a webhook subscription.
    pub signing: Option<SigningInfo>,
    /// The lease in milliseconds.
    pub lease_ttl_ms: u64,
    /// Creation time (RFC 3339).
    pub created_at: Option<String>,
    /// `active`, or `failed` while a webhook retry is scheduled.
    pub status: Option<String>,
    /// The description.
    pub description: Option<String>,
}

fn link_type(t: core::LinkType) -> String {
    match t {
        core::LinkType::Glob => "glob".into(),
        core::LinkType::Explicit => "explicit".into(),
    }
}

impl From<core::Subscription> for Subscription {
    fn from(s: core::Subscription) -> Self {
        let (webhook_url, signing) = match s.webhook {
            Some(w) => (
                Some(w.url),
                w.signing.map(|g| SigningInfo {
                    alg: g.alg,
                    kid: g.kid,
                    jwks_url: g.jwks_url,
                }),
            ),
            None => (None, None),
        };
        Self {
            id: s.id,
            kind: s.kind,
            pattern: s.pattern,
            streams: s
                .streams
                .into_iter()
                .map(|l| StreamLink {
                    path: l.path,
                    link_type: link_type(l.link_type),
                    acked_offset: l.acked_offset.as_str().to_owned(),
                })
                .collect(),
            wake_stream: s.wake_stream,
            webhook_url,
            signing,
            lease_ttl_ms: s.lease_ttl_ms,
            created_at: s.created_at,
            status: s.status,
            description: s.description,
        }
    }
}

/// What `create` did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CreateSubscriptionResult {
    /// True when created (201), false when an identical subscription existed (200).
    pub created: bool,
    /// The subscription.
    pub subscription: Subscription,
}

/// The state of one stream in a wake.
#[derive(Debug, Clone, uniffi::Record)]
pub struct WakeStream {
    /// Stream-root-relative path.
    pub path: String,
    /// `glob` or `explicit`.
    pub link_type: String,
    /// The last processed offset.
    pub acked_offset: String,
    /// The tail when the wake was made.
    pub tail_offset: String,
    /// Whether `tail_offset` is past `acked_offset`.
    pub has_pending: bool,
}

/// Progress to ack: the stream and the offset processed up to (inclusive).
#[derive(Debug, Clone, uniffi::Record)]
pub struct StreamAck {
    /// Stream-root-relative path.
    pub stream: String,
    /// The offset.
    pub offset: String,
}

/// What an ack answered.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AckResult {
    /// Whether the server accepted it.
    pub ok: bool,
    /// Whether more work arrived meanwhile (another wake follows).
    pub next_wake: bool,
}

impl From<core::AckResult> for AckResult {
    fn from(r: core::AckResult) -> Self {
        Self {
            ok: r.ok,
            next_wake: r.next_wake,
        }
    }
}

/// A held wake (a claim, or a verified webhook delivery). Its token stays on the native side.
#[derive(uniffi::Object)]
pub struct Wake(core::Wake);

#[uniffi::export]
impl Wake {
    /// The subscription id.
    pub fn subscription_id(&self) -> String {
        self.0.subscription_id.clone()
    }

    /// The wake id.
    pub fn wake_id(&self) -> String {
        self.0.wake_id.clone()
    }

    /// The fencing generation.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// The lease in milliseconds (claims only).
    pub fn lease_ttl_ms(&self) -> Option<u64> {
        self.0.lease_ttl_ms
    }

    /// Where to call back (webhook deliveries only).
    pub fn callback_url(&self) -> Option<String> {
        self.0.callback_url.clone()
    }

    /// The streams of the wake with their cursors and tails.
    pub fn streams(&self) -> Vec<WakeStream> {
        self.0
            .streams
            .iter()
            .map(|s| WakeStream {
                path: s.path.clone(),
                link_type: link_type(s.link_type),
                acked_offset: s.acked_offset.as_str().to_owned(),
                tail_offset: s.tail_offset.as_str().to_owned(),
                has_pending: s.has_pending,
            })
            .collect()
    }
}

fn acks(list: Vec<StreamAck>) -> Vec<core::Ack> {
    list.into_iter()
        .map(|a| core::Ack {
            stream: a.stream,
            offset: Offset::from(a.offset),
        })
        .collect()
}

/// A subscriptions handle for one stream root (the prefix under which the streams live).
#[derive(uniffi::Object)]
pub struct Subscriptions {
    inner: core::Subscriptions,
}

#[uniffi::export]
impl Subscriptions {
    /// A handle for `root`.
    #[uniffi::constructor(default(options))]
    pub fn new(
        root: String,
        options: SubscriptionsOptions,
    ) -> Result<Arc<Self>, DurableStreamError> {
        // The shared HTTP client must be built inside the runtime it will run on.
        let _entered = runtime::handle()?.enter();
        let mut b =
            core::Subscriptions::builder(root).extras(extras(options.headers, options.params));
        if let Some(r) = options.retry {
            b = b.retry(r.try_into()?);
        }
        Ok(Arc::new(Self { inner: b.build()? }))
    }

    /// The stream root URL (ends with `/`).
    pub fn root(&self) -> String {
        self.inner.root().to_string()
    }

    /// The URL of the server's webhook signing JWK Set.
    pub fn jwks_url(&self) -> String {
        self.inner.jwks_url().to_string()
    }

    /// Creates the subscription, or confirms an identical one.
    pub async fn create(
        &self,
        id: String,
        config: SubscriptionConfig,
    ) -> Result<CreateSubscriptionResult, DurableStreamError> {
        let mut c = match (config.wake_stream, config.webhook_url) {
            (Some(w), None) => core::SubscriptionConfig::pull_wake(w),
            (None, Some(u)) => core::SubscriptionConfig::webhook(u),
            _ => {
                return Err(DurableStreamError::invalid(
                    "a subscription needs exactly one of wake_stream (pull-wake) or webhook_url (webhook)",
                ))
            }
        };
        if let Some(p) = config.pattern {
            c = c.pattern(p);
        }
        c = c.streams(config.streams);
        if let Some(ms) = config.lease_ms {
            c = c.lease(Duration::from_millis(ms));
        }
        if let Some(d) = config.description {
            c = c.description(d);
        }
        let s = self.inner.clone();
        runtime::run(async move {
            let (status, sub) = s.create(&id, &c).await?;
            Ok::<_, core::Error>(CreateSubscriptionResult {
                created: status == SubscriptionStatus::Created,
                subscription: sub.into(),
            })
        })
        .await
    }

    /// A subscription with its links and acked offsets.
    pub async fn get(&self, id: String) -> Result<Subscription, DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.get(&id).await.map(Subscription::from) }).await
    }

    /// Deletes a subscription (idempotent).
    pub async fn delete(&self, id: String) -> Result<(), DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.delete(&id).await }).await
    }

    /// Links explicit streams (at their current tail; idempotent).
    pub async fn add_streams(
        &self,
        id: String,
        streams: Vec<String>,
    ) -> Result<(), DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.add_streams(&id, streams).await }).await
    }

    /// Removes an explicit link (idempotent).
    pub async fn remove_stream(&self, id: String, path: String) -> Result<(), DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.remove_stream(&id, &path).await }).await
    }

    /// Claims a pull-wake subscription's lease for `worker`.
    pub async fn claim(&self, id: String, worker: String) -> Result<Arc<Wake>, DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.claim(&id, &worker).await.map(|w| Arc::new(Wake(w))) }).await
    }

    /// Acks progress on a claimed wake (a heartbeat when `acks` is empty and not `done`).
    pub async fn ack(
        &self,
        wake: Arc<Wake>,
        acks: Vec<StreamAck>,
        done: bool,
    ) -> Result<AckResult, DurableStreamError> {
        let s = self.inner.clone();
        let acks = self::acks(acks);
        runtime::run(async move { s.ack(&wake.0, &acks, done).await.map(AckResult::from) }).await
    }

    /// Answers a webhook wake asynchronously through its callback URL.
    pub async fn callback(
        &self,
        wake: Arc<Wake>,
        acks: Vec<StreamAck>,
        done: bool,
    ) -> Result<AckResult, DurableStreamError> {
        let s = self.inner.clone();
        let acks = self::acks(acks);
        runtime::run(async move { s.callback(&wake.0, &acks, done).await.map(AckResult::from) })
            .await
    }

    /// Gives a claimed wake back without acking.
    pub async fn release(&self, wake: Arc<Wake>) -> Result<(), DurableStreamError> {
        let s = self.inner.clone();
        runtime::run(async move { s.release(&wake.0).await }).await
    }

    /// Starts a pull-wake worker in its pull form and returns its job queue. `from_offset`:
    /// the wake-stream offset to follow from (its tail when absent).
    pub fn jobs(
        &self,
        id: String,
        worker: String,
        wake_stream: String,
        from_offset: Option<String>,
        heartbeats: bool,
    ) -> Result<Arc<WorkQueue>, DurableStreamError> {
        let mut w = PullWakeWorker::new(self.inner.clone(), id, worker, wake_stream)?
            .heartbeats(heartbeats);
        if let Some(o) = from_offset {
            w = w.from_offset(o);
        }
        let _entered = runtime::handle()?.enter();
        let queue = w.jobs();
        Ok(Arc::new(WorkQueue {
            stop: queue.stop_signal(),
            queue: Arc::new(tokio::sync::Mutex::new(Some(queue))),
        }))
    }
}

/// One delivery of a pull-wake worker: one read batch of one stream.
#[derive(Debug, Clone, uniffi::Record)]
pub struct WorkItem {
    /// Stream-root-relative path.
    pub stream: String,
    /// The offset this delivery starts after.
    pub start_offset: String,
    /// The offset this delivery ends at (what is acked once it is handled).
    pub offset: String,
    /// Whether the stream is JSON (then `messages` holds the messages, else `data` the bytes).
    pub is_json: bool,
    /// For JSON streams: each message as its own JSON text.
    pub messages: Vec<String>,
    /// For other streams: the bytes.
    pub data: Vec<u8>,
}

/// The jobs of a running pull-wake worker.
#[derive(uniffi::Object)]
pub struct WorkQueue {
    queue: Arc<tokio::sync::Mutex<Option<core::WorkQueue>>>,
    stop: core::StopSignal,
}

#[uniffi::export]
impl WorkQueue {
    /// The next job, or nothing once the worker has stopped. Only one call at a time gets a
    /// job; answer it (`ack` or `fail`) before asking for the next, since the worker waits.
    pub async fn next(&self) -> Result<Option<Arc<WorkJob>>, DurableStreamError> {
        let queue = Arc::clone(&self.queue);
        runtime::run(async move {
            let mut guard = queue.lock().await;
            let next = match guard.as_mut() {
                Some(q) => q.next().await,
                None => None,
            };
            Ok::<_, DurableStreamError>(next.map(|j| Arc::new(WorkJob::new(j))))
        })
        .await
    }

    /// Asks the worker to stop (returns at once; a pending `next` then returns nothing).
    pub fn request_stop(&self) {
        self.stop.stop();
    }

    /// Stops the worker (a held lease is released, an ack in flight lands) and returns the
    /// wake-stream offset to resume from; nothing if it was stopped before.
    pub async fn stop(&self) -> Result<Option<String>, DurableStreamError> {
        self.stop.stop();
        let queue = Arc::clone(&self.queue);
        runtime::run(async move {
            let taken = queue.lock().await.take();
            match taken {
                Some(q) => q.stop().await.map(|o| Some(o.as_str().to_owned())),
                None => Ok(None),
            }
        })
        .await
    }
}

/// One delivery to answer with `ack` or `fail` (the first answer counts).
#[derive(uniffi::Object)]
pub struct WorkJob {
    item: WorkItem,
    reply: Mutex<Option<core::Job>>,
}

impl WorkJob {
    fn new(job: core::Job) -> Self {
        let it = &job.item;
        let is_json = it.data.is_empty();
        let item = WorkItem {
            stream: it.stream.clone(),
            start_offset: it.start_offset.as_str().to_owned(),
            offset: it.offset.as_str().to_owned(),
            is_json,
            messages: it.messages.iter().map(|m| m.get().to_owned()).collect(),
            data: it.data.to_vec(),
        };
        Self {
            item,
            reply: Mutex::new(Some(job)),
        }
    }

    fn take(&self) -> Option<core::Job> {
        self.reply.lock().ok().and_then(|mut r| r.take())
    }
}

#[uniffi::export]
impl WorkJob {
    /// The messages.
    pub fn item(&self) -> WorkItem {
        self.item.clone()
    }

    /// Whether `ack` or `fail` was called.
    pub fn answered(&self) -> bool {
        self.reply.lock().map(|r| r.is_none()).unwrap_or(true)
    }

    /// Handled: the worker acks the delivery.
    pub fn ack(&self) {
        if let Some(j) = self.take() {
            j.ack();
        }
    }

    /// Not handled: the worker releases the wake without acking, so it is woken again.
    pub fn fail(&self, reason: String) {
        if let Some(j) = self.take() {
            j.fail(reason);
        }
    }
}

/// Verifies signed webhook deliveries (keys from the server's JWK Set, cached).
#[derive(uniffi::Object)]
pub struct WebhookVerifier {
    inner: Arc<core::WebhookVerifier>,
}

#[uniffi::export]
impl WebhookVerifier {
    /// A verifier for the JWK Set at `jwks_url`; `replay_window_ms` defaults to 5 minutes.
    #[uniffi::constructor(default(replay_window_ms = None))]
    pub fn new(
        jwks_url: String,
        replay_window_ms: Option<u64>,
    ) -> Result<Arc<Self>, DurableStreamError> {
        let _entered = runtime::handle()?.enter();
        let mut v = core::WebhookVerifier::new(jwks_url)?;
        if let Some(ms) = replay_window_ms {
            v = v.with_replay_window(Duration::from_millis(ms));
        }
        Ok(Arc::new(Self { inner: Arc::new(v) }))
    }

    /// Verifies a delivery: the `Webhook-Signature` header (absent: `missing_header`) and the
    /// raw body. `now_ms` (milliseconds since the epoch) defaults to the current time.
    #[uniffi::method(default(now_ms = None))]
    pub async fn verify(
        &self,
        signature: Option<String>,
        body: Vec<u8>,
        now_ms: Option<u64>,
    ) -> Result<Arc<Wake>, DurableStreamError> {
        let v = Arc::clone(&self.inner);
        runtime::run(async move {
            let wake = match now_ms {
                Some(ms) => {
                    v.verify_at_unix(signature.as_deref(), &body, Duration::from_millis(ms))
                        .await
                }
                None => v.verify(signature.as_deref(), &body).await,
            };
            wake.map(|w| Arc::new(Wake(w)))
        })
        .await
    }
}

/// The body that finishes a webhook wake synchronously (answer 200 with it, as JSON).
#[uniffi::export]
pub fn webhook_done() -> String {
    core::WEBHOOK_DONE.to_owned()
}
