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
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn json_items<T: DeserializeOwned>(segments: &[Bytes]) -> Result<Vec<T>> {
    let mut splitter = JsonSplitter::new(usize::MAX);
    let mut elements = Vec::new();
    for s in segments {
        splitter.feed(s, &mut elements)?;
        splitter.end()?;
    }
    json_elements(&elements)
}

/// Where a [`JsonSplitter`] is in the array it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Before the opening `[` (only whitespace so far).
    Start,
    /// After `[`: an element or `]` comes next.
    Open,
    /// After `,`: an element comes next.
    Comma,
    /// Inside a top-level string element.
    Str,
    /// Inside a top-level object or array element, `depth` levels deep.
    Container,
    /// Inside a number, `true`, `false` or `null`.
    Scalar,
    /// After an element: `,` or `]` comes next.
    After,
    /// After the closing `]`: only whitespace may follow.
    Done,
}

/// Splits a JSON array that arrives in pieces into the raw text of its elements, handing out
/// each element as soon as its last byte has arrived. Only the element in progress is held
/// (at most `limit` bytes); the elements themselves are checked when they are deserialized.
#[derive(Debug)]
pub(crate) struct JsonSplitter {
    state: Split,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The start of an element that began in an earlier piece.
    partial: BytesMut,
    limit: usize,
}

impl JsonSplitter {
    /// A splitter that refuses elements larger than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Split::Start,
            depth: 0,
            in_string: false,
            escaped: false,
            partial: BytesMut::new(),
            limit,
        }
    }

    fn too_large(&self) -> Error {
        Error::parse(
            "JSON response",
            format!(
                "a message is larger than max_chunk_bytes ({} bytes); raise the read option max_chunk_bytes to read it",
                self.limit
            ),
        )
    }

    fn unexpected(byte: u8, context: &str) -> Error {
        let shown = if byte.is_ascii_graphic() {
            format!("'{}'", byte as char)
        } else {
            format!("byte 0x{byte:02x}")
        };
        Error::parse(
            "JSON response",
            format!("expected a JSON array of messages: unexpected {shown} {context}"),
        )
    }

    /// Feeds the next piece of the array; complete elements are pushed to `out`.
    pub(crate) fn feed(&mut self, piece: &Bytes, out: &mut Vec<Bytes>) -> Result<()> {
        let buf = &piece[..];
        // Where the element in progress starts in this piece (0 when it began earlier).
        let mut start = 0;
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                Split::Start | Split::Open | Split::Comma | Split::After | Split::Done
                    if b.is_ascii_whitespace() => {}
                Split::Start => match b {
                    b'[' => self.state = Split::Open,
                    _ => return Err(Self::unexpected(b, "before the array")),
                },
                Split::Open if b == b']' => self.state = Split::Done,
                Split::Open | Split::Comma => {
                    start = i;
                    match b {
                        b'"' => {
                            self.state = Split::Str;
                            self.in_string = true;
                        }
                        b'{' | b'[' => {
                            self.state = Split::Container;
                            self.depth = 1;
                        }
                        b']' | b',' | b'}' | b':' => {
                            return Err(Self::unexpected(b, "where a message should start"))
                        }
                        _ => self.state = Split::Scalar,
                    }
                }
                Split::After => match b {
                    b',' => self.state = Split::Comma,
                    b']' => self.state = Split::Done,
                    _ => return Err(Self::unexpected(b, "after a message")),
                },
                Split::Done => return Err(Self::unexpected(b, "after the end of the array")),
                Split::Str | Split::Container if self.in_string => {
                    if self.escaped {
                        // The byte after a backslash is taken literally.
                        self.escaped = false;
                    } else {
                        // Skip to the next quote or backslash.
                        let Some(n) = buf[i..].iter().position(|&c| c == b'"' || c == b'\\') else {
                            i = buf.len();
                            continue;
                        };
                        i += n;
                        if buf[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if self.state == Split::Str {
                                self.emit(piece, start, i + 1, out)?;
                            }
                        }
                    }
                }
                Split::Container => match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.emit(piece, start, i + 1, out)?;
                        }
                    }
                    _ => {}
                },
                Split::Str => {}
                Split::Scalar => {
                    if b.is_ascii_whitespace() || b == b',' || b == b']' {
                        self.emit(piece, start, i, out)?;
                        // Look at the delimiter again, after the element.
                        continue;
                    }
                }
            }
            i += 1;
        }
        if matches!(self.state, Split::Str | Split::Container | Split::Scalar) {
            if self.partial.len() + (buf.len() - start) > self.limit {
                return Err(self.too_large());
            }
            self.partial.extend_from_slice(&buf[start..]);
        }
        Ok(())
    }

    /// Hands out the element ending at `end` in `piece` (it started at `start`, or in an
    /// earlier piece) and moves past it.
    fn emit(
        &mut self,
        piece: &Bytes,
        start: usize,
        end: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<()> {
        let len = self.partial.len() + (end - start);
        if len > self.limit {
            return Err(self.too_large());
        }
        if self.partial.is_empty() {
            out.push(piece.slice(start..end));
        } else {
            self.partial.extend_from_slice(&piece[start..end]);
            out.push(std::mem::take(&mut self.partial).freeze());
        }
        self.state = Split::After;
        Ok(())
    }

    /// Ends one array: it must be complete (an empty or blank body has no elements). The
    /// splitter is then ready for the next array.
    pub(crate) fn end(&mut self) -> Result<()> {
        let state = self.state;
        self.state = Split::Start;
        self.partial.clear();
        self.in_string = false;
        self.escaped = false;
        match state {
            Split::Start | Split::Done => Ok(()),
            _ => Err(Error::parse(
                "JSON response",
                "expected a JSON array of messages: the response ends inside the array",
            )),
        }
    }
}

