//! Conformance adapter: reads one JSON command per line on stdin, drives the public API of
//! `durable-streams-client`, and writes one JSON result per line on stdout.
//!
//! The adapter only translates: every rule (validation, retries, parsing, batching) comes from
//! the library. Logs go to stderr.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use durable_streams_client::{
    is_json_content_type, AppendOptions, Batches, Client, CloseOptions, CreateOptions,
    CreateStatus, DurableStream, DurableStreamBuilder, Error, IdempotentProducer,
    IdempotentProducerBuilder, LiveMode, Offset, ReadOptions, RequestExtras, RetryPolicy,
    StreamResponse, Value,
};
use serde_json::{json, Map, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

type Obj = Map<String, Json>;

/// A header or parameter registered with `set-dynamic-header` / `set-dynamic-param`.
struct Dynamic {
    value: Value,
    last: Arc<Mutex<Option<String>>>,
}

struct Adapter {
    server_url: String,
    client: Client,
    content_types: HashMap<String, String>,
    producers: HashMap<(String, String, u64), IdempotentProducer>,
    dyn_headers: Vec<(String, Dynamic)>,
    dyn_params: Vec<(String, Dynamic)>,
}

/// What a command answers: a success object or the library's error.
type Outcome = Result<Obj, Failure>;

struct Failure {
    error: Error,
    code: Option<&'static str>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, code: None }
    }
}

fn s<'a>(cmd: &'a Obj, key: &str) -> Option<&'a str> {
    cmd.get(key).and_then(Json::as_str)
}

fn bad(message: impl Into<String>) -> Failure {
    Failure {
        error: Error::InvalidArgument {
            message: message.into(),
        },
        code: None,
    }
}

fn obj(v: Json) -> Obj {
    match v {
        Json::Object(m) => m,
        _ => Obj::new(),
    }
}

impl Adapter {
    fn new() -> Result<Self, Error> {
        Ok(Self {
            server_url: String::new(),
            client: Client::new()?,
            content_types: HashMap::new(),
            producers: HashMap::new(),
            dyn_headers: Vec::new(),
            dyn_params: Vec::new(),
        })
    }

    fn url(&self, cmd: &Obj) -> Result<(String, String), Failure> {
        let path = s(cmd, "path").ok_or_else(|| bad("missing path"))?;
        Ok((path.to_owned(), format!("{}{}", self.server_url, path)))
    }

    /// The command's own headers as per-call extras.
    fn command_extras(cmd: &Obj) -> RequestExtras {
        let mut extras = RequestExtras::new();
        if let Some(Json::Object(h)) = cmd.get("headers") {
            for (k, v) in h {
                if let Some(v) = v.as_str() {
                    extras.set_header(k.clone(), v);
                }
            }
        }
        extras
    }

    /// A handle for the command's stream. With `dynamic`, the registered dynamic headers and
    /// parameters are attached as computed values (the library calls them once per request).
    fn builder(&self, url: &str, path: &str, dynamic: bool) -> DurableStreamBuilder {
        let mut b = DurableStream::builder(url).client(self.client.clone());
        if let Some(ct) = self.content_types.get(path) {
            b = b.content_type(ct.clone());
        }
        if dynamic {
            for (n, d) in &self.dyn_headers {
                b = b.header(n.clone(), d.value.clone());
            }
            for (n, d) in &self.dyn_params {
                b = b.param(n.clone(), d.value.clone());
            }
        }
        b
    }

    fn handle(&self, url: &str, path: &str) -> Result<DurableStream, Failure> {
        Ok(self.builder(url, path, false).build()?)
    }

    /// The dynamic values sent by the last request, and the command's own headers.
    fn sent(&self, cmd: &Obj, result: &mut Obj) {
        let mut headers = Obj::new();
        for (n, d) in &self.dyn_headers {
            if let Some(v) = d.last.lock().ok().and_then(|g| g.clone()) {
                headers.insert(n.clone(), Json::String(v));
            }
        }
        if let Some(Json::Object(h)) = cmd.get("headers") {
            for (k, v) in h {
                headers.insert(k.clone(), v.clone());
            }
        }
        let mut params = Obj::new();
        for (n, d) in &self.dyn_params {
            if let Some(v) = d.last.lock().ok().and_then(|g| g.clone()) {
                params.insert(n.clone(), Json::String(v));
            }
        }
        if !headers.is_empty() {
            result.insert("headersSent".into(), Json::Object(headers));
        }
        if !params.is_empty() {
            result.insert("paramsSent".into(), Json::Object(params));
        }
    }

