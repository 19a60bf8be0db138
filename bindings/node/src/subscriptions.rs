//! Subscriptions (PROTOCOL §6–7): management and the lease protocol (`NativeSubscriptions`),
//! held wakes whose token stays here (`NativeWake`), the pull-wake worker's job queue
//! (`NativeWorkQueue`, `NativeJob`) and webhook verification (`NativeWebhookVerifier`). The
//! TypeScript layer (node/src/subscriptions.ts) builds the handler form and async iterators.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_streams_client::{
    Ack, AckResult, Error, Job, LinkType, Offset, PullWakeWorker, StopSignal, Subscription,
    SubscriptionConfig, SubscriptionStatus, Subscriptions, Wake, WebhookVerifier, WorkQueue,
    WEBHOOK_DONE,
};
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::error;
use crate::runtime::{spawn, CancelToken};
use crate::values::{self, Extras};

/// The body that finishes a webhook wake synchronously.
#[napi]
pub fn webhook_done() -> &'static str {
    WEBHOOK_DONE
}

fn link(t: LinkType) -> String {
    match t {
        LinkType::Glob => "glob".into(),
        LinkType::Explicit => "explicit".into(),
    }
}

/// A stream linked to a subscription.
#[napi(object)]
pub struct NativeStreamLink {
    /// Stream-root-relative path.
    pub path: String,
    /// `glob` or `explicit`.
    pub link_type: String,
    /// The last processed offset.
    pub acked_offset: String,
}

/// Webhook signing metadata.
#[napi(object)]
pub struct NativeSigning {
    /// The algorithm.
    pub alg: String,
    /// The key id.
    pub kid: String,
    /// The JWK Set URL.
    pub jwks_url: String,
}

/// A subscription as the server reports it.
#[napi(object)]
pub struct NativeSubscription {
    /// The id.
    pub id: String,
    /// `pull-wake` or `webhook`.
    pub kind: String,
    /// The glob pattern.
    pub pattern: Option<String>,
    /// The linked streams.
    pub streams: Vec<NativeStreamLink>,
    /// The wake stream (pull-wake).
    pub wake_stream: Option<String>,
    /// The receiver URL (webhook).
    pub webhook_url: Option<String>,
    /// Signing metadata (webhook).
    pub signing: Option<NativeSigning>,
    /// The lease in milliseconds.
    pub lease_ttl_ms: f64,
    /// Creation time.
    pub created_at: Option<String>,
    /// `active` or `failed`.
    pub status: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// After `create`: whether it was created (else an identical one existed).
    pub created: Option<bool>,
}

