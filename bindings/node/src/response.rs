//! `NativeResponse` (a read in progress) and `NativeReader` (its batches, pulled one at a time).

use std::sync::Arc;

use bytes::Bytes;
use durable_streams_client::{Batch, Batches, Error, JsonNumbers, JsonPick, StreamResponse};
use napi::bindgen_prelude::{Buffer, Either3, Float64Array, Int32Array, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::error;
use crate::runtime::{spawn, CancelToken};

/// What a JSON read keeps of each message (checked by the JavaScript layer): the value of
/// `field`, or an object of `fields`.
#[napi(object)]
pub struct NativePick {
    pub field: Option<String>,
    pub fields: Option<Vec<String>>,
}

fn json_pick(pick: Option<NativePick>) -> napi::Result<Option<JsonPick>> {
    Ok(match pick {
        None => None,
        Some(NativePick {
            field: Some(f),
            fields: None,
        }) => Some(JsonPick::Value(f)),
        Some(NativePick {
            field: None,
            fields: Some(fs),
        }) => Some(JsonPick::Members(fs)),
        Some(NativePick {
            field: None,
            fields: None,
        }) => None,
        Some(_) => {
            return Err(error::to_napi(Error::InvalidArgument {
                message: "give field or fields, not both".into(),
            }))
        }
    })
}

/// One part of a JSON read: the text of a JSON array, or, when every element of that array is
/// a number, the numbers themselves. JavaScript copies those into an array in a fifth of the
/// time `JSON.parse` takes over their text, with a fifth of the page faults (BENCHMARKS.md,
/// round 27).
type JsonPart = Either3<String, Int32Array, Float64Array>;

fn json_parts(texts: Vec<String>) -> Vec<JsonPart> {
    texts
        .into_iter()
        .map(|text| match JsonNumbers::parse_array(&text) {
            Some(n) if n.is_empty() => Either3::A(text),
            Some(JsonNumbers::I32(v)) => Either3::B(Int32Array::new(v)),
            Some(JsonNumbers::F64(v)) => Either3::C(Float64Array::new(v)),
            None => Either3::A(text),
        })
        .collect()
}

/// A read in progress. Exactly one consumer (`bytes`, `text`, `json` or `reader`) may take its
/// data; a second one fails with code `ALREADY_CONSUMED`.
#[napi]
pub struct NativeResponse {
    inner: Arc<StreamResponse>,
}

impl NativeResponse {
    /// The position stays where the data handed to JavaScript ends: the TypeScript layer
    /// releases it (`releasePosition`) once a batch is passed on to the caller or a whole read
    /// returned. A batch that arrives after its consumer was cancelled (an unsubscribed
    /// callback, a cancelled web stream), or a whole read that fails halfway, then leaves
    /// `offset` before that data, so a read resumed from there gets it.
    pub(crate) fn new(inner: StreamResponse) -> Self {
        inner.hold_position();
        Self {
            inner: Arc::new(inner),
        }
    }
}

/// One batch of a read: the data of one response (or of the SSE events before one control
/// event) and the position after it. Exactly one of `bytes`, `text` and `items` is set.
#[napi(object)]
pub struct NativeBatch {
    /// Raw data (byte readers).
    pub bytes: Option<Buffer>,
    /// Text (text readers).
    pub text: Option<String>,
    /// JSON messages (JSON readers), as the texts of JSON arrays to parse and concatenate
    /// (one array, or several of at most 16 MiB each: the messages unchanged, checked by the
    /// core; `JSON.parse` over an array is several times faster than building values through
    /// napi one property at a time, and keeps the order of object keys). An array whose
    /// elements are all numbers comes as an `Int32Array` or `Float64Array` of them instead.
    #[napi(ts_type = "Array<string | Int32Array | Float64Array>")]
    pub items_json: Option<Vec<JsonPart>>,
    /// The offset to resume from after this batch.
    pub offset: String,
    /// The server's cursor.
    pub cursor: Option<String>,
    /// Whether the reader had caught up at this point.
    pub up_to_date: bool,
    /// Whether the stream is closed and this batch holds its last data.
    pub stream_closed: bool,
    /// Whether the batch ends where a response (or an SSE control event) ends, so that
    /// `offset` resumes exactly after it.
    pub checkpoint: bool,
}

fn meta<D>(b: &Batch<D>) -> NativeBatch {
    NativeBatch {
        bytes: None,
        text: None,
        items_json: None,
        offset: b.offset.to_string(),
        cursor: b.cursor.clone(),
        up_to_date: b.up_to_date,
        stream_closed: b.stream_closed,
        checkpoint: b.checkpoint,
    }
}

enum Kind {
    Bytes(Batches<Bytes>),
    Text(Batches<String>),
    Json(Batches<Vec<String>>),
}

/// Pulls the batches of a response one at a time.
#[napi]
pub struct NativeReader {
    batches: Arc<Mutex<Kind>>,
}

#[napi]
impl NativeReader {
    /// The next batch, or `null` when the read is over (closed stream, caught up in a non-live
    /// read, or cancelled).
    #[napi(ts_return_type = "Promise<NativeBatch | null>")]
    pub fn next<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, Option<NativeBatch>>> {
        let batches = Arc::clone(&self.batches);
        spawn(env, cancel, async move {
            let mut guard = batches.lock().await;
            Ok(match &mut *guard {
                Kind::Bytes(b) => b.next_batch().await?.map(|mut b| NativeBatch {
                    // Taken over without a copy when nothing else holds the bytes.
                    bytes: Some(Buffer::from(Vec::from(std::mem::take(&mut b.data)))),
                    ..meta(&b)
                }),
                Kind::Text(b) => b.next_batch().await?.map(|mut b| NativeBatch {
                    text: Some(std::mem::take(&mut b.data)),
                    ..meta(&b)
                }),
                Kind::Json(b) => b.next_batch().await?.map(|mut b| NativeBatch {
                    items_json: Some(json_parts(std::mem::take(&mut b.data))),
                    ..meta(&b)
                }),
            })
        })
    }
}

/// The first response of a read, before its data is consumed.
#[napi(object)]
pub struct NativeResponseHead {
    /// The HTTP status.
    pub status: u32,
    /// The standard reason phrase.
    pub status_text: String,
    /// The headers in order, as `[name, value]` pairs (names lower-case).
    pub headers: Vec<Vec<String>>,
    /// `Stream-Next-Offset`.
    pub offset: Option<String>,
    /// `Stream-Cursor`.
    pub cursor: Option<String>,
    /// `Stream-Up-To-Date`.
    pub up_to_date: bool,
    /// `Stream-Closed`.
    pub stream_closed: bool,
}

#[napi]
impl NativeResponse {
    /// The first response's status, headers and position.
    #[napi(getter)]
    pub fn first_response(&self) -> Option<NativeResponseHead> {
        self.inner.first_response().map(|h| NativeResponseHead {
            status: u32::from(h.status),
            status_text: h.status_text.clone(),
            headers: h
                .headers
                .iter()
                .map(|(n, v)| vec![n.clone(), v.clone()])
                .collect(),
            offset: h.offset.as_ref().map(|o| o.to_string()),
            cursor: h.cursor.clone(),
            up_to_date: h.up_to_date,
            stream_closed: h.stream_closed,
        })
    }

    /// The stream URL.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.url().to_string()
    }

    /// The stream's content type.
    #[napi(getter)]
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type().map(str::to_owned)
    }

    /// Whether the data is read as JSON.
    #[napi(getter)]
    pub fn is_json(&self) -> bool {
        self.inner.is_json()
    }

    /// The live mode: `off`, `auto`, `long-poll` or `sse`.
    #[napi(getter)]
    pub fn live(&self) -> String {
        self.inner.live().as_str().to_owned()
    }

    /// The offset the read started from.
    #[napi(getter)]
    pub fn start_offset(&self) -> String {
        self.inner.start_offset().to_string()
    }

    /// The offset after the data delivered so far.
    #[napi(getter)]
    pub fn offset(&self) -> String {
        self.inner.offset().to_string()
    }

    /// The last cursor the server sent.
    #[napi(getter)]
    pub fn cursor(&self) -> Option<String> {
        self.inner.cursor()
    }

    /// Whether the data delivered so far reaches the tail.
    #[napi(getter)]
    pub fn up_to_date(&self) -> bool {
        self.inner.up_to_date()
    }

    /// Whether the last data of a closed stream was delivered.
    #[napi(getter)]
    pub fn stream_closed(&self) -> bool {
        self.inner.stream_closed()
    }

    /// Stops the read: the request in flight is abandoned and readers end.
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Moves `offset` and the other position getters past the data returned so far: called by
    /// the TypeScript layer once that data is in the caller's hands.
    #[napi]
    pub fn release_position(&self) {
        self.inner.release_position();
    }

    /// All bytes up to the first up-to-date point.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn bytes<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, Buffer>> {
        let r = Arc::clone(&self.inner);
        spawn(env, cancel, async move {
            // `Vec::from` takes the buffer over without a copy when nothing else holds it.
            Ok(Buffer::from(Vec::from(r.bytes().await?)))
        })
    }

    /// All text up to the first up-to-date point.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn text<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'e, String>> {
        let r = Arc::clone(&self.inner);
        spawn(env, cancel, async move { r.text().await })
    }

    /// All JSON messages up to the first up-to-date point (or what `pick` keeps of each), as
    /// the texts of JSON arrays to parse and concatenate, or typed arrays of their numbers (see
    /// `NativeBatch.itemsJson`).
    #[napi(ts_return_type = "Promise<Array<string | Int32Array | Float64Array>>")]
    pub fn json<'e>(
        &self,
        env: &'e Env,
        cancel: Option<&CancelToken>,
        pick: Option<NativePick>,
    ) -> napi::Result<PromiseRaw<'e, Vec<JsonPart>>> {
        let r = Arc::clone(&self.inner);
        let pick = json_pick(pick)?;
        spawn(env, cancel, async move {
            let texts = match pick {
                None => r.json_arrays().await,
                Some(p) => r.json_picked_arrays(p).await,
            }?;
            Ok(json_parts(texts))
        })
    }

    /// A reader of the batches: `kind` is `bytes`, `text` or `json` (with `pick`, what it
    /// keeps of each JSON message).
    #[napi]
    pub fn reader(&self, kind: String, pick: Option<NativePick>) -> napi::Result<NativeReader> {
        let k = match (kind.as_str(), json_pick(pick)?) {
            ("json", Some(p)) => self.inner.json_picked_array_batches(p).map(Kind::Json),
            (_, Some(_)) => Err(Error::InvalidArgument {
                message: format!("a pick applies to JSON readers, not {kind:?}"),
            }),
            ("bytes", None) => self.inner.byte_batches().map(Kind::Bytes),
            ("text", None) => self.inner.text_batches().map(Kind::Text),
            ("json", None) => self.inner.json_array_batches().map(Kind::Json),
            (other, None) => Err(Error::InvalidArgument {
                message: format!("reader kind must be bytes, text or json, got {other:?}"),
            }),
        }
        .map_err(error::to_napi)?;
        Ok(NativeReader {
            batches: Arc::new(Mutex::new(k)),
        })
    }
}