/// Deserializes the raw elements that a [`JsonSplitter`] handed out.
pub(crate) fn json_elements<T: DeserializeOwned>(elements: &[Bytes]) -> Result<Vec<T>> {
    elements
        .iter()
        .map(|e| {
            serde_json::from_slice(e).map_err(|err| {
                Error::json(
                    "JSON response",
                    format!(
                        "invalid JSON message: {}",
                        crate::http::server_text(&err.to_string())
                    ),
                    &err,
                )
            })
        })
        .collect()
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

    fn split_all(pieces: &[&[u8]], limit: usize) -> Result<Vec<String>> {
        let mut sp = JsonSplitter::new(limit);
        let mut out = Vec::new();
        for p in pieces {
            sp.feed(&Bytes::copy_from_slice(p), &mut out)?;
        }
        sp.end()?;
        Ok(out
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect())
    }

    #[test]
    fn json_arrays_split_into_elements_however_they_are_cut() {
        let body =
            br#" [ 1 , -2.5e3,"a,]\"\\" , {"k":["]",{"x":"}"}]} ,[[],[1]] ,true,null,"" ,{}]  "#;
        let expected: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let got = split_all(&[&body[..i], &body[i..j], &body[j..]], 1 << 20)
                    .unwrap_or_else(|e| panic!("cut at {i},{j}: {e}"));
                let got: Vec<serde_json::Value> = got
                    .iter()
                    .map(|t| serde_json::from_str(t).unwrap())
                    .collect();
                assert_eq!(got, expected, "cut at {i},{j}");
            }
        }
        assert!(split_all(&[b""], 10).unwrap().is_empty());
        assert!(split_all(&[b" [ ] "], 10).unwrap().is_empty());
        // An element arriving in one piece is handed out without a copy.
        let piece = Bytes::from_static(b"[\"abc\",7]");
        let mut sp = JsonSplitter::new(100);
        let mut out = Vec::new();
        sp.feed(&piece, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ptr(), piece[1..].as_ptr());
    }

    #[test]
    fn elements_are_handed_out_as_soon_as_they_end() {
        let mut sp = JsonSplitter::new(100);
        let mut out = Vec::new();
        sp.feed(&Bytes::from_static(b"[{\"a\":1},{\"b\""), &mut out)
            .unwrap();
        assert_eq!(out, vec![Bytes::from_static(b"{\"a\":1}")]);
        sp.feed(&Bytes::from_static(b":2}"), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[1][..], b"{\"b\":2}");
        // A number's end is only known at the delimiter.
        sp.feed(&Bytes::from_static(b",12"), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        sp.feed(&Bytes::from_static(b"3]"), &mut out).unwrap();
        assert_eq!(&out[2][..], b"123");
        sp.end().unwrap();
    }

    #[test]
    fn malformed_or_oversized_arrays_are_errors() {
        for bad in [
            &b"{\"a\":1}"[..],
            b"[1,",
            b"[1,]",
            b"[1 2]",
            b"[1]x",
            b"[,1]",
            b"[\"open",
            b"[[1]",
        ] {
            let err = split_all(&[bad], 100).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "{bad:?}: {err:?}");
        }
        // The limit holds whether the element arrives whole or in pieces.
        let err = split_all(&[b"[\"0123456789\"]"], 8).unwrap_err();
        assert!(
            err.to_string().contains("max_chunk_bytes (8 bytes)"),
            "{err}"
        );
        let err = split_all(&[b"[\"01234", b"56789\"]"], 8).unwrap_err();
        assert!(err.to_string().contains("max_chunk_bytes"), "{err}");
        assert_eq!(
            split_all(&[b"[\"012345\"]"], 8).unwrap(),
            vec!["\"012345\""]
        );
        // Elements are checked when deserialized.
        let els = split_all(&[b"[1,nope]"], 100).unwrap();
        assert!(json_elements::<serde_json::Value>(&[Bytes::from(els[1].clone())]).is_err());
    }
}
