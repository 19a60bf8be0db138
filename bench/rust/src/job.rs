//! The contender protocol, Rust side: the job a contender is given and the outcome it prints.
//! bench/README.md describes the same protocol for every language.

use serde::{Deserialize, Serialize};

/// One run of one scenario by one contender, as the driver hands it over (JSON, last argv).
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub scenario: String,
    /// The stream to write to or read from; the driver has already created it.
    pub stream_url: String,
    /// Messages to append, read or receive.
    pub count: u64,
    /// Size of one message in bytes (JSON messages are padded to this size).
    pub msg_bytes: usize,
    /// `application/json` or `application/octet-stream`.
    pub content_type: String,
    /// Concurrent awaited appends (append-c1 / append-c8).
    pub concurrency: usize,
    /// Producer settings: batch size, linger, requests in flight.
    pub batch_bytes: usize,
    pub linger_ms: u64,
    pub max_in_flight: usize,
    /// Offered rate in messages per second for paced scenarios (live tail, overload).
    pub rate: f64,
    /// A producer id unique to this run.
    pub producer_id: String,
    /// The contender must give up after this long.
    pub timeout_s: f64,
}

impl Job {
    pub fn is_json(&self) -> bool {
        self.content_type.starts_with("application/json")
    }
}

/// What a contender prints as its last stdout line. The driver measures CPU time and peak RSS
/// itself and verifies the stream independently.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub ok: bool,
    /// Messages appended (producers, appends, live writers) or read (readers).
    pub messages: u64,
    /// Payload bytes those messages carry.
    pub bytes: u64,
    /// The timed interval: from the first append/request to the last acknowledgement or message.
    pub seconds: f64,
    /// Readers: the sum of the `i` fields of every message read, so a reader must really parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u64>,
    /// Per-operation latencies in microseconds (awaited appends, live-tail deliveries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latencies_us: Vec<u64>,
    /// `[seconds since start, RSS KiB]` samples (overload).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rss_samples: Vec<(f64, u64)>,
    /// Anything else worth recording (settings used, offered rate reached, ...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
