//! Control events: any payload parses or fails cleanly; a parsed event has an offset, and
//! `streamClosed` implies `upToDate`.
#![no_main]

use durable_streams_client::fuzzing::control_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((offset, _cursor, up_to_date, closed)) = control_event(data) {
        assert!(!offset.is_empty());
        assert!(!closed || up_to_date);
    }
});
