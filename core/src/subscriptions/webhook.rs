//! Webhook receiver helpers: verify `Webhook-Signature`, parse the wake, answer it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use url::Url;

use super::manage::{parse_json, read_bounded};
use super::types::{SignatureCheck, Wake};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{display_url, transport_error};

/// The body that finishes a webhook wake synchronously: the server acks the wake's tail
/// offsets and releases the lease. Answer with status 200 and `Content-Type: application/json`.
pub const WEBHOOK_DONE: &str = r#"{"done":true}"#;

/// Verifies signed webhook deliveries, framework-agnostic: pass the `Webhook-Signature`
/// header and the raw body bytes, get a verified [`Wake`].
///
/// Keys come from the server's JWK Set (fetched on first use, cached, and fetched again once
/// when a delivery names an unknown `kid`, at most every 10 seconds, whether the last fetch
/// succeeded or failed). Timestamps outside the replay window (5 minutes by default) are
/// refused. The body is parsed only after the signature checks out.
///
/// ```no_run
/// # async fn demo(sig: &str, body: &[u8]) -> durable_streams_client::Result<()> {
/// use durable_streams_client::{WebhookVerifier, WEBHOOK_DONE};
/// let verifier = WebhookVerifier::new("http://127.0.0.1:4437/v1/stream/__ds/jwks.json")?;
/// let wake = verifier.verify(Some(sig), body).await?;
/// println!("wake {} of {}", wake.generation, wake.subscription_id);
/// // ... process, then answer 200 with WEBHOOK_DONE
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WebhookVerifier {
    jwks_url: Url,
    client: Client,
    window: Duration,
    keys: Mutex<HashMap<String, VerifyingKey>>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

/// The largest JWK Set body read.
const MAX_JWKS_BODY: usize = 1 << 20;

/// The shortest time between two JWK Set fetches caused by unknown key ids (the first fetch
/// included, failed or not), so that forged deliveries with random `kid`s cannot make the
/// receiver hammer the server.
const MIN_REFRESH: Duration = Duration::from_secs(10);

impl WebhookVerifier {
    /// A verifier using the JWK Set at `jwks_url` (see [`Subscriptions::jwks_url`](crate::Subscriptions::jwks_url)).
    pub fn new(jwks_url: impl AsRef<str>) -> Result<Self> {
        let jwks_url = Url::parse(jwks_url.as_ref())
            .map_err(|e| Error::invalid(format!("invalid JWKS URL: {e}")))?;
        if jwks_url.scheme() != "http" && jwks_url.scheme() != "https" {
            return Err(Error::invalid("JWKS URL must be http or https"));
        }
        Ok(Self {
            jwks_url,
            client: Client::shared()?,
            window: Duration::from_secs(300),
            keys: Mutex::new(HashMap::new()),
            refresh: tokio::sync::Mutex::new(None),
        })
    }

    /// Uses this client to fetch the JWK Set.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = client;
        self
    }

    /// Sets the replay window (default 5 minutes): deliveries whose timestamp is further than
    /// this from now, either way, are refused.
    pub fn with_replay_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Verifies a delivery now.
    pub async fn verify(&self, signature_header: Option<&str>, body: &[u8]) -> Result<Wake> {
        self.verify_at(signature_header, body, SystemTime::now())
            .await
    }

    /// Verifies a delivery as if the time were `since_epoch` after the Unix epoch (how the
    /// bindings take it); a time past what [`SystemTime`] holds is an
    /// [`Error::InvalidArgument`].
    pub async fn verify_at_unix(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        since_epoch: Duration,
    ) -> Result<Wake> {
        self.verify_at(signature_header, body, unix_time(since_epoch)?)
            .await
    }

    /// Verifies a delivery as if the time were `now`.
    pub async fn verify_at(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Wake> {
        let fail = |check| Error::WebhookSignature { check };
        let header = signature_header.ok_or(fail(SignatureCheck::MissingHeader))?;
        let parsed = parse_header(header).ok_or(fail(SignatureCheck::MalformedHeader))?;
        let now_s = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now_s.abs_diff(parsed.t) > self.window.as_secs() {
            return Err(fail(SignatureCheck::TimestampOutOfWindow));
        }
        let key = self.key(&parsed.kid).await?;
        let mut msg = Vec::with_capacity(body.len() + 21);
        msg.extend_from_slice(parsed.t.to_string().as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(body);
        key.verify_strict(&msg, &parsed.sig)
            .map_err(|_| fail(SignatureCheck::BadSignature))?;
        parse_json::<Wake>("webhook payload", body)
            .map_err(|_| fail(SignatureCheck::MalformedPayload))
    }

    async fn key(&self, kid: &str) -> Result<VerifyingKey> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let mut last = self.refresh.lock().await;
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        if last.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
            return Err(Error::WebhookSignature {
                check: SignatureCheck::UnknownKey,
            });
        }
        // Recorded before the fetch: while the endpoint fails, a fetch that failed counts too.
        *last = Some(Instant::now());
        let fresh = self.fetch().await?;
        let found = fresh.get(kid).copied();
        if let Ok(mut keys) = self.keys.lock() {
            *keys = fresh;
        }
        found.ok_or(Error::WebhookSignature {
            check: SignatureCheck::UnknownKey,
        })
    }

    fn cached(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.lock().ok().and_then(|k| k.get(kid).copied())
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>> {
        #[derive(serde::Deserialize)]
        struct Jwks {
            keys: Vec<Jwk>,
        }
        #[derive(serde::Deserialize)]
        struct Jwk {
            kty: Option<String>,
            crv: Option<String>,
            kid: Option<String>,
            x: Option<String>,
        }
        let display = display_url(&self.jwks_url);
        let resp = self
            .client
            .http()
            .get(self.jwks_url.clone())
            .timeout(self.client.request_timeout())
            .send()
            .await
            .map_err(|e| transport_error(e, &display))?;
        if !resp.status().is_success() {
            return Err(Error::UnexpectedStatus {
                status: resp.status().as_u16(),
                url: display,
                message: Some("fetching the webhook JWK Set".into()),
            });
        }
        // Bounded while it is read: an endless body stops at 1 MiB, not at the memory's end.
        let body = read_bounded(resp, &display, MAX_JWKS_BODY, "JWK Set").await?;
        let set: Jwks = parse_json("JWK Set", &body)?;
        let mut out = HashMap::new();
        for k in set.keys {
            let (Some(kid), Some(x)) = (k.kid, k.x) else {
                continue;
            };
            if k.kty.as_deref() != Some("OKP") || k.crv.as_deref() != Some("Ed25519") {
                continue;
            }
            let Ok(raw) = URL_SAFE_NO_PAD.decode(x.as_bytes()) else {
                continue;
            };
            let Ok(bytes) = <[u8; 32]>::try_from(raw.as_slice()) else {
                continue;
            };
            if let Ok(vk) = VerifyingKey::from_bytes(&bytes) {
                out.insert(kid, vk);
            }
        }
        Ok(out)
    }
}

/// The time `since_epoch` after the Unix epoch, or an [`Error::InvalidArgument`] past what
/// [`SystemTime`] holds (adding would panic).
fn unix_time(since_epoch: Duration) -> Result<SystemTime> {
    UNIX_EPOCH.checked_add(since_epoch).ok_or_else(|| {
        Error::invalid(format!(
            "the time to verify at, {} s after the Unix epoch, is past what the system time holds",
            since_epoch.as_secs()
        ))
    })
}

struct ParsedHeader {
    t: u64,
    kid: String,
    sig: Signature,
}

fn parse_header(h: &str) -> Option<ParsedHeader> {
    let (mut t, mut kid, mut sig) = (None, None, None);
    for part in h.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "t" => t = v.parse::<u64>().ok(),
            "kid" if !v.is_empty() => kid = Some(v.to_owned()),
            "ed25519" => {
                let raw = URL_SAFE_NO_PAD.decode(v.as_bytes()).ok()?;
                let bytes = <[u8; 64]>::try_from(raw.as_slice()).ok()?;
                sig = Some(Signature::from_bytes(&bytes));
            }
            _ => {}
        }
    }
    Some(ParsedHeader {
        t: t?,
        kid: kid?,
        sig: sig?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        let sig = URL_SAFE_NO_PAD.encode([7u8; 64]);
        let h = format!("t=12,kid=ds_a,ed25519={sig}");
        let p = parse_header(&h).unwrap();
        assert_eq!((p.t, p.kid.as_str()), (12, "ds_a"));
        assert!(parse_header("t=12,kid=ds_a").is_none());
        assert!(parse_header(&format!("t=x,kid=a,ed25519={sig}")).is_none());
        assert!(parse_header("t=1,kid=a,ed25519=short").is_none());
    }

    #[test]
    fn unix_times_past_system_time_are_invalid_arguments() {
        let t = unix_time(Duration::from_millis(1_778_324_210_000)).unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_secs(1_778_324_210)
        );
        // 1e19 s (what a binding makes of `now=1e19`) and the largest Duration: past an i64
        // of seconds, where adding to UNIX_EPOCH panicked.
        for huge in [
            Duration::from_secs(10_000_000_000_000_000_000),
            Duration::MAX,
        ] {
            let e = unix_time(huge).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{e}");
            assert!(
                e.to_string().contains("past what the system time holds"),
                "{e}"
            );
        }
    }

    #[test]
    fn wake_token_is_redacted() {
        let body = br#"{"subscription_id":"s","wake_id":"w","generation":1,"streams":[],"callback_url":"http://h/cb","callback_token":"SECRET"}"#;
        let w: Wake = parse_json("x", body).unwrap();
        assert_eq!(w.token.expose(), "SECRET");
        assert!(!format!("{w:?}").contains("SECRET"));
    }
}
