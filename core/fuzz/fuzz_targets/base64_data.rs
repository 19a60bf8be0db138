//! Base64 data events: any payload decodes or fails cleanly; what decodes re-encodes to the
//! payload without its line breaks.
#![no_main]

use base64::Engine as _;
use durable_streams_client::fuzzing::base64_data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bytes) = base64_data(data) {
        let compact: Vec<u8> = data
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        let again = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(again.as_bytes(), &compact[..]);
    }
});
