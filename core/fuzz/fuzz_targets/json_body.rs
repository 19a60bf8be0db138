//! JSON read bodies and text decoding: any body parses or fails cleanly, and text decoded in
//! two pieces matches the body decoded at once.
#![no_main]

use durable_streams_client::fuzzing::json_and_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let (_items, text) = json_and_text(body, usize::from(cut));
    match std::str::from_utf8(body) {
        Ok(s) => assert_eq!(text.as_deref(), Ok(s)),
        Err(_) => assert!(text.is_err()),
    }
});
