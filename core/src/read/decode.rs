//! Turning the raw pieces of a read into text and JSON values.

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::producer::json::Block;

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
    let mut items = Parsed(Vec::new());
    for s in segments {
        splitter.feed_into(s, &mut items)?;
        splitter.end()?;
    }
    Ok(items.0)
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
        Self::too_large_for(self.limit)
    }

    fn too_large_for(limit: usize) -> Error {
        Error::parse(
            "JSON response",
            format!(
                "a message is larger than max_chunk_bytes ({limit} bytes); raise the read option max_chunk_bytes to read it"
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

    /// Feeds the next piece of the array; complete elements are pushed to `out` as raw text.
    #[cfg(test)]
    pub(crate) fn feed(&mut self, piece: &Bytes, out: &mut Vec<Bytes>) -> Result<()> {
        self.feed_into(piece, out)
    }

    /// Feeds the next piece of the array to `sink`: an element that starts in this piece is
    /// first offered to [`Elements::parse_at`] (which parses it in place); only one it cannot
    /// take whole (it ends in a later piece) is scanned here and handed out as raw text.
    pub(crate) fn feed_into<S: Elements>(&mut self, piece: &Bytes, out: &mut S) -> Result<()> {
        let buf = &piece[..];
        // The piece as text, up to where it stops being UTF-8 (often a character cut at its
        // end), checked once here for sinks that parse text: serde then skips its own UTF-8
        // check of every string.
        let text = if S::TEXT {
            match std::str::from_utf8(buf) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default(),
            }
        } else {
            ""
        };
        out.piece_start();
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
                    if !matches!(b, b']' | b',' | b'}' | b':') {
                        if let Some(n) = out.parse_at(buf, i, text.get(i..), self.limit)? {
                            self.state = Split::After;
                            i += n;
                            continue;
                        }
                    }
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
        out: &mut impl Elements,
    ) -> Result<()> {
        let len = self.partial.len() + (end - start);
        if len > self.limit {
            return Err(self.too_large());
        }
        self.state = Split::After;
        if self.partial.is_empty() {
            out.element(piece.slice(start..end))
        } else {
            self.partial.extend_from_slice(&piece[start..end]);
            out.element(std::mem::take(&mut self.partial).freeze())
        }
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

/// Where a [`JsonSplitter`] puts the elements it finds.
pub(crate) trait Elements {
    /// Whether [`parse_at`](Self::parse_at) wants the piece as text too.
    const TEXT: bool = false;

    /// Offered a piece where an element starts at `at`: takes the element if it ends in the
    /// piece and returns its length, or `None` to have the splitter scan it (it may continue
    /// in the next piece). An element longer than `limit` bytes is an error. With
    /// [`TEXT`](Self::TEXT), `text` is the piece from `at` as far as it is valid UTF-8 (`None`
    /// when not even its first byte is).
    fn parse_at(
        &mut self,
        piece: &[u8],
        at: usize,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Option<usize>>;

    /// Called before the elements of each new piece (a sink may keep something about the
    /// piece between its elements until then).
    fn piece_start(&mut self) {}

    /// An element the splitter scanned, as raw text.
    fn element(&mut self, raw: Bytes) -> Result<()>;
}

/// For a sink's `parse_at`: whether an element that starts with `first` and was measured at
/// `len` of the `available` bytes surely ends there, or an error when it is longer than `limit`.
/// A number, `true`, `false` or `null` that reaches the end of the piece (or of its text) may go
/// on: then the splitter finds where it ends.
fn ended(len: usize, available: usize, first: Option<u8>, limit: usize) -> Result<bool> {
    if len >= available && !matches!(first, Some(b'"' | b'{' | b'[')) {
        return Ok(false);
    }
    if len > limit {
        return Err(JsonSplitter::too_large_for(limit));
    }
    Ok(true)
}

/// Raw elements: the splitter scans every one.
impl Elements for Vec<Bytes> {
    fn parse_at(
        &mut self,
        _piece: &[u8],
        _at: usize,
        _text: Option<&str>,
        _limit: usize,
    ) -> Result<Option<usize>> {
        Ok(None)
    }

    fn element(&mut self, raw: Bytes) -> Result<()> {
        self.push(raw);
        Ok(())
    }
}

/// Elements deserialized as `T` straight from the piece they arrive in: one pass over the
/// bytes, which serde validates as it goes; only an element split between pieces is gathered
/// first.
pub(crate) struct Parsed<T>(pub Vec<T>);

impl<T: DeserializeOwned> Elements for Parsed<T> {
    const TEXT: bool = true;

    fn parse_at(
        &mut self,
        piece: &[u8],
        at: usize,
        text: Option<&str>,
        limit: usize,
    ) -> Result<Option<usize>> {
        let rest = piece.get(at..).unwrap_or_default();
        // The quicker deserializer first; what it leaves, serde_json reads from the start.
        let fast = text.and_then(|t| {
            let (v, len) = super::fast_de::from_prefix::<T>(t)?;
            Some((t.as_bytes().first().copied()?, t.len(), Some((Ok(v), len))))
        });
        // From text when the piece is UTF-8 there (serde skips checking every string again).
        let (first, end, next) = match fast {
            Some(found) => found,
            None => match text {
                Some(t) if !t.is_empty() => {
                    let mut values = serde_json::Deserializer::from_str(t).into_iter::<T>();
                    (
                        t.as_bytes()[0],
                        t.len(),
                        values.next().map(|r| (r, values.byte_offset())),
                    )
                }
                _ => {
                    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
                    let next = values.next().map(|r| (r, values.byte_offset()));
                    (rest.first().copied().unwrap_or(b' '), rest.len(), next)
                }
            },
        };
        match next {
            Some((Ok(v), len)) => {
                if !ended(len, end, Some(first), limit)? {
                    return Ok(None);
                }
                self.0.push(v);
                Ok(Some(len))
            }
            // The element goes on in the next piece, or is malformed: the splitter finds
            // where it ends, and `element` reports what is wrong with it, the same way
            // whichever piece boundaries the body had.
            Some((Err(_), _)) | None => Ok(None),
        }
    }

    fn element(&mut self, raw: Bytes) -> Result<()> {
        let v = serde_json::from_slice(&raw).map_err(|e| invalid_message(&e))?;
        self.0.push(v);
        Ok(())
    }
}

/// The most bytes of messages put in one array text (a larger message gets an array of its
/// own): JavaScript strings have a maximum length (about 512 MiB in V8), a read does not.
pub(crate) const ARRAY_TEXT_BYTES: usize = 16 << 20;

/// Elements gathered, unchanged, into the texts of JSON arrays (`[m1,m2,...]`), for bindings
/// whose language parses a whole array at once faster than values can be built one by one.
/// Each element is checked (JSON syntax, and UTF-8 when a text is closed) but not converted.
#[derive(Debug, Default)]
pub(crate) struct ArrayTexts {
    texts: Vec<String>,
    cur: Vec<u8>,
}

impl ArrayTexts {
    /// Room for `bytes` of elements in the first text.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            texts: Vec::new(),
            cur: Vec::with_capacity(bytes.saturating_add(2).min(ARRAY_TEXT_BYTES)),
        }
    }

    fn push(&mut self, text: &[u8]) -> Result<()> {
        if self.cur.len() > 1 && self.cur.len() + text.len() + 1 > ARRAY_TEXT_BYTES {
            self.close()?;
        }
        self.cur.push(if self.cur.is_empty() { b'[' } else { b',' });
        self.cur.extend_from_slice(text);
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if self.cur.is_empty() {
            return Ok(());
        }
        self.cur.push(b']');
        let text = String::from_utf8(std::mem::take(&mut self.cur))
            .map_err(|e| invalid_utf8(e.utf8_error()))?;
        self.texts.push(text);
        Ok(())
    }

    /// The array texts (none when there were no elements).
    pub(crate) fn finish(mut self) -> Result<Vec<String>> {
        self.close()?;
        Ok(self.texts)
    }
}

impl Elements for ArrayTexts {
    fn parse_at(
        &mut self,
        piece: &[u8],
        at: usize,
        _text: Option<&str>,
        limit: usize,
    ) -> Result<Option<usize>> {
        let rest = piece.get(at..).unwrap_or_default();
        // The producer's single-pass check (also UTF-8), cheaper than serde's `IgnoredAny`.
        let Some(len) = crate::producer::json::value_len(rest) else {
            return Ok(None);
        };
        if !ended(len, rest.len(), rest.first().copied(), limit)? {
            return Ok(None);
        }
        self.push(&rest[..len])?;
        Ok(Some(len))
    }

    fn element(&mut self, raw: Bytes) -> Result<()> {
        if !crate::producer::json::check(&raw) {
            return Err(element_error(&raw));
        }
        self.push(&raw)
    }
}

/// Adds the JSON array text `text` (`[...]`, as [`ArrayTexts`] makes them) to `texts`, joined to
/// the last one while the two fit in [`ARRAY_TEXT_BYTES`].
pub(crate) fn join_array_text(texts: &mut Vec<String>, text: String) {
    if let Some(last) = texts.last_mut() {
        let fits = last.len().saturating_add(text.len()) <= ARRAY_TEXT_BYTES;
        if fits && last.ends_with(']') && last.len() > 2 && text.len() > 2 {
            if let Some(rest) = text.strip_prefix('[') {
                last.pop();
                last.push(',');
                last.push_str(rest);
                return;
            }
        }
    }
    texts.push(text);
}

/// What a projected JSON read keeps of each message: the parts the consumer asked for, so
/// that a binding builds only those values in its language. Every message is still checked
/// whole (JSON syntax and UTF-8), as in a full read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPick {
    /// The value of one top-level member of each message; `null` for a message that is not an
    /// object or has no such member. A name given twice in one message keeps its last value,
    /// as JSON parsers do.
    Value(String),
    /// An object of the named top-level members that each message has, in the message's order;
    /// `null` for a message that is not an object.
    Members(Vec<String>),
}

impl JsonPick {
    /// Rejects a pick that names no member.
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            JsonPick::Members(names) if names.is_empty() => Err(Error::invalid(
                "fields must name at least one member (leave it out to read whole messages)",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the key (its quoted text; `escaped` when that holds an escape) names a wanted
    /// member. Keys with escapes are compared unescaped.
    #[inline(always)]
    fn wants(&self, quoted: &[u8], escaped: bool) -> bool {
        match self {
            JsonPick::Value(name) => key_is(quoted, escaped, name.as_bytes()),
            JsonPick::Members(names) => names
                .iter()
                .any(|name| key_is(quoted, escaped, name.as_bytes())),
        }
    }
}

/// Whether a key (its quoted text; `escaped` when that holds an escape) is `name`.
#[inline(always)]
fn key_is(quoted: &[u8], escaped: bool, name: &[u8]) -> bool {
    let Some(raw) = quoted.get(1..quoted.len().saturating_sub(1)) else {
        return false;
    };
    if !escaped {
        // Keys are short: a byte loop, not `==`, whose call to `memcmp` cost more than the
        // comparison itself (callgrind).
        return raw.len() == name.len() && raw.iter().zip(name).all(|(a, b)| a == b);
    }
    // An escape spells one character in two bytes or more, so only a longer key with one can
    // name it in other bytes.
    raw.len() > name.len() && key_unescaped_is(quoted, name)
}

/// Whether a quoted key with escapes names `name` once unescaped (the rare case, kept out of
/// line).
#[inline(never)]
fn key_unescaped_is(quoted: &[u8], name: &[u8]) -> bool {
    std::str::from_utf8(quoted)
        .ok()
        .and_then(|t| super::fast_de::string_at(t, 0))
        .is_some_and(|(k, _)| k.as_bytes() == name)
}

/// Checks the JSON value at `data[at]` (after optional whitespace) and writes what `pick` keeps
/// of it to `out` (cleared first). Returns its length from `at`, or `None` when it is invalid
/// or goes on past `data` (as [`value_len`](crate::producer::json::value_len)). `block` is
/// [`Block::NONE`] or what the last call for the same `data` left there.
fn pick_from(
    data: &[u8],
    at: usize,
    block: &mut Block,
    pick: &JsonPick,
    out: &mut Vec<u8>,
) -> Option<usize> {
    use crate::producer::json::{object_members_in, skip_ws, value_len};
    out.clear();
    let start = skip_ws(data, at);
    if data.get(start) != Some(&b'{') {
        let len = value_len(data.get(at..)?)?;
        out.extend_from_slice(b"null");
        return Some(len);
    }
    let end = match pick {
        JsonPick::Value(_) => {
            let mut value = None;
            let end = object_members_in(data, start, block, |key, escaped, v, v_end| {
                if pick.wants(key, escaped) {
                    value = Some((v, v_end));
                }
            })?;
            match value {
                Some((v, v_end)) => out.extend_from_slice(data.get(v..v_end)?),
                None => out.extend_from_slice(b"null"),
            }
            end
        }
        JsonPick::Members(_) => {
            out.push(b'{');
            let end = object_members_in(data, start, block, |key, escaped, v, v_end| {
                if pick.wants(key, escaped) {
                    if out.len() > 1 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    out.push(b':');
                    out.extend_from_slice(data.get(v..v_end).unwrap_or(b"null"));
                }
            })?;
            out.push(b'}');
            end
        }
    };
    end.checked_sub(at)
}

/// Elements reduced to what a [`JsonPick`] keeps, gathered into array texts as by
/// [`ArrayTexts`]: one pass per element both checks it and picks from it.
#[derive(Debug)]
pub(crate) struct PickedTexts {
    out: ArrayTexts,
    pick: std::sync::Arc<JsonPick>,
    scratch: Vec<u8>,
    /// The masks of the block the last element of this piece ended in.
    block: Block,
}

impl PickedTexts {
    pub(crate) fn new(pick: std::sync::Arc<JsonPick>, bytes: usize) -> Self {
        Self {
            out: ArrayTexts::with_capacity(bytes),
            pick,
            scratch: Vec::new(),
            block: Block::NONE,
        }
    }

    pub(crate) fn finish(self) -> Result<Vec<String>> {
        self.out.finish()
    }
}

impl Elements for PickedTexts {
    fn parse_at(
        &mut self,
        piece: &[u8],
        at: usize,
        _text: Option<&str>,
        limit: usize,
    ) -> Result<Option<usize>> {
        let Some(len) = pick_from(piece, at, &mut self.block, &self.pick, &mut self.scratch) else {
            return Ok(None);
        };
        let available = piece.len().saturating_sub(at);
        if !ended(len, available, piece.get(at).copied(), limit)? {
            return Ok(None);
        }
        self.out.push(&self.scratch)?;
        Ok(Some(len))
    }

    fn piece_start(&mut self) {
        self.block = Block::NONE;
    }

    fn element(&mut self, raw: Bytes) -> Result<()> {
        let mut block = Block::NONE;
        match pick_from(&raw, 0, &mut block, &self.pick, &mut self.scratch) {
            Some(end) if crate::producer::json::skip_ws(&raw, end) == raw.len() => {
                self.out.push(&self.scratch)
            }
            _ => Err(element_error(&raw)),
        }
    }
}

/// What is wrong with an element that did not pass the check.
fn element_error(raw: &[u8]) -> Error {
    // serde_json says what is wrong; it does not check UTF-8 in strings.
    match serde_json::from_slice::<serde::de::IgnoredAny>(raw) {
        Err(e) => invalid_message(&e),
        Ok(_) => Error::parse("JSON response", "invalid JSON message: invalid UTF-8"),
    }
}

fn invalid_message(err: &serde_json::Error) -> Error {
    Error::json(
        "JSON response",
        format!(
            "invalid JSON message: {}",
            crate::http::server_text(&err.to_string())
        ),
        err,
    )
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
        assert_eq!(els, vec!["1", "nope"]);
        assert!(parse_all::<serde_json::Value>(&[b"[1,nope]"], 100).is_err());
    }

    fn parse_all<T: DeserializeOwned>(pieces: &[&[u8]], limit: usize) -> Result<Vec<T>> {
        let mut sp = JsonSplitter::new(limit);
        let mut out = Parsed(Vec::new());
        for p in pieces {
            sp.feed_into(&Bytes::copy_from_slice(p), &mut out)?;
        }
        sp.end()?;
        Ok(out.0)
    }

    #[test]
    fn parsed_elements_match_however_the_body_is_cut() {
        // Non-ASCII too: a cut inside a character leaves the piece's text short of its end.
        let body = r#" [ 1 , -2.5e3,"a,]\"\\" , {"k":["]",{"x":"}"}]} ,[[],[1]] ,true,null,"" ,"é日",{"ü":"ß"},{},12345,1e5]  "#
            .as_bytes();
        let expected: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let got: Vec<serde_json::Value> =
                    parse_all(&[&body[..i], &body[i..j], &body[j..]], 1 << 20)
                        .unwrap_or_else(|e| panic!("cut at {i},{j}: {e}"));
                assert_eq!(got, expected, "cut at {i},{j}");
            }
        }
        assert!(parse_all::<u32>(&[b""], 10).unwrap().is_empty());
        assert!(parse_all::<u32>(&[b" [ ] "], 10).unwrap().is_empty());
        // Invalid UTF-8 in a string is refused however the body is cut.
        let bad = b"[\"ok\",\"\xff\",1]";
        for i in 0..=bad.len() {
            let err = parse_all::<serde_json::Value>(&[&bad[..i], &bad[i..]], 100).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "cut at {i}: {err:?}");
        }
    }

    fn texts_all(pieces: &[&[u8]], limit: usize) -> Result<Vec<String>> {
        let mut sp = JsonSplitter::new(limit);
        let mut out = ArrayTexts::with_capacity(0);
        for p in pieces {
            sp.feed_into(&Bytes::copy_from_slice(p), &mut out)?;
        }
        sp.end()?;
        out.finish()
    }

    #[test]
    fn array_texts_keep_messages_unchanged_however_the_body_is_cut() {
        let body = r#" [ 1 , -2.5e3,"a,]\"\\" , {"k" : ["]",{"x":"}"}]} ,[[],[1]] ,true,null,"é" ,{},12345]  "#
            .as_bytes();
        let expected =
            r#"[1,-2.5e3,"a,]\"\\",{"k" : ["]",{"x":"}"}]},[[],[1]],true,null,"é",{},12345]"#;
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let got = texts_all(&[&body[..i], &body[i..j], &body[j..]], 1 << 20)
                    .unwrap_or_else(|e| panic!("cut at {i},{j}: {e}"));
                assert_eq!(got, vec![expected.to_owned()], "cut at {i},{j}");
            }
        }
        assert!(texts_all(&[b" [ ] "], 10).unwrap().is_empty());
        let err = texts_all(&[b"[\"0123456789\"]"], 8).unwrap_err();
        assert!(
            err.to_string().contains("max_chunk_bytes (8 bytes)"),
            "{err}"
        );
    }

    /// Time per message of a picked read's decoding (splitter and sink, no network) on the
    /// benchmark's messages, in parts of 64 KiB as a fast body arrives:
    /// `cargo test --release -p durable-streams-client --lib picked_read_cost -- --ignored --nocapture`
    /// (`PICKED_READ_COST_N` sets the number of messages; 1,000,000 by default).
    #[test]
    #[ignore]
    fn picked_read_cost() {
        let n: usize = std::env::var("PICKED_READ_COST_N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        let mut body = b"[".to_vec();
        let mut expected = 0u64;
        for i in 0..n {
            if i > 0 {
                body.push(b',');
            }
            // The benchmark's message `i` of 100 bytes (bench/rust/src/msg.rs).
            let head = format!(
                r#"{{"i":{i},"type":"bench.event","user":"u{}","p":""#,
                i % 1000
            );
            body.extend_from_slice(head.as_bytes());
            body.extend(std::iter::repeat_n(
                b'x',
                100usize.saturating_sub(head.len() + 2),
            ));
            body.extend_from_slice(b"\"}");
            expected += i as u64;
        }
        body.push(b']');
        let pieces: Vec<Bytes> = body.chunks(64 << 10).map(Bytes::copy_from_slice).collect();
        for round in 0..3 {
            let t = std::time::Instant::now();
            let mut sp = JsonSplitter::new(1 << 20);
            let mut out = PickedTexts::new(std::sync::Arc::new(JsonPick::Value("i".into())), 0);
            for p in &pieces {
                sp.feed_into(p, &mut out).unwrap();
            }
            sp.end().unwrap();
            let texts = out.finish().unwrap();
            let ns = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
            let sum: u64 = texts
                .iter()
                .flat_map(|t| serde_json::from_str::<Vec<u64>>(t).unwrap())
                .sum();
            assert_eq!(sum, expected);
            println!("round {round}: {ns:.1} ns/msg");
        }
    }

    fn picked_all(pieces: &[&[u8]], pick: &JsonPick, limit: usize) -> Result<Vec<String>> {
        let mut sp = JsonSplitter::new(limit);
        let mut out = PickedTexts::new(std::sync::Arc::new(pick.clone()), 0);
        for p in pieces {
            sp.feed_into(&Bytes::copy_from_slice(p), &mut out)?;
        }
        sp.end()?;
        out.finish()
    }

    /// What a pick should keep of a message, computed from serde_json's parse of it.
    fn expected_pick(m: &serde_json::Value, pick: &JsonPick) -> serde_json::Value {
        let Some(obj) = m.as_object() else {
            return serde_json::Value::Null;
        };
        match pick {
            JsonPick::Value(k) => obj.get(k).cloned().unwrap_or(serde_json::Value::Null),
            JsonPick::Members(ks) => serde_json::Value::Object(
                obj.iter()
                    .filter(|(k, _)| ks.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn picks_keep_what_was_asked_however_the_body_is_cut() {
        let body = r#" [ {"i" : 1 , "t":"a,}\"","n":{"i":9}} ,{"t":"b"},7,"i",null,[{"i":3}], { } ,{"\u0069":"esc","i2":[1,{"i":0}]},{"i":-2.5e3 ,"i":"last"} ,{"t":"é","i":true}]  "#
            .as_bytes();
        let messages: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
        let picks = [
            JsonPick::Value("i".into()),
            JsonPick::Value("t".into()),
            JsonPick::Value("missing".into()),
            JsonPick::Members(vec!["i".into(), "t".into()]),
            JsonPick::Members(vec!["n".into()]),
        ];
        for pick in &picks {
            let expected: Vec<serde_json::Value> =
                messages.iter().map(|m| expected_pick(m, pick)).collect();
            for i in 0..=body.len() {
                for j in i..=body.len() {
                    let got = picked_all(&[&body[..i], &body[i..j], &body[j..]], pick, 1 << 20)
                        .unwrap_or_else(|e| panic!("{pick:?} cut at {i},{j}: {e}"));
                    let got: Vec<serde_json::Value> = got
                        .iter()
                        .flat_map(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).unwrap())
                        .collect();
                    assert_eq!(got, expected, "{pick:?} cut at {i},{j}");
                }
            }
        }
        // The value's text is kept as it was sent (a binding's parser reads it).
        let got = picked_all(
            &[br#"[{"a":1,"i":1.50},{"i":"x\n"}]"#],
            &JsonPick::Value("i".into()),
            100,
        )
        .unwrap();
        assert_eq!(got, vec![r#"[1.50,"x\n"]"#.to_owned()]);
        let got = picked_all(
            &[br#"[{"a":1,"i":1,"b":2},{"b":3}]"#],
            &JsonPick::Members(vec!["b".into(), "i".into()]),
            100,
        )
        .unwrap();
        assert_eq!(got, vec![r#"[{"i":1,"b":2},{"b":3}]"#.to_owned()]);
        assert!(picked_all(&[b" [ ] "], &picks[0], 10).unwrap().is_empty());
    }

    /// Messages next to each other in one piece share the 64-byte blocks their strings are
    /// found in: each message still gets only its own picks, and a byte that is not UTF-8 in
    /// any of them (after valid non-ASCII in the one before, in the same block) fails the read.
    #[test]
    fn picks_in_one_piece_share_blocks_and_check_each_message() {
        let message = |k: usize, pad: &str| {
            format!(
                r#"{{"s":"{pad}{}","i":{k},"t":"é"}}"#,
                "x".repeat(k * 7 % 70)
            )
        };
        let pick = JsonPick::Value("i".into());
        let all: Vec<String> = (0..40).map(|k| message(k, "")).collect();
        let body = format!("[{}]", all.join(","));
        for cut in [body.len(), body.len() / 3] {
            let got = picked_all(
                &[&body.as_bytes()[..cut], &body.as_bytes()[cut..]],
                &pick,
                1 << 20,
            )
            .unwrap();
            let expected: Vec<usize> = (0..40).collect();
            let got: Vec<usize> = serde_json::from_str(&got.concat().replace("][", ",")).unwrap();
            assert_eq!(got, expected, "cut at {cut}");
        }
        for bad in 0..40 {
            let mut body = b"[".to_vec();
            for k in 0..40 {
                if k > 0 {
                    body.push(b',');
                }
                let m = message(k, if k == bad { "\u{1}" } else { "" });
                // The control character's place takes a byte that is not UTF-8.
                body.extend(m.bytes().map(|b| if b == 1 { 0xff } else { b }));
            }
            body.push(b']');
            let err = picked_all(&[&body], &pick, 1 << 20).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }), "bad {bad}: {err:?}");
        }
    }

    #[test]
    fn array_texts_are_joined_while_they_fit() {
        let mut texts = Vec::new();
        join_array_text(&mut texts, "[1,2]".into());
        join_array_text(&mut texts, "[3]".into());
        join_array_text(&mut texts, "[{\"a\":[4]}]".into());
        assert_eq!(texts, vec!["[1,2,3,{\"a\":[4]}]".to_owned()]);
        // Past the size of one text, a new one starts.
        let big = format!("[\"{}\"]", "x".repeat(ARRAY_TEXT_BYTES - 10));
        join_array_text(&mut texts, big.clone());
        join_array_text(&mut texts, "[5]".into());
        assert_eq!(texts.len(), 2);
        assert_eq!(texts[1].len(), big.len() + 2);
        let all: Vec<serde_json::Value> = texts
            .iter()
            .flat_map(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).unwrap())
            .collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[5], serde_json::json!(5));
    }

    #[test]
    fn picks_check_every_message_whole() {
        // The parts not picked are checked too: a bad value, a bad key or invalid UTF-8
        // anywhere in a message fails the read, however the body is cut.
        for bad in [
            &br#"[{"i":1,"x":nope}]"#[..],
            br#"[{"i":1,"x":[1,}]"#,
            br#"[{"i":1,x:2}]"#,
            br#"[{"i":1 "x":2}]"#,
            br#"[{"i":1,}]"#,
            br#"[{"i":1}"#,
            b"[{\"i\":1,\"x\":\"\xff\"}]",
            b"[{\"\xff\":1}]",
            br#"[{"i":1},tru]"#,
            br#"[{"i":"\q"}]"#,
        ] {
            for pick in [
                JsonPick::Value("i".into()),
                JsonPick::Members(vec!["i".into()]),
            ] {
                for i in 0..=bad.len() {
                    let err = picked_all(&[&bad[..i], &bad[i..]], &pick, 100).unwrap_err();
                    assert!(
                        matches!(err, Error::Parse { .. }),
                        "{:?} {pick:?} cut at {i}: {err:?}",
                        String::from_utf8_lossy(bad)
                    );
                }
            }
        }
        // The size limit holds for the whole message, not for what is picked of it.
        let err = picked_all(
            &[br#"[{"i":1,"x":"0123456789"}]"#],
            &JsonPick::Value("i".into()),
            16,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("max_chunk_bytes (16 bytes)"),
            "{err}"
        );
        assert!(JsonPick::Members(Vec::new()).validate().is_err());
        assert!(JsonPick::Value(String::new()).validate().is_ok());
    }

    #[test]
    fn parsed_elements_are_checked_however_the_body_is_cut() {
        for bad in [
            &b"{\"a\":1}"[..],
            b"[1,",
            b"[1,]",
            b"[1 2]",
            b"[1]x",
            b"[,1]",
            b"[\"open",
            b"[[1]",
            b"[1,nope]",
            b"[1e]",
            b"[{\"a\":1e}]",
            b"[\"a\",{\"b\":}]",
            b"[12x]",
        ] {
            for i in 0..=bad.len() {
                let err = parse_all::<serde_json::Value>(&[&bad[..i], &bad[i..]], 100).unwrap_err();
                assert!(
                    matches!(err, Error::Parse { .. }),
                    "{bad:?} cut at {i}: {err:?}"
                );
            }
        }
        // The wrong type is an error too, and the limit holds for parsed elements.
        assert!(parse_all::<u32>(&[b"[1,\"a\"]"], 100).is_err());
        let err = parse_all::<String>(&[b"[\"0123456789\"]"], 8).unwrap_err();
        assert!(
            err.to_string().contains("max_chunk_bytes (8 bytes)"),
            "{err}"
        );
        let err = parse_all::<String>(&[b"[\"01234", b"56789\"]"], 8).unwrap_err();
        assert!(err.to_string().contains("max_chunk_bytes"), "{err}");
        assert_eq!(
            parse_all::<String>(&[b"[\"012345\"]"], 8).unwrap(),
            vec!["012345"]
        );
        // Array texts check the same way.
        for bad in [
            &b"[1,nope]"[..],
            b"[1 2]",
            b"[\"a\",{\"b\":}]",
            b"[\"\xff\"]",
        ] {
            for i in 0..=bad.len() {
                assert!(
                    texts_all(&[&bad[..i], &bad[i..]], 100).is_err(),
                    "{bad:?} at {i}"
                );
            }
        }
        // A number cut at the end of a piece is read whole.
        assert_eq!(
            parse_all::<u64>(&[b"[12", b"3,4", b"5]"], 100).unwrap(),
            vec![123, 45]
        );
    }
}