    async fn dispatch(&mut self, kind: &str, cmd: &Obj) -> Outcome {
        match kind {
            "init" => self.init(cmd),
            "create" => self.create(cmd).await,
            "connect" => self.connect(cmd).await,
            "append" => self.append(cmd).await,
            "head" => self.head(cmd).await,
            "delete" => self.delete(cmd).await,
            "close" => self.close(cmd).await,
            "read" => self.read(cmd).await,
            "idempotent-append" => self.idempotent_append(cmd).await,
            "idempotent-append-batch" => self.idempotent_append_batch(cmd).await,
            "idempotent-close" => self.idempotent_close(cmd).await,
            "idempotent-detach" => self.idempotent_detach(cmd).await,
            "set-dynamic-header" => self.set_dynamic(cmd, true),
            "set-dynamic-param" => self.set_dynamic(cmd, false),
            "clear-dynamic" => {
                self.dyn_headers.clear();
                self.dyn_params.clear();
                Ok(Obj::new())
            }
            "validate" => self.validate(cmd).await,
            "benchmark" => self.benchmark(cmd).await,
            other => Err(Failure {
                error: Error::InvalidArgument {
                    message: format!("unsupported command {other:?}"),
                },
                code: Some("NOT_SUPPORTED"),
            }),
        }
    }

    fn init(&mut self, cmd: &Obj) -> Outcome {
        self.server_url = s(cmd, "serverUrl")
            .ok_or_else(|| bad("missing serverUrl"))?
            .trim_end_matches('/')
            .to_owned();
        self.content_types.clear();
        self.producers.clear();
        self.dyn_headers.clear();
        self.dyn_params.clear();
        Ok(obj(json!({
            "clientName": "durable-streams-client (rust)",
            "clientVersion": env!("CARGO_PKG_VERSION"),
            "features": {
                "batching": true,
                "sse": true,
                "longPoll": true,
                "auto": true,
                "streaming": true,
                "dynamicHeaders": true,
                "retryOptions": true,
                "batchItems": true,
                "strictZeroValidation": true
            }
        })))
    }

    async fn create(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let ct = s(cmd, "contentType")
            .unwrap_or("application/octet-stream")
            .to_owned();
        let handle = self.handle(&url, &path)?;
        let opts = CreateOptions {
            content_type: Some(ct.clone()),
            ttl_seconds: cmd.get("ttlSeconds").and_then(Json::as_u64),
            expires_at: s(cmd, "expiresAt").map(str::to_owned),
            closed: cmd.get("closed").and_then(Json::as_bool).unwrap_or(false),
            body: s(cmd, "data").map(|d| Bytes::from(d.to_owned())),
            fork: None,
            extras: Self::command_extras(cmd),
        };
        let r = handle.create(opts).await?;
        self.content_types
            .insert(path, r.content_type.clone().unwrap_or(ct));
        let mut out = obj(json!({
            "status": if r.status == CreateStatus::Created { 201 } else { 200 },
        }));
        if let Some(o) = r.next_offset {
            out.insert("offset".into(), Json::String(o.to_string()));
        }
        Ok(out)
    }

    async fn connect(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let handle = DurableStream::builder(url)
            .client(self.client.clone())
            .extras(Self::command_extras(cmd))
            .build()?;
        let head = handle.head().await?;
        if let Some(ct) = head.content_type {
            self.content_types.insert(path, ct);
        }
        let mut out = obj(json!({"status": 200}));
        if let Some(o) = head.next_offset {
            out.insert("offset".into(), Json::String(o.to_string()));
        }
        Ok(out)
    }

