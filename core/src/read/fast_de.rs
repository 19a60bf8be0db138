//! A quicker first try at deserializing one JSON message into the reader's type.
//!
//! serde_json spends most of a typed catch-up read skipping what the type does not keep and
//! parsing keys (measured: 1,623 of 1,817 instructions per message for a struct that keeps one
//! field of four). This deserializer borrows keys and plain strings from the text, reads small
//! integers directly, unescapes strings with escapes in one pass, skips ignored values with the
//! producer's JSON scanner (which checks them just as fully) and hands floats to serde_json on
//! their own text.
//!
//! It answers only when it is sure to give what serde_json gives: anything else (an enum, a key
//! read as a number, deep nesting, bytes, a value of another kind than the type asks for, an
//! error of any kind, the type's own included, even one the type then drops) makes it give up,
//! and the caller deserializes the message with serde_json from its start, so results and
//! error messages are serde_json's.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

use crate::producer::json;

/// Gave up: serde_json decides.
#[derive(Debug)]
pub(crate) struct GiveUp;

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        GiveUp
    }
}

type R<T> = std::result::Result<T, GiveUp>;

/// Notes that an error went back to the type (see `Fast::handed_error`); out of line, as
/// errors are rare.
#[cold]
#[inline(never)]
fn handed(flag: &mut bool) {
    *flag = true;
}

/// Containers deeper than this are left to serde_json (whose limit is 128).
const MAX_DEPTH: usize = 100;

/// The value at the start of `text` (after whitespace) as `T`, and where it ends, as
/// serde_json's `StreamDeserializer` would give them; `None` to leave it to serde_json.
pub(crate) fn from_prefix<T: DeserializeOwned>(text: &str) -> Option<(T, usize)> {
    let mut de = Fast {
        text,
        pos: 0,
        depth: 0,
        handed_error: false,
    };
    de.skip_ws();
    let first = de.peek()?;
    let value = T::deserialize(&mut de).ok()?;
    // The type was handed an error and went on (`.ok()`, a default on error): the text may be
    // left where serde_json would not be.
    if de.handed_error {
        return None;
    }
    // serde_json's stream checks what follows a value that does not end itself.
    if !matches!(first, b'"' | b'[' | b'{')
        && !matches!(
            de.peek(),
            None | Some(
                b' ' | b'\n' | b'\t' | b'\r' | b'"' | b'[' | b']' | b'{' | b'}' | b',' | b':'
            )
        )
    {
        return None;
    }
    Some((value, de.pos))
}

/// The JSON string whose opening quote is at `pos` in `text`, and the position after its
/// closing quote: borrowed from `text` when it has no escape, else unescaped. `None` where
/// serde_json would refuse it (a control character, an unknown or short escape, a lone
/// surrogate, a missing end).
#[inline]
pub(crate) fn string_at(text: &str, pos: usize) -> Option<(std::borrow::Cow<'_, str>, usize)> {
    let mut de = Fast {
        text,
        pos,
        depth: 0,
        handed_error: false,
    };
    let s = match de.string().ok()? {
        Str::Borrowed(s) => std::borrow::Cow::Borrowed(s),
        Str::Owned(s) => std::borrow::Cow::Owned(s),
    };
    Some((s, de.pos))
}

/// Methods that leave the value to serde_json.
macro_rules! give_up {
    (noted; $($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* _visitor: V) -> R<V::Value> {
                self.handed_error = true;
                Err(GiveUp)
            }
        )*
    };
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* _visitor: V) -> R<V::Value> {
                Err(GiveUp)
            }
        )*
    };
}

/// Methods that read the value as `deserialize_any` does when it starts with one of the given
/// bytes, and leave it to serde_json otherwise.
macro_rules! only_when {
    ($($method:ident($($arg:ident: $ty:ty),*) if [$first:pat];)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> R<V::Value> {
                self.skip_ws();
                match self.peek() {
                    Some($first) => self.deserialize_any(visitor),
                    _ => {
                        self.handed_error = true;
                        Err(GiveUp)
                    }
                }
            }
        )*
    };
}

