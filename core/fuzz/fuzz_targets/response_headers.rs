//! Response headers: any set of header pairs is read without panicking.
#![no_main]

use durable_streams_client::fuzzing::response_headers;
use libfuzzer_sys::fuzz_target;

/// Header names the reader looks at, so that the fuzzer reaches their values quickly.
const NAMES: [&[u8]; 7] = [
    b"stream-next-offset",
    b"stream-cursor",
    b"stream-up-to-date",
    b"stream-closed",
    b"content-type",
    b"stream-sse-data-encoding",
    b"retry-after",
];

fuzz_target!(|data: &[u8]| {
    // Records separated by 0xFF: first byte picks a known name (or, when >= 7, the name is
    // the part before the first ':'), the rest is the value.
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    for record in data.split(|&b| b == 0xFF) {
        let Some((&pick, rest)) = record.split_first() else {
            continue;
        };
        match NAMES.get(usize::from(pick)) {
            Some(name) => pairs.push((name, rest)),
            None => {
                if let Some(i) = rest.iter().position(|&b| b == b':') {
                    pairs.push((&rest[..i], &rest[i + 1..]));
                }
            }
        }
    }
    let _ = response_headers(&pairs);
});