    async fn append(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let data = s(cmd, "data").unwrap_or_default();
        let body = if cmd.get("binary").and_then(Json::as_bool).unwrap_or(false) {
            Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| bad(format!("binary data is not base64: {e}")))?,
            )
        } else {
            Bytes::from(data.to_owned())
        };
        // The reference client retries appends on 5xx/429/network errors; the library leaves
        // that to an explicit opt-in (a retried plain append can be stored twice).
        let handle = self
            .builder(&url, &path, true)
            .append_retry(RetryPolicy::default().with_max_retries(Some(10)))
            .build()?;
        let seq = cmd.get("seq").map(|v| match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        });
        let r = handle
            .append_with(
                body,
                AppendOptions {
                    seq,
                    content_type: None,
                    extras: Self::command_extras(cmd),
                },
            )
            .await?;
        if let Some(ct) = handle.content_type() {
            self.content_types.insert(path, ct);
        }
        let mut out = obj(json!({"status": 200}));
        if let Some(o) = r.next_offset {
            out.insert("offset".into(), Json::String(o.to_string()));
        }
        self.sent(cmd, &mut out);
        Ok(out)
    }

    async fn head(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let handle = DurableStream::builder(url)
            .client(self.client.clone())
            .extras(Self::command_extras(cmd))
            .build()?;
        let h = handle.head().await?;
        if let Some(ct) = &h.content_type {
            self.content_types.insert(path, ct.clone());
        }
        let mut out = obj(json!({"status": 200, "streamClosed": h.closed}));
        if let Some(o) = h.next_offset {
            out.insert("offset".into(), Json::String(o.to_string()));
        }
        if let Some(ct) = h.content_type {
            out.insert("contentType".into(), Json::String(ct));
        }
        if let Some(t) = h.ttl_seconds {
            out.insert("ttlSeconds".into(), json!(t));
        }
        if let Some(e) = h.expires_at {
            out.insert("expiresAt".into(), Json::String(e));
        }
        Ok(out)
    }

    async fn delete(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let handle = DurableStream::builder(url)
            .client(self.client.clone())
            .extras(Self::command_extras(cmd))
            .build()?;
        handle.delete().await?;
        self.content_types.remove(&path);
        Ok(obj(json!({"status": 200})))
    }

    async fn close(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let handle = self.handle(&url, &path)?;
        let r = handle
            .close_with(CloseOptions {
                body: s(cmd, "data").map(|d| Bytes::from(d.to_owned())),
                content_type: s(cmd, "contentType").map(str::to_owned),
                extras: Self::command_extras(cmd),
            })
            .await?;
        let mut out = obj(json!({"status": 200}));
        if let Some(o) = r.final_offset {
            out.insert("finalOffset".into(), Json::String(o.to_string()));
        }
        Ok(out)
    }

    async fn read(&mut self, cmd: &Obj) -> Outcome {
        let (path, url) = self.url(cmd)?;
        let handle = self.builder(&url, &path, true).build()?;
        let live = match cmd.get("live") {
            None | Some(Json::Bool(false)) | Some(Json::Null) => LiveMode::Off,
            Some(Json::Bool(true)) => LiveMode::Auto,
            Some(Json::String(m)) if m == "long-poll" => LiveMode::LongPoll,
            Some(Json::String(m)) if m == "sse" => LiveMode::Sse,
            Some(other) => return Err(bad(format!("unknown live mode {other}"))),
        };
        // The library retries reads without limit by default; the suite expects a read to give
        // up once transient errors persist, so this adapter configures a limit.
        let mut opts = ReadOptions::new()
            .offset(s(cmd, "offset").unwrap_or("-1"))
            .live(live)
            .retry(RetryPolicy::default().with_max_retries(Some(10)));
        opts.extras = Self::command_extras(cmd);
        let timeout =
            Duration::from_millis(cmd.get("timeoutMs").and_then(Json::as_u64).unwrap_or(5000));
        let max_chunks = cmd.get("maxChunks").and_then(Json::as_u64).unwrap_or(100) as usize;
        let wait_up_to_date = cmd
            .get("waitForUpToDate")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let deadline = tokio::time::Instant::now() + timeout;

        let resp = handle.stream(opts).await?;
        if let Some(ct) = resp.content_type() {
            self.content_types.insert(path, ct.to_owned());
        }
        let mut reader = Reader::new(&resp)?;
        let mut chunks = Vec::new();
        let mut timed_out = false;
        loop {
            let step = match tokio::time::timeout_at(deadline, reader.next()).await {
                Err(_) => {
                    timed_out = true;
                    break;
                }
                Ok(step) => step?,
            };
            let Some((data, offset, up_to_date, closed)) = step else {
                break;
            };
            if let Some(d) = data {
                let mut c = obj(json!({"offset": offset.as_str()}));
                match d {
                    Chunk::Text(t) => {
                        c.insert("data".into(), Json::String(t));
                    }
                    Chunk::Binary(b) => {
                        c.insert(
                            "data".into(),
                            Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
                        );
                        c.insert("binary".into(), Json::Bool(true));
                    }
                }
                chunks.push(Json::Object(c));
            }
            if closed || chunks.len() >= max_chunks || (wait_up_to_date && up_to_date) {
                break;
            }
        }
        resp.cancel();
        let status = if timed_out && chunks.is_empty() && live != LiveMode::Off {
            204
        } else {
            200
        };
        let mut out = obj(json!({
            "status": status,
            "chunks": chunks,
            "offset": resp.offset().as_str(),
            "upToDate": resp.up_to_date() || timed_out,
            "streamClosed": resp.stream_closed(),
        }));
        if let Some(c) = resp.cursor() {
            out.insert("cursor".into(), Json::String(c));
        }
        self.sent(cmd, &mut out);
        Ok(out)
    }

    /// A producer builder for the command's stream, producer id, epoch and auto-claim flag.
    fn producer_builder(
        &self,
        cmd: &Obj,
    ) -> Result<(String, u64, IdempotentProducerBuilder), Failure> {
        let (path, url) = self.url(cmd)?;
        let id = s(cmd, "producerId").unwrap_or_default();
        let epoch = non_negative(cmd, "epoch")?.unwrap_or(0);
        let handle = self.handle(&url, &path)?;
        let builder = handle
            .producer(id)
            .epoch(epoch)
            .auto_claim(
                cmd.get("autoClaim")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            )
            .extras(Self::command_extras(cmd));
        Ok((path, epoch, builder))
    }

    /// The producer cached for (path, id, epoch), built with no linger and one request in
    /// flight, as the suite's single-message commands expect.
    fn cached_producer(&mut self, cmd: &Obj) -> Result<IdempotentProducer, Failure> {
        let (path, epoch, builder) = self.producer_builder(cmd)?;
        let key = (
            path,
            s(cmd, "producerId").unwrap_or_default().to_owned(),
            epoch,
        );
        if let Some(p) = self.producers.get(&key) {
            return Ok(p.clone());
        }
        let p = builder.linger(Duration::ZERO).max_in_flight(1).build()?;
        self.producers.insert(key, p.clone());
        Ok(p)
    }

    async fn idempotent_append(&mut self, cmd: &Obj) -> Outcome {
        let producer = self.cached_producer(cmd)?;
        let data = s(cmd, "data").unwrap_or_default().to_owned();
        let receipt = producer.append(data).await?;
        producer.flush().await?;
        let delivery = receipt.wait().await?;
        let mut out = obj(json!({
            "status": if delivery.duplicate { 204 } else { 200 },
            "duplicate": delivery.duplicate,
            "producerEpoch": delivery.epoch,
            "producerSeq": delivery.seq,
        }));
        if let Some(o) = delivery.offset {
            out.insert("offset".into(), Json::String(o.to_string()));
        }
        Ok(out)
    }

    async fn idempotent_append_batch(&mut self, cmd: &Obj) -> Outcome {
        let (_, _, builder) = self.producer_builder(cmd)?;
        let in_flight = non_negative(cmd, "maxInFlight")?.unwrap_or(1).max(1) as usize;
        // Several in flight: the suite wants many small concurrent batches; otherwise one batch.
        let producer = if in_flight > 1 {
            builder
                .max_in_flight(in_flight)
                .max_batch_bytes(1)
                .linger(Duration::ZERO)
        } else {
            builder.linger(Duration::from_secs(1))
        }
        .build()?;
        let items = match cmd.get("items") {
            Some(Json::Array(items)) => items.clone(),
            _ => return Err(bad("missing items")),
        };
        for item in items {
            let data = match item {
                Json::String(s) => s,
                other => other.to_string(),
            };
            producer.append(data).await?;
        }
        let flushed = producer.flush().await;
        producer.detach().await?;
        flushed?;
        Ok(obj(json!({"status": 200})))
    }

    async fn idempotent_close(&mut self, cmd: &Obj) -> Outcome {
        let producer = self.cached_producer(cmd)?;
        let final_message = s(cmd, "data").map(|d| Bytes::from(d.to_owned()));
        let offset = producer.close(final_message).await?;
        let mut out = obj(json!({"status": 200}));
        if let Some(o) = offset {
            out.insert("finalOffset".into(), Json::String(o.to_string()));
        }
        Ok(out)
    }

    async fn idempotent_detach(&mut self, cmd: &Obj) -> Outcome {
        let producer = self.cached_producer(cmd)?;
        producer.detach().await?;
        let (path, _) = self.url(cmd)?;
        let epoch = non_negative(cmd, "epoch")?.unwrap_or(0);
        let id = s(cmd, "producerId").unwrap_or_default().to_owned();
        self.producers.remove(&(path, id, epoch));
        Ok(obj(json!({"status": 200})))
    }

    fn set_dynamic(&mut self, cmd: &Obj, header: bool) -> Outcome {
        let name = s(cmd, "name")
            .ok_or_else(|| bad("missing name"))?
            .to_owned();
        let last: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let record = last.clone();
        let value = match s(cmd, "valueType") {
            Some("counter") => {
                let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
                Value::computed_sync(move || {
                    let v = (n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1).to_string();
                    if let Ok(mut g) = record.lock() {
                        *g = Some(v.clone());
                    }
                    v
                })
            }
            Some("timestamp") => Value::computed_sync(move || {
                let v = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default()
                    .to_string();
                if let Ok(mut g) = record.lock() {
                    *g = Some(v.clone());
                }
                v
            }),
            Some("token") => {
                let token = s(cmd, "initialValue").unwrap_or_default().to_owned();
                Value::computed_sync(move || {
                    if let Ok(mut g) = record.lock() {
                        *g = Some(token.clone());
                    }
                    token.clone()
                })
            }
            other => return Err(bad(format!("unknown valueType {other:?}"))),
        };
        let list = if header {
            &mut self.dyn_headers
        } else {
            &mut self.dyn_params
        };
        list.retain(|(n, _)| *n != name);
        list.push((name, Dynamic { value, last }));
        Ok(Obj::new())
    }

    async fn validate(&mut self, cmd: &Obj) -> Outcome {
        let target = match cmd.get("target") {
            Some(Json::Object(t)) => t,
            _ => return Err(bad("missing target")),
        };
        match s(target, "target") {
            Some("retry-options") => {
                let d = RetryPolicy::default();
                let f = |k: &str, dflt: f64| target.get(k).and_then(Json::as_f64).unwrap_or(dflt);
                RetryPolicy::from_millis(
                    f("initialDelayMs", d.initial_delay.as_secs_f64() * 1000.0),
                    f("maxDelayMs", d.max_delay.as_secs_f64() * 1000.0),
                    f("multiplier", d.multiplier),
                    target.get("maxRetries").and_then(Json::as_i64),
                )?;
                Ok(Obj::new())
            }
            Some("idempotent-producer") => {
                // Negative numbers fail the conversion to unsigned; every other rule is the
                // library's, applied when the producer is built.
                let handle = DurableStream::builder(format!("{}/validate", self.server_url))
                    .client(self.client.clone())
                    .build()?;
                let mut b = handle
                    .producer(s(target, "producerId").unwrap_or("validate"))
                    .epoch(non_negative(target, "epoch")?.unwrap_or(0));
                if let Some(n) = non_negative(target, "maxBatchBytes")? {
                    b = b.max_batch_bytes(n as usize);
                }
                if let Some(n) = non_negative(target, "maxBatchItems")? {
                    b = b.max_batch_messages(n as usize);
                }
                b.build()?.detach().await?;
                Ok(Obj::new())
            }
            other => Err(Failure {
                error: Error::InvalidArgument {
                    message: format!("unsupported validation target {other:?}"),
                },
                code: Some("NOT_SUPPORTED"),
            }),
        }
    }

    async fn benchmark(&mut self, cmd: &Obj) -> Outcome {
        let op = match cmd.get("operation") {
            Some(Json::Object(o)) => o.clone(),
            _ => return Err(bad("missing operation")),
        };
        let (path, url) = self.url(&op)?;
        let started;
        let mut metrics = Obj::new();
        match s(&op, "op") {
            Some("create") => {
                let ct = s(&op, "contentType").unwrap_or("application/octet-stream");
                let h = self.handle(&url, &path)?;
                started = Instant::now();
                h.create(CreateOptions::with_content_type(ct)).await?;
            }
            Some("append") => {
                let size = op.get("size").and_then(Json::as_u64).unwrap_or(100) as usize;
                let h = self.handle(&url, &path)?;
                h.resolve_content_type().await?;
                let body = Bytes::from(vec![b'x'; size]);
                started = Instant::now();
                h.append(body).await?;
                metrics.insert("bytesTransferred".into(), json!(size));
            }
            Some("read") => {
                let h = self.handle(&url, &path)?;
                started = Instant::now();
                let resp = h
                    .stream(
                        ReadOptions::new()
                            .offset(s(&op, "offset").unwrap_or("-1"))
                            .live(LiveMode::Off),
                    )
                    .await?;
                let body = resp.bytes().await?;
                metrics.insert("bytesTransferred".into(), json!(body.len()));
            }
            Some("roundtrip") => {
                let size = op.get("size").and_then(Json::as_u64).unwrap_or(100) as usize;
                let ct = s(&op, "contentType").unwrap_or("application/octet-stream");
                let live = match s(&op, "live") {
                    Some("sse") => LiveMode::Sse,
                    _ => LiveMode::LongPoll,
                };
                let payload = if is_json_content_type(ct) {
                    // A JSON string of `size` bytes, so JSON streams accept it.
                    let mut p = vec![b'x'; size.max(2)];
                    p[0] = b'"';
                    p[size.max(2) - 1] = b'"';
                    Bytes::from(p)
                } else {
                    Bytes::from(vec![42u8; size])
                };
                let h = self.handle(&url, &path)?;
                started = Instant::now();
                h.create(CreateOptions::with_content_type(ct)).await?;
                let resp = h.stream(ReadOptions::new().live(live)).await?;
                let mut batches = resp.byte_batches()?;
                let reader = tokio::spawn(async move {
                    while let Some(b) = batches.next_batch().await? {
                        if !b.data.is_empty() {
                            return Ok(b.data.len());
                        }
                    }
                    Ok::<usize, Error>(0)
                });
                h.append(payload).await?;
                let received = reader
                    .await
                    .map_err(|e| bad(format!("reader task failed: {e}")))??;
                resp.cancel();
                metrics.insert("bytesTransferred".into(), json!(size + received));
            }
            Some("throughput_append") => {
                let count = op.get("count").and_then(Json::as_u64).unwrap_or(0);
                let size = op.get("size").and_then(Json::as_u64).unwrap_or(100) as usize;
                let ct = self
                    .content_types
                    .get(&path)
                    .cloned()
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let h = self.handle(&url, &path)?;
                h.create(CreateOptions::with_content_type(ct)).await?;
                let payload = Bytes::from(vec![42u8; size]);
                started = Instant::now();
                let producer = h
                    .producer("bench-producer")
                    .linger(Duration::ZERO)
                    .build()?;
                for _ in 0..count {
                    producer.append(payload.clone()).await?;
                }
                producer.flush().await?;
                producer.detach().await?;
                metrics.insert("bytesTransferred".into(), json!(count * size as u64));
                metrics.insert("messagesProcessed".into(), json!(count));
            }
            Some("throughput_read") => {
                let h = self.handle(&url, &path)?;
                started = Instant::now();
                let resp = h.stream(ReadOptions::new().live(LiveMode::Off)).await?;
                let mut batches = resp.json_batches::<Json>()?;
                let (mut count, mut bytes) = (0u64, 0usize);
                while let Some(b) = batches.next_batch().await? {
                    for item in &b.data {
                        count += 1;
                        bytes += item.to_string().len();
                    }
                }
                metrics.insert("bytesTransferred".into(), json!(bytes));
                metrics.insert("messagesProcessed".into(), json!(count));
            }
            other => {
                return Err(Failure {
                    error: Error::InvalidArgument {
                        message: format!("unsupported benchmark operation {other:?}"),
                    },
                    code: Some("NOT_SUPPORTED"),
                })
            }
        }
        let ns = started.elapsed().as_nanos();
        let mut out = obj(json!({
            "iterationId": cmd.get("iterationId").cloned().unwrap_or(Json::Null),
            "durationNs": ns.to_string(),
        }));
        if !metrics.is_empty() {
            out.insert("metrics".into(), Json::Object(metrics));
        }
        Ok(out)
    }
}

