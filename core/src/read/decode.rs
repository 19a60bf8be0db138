//! Turning the raw pieces of a read into text and JSON values.

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Concatenates the pieces of one batch, without copying when there is only one.
pub(crate) fn concat(mut segments: Vec<Bytes>) -> Bytes {
    match segments.len() {
        0 => Bytes::new(),
        1 => segments.pop().unwrap_or_default(),
        _ => {
            let mut buf = BytesMut::with_capacity(segments.iter().map(Bytes::len).sum());
            for s in segments {
                buf.extend_from_slice(&s);
            }
            buf.freeze()
        }
    }
}

/// A UTF-8 decoder that keeps a character split between two chunks whole.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Decodes the next chunk; the bytes of an unfinished last character wait for the next one.
    pub fn decode(&mut self, chunk: &[u8]) -> Result<String> {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(chunk);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) if e.utf8_error().error_len().is_none() => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                self.pending = bytes.split_off(valid);
                String::from_utf8(bytes).map_err(|e| invalid_utf8(e.utf8_error()))
            }
            Err(e) => Err(invalid_utf8(e.utf8_error())),
        }
    }

    /// Fails if the text ended inside a character.
    pub fn finish(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            self.pending.clear();
            Err(Error::parse(
                "text",
                "the stream ends inside a UTF-8 character",
            ))
        }
    }
}

fn invalid_utf8(e: std::str::Utf8Error) -> Error {
    Error::parse("text", format!("invalid UTF-8: {e}"))
}

/// Parses each piece as a JSON array and returns all elements in order. A piece that is empty
/// or only whitespace has no elements (a long-poll `204` has no body).
pub(crate) fn json_items<T: DeserializeOwned>(segments: &[Bytes]) -> Result<Vec<T>> {
    let mut items = Vec::new();
    for s in segments {
        if s.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut part: Vec<T> = serde_json::from_slice(s).map_err(|e| {
            Error::parse(
                "JSON response",
                format!("expected a JSON array of messages: {e}"),
            )
        })?;
        if items.is_empty() {
            items = part;
        } else {
            items.append(&mut part);
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_stays_whole() {
        let text = "aé€😀z";
        let bytes = text.as_bytes();
        // Every way of cutting the text in two and in three gives the same text back.
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut d = Utf8Decoder::default();
                let mut out = d.decode(&bytes[..i]).unwrap();
                out += &d.decode(&bytes[i..j]).unwrap();
                out += &d.decode(&bytes[j..]).unwrap();
                d.finish().unwrap();
                assert_eq!(out, text, "cut at {i} and {j}");
            }
        }
        let mut d = Utf8Decoder::default();
        assert_eq!(d.decode(&[0xF0, 0x9F]).unwrap(), "");
        assert_eq!(d.decode(&[0x98]).unwrap(), "");
        assert_eq!(d.decode(&[0x80, b'!']).unwrap(), "😀!");
    }

    #[test]
    fn invalid_or_unfinished_utf8_is_an_error() {
        let mut d = Utf8Decoder::default();
        assert!(matches!(d.decode(b"ok\xFFno"), Err(Error::Parse { .. })));
        let mut d = Utf8Decoder::default();
        assert_eq!(d.decode(b"ab\xE2\x82").unwrap(), "ab");
        assert!(matches!(d.finish(), Err(Error::Parse { .. })));
        // A continuation byte that cannot follow is caught at once.
        let mut d = Utf8Decoder::default();
        d.decode(b"\xE2").unwrap();
        assert!(d.decode(b"x").is_err());
    }

    #[test]
    fn json_pieces_are_arrays() {
        let segs = [
            Bytes::from_static(b"[1,2]"),
            Bytes::from_static(b"  "),
            Bytes::from_static(b"[3]"),
        ];
        assert_eq!(json_items::<u32>(&segs).unwrap(), vec![1, 2, 3]);
        assert!(json_items::<u32>(&[]).unwrap().is_empty());
        for bad in [&b"[1,"[..], b"{\"a\":1}", b"XY1]", b"[\"a\"]"] {
            let err = json_items::<u32>(&[Bytes::copy_from_slice(bad)]).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "{err:?}");
        }
    }

    #[test]
    fn concat_keeps_single_pieces() {
        let one = Bytes::from_static(b"abc");
        assert_eq!(concat(vec![one.clone()]).as_ptr(), one.as_ptr());
        assert_eq!(
            &concat(vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")])[..],
            b"abc"
        );
        assert!(concat(Vec::new()).is_empty());
    }
}
