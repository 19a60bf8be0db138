//! JavaScript strings into UTF-8 without V8's UTF-8 writer.
//!
//! napi's UTF-8 conversion walks a string twice, one character at a time (once to measure the
//! UTF-8 length, once to encode). Its UTF-16 conversion is a length read and a block copy, and
//! the common case, text that is all ASCII, narrows back to bytes in a loop the compiler
//! vectorises. Measured on a 100-byte message: see BENCHMARKS.md ("Round 4"). A text the caller
//! knows has no character above U+00FF is read as Latin-1 instead (one byte per character, a
//! plain copy of V8's one-byte strings) and turned into UTF-8 here ("Round 8").

/// Encodes `units` as UTF-8 into `out` (cleared first). A lone surrogate becomes U+FFFD, as
/// napi's UTF-8 conversion makes it.
pub(crate) fn encode(units: &[u16], out: &mut Vec<u8>) {
    out.clear();
    if units.iter().fold(0u16, |acc, &u| acc | u) < 0x80 {
        // All ASCII (checked as one OR over the text): every unit is its byte.
        out.extend(units.iter().map(|&u| u as u8));
        return;
    }
    out.reserve(units.len());
    for c in char::decode_utf16(units.iter().copied()) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut b = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
}

/// Turns `bytes`, Latin-1 text (each byte one character, U+0000 to U+00FF), into UTF-8 in
/// place: nothing to do when all are ASCII (checked as one OR over the text), else the bytes
/// from 0x80 up become two bytes each.
pub(crate) fn latin1_to_utf8(bytes: &mut Vec<u8>) {
    if bytes.iter().fold(0u8, |acc, &b| acc | b) < 0x80 {
        return;
    }
    let high = bytes.iter().filter(|&&b| b >= 0x80).count();
    let mut out = Vec::with_capacity(bytes.len().saturating_add(high));
    for &b in bytes.iter() {
        if b < 0x80 {
            out.push(b);
        } else {
            out.extend_from_slice(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]);
        }
    }
    *bytes = out;
}

/// Drops a thread's buffer once one very long text made it larger than 1 MiB, so that it is
/// not kept for the thread's life.
pub(crate) fn trim<T>(buf: &mut Vec<T>) {
    if buf.capacity() * std::mem::size_of::<T>() > 1 << 20 {
        *buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::{encode, latin1_to_utf8};

    fn utf8(s: &str) -> Vec<u8> {
        let units: Vec<u16> = s.encode_utf16().collect();
        let mut out = vec![1, 2, 3];
        encode(&units, &mut out);
        out
    }

    #[test]
    fn text_is_encoded_as_rust_encodes_it() {
        for s in [
            "",
            "{\"n\":1}",
            "\u{7f}",
            "é",
            "ü€ and ascii after",
            "😀 astral",
            "mixed {\"k\":\"日本\"} end",
            "\u{0}nul",
        ] {
            assert_eq!(utf8(s), s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn latin1_becomes_utf8() {
        for s in [
            "",
            "{\"n\":1}",
            "\u{7f}",
            "\u{80}",
            "é and ÿ",
            "ascii then \u{a0}",
            "\u{0}nul",
        ] {
            // Every character is at most U+00FF: one Latin-1 byte each.
            let mut bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
            latin1_to_utf8(&mut bytes);
            assert_eq!(bytes, s.as_bytes(), "{s:?}");
        }
        // Every byte value, in one text.
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        latin1_to_utf8(&mut bytes);
        let expected: String = (0..=255u8).map(char::from).collect();
        assert_eq!(bytes, expected.as_bytes());
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let mut out = Vec::new();
        encode(&[0x61, 0xd800, 0x62], &mut out);
        assert_eq!(out, "a\u{fffd}b".as_bytes());
        encode(&[0xdc00], &mut out);
        assert_eq!(out, "\u{fffd}".as_bytes());
    }
}