/// An optional integer field that must not be negative.
fn non_negative(cmd: &Obj, key: &str) -> Result<Option<u64>, Failure> {
    match cmd.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a non-negative integer, got {v}"))),
    }
}

/// One chunk of a read result: text, or bytes that are not UTF-8.
enum Chunk {
    Text(String),
    Binary(Bytes),
}

/// Reads batches of a response: JSON items re-serialized as one array per batch for JSON
/// streams, bytes otherwise.
enum Reader {
    Json(Batches<Vec<Json>>),
    Bytes(Batches<Bytes>),
}

type Step = Option<(Option<Chunk>, Offset, bool, bool)>;

impl Reader {
    fn new(resp: &StreamResponse) -> Result<Self, Error> {
        Ok(if resp.is_json() {
            Self::Json(resp.json_batches()?)
        } else {
            Self::Bytes(resp.byte_batches()?)
        })
    }

    async fn next(&mut self) -> Result<Step, Error> {
        Ok(match self {
            Self::Json(b) => b.next_batch().await?.map(|b| {
                let chunk =
                    (!b.data.is_empty()).then(|| Chunk::Text(Json::Array(b.data).to_string()));
                (chunk, b.offset, b.up_to_date, b.stream_closed)
            }),
            Self::Bytes(b) => b.next_batch().await?.map(|b| {
                let chunk = (!b.data.is_empty()).then(|| match std::str::from_utf8(&b.data) {
                    Ok(t) => Chunk::Text(t.to_owned()),
                    Err(_) => Chunk::Binary(b.data.clone()),
                });
                (chunk, b.offset, b.up_to_date, b.stream_closed)
            }),
        })
    }
}

