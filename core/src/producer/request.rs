//! The producer's HTTP requests: the per-producer request template, the gated request body
//! and the reading of the server's answer (200/204, 403 with `Producer-Epoch`, 409 with
//! `Producer-Expected-Seq`), with every `Producer-*` value checked against 2^53-1.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::MAX_PROTOCOL_INT;
use crate::error::{Error, Result};
use crate::http::{
    build_url, discard_body, error_from_parts, header_offset, header_true, header_u64,
    headers as h, prepare, read_message, transport_error, Op,
};
use crate::offset::Offset;
use crate::stream::DurableStream;
use crate::values::{header_name, header_value, RequestExtras, Value};

/// Everything about a producer request that does not change from batch to batch.
pub(crate) struct RequestTemplate {
    http: reqwest::Client,
    url: Url,
    display: Arc<str>,
    /// The resolved extras when none of them is computed.
    fixed: Option<HeaderMap>,
    extras: RequestExtras,
    producer_id: HeaderValue,
    /// The producer id as given, for errors.
    producer_name: Arc<str>,
    timeout: Duration,
}

const PRODUCER_ID: HeaderName = HeaderName::from_static("producer-id");
const PRODUCER_EPOCH: HeaderName = HeaderName::from_static("producer-epoch");
const PRODUCER_SEQ: HeaderName = HeaderName::from_static("producer-seq");
const STREAM_CLOSED: HeaderName = HeaderName::from_static("stream-closed");

impl RequestTemplate {
    pub(crate) fn new(
        stream: &DurableStream,
        producer_id: &str,
        extras: RequestExtras,
    ) -> Result<Self> {
        let producer_name = Arc::from(producer_id);
        let producer_id = header_value(h::PRODUCER_ID, producer_id)?;
        for (n, v) in &extras.headers {
            header_name(n)?;
            if let Value::Fixed(s) = v {
                header_value(n, s)?;
            }
        }
        let all_fixed = extras
            .headers
            .iter()
            .chain(extras.params.iter())
            .all(|(_, v)| matches!(v, Value::Fixed(_)));
        let (url, fixed) = if all_fixed {
            let mut headers = HeaderMap::with_capacity(extras.headers.len() + 5);
            for (n, v) in &extras.headers {
                if let Value::Fixed(s) = v {
                    headers.insert(header_name(n)?, header_value(n, s)?);
                }
            }
            let params: Vec<(String, String)> = extras
                .params
                .iter()
                .filter_map(|(n, v)| match v {
                    Value::Fixed(s) => Some((n.clone(), s.clone())),
                    Value::Computed(_) => None,
                })
                .collect();
            (build_url(stream.url(), &params, &[]), Some(headers))
        } else {
            (stream.url().clone(), None)
        };
        Ok(Self {
            http: stream.client().http().clone(),
            url,
            display: Arc::from(stream.inner.display.as_str()),
            fixed,
            extras,
            producer_id,
            producer_name,
            timeout: stream.client().request_timeout(),
        })
    }
}

/// One request of a batch.
pub(super) struct Attempt {
    pub(super) body: Bytes,
    pub(super) epoch: u64,
    pub(super) seq: u64,
    pub(super) close: bool,
    pub(super) content_type: HeaderValue,
    pub(super) written: Option<Written>,
    /// Holds back the body's last byte until released (see `GatedBody`).
    pub(super) hold: Option<oneshot::Receiver<()>>,
}

/// Tells the task that the body of attempt `attempt` of batch `id` has been handed to the
/// connection (or will never be), once.
pub(super) struct Written {
    pub(super) tx: mpsc::UnboundedSender<(u64, u32)>,
    pub(super) id: u64,
    pub(super) attempt: u32,
}

impl Written {
    pub(super) fn fire(self) {
        let _ = self.tx.send((self.id, self.attempt));
    }
}

/// Body chunk size: the connection takes a body a few chunks ahead of the socket.
const BODY_CHUNK: usize = 64 * 1024;

/// Bytes of a body held back until its request may complete (see `GatedBody`).
const HELD_TAIL: usize = 1;

/// A request body sent in two steps, so that the server receives the batches of a producer
/// whole in sequence order.
///
/// Requests of one producer travel on separate connections, and the server stores a batch
/// once it has read all of its body. Had a later batch's body finished arriving before an
/// earlier one, the server would answer 409 (it expects the earlier sequence) after reading
/// and checking the whole batch, and the batch would be sent again. Handing bodies to their
/// connections in order is not enough: a connection keeps a few hundred KiB of a body in its
/// own buffer while the server is busy, and the next connection can overtake it.
///
/// So the body goes out whole except for its last byte, and reports that (`Written`: the
/// task may then start the next request); the last byte follows once the task releases
/// `hold`, which it does when no earlier request of the producer is still waiting for its
/// answer (or when it drops the sender). The server reads the next bodies while it works on
/// the current one, and completes each only after the one before it has been stored.
struct GatedBody {
    rest: Bytes,
    written: Option<Written>,
    hold: Option<oneshot::Receiver<()>>,
}

