//! Small helpers shared by the Rust contenders and the driver's tools.

use std::time::Duration;

use bytes::Bytes;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// A plain HTTP/1.1 client with Nagle off and no compression: the raw bound's client.
pub fn raw_http() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// Builds an error from a message.
pub fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

/// Fails unless the response status is one of `ok`.
pub async fn expect_status(
    resp: reqwest::Response,
    ok: &[u16],
    what: &str,
) -> Res<reqwest::Response> {
    let status = resp.status().as_u16();
    if ok.contains(&status) {
        Ok(resp)
    } else {
        let body = resp.text().await.unwrap_or_default();
        Err(err(format!("{what}: HTTP {status}: {body}")))
    }
}

/// Value of a response header as a string.
pub fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads a stream from the start with plain GETs until the server says it is up to date.
/// Returns one body per response.
pub async fn read_all(http: &reqwest::Client, url: &str) -> Res<Vec<Bytes>> {
    let mut offset = "-1".to_owned();
    let mut bodies = Vec::new();
    for _ in 0..1_000_000 {
        let resp = http
            .get(url)
            .query(&[("offset", offset.as_str())])
            .send()
            .await?;
        let resp = expect_status(resp, &[200, 204], "catch-up read").await?;
        let next = header(&resp, "stream-next-offset");
        let up_to_date = header(&resp, "stream-up-to-date").is_some_and(|v| v == "true");
        let body = resp.bytes().await?;
        if !body.is_empty() {
            bodies.push(body);
        }
        match next {
            Some(n) if !up_to_date && n != offset => offset = n,
            _ => return Ok(bodies),
        }
    }
    Err(err("catch-up read did not reach the tail"))
}

/// Resident set size of this process in KiB (Linux), for the overload scenario's samples.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}
