//! JSON messages straight into Python values, as `json.loads` would build them.
//!
//! The core hands a JSON read over as JSON array texts (one per response, checked). Turning a
//! text into a Python `str` and parsing it with `json.loads` copied every message twice and
//! left the parse to CPython's scanner, which looks up every key in a memo dict. Here each text
//! is read once and its values are built directly: plain strings are made from their UTF-8
//! bytes, integers of up to 64 bits from their digits, floats with Rust's correctly rounded
//! parse (as Python's `float()`, which `json.loads` uses, is), and object keys come from a small
//! per-read cache of strings (short string values from another: a value repeated across
//! messages is one `str`). Keys are not interned: `json.loads` does not intern them either, and
//! CPython 3.12 before 3.12.6 made every interned string immortal, so a stream whose keys are
//! data (an id per message) would have kept each of them for the life of the process. A text
//! whose values are all integers of 32 bits (a picked id or counter) is read by the core's
//! `JsonNumbers`, eight digits at a time.
//!
//! The result must be exactly what `json.loads` gives, so anything this reader is not sure
//! about (a lone surrogate, `NaN` or `Infinity`, an integer beyond 64 bits, deep nesting,
//! a control character, any syntax error) makes it give up on that text, and the text goes to
//! `json.loads` itself, whose result or error is then the answer.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use durable_streams_client::{json_string_at, JsonNumbers};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};

/// The JSON messages of one batch or read, as the core's JSON array texts.
pub(crate) struct Messages(pub(crate) Vec<String>);

impl Messages {
    /// One list of the messages of every text, each text released once read, and how many
    /// texts were left to `json.loads`.
    pub(crate) fn build(self, py: Python<'_>) -> PyResult<(Bound<'_, PyList>, usize)> {
        let mut list = ListBuilder::new(py);
        list.add(py, self.0)?;
        Ok((list.list.into_bound(py), list.given_up))
    }
}

impl<'py> IntoPyObject<'py> for Messages {
    type Target = PyList;
    type Output = Bound<'py, PyList>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        Ok(self.build(py)?.0)
    }
}

/// Once taking the GIL has made a read wait, texts of at least this many bytes are built at
/// once by [`ListBuilder::take`].
const WAITED_BUILD_BYTES: usize = 64 << 20;

/// The list of a read's messages, built text by text while the read goes on (see
/// [`ListBuilder::take`]): the texts of the whole read are never held at once.
pub(crate) struct ListBuilder {
    /// The result. Values go straight into it: a vector of them first, then the list, wrote
    /// every pointer twice (8 MiB more touched per million messages).
    list: Py<PyList>,
    keys: Keys,
    values: Values,
    given_up: usize,
    /// Texts handed over and not built yet, their bytes, and how many bytes of texts wait
    /// to be built at once (none at first: each batch is built as it comes, in memory just
    /// written; 64 MiB once another thread holding the GIL has made the read wait for it).
    pending: Vec<String>,
    pending_bytes: usize,
    build_bytes: usize,
    /// What stopped the build (only from [`take`](Self::take)), raised when the read returns.
    failed: Option<PyErr>,
}

impl ListBuilder {
    pub(crate) fn new(py: Python<'_>) -> Self {
        Self {
            list: PyList::empty(py).unbind(),
            keys: Keys::new(),
            values: Values::new(),
            given_up: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            build_bytes: 0,
            failed: None,
        }
    }

    /// Adds the messages of `texts`, each text released once read.
    fn add(&mut self, py: Python<'_>, texts: impl IntoIterator<Item = String>) -> PyResult<()> {
        let out = self.list.bind(py);
        for text in texts {
            // A text of small integers only (a picked id or counter): read 8 bytes at a time
            // by the core, without the reader's per-value dispatch.
            if let Some(ints) = JsonNumbers::parse_int_array(&text) {
                drop(text);
                for v in ints {
                    out.append(v)?;
                }
                continue;
            }
            let mark = out.len();
            let mut reader = Reader {
                py,
                text: &text,
                pos: 0,
                depth: 0,
                keys: &mut self.keys,
                values: &mut self.values,
            };
            if reader.array_into(&mut &*out).is_err() {
                out.del_slice(mark, out.len())?;
                self.given_up += 1;
                loads_into(py, &text, out)?;
            }
        }
        Ok(())
    }