/// The adapter protocol's error code for a library error.
fn error_code(kind: &str, e: &Error) -> &'static str {
    match e.last_attempt() {
        Error::NotFound { .. } => "NOT_FOUND",
        Error::ConflictExists { .. } | Error::Conflict { .. } => "CONFLICT",
        Error::SeqConflict { .. } => "SEQUENCE_CONFLICT",
        Error::StreamClosed { .. } => "STREAM_CLOSED",
        Error::BadRequest { .. } if kind == "read" => "INVALID_OFFSET",
        Error::Parse { .. } => "PARSE_ERROR",
        Error::InvalidArgument { .. } => "INVALID_ARGUMENT",
        Error::Network { .. } => "NETWORK_ERROR",
        Error::Timeout { .. } => "TIMEOUT",
        Error::StaleEpoch { .. } => "STALE_EPOCH",
        Error::SequenceGap { .. } => "SEQUENCE_GAP",
        Error::ProducerSessionConflict { .. } => "PRODUCER_SESSION_CONFLICT",
        _ => "UNEXPECTED_STATUS",
    }
}

fn error_result(kind: &str, f: &Failure) -> Json {
    let mut out = obj(json!({
        "type": "error",
        "success": false,
        "commandType": kind,
        "errorCode": f.code.unwrap_or_else(|| error_code(kind, &f.error)),
        "message": f.error.to_string(),
    }));
    if let Some(status) = f.error.status() {
        out.insert("status".into(), json!(status));
    }
    let mut details = Obj::new();
    match f.error.last_attempt() {
        Error::StaleEpoch { current_epoch, .. } => {
            details.insert("currentEpoch".into(), json!(current_epoch));
        }
        Error::SequenceGap {
            expected_seq,
            received_seq,
        } => {
            details.insert("expectedSeq".into(), json!(expected_seq));
            details.insert("receivedSeq".into(), json!(received_seq));
        }
        Error::StreamClosed {
            final_offset: Some(o),
            ..
        } => {
            details.insert("finalOffset".into(), json!(o.as_str()));
        }
        _ => {}
    }
    if !details.is_empty() {
        out.insert("details".into(), Json::Object(details));
    }
    Json::Object(out)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut adapter = Adapter::new()?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let (kind, result) = match serde_json::from_str::<Json>(&line) {
            Ok(Json::Object(cmd)) => {
                let kind = s(&cmd, "type").unwrap_or_default().to_owned();
                if kind == "shutdown" {
                    let out = json!({"type": "shutdown", "success": true});
                    stdout.write_all(format!("{out}\n").as_bytes()).await?;
                    stdout.flush().await?;
                    return Ok(());
                }
                let result = adapter.dispatch(&kind, &cmd).await;
                (kind, result)
            }
            _ => (
                String::from("unknown"),
                Err(bad(format!("not a JSON object: {line}"))),
            ),
        };
        let out = match result {
            Ok(mut obj) => {
                obj.insert("type".into(), Json::String(kind));
                obj.insert("success".into(), Json::Bool(true));
                Json::Object(obj)
            }
            Err(f) => {
                eprintln!("[adapter] {kind} failed: {}", f.error);
                error_result(&kind, &f)
            }
        };
        stdout.write_all(format!("{out}\n").as_bytes()).await?;
        stdout.flush().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("[adapter] fatal: {e}");
        std::process::exit(1);
    }
}