impl http_body::Body for GatedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.rest.is_empty() {
            if let Some(w) = this.written.take() {
                w.fire();
            }
            return Poll::Ready(None);
        }
        let tail = if this.hold.is_some() {
            HELD_TAIL.min(this.rest.len())
        } else {
            0
        };
        if this.rest.len() > tail {
            let chunk = this.rest.split_to((this.rest.len() - tail).min(BODY_CHUNK));
            if this.rest.len() == tail {
                if let Some(w) = this.written.take() {
                    w.fire();
                }
            }
            return Poll::Ready(Some(Ok(http_body::Frame::data(chunk))));
        }
        if let Some(hold) = this.hold.as_mut() {
            // Released or dropped: either way the tail may go.
            if std::pin::Pin::new(hold).poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.hold = None;
        }
        if let Some(w) = this.written.take() {
            w.fire();
        }
        let chunk = std::mem::take(&mut this.rest);
        Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

impl Drop for GatedBody {
    fn drop(&mut self) {
        if let Some(w) = self.written.take() {
            w.fire();
        }
    }
}

/// A success answer.
pub(super) struct Accepted {
    pub(super) offset: Option<Offset>,
    pub(super) duplicate: bool,
    /// `Producer-Seq`: on a 204, the highest sequence the server holds for this epoch.
    pub(super) server_seq: Option<u64>,
}

/// A producer header the server sent, refused when it is beyond the protocol's 2^53-1.
fn protocol_int(headers: &HeaderMap, name: &str) -> Result<Option<u64>> {
    match header_u64(headers, name)? {
        Some(v) if v > MAX_PROTOCOL_INT => Err(Error::parse(
            format!("header {name}"),
            format!("{v} is beyond the protocol's maximum 2^53-1"),
        )),
        v => Ok(v),
    }
}

pub(super) async fn send(tpl: &RequestTemplate, a: Attempt) -> Result<Accepted> {
    let (url, mut headers) = match &tpl.fixed {
        Some(fixed) => (tpl.url.clone(), fixed.clone()),
        None => {
            let p = prepare(&tpl.url, &tpl.extras, &[], &[]).await?;
            (p.url, p.headers)
        }
    };
    let close_only = a.close && a.body.is_empty();
    if !a.body.is_empty() {
        headers.insert(CONTENT_TYPE, a.content_type);
    }
    headers.insert(PRODUCER_ID, tpl.producer_id.clone());
    headers.insert(PRODUCER_EPOCH, HeaderValue::from(a.epoch));
    headers.insert(PRODUCER_SEQ, HeaderValue::from(a.seq));
    if a.close {
        headers.insert(STREAM_CLOSED, HeaderValue::from_static("true"));
    }
    let body = match a.written {
        Some(written) if !a.body.is_empty() => reqwest::Body::wrap(GatedBody {
            rest: a.body,
            written: Some(written),
            hold: a.hold,
        }),
        Some(written) => {
            written.fire();
            reqwest::Body::from(a.body)
        }
        None => reqwest::Body::from(a.body),
    };
    let resp = tpl
        .http
        .post(url)
        .headers(headers)
        .timeout(tpl.timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| transport_error(e, &tpl.display))?;
    let status = resp.status();
    if status.is_success() {
        let accepted = Accepted {
            offset: header_offset(resp.headers()),
            // A close without a body always answers 204; only appends signal duplicates so.
            duplicate: status.as_u16() == 204 && !close_only,
            server_seq: protocol_int(resp.headers(), h::PRODUCER_SEQ).ok().flatten(),
        };
        // Reading the (empty) body lets the connection go back to the pool.
        discard_body(resp).await;
        return Ok(accepted);
    }
    let headers = resp.headers().clone();
    if status.as_u16() == 403 {
        if let Ok(Some(_)) = header_u64(&headers, h::PRODUCER_EPOCH) {
            discard_body(resp).await;
            let current_epoch = protocol_int(&headers, h::PRODUCER_EPOCH)?.unwrap_or_default();
            return Err(Error::StaleEpoch {
                producer_id: tpl.producer_name.to_string(),
                epoch: a.epoch,
                current_epoch,
            });
        }
    }
    if status.as_u16() == 409 && !header_true(&headers, h::STREAM_CLOSED) {
        if let Ok(Some(expected_seq)) = header_u64(&headers, h::PRODUCER_EXPECTED_SEQ) {
            discard_body(resp).await;
            protocol_int(&headers, h::PRODUCER_EXPECTED_SEQ)?;
            let received_seq = protocol_int(&headers, h::PRODUCER_RECEIVED_SEQ)
                .ok()
                .flatten()
                .unwrap_or(a.seq);
            return Err(Error::SequenceGap {
                expected_seq,
                received_seq,
            });
        }
    }
    let op = if close_only {
        Op::Close
    } else {
        Op::Append { with_seq: false }
    };
    let message = read_message(resp).await;
    Err(error_from_parts(
        status,
        &headers,
        message,
        &tpl.display,
        op,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_headers_beyond_2_pow_53_are_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(protocol_int(&h, "Producer-Epoch").unwrap(), None);
        h.insert(PRODUCER_EPOCH, HeaderValue::from(MAX_PROTOCOL_INT));
        assert_eq!(
            protocol_int(&h, "Producer-Epoch").unwrap(),
            Some(MAX_PROTOCOL_INT)
        );
        h.insert(PRODUCER_EPOCH, HeaderValue::from(MAX_PROTOCOL_INT + 1));
        let err = protocol_int(&h, "Producer-Epoch").unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::ParseError);
        assert!(err.to_string().contains("2^53-1"), "{err}");
        h.insert(PRODUCER_EPOCH, HeaderValue::from(u64::MAX));
        assert!(protocol_int(&h, "Producer-Epoch").is_err());
    }
}