impl From<Subscription> for NativeSubscription {
    fn from(s: Subscription) -> Self {
        let (webhook_url, signing) = match s.webhook {
            Some(w) => (
                Some(w.url),
                w.signing.map(|g| NativeSigning {
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
                .map(|l| NativeStreamLink {
                    path: l.path,
                    link_type: link(l.link_type),
                    acked_offset: l.acked_offset.as_str().to_owned(),
                })
                .collect(),
            wake_stream: s.wake_stream,
            webhook_url,
            signing,
            lease_ttl_ms: s.lease_ttl_ms as f64,
            created_at: s.created_at,
            status: s.status,
            description: s.description,
            created: None,
        }
    }
}

/// The configuration of `create`.
#[napi(object, object_to_js = false)]
pub struct NativeSubscriptionConfig {
    /// Pull-wake: the wake stream.
    pub wake_stream: Option<String>,
    /// Webhook: the receiver URL.
    pub webhook_url: Option<String>,
    /// The glob pattern.
    pub pattern: Option<String>,
    /// Explicit streams.
    pub streams: Option<Vec<String>>,
    /// The lease in milliseconds.
    pub lease_ttl_ms: Option<f64>,
    /// A description.
    pub description: Option<String>,
}

fn config(c: NativeSubscriptionConfig) -> Result<SubscriptionConfig, Error> {
    let mut cfg = match (c.wake_stream, c.webhook_url) {
        (Some(w), None) => SubscriptionConfig::pull_wake(w),
        (None, Some(u)) => SubscriptionConfig::webhook(u),
        _ => {
            return Err(Error::InvalidArgument {
                message: "a subscription needs exactly one of wakeStream (pull-wake) or \
                          webhookUrl (webhook)"
                    .into(),
            })
        }
    };
    if let Some(p) = c.pattern {
        cfg = cfg.pattern(p);
    }
    cfg = cfg.streams(c.streams.unwrap_or_default());
    if let Some(ms) = c.lease_ttl_ms {
        cfg = cfg.lease(millis("leaseTtlMs", ms)?);
    }
    if let Some(d) = c.description {
        cfg = cfg.description(d);
    }
    Ok(cfg)
}

fn millis(what: &str, ms: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| Error::InvalidArgument {
        message: format!("{what} must be a non-negative number of milliseconds, got {ms}"),
    })
}

/// One stream of a wake.
#[napi(object)]
pub struct NativeWakeStream {
    /// Stream-root-relative path.
    pub path: String,
    /// `glob` or `explicit`.
    pub link_type: String,
    /// The last processed offset.
    pub acked_offset: String,
    /// The tail when the wake was made.
    pub tail_offset: String,
    /// Whether there is work.
    pub has_pending: bool,
}

/// A held wake. Its token never leaves the native layer.
#[napi]
pub struct NativeWake {
    inner: Arc<Wake>,
}

#[napi]
impl NativeWake {
    /// The subscription id.
    #[napi(getter)]
    pub fn subscription_id(&self) -> String {
        self.inner.subscription_id.clone()
    }

    /// The wake id.
    #[napi(getter)]
    pub fn wake_id(&self) -> String {
        self.inner.wake_id.clone()
    }

    /// The fencing generation.
    #[napi(getter)]
    pub fn generation(&self) -> f64 {
        self.inner.generation as f64
    }

    /// The lease (claims only).
    #[napi(getter)]
    pub fn lease_ttl_ms(&self) -> Option<f64> {
        self.inner.lease_ttl_ms.map(|l| l as f64)
    }

    /// Where to call back (webhooks only).
    #[napi(getter)]
    pub fn callback_url(&self) -> Option<String> {
        self.inner.callback_url.clone()
    }

    /// The streams.
    #[napi(getter)]
    pub fn streams(&self) -> Vec<NativeWakeStream> {
        self.inner
            .streams
            .iter()
            .map(|s| NativeWakeStream {
                path: s.path.clone(),
                link_type: link(s.link_type),
                acked_offset: s.acked_offset.as_str().to_owned(),
                tail_offset: s.tail_offset.as_str().to_owned(),
                has_pending: s.has_pending,
            })
            .collect()
    }
}

/// One acknowledgement.
#[napi(object)]
pub struct NativeAck {
    /// Stream-root-relative path.
    pub stream: String,
    /// The last processed offset.
    pub offset: String,
}

/// The answer to an ack, heartbeat or callback.
#[napi(object)]
pub struct NativeAckResult {
    /// Accepted.
    pub ok: bool,
    /// After `done`: another wake was made for pending work.
    pub next_wake: bool,
}

fn ack_out(r: AckResult) -> NativeAckResult {
    NativeAckResult {
        ok: r.ok,
        next_wake: r.next_wake,
    }
}

fn acks(list: Vec<NativeAck>) -> Vec<Ack> {
    list.into_iter()
        .map(|a| Ack {
            stream: a.stream,
            offset: Offset::from(a.offset),
        })
        .collect()
}

/// Subscriptions of one stream root.
#[napi]
pub struct NativeSubscriptions {
    inner: Subscriptions,
}

#[napi]
impl NativeSubscriptions {
    /// A handle for `root` (an absolute http(s) URL).
    #[napi(constructor)]
    pub fn new(root: String, extras: Option<Extras>) -> napi::Result<Self> {
        let inner = Subscriptions::builder(root)
            .extras(values::extras(extras)?)
            .build()
            .map_err(error::to_napi)?;
        Ok(Self { inner })
    }

    /// The stream root URL.
    #[napi(getter)]
    pub fn root(&self) -> String {
        self.inner.root().to_string()
    }

    /// The JWK Set URL.
    #[napi(getter)]
    pub fn jwks_url(&self) -> String {
        self.inner.jwks_url().to_string()
    }

    /// Creates or confirms (`created` tells which).
    #[napi(ts_return_type = "Promise<NativeSubscription>")]
    pub fn create<'e>(
        &self,
        env: &'e Env,
        id: String,
        cfg: NativeSubscriptionConfig,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, NativeSubscription>> {
        let s = self.inner.clone();
        let cfg = config(cfg).map_err(error::to_napi)?;
        spawn(env, cancel, async move {
            let (status, sub) = s.create(&id, &cfg).await?;
            let mut out = NativeSubscription::from(sub);
            out.created = Some(status == SubscriptionStatus::Created);
            Ok(out)
        })
    }

    /// Reads a subscription.
    #[napi(ts_return_type = "Promise<NativeSubscription>")]
    pub fn get<'e>(
        &self,
        env: &'e Env,
        id: String,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, NativeSubscription>> {
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            s.get(&id).await.map(NativeSubscription::from)
        })
    }