    /// Takes the texts of a batch on the read's own thread (the GIL released: the caller's in
    /// a blocking read, a runtime thread in an async one) and builds their values, taking the
    /// GIL for it. When that had to wait (the event loop or another thread running Python: up
    /// to its switch interval, 5 ms, each time), texts are gathered from then on to build 64
    /// MiB or more at once: as few waits as building everything at the end, with less held. A
    /// Python error stops the read and is kept for [`IntoPyObject`].
    pub(crate) fn take(&mut self, texts: Vec<String>) -> ControlFlow<()> {
        self.pending_bytes = texts
            .iter()
            .fold(self.pending_bytes, |n, t| n.saturating_add(t.len()));
        self.pending.extend(texts);
        if self.pending_bytes < self.build_bytes {
            return ControlFlow::Continue(());
        }
        let texts = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let asked = Instant::now();
        // On a runtime thread (an async read), not once the interpreter has begun to exit.
        let built = crate::runtime::attach(|py| {
            if asked.elapsed() >= Duration::from_millis(1) {
                self.build_bytes = WAITED_BUILD_BYTES;
            }
            self.add(py, texts)
        })
        .unwrap_or_else(|| {
            Err(PyRuntimeError::new_err(
                "durable_streams_client: the interpreter is exiting; the read was stopped",
            ))
        });
        match built {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.failed = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

impl<'py> IntoPyObject<'py> for ListBuilder {
    type Target = PyList;
    type Output = Bound<'py, PyList>;
    type Error = PyErr;

    /// The list, once the texts still pending are built.
    fn into_pyobject(mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let texts = std::mem::take(&mut self.pending);
        self.add(py, texts)?;
        Ok(self.list.into_bound(py))
    }
}

/// The messages of JSON array texts as a read gives them, and how many texts were left to
/// `json.loads` (for the differential test, tests/test_json_messages.py).
#[pyfunction]
pub(crate) fn _json_messages(
    py: Python<'_>,
    texts: Vec<String>,
) -> PyResult<(Bound<'_, PyList>, usize)> {
    Messages(texts).build(py)
}

/// `json.loads(text)`, whose items are added to `out` (the core checked that the text is an
/// array; anything else is reported, not iterated).
fn loads_into<'py>(py: Python<'py>, text: &str, out: &Bound<'py, PyList>) -> PyResult<()> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let loads = LOADS.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("json")?.getattr("loads")?.unbind())
    })?;
    let value = loads.bind(py).call1((text,))?;
    let list = value.cast_into::<PyList>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "durable_streams_client: a JSON batch was not a JSON array",
        )
    })?;
    for item in list.iter() {
        out.append(item)?;
    }
    Ok(())
}

/// Gave up: `json.loads` decides.
struct GiveUp;

type R<T> = Result<T, GiveUp>;

impl From<PyErr> for GiveUp {
    fn from(_: PyErr) -> Self {
        // A Python error while building (memory): json.loads meets it again and reports it.
        GiveUp
    }
}

/// Containers deeper than this are left to `json.loads`.
const MAX_DEPTH: u32 = 64;

/// Keys longer than this are not cached.
const MAX_CACHED_KEY: usize = 64;

/// Object keys seen in this read: the same key is one `str`, whose hash is computed once.
/// Direct-mapped; a collision replaces the entry. The strings are plain, not interned (see the
/// module's note), so they live only as long as something holds them.
struct Keys {
    slots: Vec<Slot>,
}

/// A key's bytes and its string.
type Slot = Option<(Box<[u8]>, Py<PyString>)>;

const KEY_SLOTS: usize = 256;

impl Keys {
    fn new() -> Self {
        Keys {
            slots: (0..KEY_SLOTS).map(|_| None).collect(),
        }
    }

