//! Independent check of what a contender left in a stream: every message exactly once.

use serde::Serialize;

use crate::msg::Id;
use crate::util::{raw_http, read_all, Res};

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    /// Messages found in the stream.
    pub count: u64,
    pub expected: u64,
    /// Indices seen more than once, missing, or out of range.
    pub duplicates: u64,
    pub missing: u64,
    pub out_of_range: u64,
    /// Whether the indices appear in increasing order.
    pub in_order: bool,
    /// Response body bytes (what a raw catch-up read of this stream transfers).
    pub body_bytes: u64,
    /// Sum of the indices (what a reader's checksum must equal).
    pub checksum: u64,
}

/// Reads the stream at `url` and checks that it holds messages `0..expected` exactly once.
pub async fn verify(url: &str, json: bool, expected: u64, msg_bytes: usize) -> Res<Report> {
    let http = raw_http()?;
    let bodies = read_all(&http, url).await?;
    let body_bytes = bodies.iter().map(|b| b.len() as u64).sum();
    let mut ids: Vec<u64> = Vec::new();
    if json {
        for b in &bodies {
            let batch: Vec<Id> = serde_json::from_slice(b)?;
            ids.extend(batch.into_iter().map(|m| m.i));
        }
    } else {
        let all: Vec<u8> = bodies.iter().flat_map(|b| b.iter().copied()).collect();
        let size = msg_bytes.max(8);
        for chunk in all.chunks(size) {
            let mut head = [0u8; 8];
            if chunk.len() < size {
                // A torn message counts as out of range.
                ids.push(u64::MAX);
                continue;
            }
            head.copy_from_slice(&chunk[..8]);
            ids.push(u64::from_be_bytes(head));
        }
    }
    let mut seen = vec![false; expected as usize];
    let (mut duplicates, mut out_of_range, mut checksum) = (0u64, 0u64, 0u64);
    let in_order = ids.windows(2).all(|w| w[0] < w[1]);
    for &i in &ids {
        match seen.get_mut(i as usize) {
            Some(s) if *s => duplicates += 1,
            Some(s) => {
                *s = true;
                checksum += i;
            }
            None => out_of_range += 1,
        }
    }
    let missing = seen.iter().filter(|s| !**s).count() as u64;
    Ok(Report {
        ok: duplicates == 0 && missing == 0 && out_of_range == 0,
        count: ids.len() as u64,
        expected,
        duplicates,
        missing,
        out_of_range,
        in_order,
        body_bytes,
        checksum,
    })
}