struct Fast<'de> {
    text: &'de str,
    pos: usize,
    depth: usize,
    /// An error was returned to the type being deserialized (by any method it called here;
    /// errors of a key reach it through `next_key_seed`). Errors a type makes and handles on
    /// its own (an untagged enum trying its variants on a buffered value) are not counted.
    handed_error: bool,
}

impl<'de> Fast<'de> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Whitespace, then `b`.
    #[inline]
    fn expect(&mut self, b: u8) -> R<()> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// The string whose opening quote is at `pos` (and `pos` moved past it): borrowed from the
    /// text when it has no escape, else unescaped in the same pass. `GiveUp`, with `pos`
    /// unchanged, on a control character, an escape serde_json would refuse (a lone surrogate
    /// among them) or a missing end.
    #[inline]
    fn string(&mut self) -> R<Str<'de>> {
        let bytes = self.text.as_bytes();
        let start = self.pos + 1;
        let end = json::plain_run_end(bytes, start);
        if bytes.get(end) == Some(&b'"') {
            let s = self.text.get(start..end).ok_or(GiveUp)?;
            self.pos = end + 1;
            return Ok(Str::Borrowed(s));
        }
        self.escaped(start, end)
    }

    /// The rest of a string with escapes: `text[start..end]` is plain, and `end` is where the
    /// first byte that is not lies.
    #[cold]
    fn escaped(&mut self, start: usize, mut end: usize) -> R<Str<'de>> {
        let bytes = self.text.as_bytes();
        // Unescaping only shortens: the string's text (found by the scanner, which also checks
        // it) is room enough, so the string is allocated once.
        let rest = bytes.get(self.pos..).ok_or(GiveUp)?;
        let mut out = String::with_capacity(json::text_value_len(rest).ok_or(GiveUp)?);
        let mut run = start;
        loop {
            out.push_str(self.text.get(run..end).ok_or(GiveUp)?);
            match bytes.get(end) {
                Some(b'"') => {
                    self.pos = end + 1;
                    return Ok(Str::Owned(out));
                }
                Some(b'\\') => {
                    let (c, next) = unescape(bytes, end + 1)?;
                    out.push(c);
                    run = next;
                    end = json::plain_run_end(bytes, run);
                }
                _ => return Err(GiveUp),
            }
        }
    }

    #[inline]
    fn literal(&mut self, word: &str) -> R<()> {
        if self.text.as_bytes().get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// A number: an integer of at most 18 digits (19 when not negative) here, as serde_json
    /// reads it (`u64`, or `i64` when negative; `-0` is a float to it); any other number by
    /// serde_json itself, on the number's own text.
    #[inline]
    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> R<V::Value> {
        let bytes = self.text.as_bytes();
        let negative = bytes.get(self.pos) == Some(&b'-');
        let start = self.pos + usize::from(negative);
        let mut i = start;
        let mut n: u64 = 0;
        while let Some(&b @ b'0'..=b'9') = bytes.get(i) {
            if i - start == 18 {
                return self.delegated(visitor);
            }
            n = n * 10 + u64::from(b - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0
            || (digits > 1 && bytes.get(start) == Some(&b'0'))
            || matches!(bytes.get(i), Some(b'.' | b'e' | b'E'))
            || (negative && n == 0)
        {
            return self.delegated(visitor);
        }
        self.pos = i;
        if negative {
            // At most 18 digits: fits an i64.
            let v = i64::try_from(n).map_err(|_| GiveUp)?;
            visitor.visit_i64(-v)
        } else {
            visitor.visit_u64(n)
        }
    }

    /// The number at `pos` read by serde_json from its own text, found with the producer's
    /// JSON scanner.
    fn delegated<V: Visitor<'de>>(&mut self, visitor: V) -> R<V::Value> {
        self.delegated_as(visitor, false)
    }

    /// [`delegated`](Self::delegated), through serde_json's `deserialize_f32` when `f32`:
    /// with its `float_roundtrip` feature (which an application can turn on) it parses an
    /// `f32` straight from the text, not through an `f64`.
    fn delegated_as<V: Visitor<'de>>(&mut self, visitor: V, f32: bool) -> R<V::Value> {
        let rest = self.text.get(self.pos..).ok_or(GiveUp)?;
        let len = json::text_value_len(rest.as_bytes()).ok_or(GiveUp)?;
        let mut de = serde_json::Deserializer::from_str(rest.get(..len).ok_or(GiveUp)?);
        let v = if f32 {
            de::Deserializer::deserialize_f32(&mut de, visitor)
        } else {
            de::Deserializer::deserialize_any(&mut de, visitor)
        }
        .map_err(|_| GiveUp)?;
        de.end().map_err(|_| GiveUp)?;
        self.pos += len;
        Ok(v)
    }

    /// `deserialize_any`'s reading.
    #[inline(always)]
    fn any<V: Visitor<'de>>(&mut self, visitor: V) -> R<V::Value> {
        self.skip_ws();
        match self.peek().ok_or(GiveUp)? {
            b'"' => self.string()?.visit(visitor),
            b'-' | b'0'..=b'9' => self.number(visitor),
            b't' => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            b'n' => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            b'[' => {
                let v = visitor.visit_seq(self.enter(b']')?)?;
                self.leave(b']')?;
                Ok(v)
            }
            b'{' => {
                let v = visitor.visit_map(self.enter(b'}')?)?;
                self.leave(b'}')?;
                Ok(v)
            }
            _ => Err(GiveUp),
        }
    }

    /// Opens the array or object at `pos` (`close` is its closing bracket).
    #[inline]
    fn enter(&mut self, close: u8) -> R<Items<'_, 'de>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(Items {
            de: self,
            first: true,
            close,
        })
    }

    /// Closes it: serde_json fails when the type's visitor left items unread.
    #[inline]
    fn leave(&mut self, close: u8) -> R<()> {
        self.expect(close)?;
        self.depth -= 1;
        Ok(())
    }
}