    fn get<'py>(&mut self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        let b = key.as_bytes();
        let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
            return PyString::new(py, key);
        };
        let h = b.len().wrapping_mul(31) ^ usize::from(first).wrapping_mul(7) ^ usize::from(last);
        let slot = &mut self.slots[h % KEY_SLOTS];
        if let Some((k, s)) = slot {
            if **k == *b {
                return s.bind(py).clone();
            }
        }
        let s = PyString::new(py, key);
        *slot = Some((b.into(), s.clone().unbind()));
        s
    }
}

/// String values longer than this (in UTF-8) are not cached.
const MAX_CACHED_VALUE: usize = 24;

const VALUE_SLOTS: usize = 1024;

/// Short string values seen in this read: the same text is one `str`. Event types, roles,
/// names and short tokens repeat from message to message; sharing an immutable `str` changes
/// nothing a program sees but its identity, and saves a string object (50 bytes or more) each
/// time. Direct-mapped on a hash of the text; a miss replaces the entry.
struct Values {
    slots: Vec<Option<ValueSlot>>,
}

struct ValueSlot {
    /// The text, zero-padded, and its length.
    text: [u8; MAX_CACHED_VALUE],
    len: usize,
    s: Py<PyString>,
}

impl Values {
    fn new() -> Self {
        Values {
            slots: (0..VALUE_SLOTS).map(|_| None).collect(),
        }
    }

    /// The string of `v`, which is at most [`MAX_CACHED_VALUE`] bytes.
    fn get<'py>(&mut self, py: Python<'py>, v: &str) -> Bound<'py, PyString> {
        let b = v.as_bytes();
        let mut text = [0u8; MAX_CACHED_VALUE];
        let Some(head) = text.get_mut(..b.len()) else {
            return PyString::new(py, v);
        };
        head.copy_from_slice(b);
        let h = text.as_chunks::<8>().0.iter().fold(b.len() as u64, |h, w| {
            (h ^ u64::from_le_bytes(*w)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        // The top bits of the product mix every byte in.
        let slot = &mut self.slots[(h >> 54) as usize % VALUE_SLOTS];
        if let Some(e) = slot {
            if e.len == b.len() && e.text == text {
                return e.s.bind(py).clone();
            }
        }
        let s = PyString::new(py, v);
        *slot = Some(ValueSlot {
            text,
            len: b.len(),
            s: s.clone().unbind(),
        });
        s
    }
}

/// Where an array's items go: a vector (nested arrays, made into a list once complete) or the
/// list of all messages.
trait Items<'py> {
    fn push(&mut self, item: Bound<'py, PyAny>) -> R<()>;
}

impl<'py> Items<'py> for Vec<Bound<'py, PyAny>> {
    #[inline]
    fn push(&mut self, item: Bound<'py, PyAny>) -> R<()> {
        Vec::push(self, item);
        Ok(())
    }
}

impl<'py> Items<'py> for &Bound<'py, PyList> {
    #[inline]
    fn push(&mut self, item: Bound<'py, PyAny>) -> R<()> {
        Ok(self.append(item)?)
    }
}

struct Reader<'a, 'py> {
    py: Python<'py>,
    text: &'a str,
    pos: usize,
    depth: u32,
    keys: &'a mut Keys,
    values: &'a mut Values,
}