    /// Deletes a subscription.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete<'e>(
        &self,
        env: &'e Env,
        id: String,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let s = self.inner.clone();
        spawn(env, cancel, async move { s.delete(&id).await })
    }

    /// Links explicit streams.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn add_streams<'e>(
        &self,
        env: &'e Env,
        id: String,
        streams: Vec<String>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let s = self.inner.clone();
        spawn(
            env,
            cancel,
            async move { s.add_streams(&id, streams).await },
        )
    }

    /// Removes an explicit link.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn remove_stream<'e>(
        &self,
        env: &'e Env,
        id: String,
        path: String,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let s = self.inner.clone();
        spawn(
            env,
            cancel,
            async move { s.remove_stream(&id, &path).await },
        )
    }

    /// Claims the lease.
    #[napi(ts_return_type = "Promise<NativeWake>")]
    pub fn claim<'e>(
        &self,
        env: &'e Env,
        id: String,
        worker: String,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, NativeWake>> {
        let s = self.inner.clone();
        spawn(env, cancel, async move {
            s.claim(&id, &worker)
                .await
                .map(|w| NativeWake { inner: Arc::new(w) })
        })
    }

    /// Acks (a heartbeat without acks and `done`).
    #[napi(ts_return_type = "Promise<NativeAckResult>")]
    pub fn ack<'e>(
        &self,
        env: &'e Env,
        wake: &NativeWake,
        acks: Vec<NativeAck>,
        done: bool,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, NativeAckResult>> {
        let (s, w, a) = (
            self.inner.clone(),
            Arc::clone(&wake.inner),
            self::acks(acks),
        );
        spawn(env, cancel, async move {
            s.ack(&w, &a, done).await.map(ack_out)
        })
    }

    /// Answers a webhook wake through its callback URL.
    #[napi(ts_return_type = "Promise<NativeAckResult>")]
    pub fn callback<'e>(
        &self,
        env: &'e Env,
        wake: &NativeWake,
        acks: Vec<NativeAck>,
        done: bool,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, NativeAckResult>> {
        let (s, w, a) = (
            self.inner.clone(),
            Arc::clone(&wake.inner),
            self::acks(acks),
        );
        spawn(env, cancel, async move {
            s.callback(&w, &a, done).await.map(ack_out)
        })
    }

    /// Releases a claimed wake.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn release<'e>(
        &self,
        env: &'e Env,
        wake: &NativeWake,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, ()>> {
        let (s, w) = (self.inner.clone(), Arc::clone(&wake.inner));
        spawn(env, cancel, async move { s.release(&w).await })
    }

    /// Starts a pull-wake worker (on the runtime) and resolves to its job queue.
    #[napi(ts_return_type = "Promise<NativeWorkQueue>")]
    pub fn jobs<'e>(
        &self,
        env: &'e Env,
        id: String,
        worker: String,
        wake_stream: String,
        from_offset: Option<String>,
        heartbeats: Option<bool>,
    ) -> napi::Result<PromiseRaw<'e, NativeWorkQueue>> {
        let mut w = PullWakeWorker::new(self.inner.clone(), id, worker, wake_stream)
            .map_err(error::to_napi)?
            .heartbeats(heartbeats.unwrap_or(true));
        if let Some(o) = from_offset {
            w = w.from_offset(o);
        }
        spawn(env, None, async move {
            let queue = w.jobs();
            Ok(NativeWorkQueue {
                stop: queue.stop_signal(),
                queue: Arc::new(tokio::sync::Mutex::new(Some(queue))),
            })
        })
    }
}

/// The jobs of a running worker.
#[napi]
pub struct NativeWorkQueue {
    queue: Arc<tokio::sync::Mutex<Option<WorkQueue>>>,
    stop: StopSignal,
}

#[napi]
impl NativeWorkQueue {
    /// The next job, or `null` once the worker has stopped.
    #[napi(ts_return_type = "Promise<NativeJob | null>")]
    pub fn next<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, Option<NativeJob>>> {
        let q = Arc::clone(&self.queue);
        spawn(env, cancel, async move {
            let mut guard = q.lock().await;
            let Some(queue) = guard.as_mut() else {
                return Ok(None);
            };
            Ok(queue.next().await.map(NativeJob::new))
        })
    }

