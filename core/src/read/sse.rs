//! Server-sent events: an incremental parser for the framing, and the two event payloads the
//! protocol defines (control events and base64 data).

use std::collections::VecDeque;

use base64::Engine as _;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::offset::Offset;

/// How many times [`ReadOptions::max_chunk_bytes`](super::ReadOptions::max_chunk_bytes) one
/// SSE event (its data as sent, and so each of its lines) may take: an event is held whole
/// until it ends, and base64 data takes a third more than the bytes it carries.
pub(crate) const EVENT_LIMIT_FACTOR: usize = 2;

/// One dispatched event: its type (`message` when the server sent none) and its data lines
/// joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: String,
    pub data: Bytes,
}

/// An incremental SSE parser: feed it the body in pieces of any size.
///
/// Lines end at CR, LF or CRLF (a CRLF split between two pieces counts once). `data` lines
/// are joined with LF, one space after the colon is dropped, comments and unknown fields are
/// ignored, and an event is dispatched at a blank line if it had at least one `data` line.
/// An event cut off by the end of the body is never dispatched. A line, or the data of an
/// event, longer than the parser's limit is an error: memory stays bounded whatever the
/// server sends.
#[derive(Debug)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    event: Option<String>,
    data: Vec<u8>,
    has_data: bool,
    limit: usize,
}

impl SseParser {
    /// A parser that refuses lines and event data longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: Vec::new(),
            has_data: false,
            limit,
        }
    }

    /// Parses `chunk`, appending every completed event to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut VecDeque<SseEvent>) -> Result<()> {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(i) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_line_bytes(&chunk[..i])?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
            self.line = line;
            self.line.clear();
            if chunk[i] == b'\r' {
                match chunk.get(i + 1) {
                    Some(b'\n') => chunk = &chunk[i + 2..],
                    Some(_) => chunk = &chunk[i + 1..],
                    None => {
                        self.after_cr = true;
                        chunk = &[];
                    }
                }
            } else {
                chunk = &chunk[i + 1..];
            }
        }
        self.push_line_bytes(chunk)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        if self.line.len().saturating_add(bytes.len()) > self.limit {
            return Err(self.too_large());
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut VecDeque<SseEvent>) -> Result<()> {
        if line.is_empty() {
            if self.has_data {
                out.push_back(SseEvent {
                    event: self.event.take().unwrap_or_else(|| "message".to_owned()),
                    data: Bytes::from(std::mem::take(&mut self.data)),
                });
            }
            self.event = None;
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"data" => {
                if self
                    .data
                    .len()
                    .saturating_add(value.len())
                    .saturating_add(1)
                    > self.limit
                {
                    return Err(self.too_large());
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }
}

impl SseParser {
    fn too_large(&self) -> Error {
        Error::parse(
            "SSE event",
            format!(
                "an event or line exceeds {} bytes ({EVENT_LIMIT_FACTOR} x max_chunk_bytes); raise the read option max_chunk_bytes to read it",
                self.limit
            ),
        )
    }
}

/// The fields of a `control` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    pub next_offset: Offset,
    pub cursor: Option<String>,
    pub up_to_date: bool,
    pub stream_closed: bool,
}

#[derive(serde::Deserialize)]
struct ControlWire {
    #[serde(rename = "streamNextOffset")]
    next_offset: Option<serde_json::Value>,
    /// Kept as the server wrote it: a numeric cursor is echoed back digit for digit, however
    /// large (a `serde_json::Value` would turn one beyond 64 bits into a float).
    #[serde(rename = "streamCursor")]
    cursor: Option<Box<serde_json::value::RawValue>>,
    #[serde(rename = "upToDate")]
    up_to_date: Option<bool>,
    #[serde(rename = "streamClosed")]
    stream_closed: Option<bool>,
}

/// Parses a control event's JSON. `streamNextOffset` must be a non-empty string; a cursor may
/// be a string or a number; `streamClosed` implies `upToDate`.
pub(crate) fn parse_control(data: &[u8]) -> Result<Control> {
    let wire: ControlWire = serde_json::from_slice(data).map_err(|e| {
        Error::json(
            "SSE control event",
            format!(
                "{}: {}",
                crate::http::server_text(&e.to_string()),
                preview(data)
            ),
            &e,
        )
    })?;
    let next_offset = match wire.next_offset {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Offset::from(s),
        _ => {
            return Err(Error::parse(
                "SSE control event",
                format!(
                    "streamNextOffset missing or not a string: {}",
                    preview(data)
                ),
            ))
        }
    };
    let cursor = match wire.cursor.as_deref().map(serde_json::value::RawValue::get) {
        None | Some("null") => None,
        Some(text) if text.starts_with('"') => serde_json::from_str::<String>(text).ok(),
        Some(text) if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
            Some(text.to_owned())
        }
        Some(_) => {
            return Err(Error::parse(
                "SSE control event",
                format!("streamCursor is not a string: {}", preview(data)),
            ))
        }
    };
    let stream_closed = wire.stream_closed.unwrap_or(false);
    Ok(Control {
        next_offset,
        cursor,
        up_to_date: stream_closed || wire.up_to_date.unwrap_or(false),
        stream_closed,
    })
}