impl<'de> de::Deserializer<'de> for &mut Fast<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        let r = self.any(visitor);
        if r.is_err() {
            handed(&mut self.handed_error);
        }
        r
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.skip_ws();
        let r = if self.peek() == Some(b'n') {
            self.literal("null").and_then(|()| visitor.visit_none())
        } else {
            visitor.visit_some(&mut *self)
        };
        if r.is_err() {
            handed(&mut self.handed_error);
        }
        r
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> R<V::Value> {
        // serde_json's own types (a raw value) talk to it through special names.
        if name.starts_with("$serde_json") {
            self.handed_error = true;
            return Err(GiveUp);
        }
        let r = visitor.visit_newtype_struct(&mut *self);
        if r.is_err() {
            handed(&mut self.handed_error);
        }
        r
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.skip_ws();
        let r = match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.delegated_as(visitor, true),
            _ => Err(GiveUp),
        };
        if r.is_err() {
            handed(&mut self.handed_error);
        }
        r
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.skip_ws();
        let rest = self.text.as_bytes().get(self.pos..);
        let Some(len) = rest.and_then(json::text_value_len) else {
            self.handed_error = true;
            return Err(GiveUp);
        };
        self.pos += len;
        visitor.visit_unit()
    }

    give_up! {
        noted;
        deserialize_enum(_name: &'static str, _variants: &'static [&'static str]);
        deserialize_i128();
        deserialize_u128();
        deserialize_bytes();
        deserialize_byte_buf();
    }

    // serde_json reads each of these as `deserialize_any` would when the value is of the kind
    // it expects there, and fails otherwise (even where the visitor would take another kind).
    only_when! {
        deserialize_bool() if [b't' | b'f'];
        deserialize_i8() if [b'-' | b'0'..=b'9'];
        deserialize_i16() if [b'-' | b'0'..=b'9'];
        deserialize_i32() if [b'-' | b'0'..=b'9'];
        deserialize_i64() if [b'-' | b'0'..=b'9'];
        deserialize_u8() if [b'-' | b'0'..=b'9'];
        deserialize_u16() if [b'-' | b'0'..=b'9'];
        deserialize_u32() if [b'-' | b'0'..=b'9'];
        deserialize_u64() if [b'-' | b'0'..=b'9'];
        deserialize_f64() if [b'-' | b'0'..=b'9'];
        deserialize_char() if [b'"'];
        deserialize_str() if [b'"'];
        deserialize_string() if [b'"'];
        deserialize_identifier() if [b'"'];
        deserialize_unit() if [b'n'];
        deserialize_unit_struct(_name: &'static str) if [b'n'];
        deserialize_seq() if [b'['];
        deserialize_tuple(_len: usize) if [b'['];
        deserialize_tuple_struct(_name: &'static str, _len: usize) if [b'['];
        deserialize_map() if [b'{'];
        deserialize_struct(_name: &'static str, _fields: &'static [&'static str]) if [b'[' | b'{'];
    }
}

/// The items of an array or an object.
struct Items<'a, 'de> {
    de: &'a mut Fast<'de>,
    first: bool,
    /// `]` or `}`.
    close: u8,
}

impl Items<'_, '_> {
    /// Moves to the next item (over its comma): `false` at the closing bracket, which is left
    /// for the caller.
    #[inline]
    fn next(&mut self) -> R<bool> {
        self.de.skip_ws();
        match self.de.peek() {
            Some(b) if b == self.close => return Ok(false),
            Some(b',') if !self.first => self.de.pos += 1,
            Some(_) if self.first => self.first = false,
            _ => return Err(GiveUp),
        }
        self.de.skip_ws();
        // A comma before the closing bracket.
        if self.de.peek() == Some(self.close) {
            return Err(GiveUp);
        }
        Ok(true)
    }
}

impl<'de> Items<'_, 'de> {
    /// `r`, noting an error as handed to the type.
    #[inline(always)]
    fn handed<T>(&mut self, r: R<T>) -> R<T> {
        if r.is_err() {
            handed(&mut self.de.handed_error);
        }
        r
    }

    #[inline(always)]
    fn key<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        if !self.next()? {
            return Ok(None);
        }
        if self.de.peek() != Some(b'"') {
            return Err(GiveUp);
        }
        let key = self.de.string()?;
        seed.deserialize(Key(key)).map(Some)
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = GiveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        let r = match self.next() {
            Ok(true) => seed.deserialize(&mut *self.de).map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        self.handed(r)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = GiveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        let r = self.key(seed);
        self.handed(r)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        let r = match self.de.expect(b':') {
            Ok(()) => seed.deserialize(&mut *self.de),
            Err(e) => Err(e),
        };
        self.handed(r)
    }
}

/// A string value or key: borrowed from the text, or unescaped.
enum Str<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Str<'de> {
    /// Hands the string to `visitor`. serde_json hands an escaped string over as a passing
    /// `&str`; giving the `String` itself yields the same value from every visitor whose
    /// `visit_string` is its `visit_str` without the copy (serde's own all are).
    #[inline]
    fn visit<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self {
            Str::Borrowed(s) => visitor.visit_borrowed_str(s),
            Str::Owned(s) => visitor.visit_string(s),
        }
    }
}

/// The character of the escape after a backslash at `bytes[i..]`, and where the text goes on;
/// `GiveUp` on what serde_json refuses (an unknown escape, a bad `\u`, a lone surrogate).
fn unescape(bytes: &[u8], i: usize) -> R<(char, usize)> {
    let c = match bytes.get(i).ok_or(GiveUp)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let unit = hex4(bytes, i + 1)?;
            if !(0xD800..0xDC00).contains(&unit) {
                // A low surrogate alone is no char: given up.
                return char::from_u32(unit).map(|c| (c, i + 5)).ok_or(GiveUp);
            }
            if bytes.get(i + 5..i + 7) != Some(b"\\u".as_slice()) {
                return Err(GiveUp);
            }
            let low = hex4(bytes, i + 7)?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(GiveUp);
            }
            let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
            return char::from_u32(c).map(|c| (c, i + 11)).ok_or(GiveUp);
        }
        _ => return Err(GiveUp),
    };
    Ok((c, i + 1))
}

/// The four hex digits at `bytes[i..]`.
fn hex4(bytes: &[u8], i: usize) -> R<u32> {
    bytes
        .get(i..i + 4)
        .ok_or(GiveUp)?
        .iter()
        .try_fold(0u32, |n, &b| {
            char::from(b).to_digit(16).map(|d| n * 16 + d).ok_or(GiveUp)
        })
}

/// A key: serde_json hands keys to most types as strings (it also parses numbers and `true`
/// out of quoted keys for types that ask; those are left to it).
struct Key<'de>(Str<'de>);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.0.visit(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.0.visit(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.0.visit(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.0.visit(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.0.visit(visitor)
    }

    give_up! {
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(_name: &'static str);
        deserialize_newtype_struct(_name: &'static str);
        deserialize_seq();
        deserialize_tuple(_len: usize);
        deserialize_tuple_struct(_name: &'static str, _len: usize);
        deserialize_map();
        deserialize_struct(_name: &'static str, _fields: &'static [&'static str]);
        deserialize_enum(_name: &'static str, _variants: &'static [&'static str]);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;
    use serde::Deserialize;
    use serde_json::Value;

    use super::from_prefix;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Id {
        i: u64,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Event {
        i: u64,
        #[serde(rename = "type")]
        kind: String,
        user: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
        score: Option<f64>,
        delta: Option<i32>,
        flag: Option<bool>,
        inner: Option<Box<Event>>,
        extra: Option<Value>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        a: u8,
        b: Option<String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Flat {
        i: i64,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Untagged {
        Num(u64),
        Neg(i64),
        Text(String),
        Obj { i: u64 },
        List(Vec<Value>),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(tag = "type")]
    enum Tagged {
        #[serde(rename = "bench.event")]
        Bench { i: u64 },
        #[serde(rename = "x")]
        X,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum External {
        A,
        B(u32),
        C { x: i8 },
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Tuple(u8, String);

    /// Drops its inner type's error, as `.ok()` or a default-on-error adapter does.
    #[derive(Debug, PartialEq)]
    struct Lenient<T>(Option<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(Lenient(T::deserialize(d).ok()))
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Unit;

    /// serde_json's answer for the value at the start of `text`, as the read path asks it.
    fn serde_prefix<T: DeserializeOwned>(text: &str) -> Option<(serde_json::Result<T>, usize)> {
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<T>();
        values.next().map(|r| (r, values.byte_offset()))
    }

    /// Whenever the fast path answers, serde_json gives the same value and end; returns
    /// whether the fast path answered.
    fn agrees<T: DeserializeOwned + PartialEq + Debug>(text: &str) -> bool {
        let Some((fast, len)) = from_prefix::<T>(text) else {
            return false;
        };
        match serde_prefix::<T>(text) {
            Some((Ok(v), end)) => {
                assert_eq!(fast, v, "{} from {text:?}", std::any::type_name::<T>());
                assert_eq!(len, end, "{} from {text:?}", std::any::type_name::<T>());
            }
            other => panic!(
                "fast gave {fast:?} for {} from {text:?}, serde_json {other:?}",
                std::any::type_name::<T>()
            ),
        }
        true
    }

    /// Every type on one text; counts, by type, the texts the fast path answered for.
    fn all_types(text: &str, answered: &mut BTreeMap<&'static str, usize>) {
        macro_rules! each {
            ($($t:ty),* $(,)?) => {
                $(*answered.entry(stringify!($t)).or_default() += usize::from(agrees::<$t>(text));)*
            };
        }
        each!(
            Id,
            Event,
            Strict,
            Flat,
            Untagged,
            Tagged,
            External,
            Tuple,
            Unit,
            Value,
            Vec<Value>,
            HashMap<String, u8>,
            HashMap<u32, Value>,
            Option<i32>,
            (u8, String),
            String,
            char,
            bool,
            (),
            i8,
            u16,
            i64,
            u64,
            f32,
            f64,
            Vec<u8>,
            Box<str>,
            Lenient<External>,
            Vec<Lenient<Vec<u64>>>,
            Lenient<Id>,
        );
    }

    #[test]
    fn a_value_built_past_a_dropped_error_is_left_to_serde_json() {
        // The fast path gives up on an externally tagged enum; a type that drops that error
        // must not be answered with `None` at a position inside the value.
        assert!(!agrees::<Lenient<External>>(r#""A""#));
        assert_eq!(
            serde_json::from_str::<Lenient<External>>(r#""A""#).unwrap(),
            Lenient(Some(External::A))
        );
        assert!(!agrees::<Vec<Lenient<Vec<u64>>>>("[[1,],2]"));
        assert!(!agrees::<Lenient<Id>>(r#"{"i":-1}"#));
        // Without an error the same types are still answered.
        assert!(agrees::<Lenient<Id>>(r#"{"i":1}"#));
        assert!(agrees::<Vec<Lenient<Vec<u64>>>>("[[1],[2,3]]"));
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        let cases: &[&str] = &[
            r#"{"i":1,"type":"bench.event","user":"u1","p":"xxxx"}"#,
            r#"{"i":1,"type":"bench.event","user":"u1","p":"xxxx"},{"i":2}"#,
            r#"{ "i" : 7 , "type" : "x" , "tags" : [ "a" , "b" ] }  ,"#,
            r#"{"i":1,"type":"a\"b","user":null,"score":1.5,"delta":-3,"flag":true}"#,
            r#"{"i":1,"type":"é😀","inner":{"i":2,"type":"y"},"extra":[1,{"k":null}]}"#,
            r#"{"i":1,"type":"t","score":-0,"delta":-0}"#,
            r#"{"i":1,"type":"t","score":1e3,"delta":2147483648}"#,
            r#"{"i":18446744073709551615,"type":"t"}"#,
            r#"{"i":18446744073709551616,"type":"t"}"#,
            r#"{"i":1,"i":2,"type":"t"}"#,
            r#"{"i":1,"type":"t",}"#,
            r#"{"i":1,"type":"t"]"#,
            r#"{"i":01,"type":"t"}"#,
            r#"{"a":1,"b":"x"}"#,
            r#"{"a":1,"b":"x","c":2}"#,
            r#"{"a":300}"#,
            r#"{"type":"bench.event","i":5}"#,
            r#"{"type":"x"}"#,
            r#"{"type":"y"}"#,
            r#""A""#,
            r#"{"B":5}"#,
            r#"{"C":{"x":-1}}"#,
            r#"[3,"three"]"#,
            r#"[3,"three",]"#,
            r#"[3 "three"]"#,
            r#"[]"#,
            r#"[ ]"#,
            r#"[1,2,3]"#,
            r#"{"1":{"a":[]},"2":null}"#,
            r#"{"k":1,"l":255,"m":256}"#,
            r#"{"k\u0041":1}"#,
            r#""plain""#,
            r#""esc\n\t\\\/\u00e9\ud83d\ude00""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud83dx""#,
            r#""\ud83d\u0041""#,
            r#""\ud83d\ude00\ud83d""#,
            r#""\u00E9\u00e9\u0000""#,
            r#""\x41""#,
            r#""\u12G4""#,
            r#""\u12""#,
            r#""ab\""#,
            r#""\"""#,
            r#""a\\""#,
            r#""\/\b\f\r""#,
            "\"a\\n\tb\"",
            r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nxxxxxxxxxxxxxxxxxxxxxxx\"xxxxxxxxxxxxxxxxxxxx\\""#,
            r#"{"\u0069":3,"type":"t"}"#,
            r#"{"i":1,"t\u0079pe":"\n"}"#,
            r#"{"\u0061":1,"b":"x"}"#,
            r#"{"\u0061":1,"b":"x","\u0063":2}"#,
            r#""a"#,
            r#""ab""#,
            "\"tab\there\"",
            "\"line\nbreak\"",
            "null",
            "nul",
            "true",
            "false",
            "truex",
            "0",
            "-0",
            "-",
            "12",
            "-12",
            "127",
            "128",
            "-128",
            "-129",
            "65535",
            "65536",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "1.5",
            "1.",
            ".5",
            "1e5",
            "1E+5",
            "1e-5",
            "1e400",
            "-1e-400",
            "0.1",
            "12x",
            "12,",
            "12]",
            "12 ",
            "12\"",
            "12:",
            "12}",
            "1.5e3,",
            "[1,[2,[3,[4]]]]",
            "{}",
            "{ }",
            r#"{"":""}"#,
            "  {\"i\":3}",
            "\n[1]\r\n",
            "[\"x\",",
            "{\"i\":1",
            "{\"i\"",
            "{\"i\":",
            "[1,2",
            "[\u{1}]",
            r#"{"i":1,"type":"t","tags":["a","b\u0000"]}"#,
        ];
        let mut answered = BTreeMap::new();
        for c in cases {
            all_types(c, &mut answered);
        }
        // The fast path does answer for the common shapes (so these checks compare something).
        for (name, min) in [
            ("Id", 10),
            ("Event", 5),
            ("Value", 50),
            ("Untagged", 20),
            ("u64", 8),
        ] {
            assert!(answered[name] >= min, "{name}: {answered:?}");
        }
    }

    const STRINGS: &[&str] = &[
        "\"bench.event\"",
        "\"u7\"",
        "\"\"",
        "\"a\\\"b\"",
        "\"\\u00e9t\\u00e9\"",
        "\"é\"",
        "\"tab\\t\"",
        "\"\\ud83d\\ude00\"",
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        "\"x\\\\y\\/\"",
        "\"\\u0041\\u00E9z\\u0000\"",
        "\"\\ud83dx\"",
        "\"\\udc00\"",
        "\"Hello, \\\"world\\\"!\\nThe next line\\twith a tab, caf\\u00e9 and a longer tail\"",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "42",
        "-7",
        "-0",
        "255",
        "256",
        "-129",
        "1.5",
        "-2.5e3",
        "1e400",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775809",
        "123456789012345678",
    ];
    const KEYS: &[&str] = &[
        "i",
        "type",
        "user",
        "p",
        "tags",
        "score",
        "delta",
        "flag",
        "inner",
        "extra",
        "k\\u0041",
        "a",
        "b",
        "\\u0069",
        "typ\\u0065",
    ];

    /// Random JSON of the benchmark's shape (xorshift; the same documents every run).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.next(from.len() as u64) as usize]
        }

        fn value(&mut self, depth: u32) -> String {
            match self.next(if depth > 3 { 4 } else { 7 }) {
                0 | 1 => self.pick(STRINGS).to_owned(),
                2 | 3 => self.pick(NUMBERS).to_owned(),
                4 => self.pick(&["true", "false", "null"]).to_owned(),
                5 => {
                    let items: Vec<String> =
                        (0..self.next(4)).map(|_| self.value(depth + 1)).collect();
                    format!("[{}]", items.join(","))
                }
                _ => self.object(depth + 1),
            }
        }

        fn object(&mut self, depth: u32) -> String {
            let mut parts = Vec::new();
            if self.next(4) != 0 {
                parts.push(format!("\"i\":{}", self.pick(NUMBERS)));
            }
            if self.next(4) != 0 {
                parts.push(format!("\"type\":{}", self.pick(STRINGS)));
            }
            for _ in 0..self.next(5) {
                let k = self.pick(KEYS);
                parts.push(format!("\"{k}\":{}", self.value(depth)));
            }
            let sep = self.pick(&[",", " , ", ",\n"]);
            format!("{{{}}}", parts.join(sep))
        }
    }

    /// Random documents built from the benchmark's shape, with the usual perturbations:
    /// escapes, floats, big and negative numbers, whitespace, nesting, missing, extra and
    /// repeated keys, wrong types, truncation and junk after the value.
    #[test]
    fn agrees_with_serde_json_on_random_documents() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let mut answered = BTreeMap::new();
        for _ in 0..20_000 {
            let mut doc = if g.next(5) == 0 {
                g.value(0)
            } else {
                g.object(0)
            };
            match g.next(8) {
                0 => {
                    let mut at = g.next(doc.len() as u64 + 1) as usize;
                    while !doc.is_char_boundary(at) {
                        at -= 1;
                    }
                    doc.truncate(at);
                }
                1 => doc.push_str(g.pick(&["x", ",", "]", " ", "1", "\"", ",{\"i\":1}"])),
                _ => {}
            }
            all_types(&doc, &mut answered);
        }
        for (name, min) in [
            ("Id", 2_000),
            ("Event", 500),
            ("Value", 10_000),
            ("Flat", 1_000),
            ("Untagged", 1_000),
        ] {
            assert!(answered[name] >= min, "{name}: {answered:?}");
        }
    }

    /// Time per message of typed reads of chat-like messages with escapes, this deserializer
    /// against serde_json alone (BENCHMARKS.md, round 14):
    /// `cargo test --release -p durable-streams-client --lib escaped_read_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn escaped_read_cost() {
        #[derive(Deserialize, PartialEq, Debug)]
        struct Token {
            i: u64,
            text: String,
        }
        let msgs: Vec<String> = (0..200_000)
            .map(|i| {
                format!(
                    r#"{{"i":{i},"type":"token","text":"Hello, \"world\" {i}!\nThe next line\twith a tab, caf\u00e9 and \\ a backslash"}}"#
                )
            })
            .collect();
        for round in 0..3 {
            let t = std::time::Instant::now();
            let theirs: Vec<Token> = msgs
                .iter()
                .map(|m| serde_json::from_str(m).expect("valid"))
                .collect();
            let serde = t.elapsed().as_nanos() as f64 / msgs.len() as f64;
            let t = std::time::Instant::now();
            let ours: Vec<Token> = msgs
                .iter()
                .map(|m| from_prefix(m).expect("answered").0)
                .collect();
            let fast = t.elapsed().as_nanos() as f64 / msgs.len() as f64;
            assert_eq!(ours, theirs);
            println!("round {round}: serde_json {serde:.1} ns/msg, fast_de {fast:.1} ns/msg");
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        let deep = format!("{}1{}", "[".repeat(150), "]".repeat(150));
        assert!(from_prefix::<Value>(&deep).is_none());
        assert!(serde_prefix::<Value>(&deep).is_some_and(|(r, _)| r.is_err()));
        let ok = format!("{}1{}", "[".repeat(90), "]".repeat(90));
        assert!(agrees::<Value>(&ok));
        // Ignored values are skipped at any depth, as serde_json skips them.
        let ignored = format!("{{\"i\":1,\"x\":{}1{}}}", "[".repeat(300), "]".repeat(300));
        assert!(agrees::<Id>(&ignored));
    }

    #[test]
    fn string_at_borrows_plain_strings_and_unescapes_the_others() {
        use std::borrow::Cow;

        use super::string_at;

        let text = r#"{"key": "plain", "esc": "a\n\"b\u00e9\ud83d\ude00", "bad": "\ud800"}"#;
        let at = |needle: &str| text.find(needle).expect("in text");
        let (key, end) = string_at(text, 1).expect("a key");
        assert!(matches!(key, Cow::Borrowed("key")));
        assert_eq!(text.as_bytes()[end], b':');
        let (plain, end) = string_at(text, at("\"plain")).expect("plain");
        assert!(matches!(plain, Cow::Borrowed("plain")));
        assert_eq!(&text[end..end + 1], ",");
        let (esc, end) = string_at(text, at("\"a\\n")).expect("escaped");
        assert!(matches!(&esc, Cow::Owned(s) if s == "a\n\"b\u{e9}\u{1f600}"));
        assert_eq!(&text[end..end + 1], ",");
        // What serde_json refuses: a lone surrogate, a control character, no end.
        assert!(string_at(text, at("\"\\ud800")).is_none());
        assert!(string_at("\"a\tb\"", 0).is_none());
        assert!(string_at("\"open", 0).is_none());
    }
}