impl<'py> Reader<'_, 'py> {
    /// The first byte after whitespace (JSON's four), where `pos` now is.
    #[inline]
    fn token(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
        bytes.get(self.pos).copied()
    }

    /// Whitespace, then `b`, which is consumed.
    #[inline]
    fn consume(&mut self, b: u8) -> R<()> {
        if self.token() != Some(b) {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(())
    }

    /// The top-level array, whose items are added to `out`, and nothing but whitespace after.
    fn array_into(&mut self, out: &mut impl Items<'py>) -> R<()> {
        self.consume(b'[')?;
        self.items(out)?;
        match self.token() {
            None => Ok(()),
            Some(_) => Err(GiveUp),
        }
    }

    /// An array's items after its `[`, and its `]`.
    fn items(&mut self, out: &mut impl Items<'py>) -> R<()> {
        if self.token() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            out.push(self.value()?)?;
            match self.token() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    fn value(&mut self) -> R<Bound<'py, PyAny>> {
        let py = self.py;
        match self.token().ok_or(GiveUp)? {
            b'"' => Ok(self.string(false)?.into_any()),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", || PyBool::new(py, true).to_owned().into_any()),
            b'f' => self.literal("false", || PyBool::new(py, false).to_owned().into_any()),
            b'n' => self.literal("null", || py.None().into_bound(py)),
            b'[' => {
                self.enter()?;
                let mut items = Vec::new();
                self.items(&mut items)?;
                self.depth -= 1;
                Ok(PyList::new(py, items)?.into_any())
            }
            b'{' => {
                self.enter()?;
                let dict = self.object()?;
                self.depth -= 1;
                Ok(dict.into_any())
            }
            _ => Err(GiveUp),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        self.pos += 1;
        if self.depth > MAX_DEPTH {
            Err(GiveUp)
        } else {
            Ok(())
        }
    }

    /// An object's members after its `{`, and its `}`. A key given twice keeps its last value,
    /// as in `json.loads`.
    fn object(&mut self) -> R<Bound<'py, PyDict>> {
        let dict = PyDict::new(self.py);
        if self.token() == Some(b'}') {
            self.pos += 1;
            return Ok(dict);
        }
        loop {
            if self.token() != Some(b'"') {
                return Err(GiveUp);
            }
            let key = self.string(true)?;
            self.consume(b':')?;
            let value = self.value()?;
            dict.set_item(key, value)?;
            match self.token() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(dict);
                }
                _ => return Err(GiveUp),
            }
        }
    }

    fn literal(
        &mut self,
        word: &str,
        make: impl FnOnce() -> Bound<'py, PyAny>,
    ) -> R<Bound<'py, PyAny>> {
        let end = self.pos + word.len();
        if self.text.as_bytes().get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(make())
        } else {
            Err(GiveUp)
        }
    }

    /// The string whose opening quote is at `pos` (read by the core, which also unescapes it);
    /// a key without escapes comes from the cache.
    fn string(&mut self, key: bool) -> R<Bound<'py, PyString>> {
        let (s, end) = json_string_at(self.text, self.pos).ok_or(GiveUp)?;
        self.pos = end;
        Ok(match s {
            Cow::Borrowed(s) if key && s.len() <= MAX_CACHED_KEY => self.keys.get(self.py, s),
            Cow::Borrowed(s) if !key && s.len() <= MAX_CACHED_VALUE => self.values.get(self.py, s),
            s => PyString::new(self.py, &s),
        })
    }

    /// A number, as `json.loads` reads it: an integer (given up on beyond 64 bits, sign apart)
    /// or a float (Rust's parse and Python's `float()` both round correctly).
    fn number(&mut self) -> R<Bound<'py, PyAny>> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let negative = bytes.get(start) == Some(&b'-');
        let int_start = start + usize::from(negative);
        let mut i = int_start;
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = bytes.get(i) {
                    i += 1;
                }
            }
            // `-Infinity`, or not a number.
            _ => return Err(GiveUp),
        }
        let int_end = i;
        let mut float = false;
        if bytes.get(i) == Some(&b'.') && matches!(bytes.get(i + 1), Some(b'0'..=b'9')) {
            i += 1;
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            let mut j = i + 1;
            if let Some(b'+' | b'-') = bytes.get(j) {
                j += 1;
            }
            if matches!(bytes.get(j), Some(b'0'..=b'9')) {
                while let Some(b'0'..=b'9') = bytes.get(j) {
                    j += 1;
                }
                i = j;
                float = true;
            }
        }
        self.pos = i;
        if float {
            let v: f64 = self
                .text
                .get(start..i)
                .ok_or(GiveUp)?
                .parse()
                .map_err(|_| GiveUp)?;
            return Ok(PyFloat::new(self.py, v).into_any());
        }
        let digits = bytes.get(int_start..int_end).ok_or(GiveUp)?;
        let n = digits.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(GiveUp)
        })?;
        if !negative {
            let Ok(v) = n.into_pyobject(self.py);
            return Ok(v.into_any());
        }
        let Ok(v) = match i64::try_from(n) {
            Ok(v) => (-v).into_pyobject(self.py).map(Bound::into_any),
            Err(_) => (-i128::from(n)).into_pyobject(self.py).map(Bound::into_any),
        };
        Ok(v)
    }
}