    /// Asks the worker to stop (a pending `next` then resolves to `null`).
    #[napi]
    pub fn request_stop(&self) {
        self.stop.stop();
    }

    /// Stops the worker (a held lease is released); the wake-stream offset to resume from.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn stop<'e>(&self, env: &'e Env) -> napi::Result<PromiseRaw<'e, Option<String>>> {
        self.stop.stop();
        let q = Arc::clone(&self.queue);
        spawn(env, None, async move {
            let taken = q.lock().await.take();
            match taken {
                Some(queue) => queue.stop().await.map(|o| Some(o.as_str().to_owned())),
                None => Ok(None),
            }
        })
    }
}

/// One delivery: answer it with `ack()` or `fail()`.
#[napi]
pub struct NativeJob {
    stream: String,
    start_offset: String,
    offset: String,
    messages: Option<String>,
    data: Vec<u8>,
    reply: Mutex<Option<Job>>,
}

impl NativeJob {
    fn new(job: Job) -> Self {
        let item = &job.item;
        let messages = if item.data.is_empty() {
            Some(item.messages_json())
        } else {
            None
        };
        Self {
            stream: item.stream.clone(),
            start_offset: item.start_offset.as_str().to_owned(),
            offset: item.offset.as_str().to_owned(),
            messages,
            data: item.data.to_vec(),
            reply: Mutex::new(Some(job)),
        }
    }

    fn take(&self) -> Option<Job> {
        self.reply.lock().ok().and_then(|mut r| r.take())
    }
}

#[napi]
impl NativeJob {
    /// Stream-root-relative path.
    #[napi(getter)]
    pub fn stream(&self) -> String {
        self.stream.clone()
    }

    /// Where this delivery starts (exclusive).
    #[napi(getter)]
    pub fn start_offset(&self) -> String {
        self.start_offset.clone()
    }

    /// Where this delivery ends (the ack point).
    #[napi(getter)]
    pub fn offset(&self) -> String {
        self.offset.clone()
    }

    /// JSON streams: the messages as one JSON array text.
    #[napi(getter)]
    pub fn messages_json(&self) -> Option<String> {
        self.messages.clone()
    }

    /// Other streams: the bytes.
    #[napi(getter)]
    pub fn data(&self) -> Buffer {
        Buffer::from(self.data.clone())
    }

    /// Handled: ack it.
    #[napi]
    pub fn ack(&self) {
        if let Some(j) = self.take() {
            j.ack();
        }
    }

    /// Not handled: release the wake without acking.
    #[napi]
    pub fn fail(&self, reason: String) {
        if let Some(j) = self.take() {
            j.fail(reason);
        }
    }
}

/// Verifies signed webhook deliveries.
#[napi]
pub struct NativeWebhookVerifier {
    inner: Arc<WebhookVerifier>,
}

#[napi]
impl NativeWebhookVerifier {
    /// A verifier for the JWK Set at `jwks_url`; `replay_window_ms` defaults to 5 minutes.
    #[napi(constructor)]
    pub fn new(jwks_url: String, replay_window_ms: Option<f64>) -> napi::Result<Self> {
        let build = || -> Result<WebhookVerifier, Error> {
            let mut v = WebhookVerifier::new(&jwks_url)?;
            if let Some(ms) = replay_window_ms {
                v = v.with_replay_window(millis("replayWindowMs", ms)?);
            }
            Ok(v)
        };
        Ok(Self {
            inner: Arc::new(build().map_err(error::to_napi)?),
        })
    }

    /// Verifies a delivery; `now_ms` (milliseconds since the epoch) defaults to now.
    #[napi(ts_return_type = "Promise<NativeWake>")]
    pub fn verify<'e>(
        &self,
        env: &'e Env,
        signature: Option<String>,
        body: Buffer,
        now_ms: Option<f64>,
    ) -> napi::Result<PromiseRaw<'e, NativeWake>> {
        let now = now_ms
            .map(|ms| millis("nowMs", ms))
            .transpose()
            .map_err(error::to_napi)?;
        let v = Arc::clone(&self.inner);
        let body = Vec::<u8>::from(body);
        spawn(env, None, async move {
            let wake = match now {
                Some(t) => v.verify_at_unix(signature.as_deref(), &body, t).await,
                None => v.verify(signature.as_deref(), &body).await,
            };
            wake.map(|w| NativeWake { inner: Arc::new(w) })
        })
    }
}