/// Decodes a base64 `data` event: the lines are joined, every CR and LF is dropped, and the
/// rest must be standard padded base64 (a length that is a multiple of 4, or empty).
pub(crate) fn decode_base64_data(data: &[u8]) -> Result<Bytes> {
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|&b| b != b'\n' && b != b'\r')
        .collect();
    if compact.is_empty() {
        return Ok(Bytes::new());
    }
    if !compact.len().is_multiple_of(4) {
        return Err(Error::parse(
            "base64 SSE data",
            format!("length {} is not a multiple of 4", compact.len()),
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map(Bytes::from)
        .map_err(|e| Error::parse("base64 SSE data", e.to_string()))
}

/// The start of a payload, for error messages.
/// The start of a payload, for error messages: escaped (see
/// [`escape_server_text`](crate::escape_server_text)) and at most 120 characters.
fn preview(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(&data[..data.len().min(480)]);
    crate::http::escape_server_text(&text, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new(usize::MAX);
        let mut out = VecDeque::new();
        for piece in pieces {
            p.feed(piece, &mut out).unwrap();
        }
        out.into_iter().collect()
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: Bytes::copy_from_slice(data.as_bytes()),
        }
    }

    #[test]
    fn joins_data_lines_and_strips_one_space() {
        let evs = parse_all(&[b"event: data\ndata:[\ndata: {\"k\":1},\ndata:  two\ndata:]\n\n"]);
        assert_eq!(evs, vec![ev("data", "[\n{\"k\":1},\n two\n]")]);
    }

    #[test]
    fn every_line_ending_counts_even_when_split() {
        let whole: &[u8] =
            b"event: control\r\ndata:{}\r\n\r\nevent:data\rdata:x\r\revent: data\ndata:y\n\n";
        let expected = vec![ev("control", "{}"), ev("data", "x"), ev("data", "y")];
        assert_eq!(parse_all(&[whole]), expected);
        // Every split point, including between CR and LF, gives the same events.
        for i in 0..=whole.len() {
            assert_eq!(
                parse_all(&[&whole[..i], &whole[i..]]),
                expected,
                "split at {i}"
            );
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(parse_all(&bytes), expected);
    }

    #[test]
    fn comments_unknown_fields_and_empty_events_are_ignored() {
        let evs = parse_all(&[
            b": keep-alive\n\nid: 7\nretry: 10\n\nevent: data\n\nevent: bogus\ndata: {\"x\":1}\n\ndata\n\n",
        ]);
        // "event: data" without data is dropped; a "data" line without a colon is empty data.
        assert_eq!(evs, vec![ev("bogus", "{\"x\":1}"), ev("message", "")]);
    }

    #[test]
    fn unfinished_events_are_not_dispatched() {
        assert!(parse_all(&[b"event: data\ndata: half"]).is_empty());
        assert!(parse_all(&[b"event: control\ndata: {}\n"]).is_empty());
    }

    #[test]
    fn unicode_line_separators_stay_in_data() {
        let text = "a\u{85}b\u{2028}c\u{2029}d";
        let evs = parse_all(&[format!("event: data\ndata:{text}\n\n").as_bytes()]);
        assert_eq!(evs, vec![ev("data", text)]);
    }

    #[test]
    fn oversized_lines_are_refused() {
        let mut p = SseParser::new(1000);
        let mut out = VecDeque::new();
        let big = vec![b'a'; 501];
        p.feed(b"data:", &mut out).unwrap();
        p.feed(&big, &mut out).unwrap();
        let err = p.feed(&big, &mut out).unwrap_err();
        assert!(err.to_string().contains("max_chunk_bytes"), "{err}");
        // The data of an event is bounded too, however it is split into lines.
        let mut p = SseParser::new(1000);
        let line = format!("data:{}\n", "b".repeat(400));
        p.feed(line.as_bytes(), &mut out).unwrap();
        p.feed(line.as_bytes(), &mut out).unwrap();
        assert!(matches!(
            p.feed(line.as_bytes(), &mut out),
            Err(Error::Parse { .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn control_events() {
        let c = parse_control(br#"{"streamNextOffset":"0_5","streamCursor":"12","upToDate":true}"#)
            .unwrap();
        assert_eq!(c.next_offset.as_str(), "0_5");
        assert_eq!(c.cursor.as_deref(), Some("12"));
        assert!(c.up_to_date && !c.stream_closed);
        let c =
            parse_control(br#"{"streamNextOffset":"0_9","streamClosed":true,"x":[1]}"#).unwrap();
        assert!(c.up_to_date && c.stream_closed);
        assert_eq!(c.cursor, None);
        let c = parse_control(br#"{"streamNextOffset":"0_9","streamCursor":42}"#).unwrap();
        assert_eq!(c.cursor.as_deref(), Some("42"));
        assert!(!c.up_to_date);
        // Numbers as written, beyond 64 bits too; strings unescaped.
        for (cursor, expected) in [
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("-7", "-7"),
            ("1.5e3", "1.5e3"),
            (r#""a\"b""#, r#"a"b"#),
            ("null", ""),
        ] {
            let text = format!(r#"{{"streamNextOffset":"1","streamCursor":{cursor}}}"#);
            let c = parse_control(text.as_bytes()).unwrap();
            assert_eq!(c.cursor.unwrap_or_default(), expected, "{cursor}");
        }
        for bad in [
            &b"{not json"[..],
            br#"{"streamCursor":"1"}"#,
            br#"{"streamNextOffset":""}"#,
            br#"{"streamNextOffset":5}"#,
            br#"{"streamNextOffset":"1","upToDate":"yes"}"#,
            br#"{"streamNextOffset":"1","streamCursor":[1]}"#,
            br#"{"streamNextOffset":"1","streamCursor":true}"#,
            br#"{"streamNextOffset":"1","streamCursor":{}}"#,
            br#"[1]"#,
        ] {
            let err = parse_control(bad).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "{err:?}");
        }
    }

    #[test]
    fn base64_rules() {
        assert_eq!(
            &decode_base64_data(b"AQIDBAUG\nBwgJCg==").unwrap()[..],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        );
        assert_eq!(
            &decode_base64_data(b"AQ\r\nID\rBA==").unwrap()[..],
            &[1, 2, 3, 4]
        );
        assert!(decode_base64_data(b"").unwrap().is_empty());
        assert!(decode_base64_data(b"\n\r\n").unwrap().is_empty());
        // RFC 4648 vectors.
        assert_eq!(&decode_base64_data(b"Zg==").unwrap()[..], b"f");
        assert_eq!(&decode_base64_data(b"Zm8=").unwrap()[..], b"fo");
        assert_eq!(&decode_base64_data(b"Zm9v").unwrap()[..], b"foo");
        assert_eq!(&decode_base64_data(b"Zm9vYmFy").unwrap()[..], b"foobar");
        for bad in [
            &b"Zg="[..],
            b"Zg",
            b"Z===",
            b"Zm9v!A==",
            b"Zh==",
            b"Zm9v Zm9v",
        ] {
            let err = decode_base64_data(bad).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "{bad:?}: {err:?}");
        }
    }
}
