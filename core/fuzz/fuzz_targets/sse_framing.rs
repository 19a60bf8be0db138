//! SSE framing: any body, cut into pieces anywhere, parses without panicking and gives the
//! same events as the body fed whole.
#![no_main]

use durable_streams_client::fuzzing::sse_events;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = sse_events(&[body]);
    // Cut points derived from the seed byte.
    let step = usize::from(seed % 7) + 1;
    let pieces: Vec<&[u8]> = body.chunks(step).collect();
    let cut = sse_events(&pieces);
    assert_eq!(whole, cut, "splitting changed the events");
    if let Ok(events) = whole {
        for (_, payload) in events {
            // Data lines never carry the line endings that framed them.
            assert!(!payload.contains(&b'\r'));
        }
    }
});
