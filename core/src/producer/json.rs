//! A strict single-pass check that a message is exactly one JSON value (RFC 8259).
//!
//! It builds nothing, parses no numbers and says only yes or no (the caller asks serde_json
//! for a detailed message about a refused one): one scan over the bytes with a bit stack for the
//! open containers. It accepts what `serde_json::from_slice::<IgnoredAny>` accepts (the check
//! it replaces), except that it also requires valid UTF-8 (serde_json's `IgnoredAny` skips
//! string contents unchecked), checked with one `std::str::from_utf8` pass only when a byte
//! outside ASCII was seen. Lone `\u` surrogates are accepted, as serde_json does. Where strings
//! end is found from masks of the bytes that need a look (`"`, `\`, control characters) worked
//! out 64 bytes at a time (SSE2 on x86-64, part of every x86-64 CPU; eight bytes a step
//! elsewhere), so that finding a string's end is a shift and a bit count, not a load and compare
//! waiting on where the string before ended. After a value, whitespace is looked for only when
//! the next byte is not a comma or a closing bracket.

/// Byte classes inside a string: 0 plain, 1 needs a look (`"`, `\`, control characters).
static STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Open containers: one bit per level (1 = object), the first 64 levels inline.
struct Stack {
    depth: usize,
    bits: u64,
    more: Vec<u64>,
}

impl Stack {
    #[inline]
    fn push(&mut self, object: bool) {
        let word = self.depth / 64;
        let bit = 1u64 << (self.depth % 64);
        let w = if word == 0 {
            &mut self.bits
        } else {
            if self.more.len() < word {
                self.more.push(0);
            }
            &mut self.more[word - 1]
        };
        if object {
            *w |= bit;
        } else {
            *w &= !bit;
        }
        self.depth += 1;
    }

    /// The innermost container: `Some(true)` for an object, `None` at the top level.
    #[inline]
    fn top(&self) -> Option<bool> {
        let d = self.depth.checked_sub(1)?;
        let word = d / 64;
        let w = if word == 0 {
            self.bits
        } else {
            self.more.get(word - 1).copied().unwrap_or(0)
        };
        Some(w & (1u64 << (d % 64)) != 0)
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of the bytes of `x` (little endian) that may be a `"`, a `\\` or a control
/// character; the lowest set one is exact. Bytes >= 0x80 are never flagged.
#[inline]
fn look_mask(x: u64) -> u64 {
    let ascii = !x & HIGHS;
    let control = x.wrapping_sub(ONES * 0x20);
    let q = x ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES);
    let b = x ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES);
    (control | quote & !q | backslash & !b) & ascii
}

#[inline(always)]
pub(crate) fn skip_ws(data: &[u8], mut i: usize) -> usize {
    // Compact JSON has no whitespace: one comparison says so.
    while let Some(&b) = data.get(i) {
        if b > b' ' || !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

/// Moves `i` over plain string bytes (neither `"`, `\\` nor a control character) to the first
/// byte that needs a look, or to the end of `data`.
#[inline(always)]
fn skip_plain_bytes(data: &[u8], mut i: usize, seen: &mut u64) -> usize {
    // Plain bytes, the common case: sixteen at a time while sixteen remain (x86-64), then
    // eight at a time, up to the first one that needs a look (the lowest flagged byte is
    // exact: false positives only lie above a true one).
    #[cfg(target_arch = "x86_64")]
    let found = sse2::skip_plain(data, &mut i, seen);
    #[cfg(not(target_arch = "x86_64"))]
    let found = false;
    if !found {
        loop {
            let Some(chunk) = data.get(i..i + 8) else {
                // The last few bytes of the message, one at a time.
                while let Some(&b) = data.get(i) {
                    if STRING_SPECIAL[b as usize] {
                        break;
                    }
                    *seen |= u64::from(b);
                    i += 1;
                }
                break;
            };
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            // Bytes past the string's end may count here: that only costs a UTF-8 pass.
            *seen |= x;
            let look = look_mask(x);
            if look != 0 {
                i += (look.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
    }
    i
}

/// For `data` inside a string: where the run of plain bytes from `from` ends, at the first
/// `"`, `\\` or control character, or at the end of `data`. UTF-8 is not checked: the caller's
/// text is.
#[inline]
pub(crate) fn plain_run_end(data: &[u8], from: usize) -> usize {
    let mut seen = 0;
    skip_plain_bytes(data, from, &mut seen)
}

#[inline(always)]
fn scan_string_body(data: &[u8], mut i: usize, seen: &mut u64) -> Option<usize> {
    loop {
        i = skip_plain_bytes(data, i, seen);
        let b = data.get(i);
        if b == Some(&b'"') {
            return Some(i + 1);
        }
        match b {
            Some(b'\\') => i = escape_end(data, i)?,
            Some(_) => return None,
            None => return None,
        }
    }
}

/// For the backslash at `data[i]` inside a string: the index after its escape, when valid.
#[inline]
fn escape_end(data: &[u8], i: usize) -> Option<usize> {
    match data.get(i + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 2),
        b'u' => {
            let hex = data.get(i + 2..i + 6)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 6)
        }
        _ => None,
    }
}

/// The bytes of `data` that need a look inside a string (`"`, `\\`, control characters), 64
/// at a time: a mask worked out once per 64 bytes, in which each string's end is then found
/// with a shift and a bit count. (Looking from each string's start instead chains a load and
/// a compare behind the end of the string before, for every string.)
struct Looks<'a> {
    data: &'a [u8],
    block: Block,
    /// Whether a byte of 0x80 or above was in the blocks looked at for this value, from where
    /// it starts (also outside strings, and past its end: then its UTF-8 is checked for
    /// nothing).
    high: bool,
}

/// The masks of one 64-byte block of a text: kept by a reader between the objects of one piece
/// of a body, whose blocks overlap (see [`object_members_in`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    /// Where the block starts in the text.
    base: usize,
    /// Bit `k`: byte `base + k` needs a look, or lies past the end of the text.
    look: u64,
    /// Bit `k`: byte `base + k` is 0x80 or above.
    high: u64,
}

impl Block {
    /// No block: the first look loads one (`i - base` wraps to `i + 64` for every index).
    pub(crate) const NONE: Block = Block {
        base: usize::MAX - 63,
        look: 0,
        high: 0,
    };
}

impl<'a> Looks<'a> {
    /// No block yet: the first look loads one.
    #[inline(always)]
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            block: Block::NONE,
            high: false,
        }
    }

    /// Goes on with `block`, a block of the same `data`, for a value that starts at `start`.
    /// A block that does not hold `start` is dropped: one that begins after it (a scan that
    /// failed may have looked past where the next value starts) holds bytes of this value
    /// whose high bits were never counted for it.
    #[inline(always)]
    fn resume(data: &'a [u8], block: Block, start: usize) -> Self {
        let off = start.wrapping_sub(block.base);
        if off >= 64 {
            return Self::new(data);
        }
        Self {
            data,
            block,
            // Bytes above 0x80 from `start` on in the block count for this value.
            high: block.high >> off != 0,
        }
    }

    #[inline(always)]
    fn load(&mut self, at: usize) {
        let len = self.data.len();
        let whole = |from: usize| -> Option<&[u8; 64]> {
            self.data.get(from..from.checked_add(64)?)?.try_into().ok()
        };
        let (look, high) = match whole(at) {
            Some(chunk) => look64(chunk),
            None => match len
                .checked_sub(64)
                .and_then(|from| Some((from, whole(from)?)))
            {
                // Fewer than 64 bytes left of 64 or more: the last 64, those before `at`
                // shifted out (`from < at`, so the shift is 1..=63 bits) and the places past
                // the end flagged.
                Some((from, last)) if from < at => {
                    let (look, high) = look64(last);
                    let shift = (at - from) as u32;
                    ((look >> shift) | (u64::MAX << (64 - shift)), high >> shift)
                }
                // A text shorter than 64 bytes: its bytes, then NULs (control characters, so
                // flagged).
                _ => {
                    let mut block = [0u8; 64];
                    let rest = self.data.get(at..).unwrap_or(&[]);
                    if let Some(head) = block.get_mut(..rest.len()) {
                        head.copy_from_slice(rest);
                    }
                    look64(&block)
                }
            },
        };
        self.block = Block {
            base: at,
            look,
            high,
        };
        self.high |= high != 0;
    }

    /// The first index from `i` (not before the block's start) that needs a look; `data.len()`
    /// or more when there is none.
    #[inline(always)]
    fn next(&mut self, mut i: usize) -> usize {
        loop {
            let off = i.wrapping_sub(self.block.base);
            if off < 64 {
                let m = self.block.look >> off;
                if m != 0 {
                    return i + m.trailing_zeros() as usize;
                }
                i = self.block.base + 64;
            }
            if i >= self.data.len() {
                return i;
            }
            self.load(i);
        }
    }

    /// Scans a string whose opening quote is at `i - 1`: the index after its closing quote,
    /// and whether it holds an escape.
    #[inline(always)]
    fn string(&mut self, mut i: usize) -> Option<(usize, bool)> {
        let mut escaped = false;
        loop {
            let at = self.next(i);
            match self.data.get(at)? {
                b'"' => return Some((at + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    i = escape_end(self.data, at)?;
                }
                _ => return None,
            }
        }
    }
}

/// For 64 bytes: bit `k` set where byte `k` is a `"`, a `\\` or a control character; and the
/// bytes' high bits.
#[inline(always)]
fn look64(chunk: &[u8; 64]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::look64(chunk)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        look64_swar(chunk)
    }
}

/// [`look64`] eight bytes at a time with exact per-byte tests (the form used where SSE2 is not
/// there).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn look64_swar(chunk: &[u8; 64]) -> (u64, u64) {
    const LOWS: u64 = !HIGHS;
    let mut look = 0u64;
    let mut high = 0u64;
    for (k, word) in chunk.as_chunks::<8>().0.iter().enumerate() {
        let x = u64::from_le_bytes(*word);
        // The high bit of each byte is set exactly where the byte's low seven bits are zero
        // (after the XOR, for `"` and `\\`) or below 0x20.
        let zero = |y: u64| !((y & LOWS).wrapping_add(LOWS) | y) & HIGHS;
        let control = !((x & LOWS).wrapping_add(ONES * 0x60) | x) & HIGHS;
        let flagged =
            zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) | control;
        look |= gather_highs(flagged) << (k * 8);
        high |= gather_highs(x & HIGHS) << (k * 8);
    }
    (look, high)
}

/// The high bits of the eight bytes of `m` (other bits clear) as the eight low bits.
#[inline(always)]
fn gather_highs(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Sixteen string bytes at a time with SSE2, which every x86-64 CPU has.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Moves `i` over plain string bytes sixteen at a time while sixteen remain: true when it
    /// stopped at a byte that needs a look (a `"`, a `\\` or a control character), false when
    /// fewer than sixteen bytes were left. ORs 0x80 into `seen` when a byte of 0x80 or above
    /// passed (bytes past the string's end may count: that only costs a UTF-8 pass).
    #[inline(always)]
    pub(super) fn skip_plain(data: &[u8], i: &mut usize, seen: &mut u64) -> bool {
        // The high bits of the bytes looked at, ORed.
        let mut highs = 0u32;
        let found = loop {
            let Some(chunk) = data.get(*i..*i + 16) else {
                // Fewer than sixteen bytes left: the message's last sixteen, those before `i`
                // shifted out (when the message has sixteen).
                let Some(start) = data.len().checked_sub(16) else {
                    break false;
                };
                let Some(chunk) = data.get(start..) else {
                    break false;
                };
                let (look, high) = look16(chunk.try_into().unwrap_or(&[b'"'; 16]));
                highs |= high;
                // `start < *i` (sixteen bytes from `*i` were not there), so the shift is 1..=16.
                let look = look.checked_shr((*i - start) as u32).unwrap_or(0);
                *i = if look != 0 {
                    *i + look.trailing_zeros() as usize
                } else {
                    data.len()
                };
                break true;
            };
            let (look, high) = look16(chunk.try_into().unwrap_or(&[b'"'; 16]));
            highs |= high;
            if look != 0 {
                *i += look.trailing_zeros() as usize;
                break true;
            }
            *i += 16;
        };
        *seen |= u64::from(highs != 0) << 7;
        found
    }

    /// [`super::look64`] with SSE2: four steps of sixteen bytes.
    #[inline(always)]
    pub(super) fn look64(chunk: &[u8; 64]) -> (u64, u64) {
        let mut look = 0u64;
        let mut high = 0u64;
        for (k, c) in chunk.as_chunks::<16>().0.iter().enumerate() {
            let (l, h) = look16(c);
            look |= u64::from(l & 0xffff) << (k * 16);
            high |= u64::from(h & 0xffff) << (k * 16);
        }
        (look, high)
    }

    /// Bit `k` is set where byte `k` of `chunk` is a `"`, a `\\` or a control character; and
    /// the bytes' high bits.
    #[inline(always)]
    fn look16(chunk: &[u8; 16]) -> (u32, u32) {
        // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline; this module is
        // compiled only for x86-64).
        unsafe { look16_sse2(chunk) }
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn look16_sse2(chunk: &[u8; 16]) -> (u32, u32) {
        // SAFETY: reads the 16 bytes of `chunk`; the load needs no alignment.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
        let low = _mm_set1_epi8(0x1f);
        let look = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            ),
            // v <= 0x1f exactly when max(v, 0x1f) is 0x1f (unsigned).
            _mm_cmpeq_epi8(_mm_max_epu8(v, low), low),
        );
        (_mm_movemask_epi8(look) as u32, _mm_movemask_epi8(v) as u32)
    }
}

/// Moves `i` over ASCII digits: eight bytes a step while eight remain, then one at a time.
#[inline]
fn scan_digits(data: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = data.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let flagged = non_digit_mask(u64::from_le_bytes(w));
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(b'0'..=b'9') = data.get(i) {
        i += 1;
    }
    i
}

/// Bits set in every byte of `x` (little endian) that is not an ASCII digit; the lowest set
/// bit lies in the first such byte. A digit byte is never flagged below the first non-digit
/// (a carry out of a byte of 0xFA or more may flag digits above it, which are not looked at).
#[inline(always)]
fn non_digit_mask(x: u64) -> u64 {
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    // Zero in a byte exactly when its high nibble is 3 (0x30..=0x3F).
    let high = (x & HIGH_NIBBLES) ^ THREES;
    // Zero in such a byte exactly when its low nibble is at most 9 (adding 6 keeps it in 0x3_).
    let low = (x.wrapping_add(ONES * 6) & HIGH_NIBBLES) ^ THREES;
    high | low
}

/// Scans a number starting at `i` (a `-` or a digit); returns the index after it.
#[inline(always)]
fn scan_number(data: &[u8], mut i: usize) -> Option<usize> {
    if data.get(i) == Some(&b'-') {
        i += 1;
    }
    match data.get(i) {
        Some(b'0') => {
            i += 1;
            if let Some(b'0'..=b'9') = data.get(i) {
                return None;
            }
        }
        Some(b'1'..=b'9') => i = scan_digits(data, i + 1),
        _ => return None,
    }
    if data.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(data.get(i), Some(b'0'..=b'9')) {
            return None;
        }
        i = scan_digits(data, i + 1);
    }
    if let Some(b'e' | b'E') = data.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = data.get(i) {
            i += 1;
        }
        if !matches!(data.get(i), Some(b'0'..=b'9')) {
            return None;
        }
        i = scan_digits(data, i + 1);
    }
    Some(i)
}

/// Whether `data` is exactly one JSON value, surrounded by optional whitespace.
pub(crate) fn check(data: &[u8]) -> bool {
    scan(data, true).is_some()
}

/// Like [`value_len`], for text already known to be UTF-8: strings, numbers and literals are
/// measured without setting up the full scan (and without a second UTF-8 check); arrays and
/// objects take the full scan.
#[inline]
pub(crate) fn text_value_len(data: &[u8]) -> Option<usize> {
    match data.first()? {
        b'"' => scan_string_body(data, 1, &mut 0),
        b'-' | b'0'..=b'9' => scan_number(data, 0),
        b't' => literal(data, 0, b"true"),
        b'f' => literal(data, 0, b"false"),
        b'n' => literal(data, 0, b"null"),
        _ => scan(data, false),
    }
}

/// The length of the JSON value that starts at `data[0]`, when it is valid and ends within
/// `data` (what follows it is not looked at); `None` when it is invalid or goes on past the
/// end. A number that reaches the end of `data` is reported as ending there: whether it goes
/// on is for the caller to know.
pub(crate) fn value_len(data: &[u8]) -> Option<usize> {
    scan(data, false)
}

/// For an object whose `{` is at `data[0]`: checks it as [`value_len`] does and calls
/// `member(key, escaped, start, end)` for each of its top-level members in order, with the
/// key's quoted text, whether that text holds an escape, and where the member's value starts
/// and ends in `data` (the callback may see members of an object that then turns out invalid).
/// Returns where the object ends; `None` when it is invalid or goes on past the end of `data`.
/// (Readers use [`object_members_in`]; this form is what the tests compare with `value_len`.)
#[cfg(test)]
pub(crate) fn object_members(
    data: &[u8],
    member: impl FnMut(&[u8], bool, usize, usize),
) -> Option<usize> {
    members(&mut Looks::new(data), 0, member)
}

/// [`object_members`] for the object whose `{` is at `data[start]`, returning where it ends in
/// `data`. `block` (from [`Block::NONE`] for a new `data`) carries the masks of the block the
/// last object of the same `data` ended in: objects next to each other share blocks.
#[inline]
pub(crate) fn object_members_in(
    data: &[u8],
    start: usize,
    block: &mut Block,
    member: impl FnMut(&[u8], bool, usize, usize),
) -> Option<usize> {
    let mut looks = Looks::resume(data, *block, start);
    let end = members(&mut looks, start, member);
    *block = looks.block;
    end
}

#[inline(always)]
fn members(
    looks: &mut Looks<'_>,
    start: usize,
    mut member: impl FnMut(&[u8], bool, usize, usize),
) -> Option<usize> {
    let data = looks.data;
    let mut i = skip_ws(data, start + 1);
    if data.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if data.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, escaped) = looks.string(i + 1)?;
        let key = data.get(i..key_end)?;
        i = match data.get(key_end) {
            Some(b':') => key_end,
            _ => skip_ws(data, key_end),
        };
        if data.get(i) != Some(&b':') {
            return None;
        }
        let v = skip_ws(data, i + 1);
        let end = match data.get(v)? {
            b'"' => looks.string(v + 1)?.0,
            b'-' | b'0'..=b'9' => scan_number(data, v)?,
            b't' => literal(data, v, b"true")?,
            b'f' => literal(data, v, b"false")?,
            b'n' => literal(data, v, b"null")?,
            // Containers: the full scan, which checks their UTF-8 itself.
            b'[' | b'{' => v + scan(data.get(v..)?, false)?,
            _ => return None,
        };
        member(key, escaped, v, end);
        i = match data.get(end) {
            Some(b',' | b'}') => end,
            _ => skip_ws(data, end),
        };
        match data.get(i) {
            Some(b',') => i = skip_ws(data, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    let end = i + 1;
    if looks.high && std::str::from_utf8(data.get(start..end)?).is_err() {
        return None;
    }
    Some(end)
}

/// For a text of messages joined by `separator` (a byte no JSON text holds outside a string
/// and no string holds raw, such as NUL): the length of the first message when it is exactly
/// one JSON value (with whitespace around it) and is followed by `separator` or the end of
/// `data`; `None` otherwise (then the caller splits at the separator and checks the message
/// on its own, for its error). One scan both checks the message and finds where it ends.
#[cfg(test)]
pub(crate) fn piece_len(data: &[u8], separator: u8) -> Option<usize> {
    let mut block = Block::NONE;
    piece_len_in(data, 0, &mut block, separator)
}

/// [`piece_len`] for the message that starts at `data[at]`. `block` (from [`Block::NONE`] for
/// a new `data`) carries the masks of the block the last message of the same `data` ended in:
/// messages next to each other share blocks.
pub(crate) fn piece_len_in(
    data: &[u8],
    at: usize,
    block: &mut Block,
    separator: u8,
) -> Option<usize> {
    let mut looks = Looks::resume(data, *block, at);
    let end = scan_from(&mut looks, at, false);
    *block = looks.block;
    let end = skip_ws(data, end?);
    match data.get(end) {
        None => end.checked_sub(at),
        Some(&b) if b == separator => end.checked_sub(at),
        Some(_) => None,
    }
}

/// Scans one value: with `whole`, `data` must be that value and whitespace; otherwise the
/// value's end is returned as soon as it is found.
///
/// Whitespace before a value (at the start, after `,` in an array) and after one is an arm of
/// the match that reads that byte anyway, so compact text pays no separate look for it there.
fn scan(data: &[u8], whole: bool) -> Option<usize> {
    scan_from(&mut Looks::new(data), 0, whole)
}

/// [`scan`] of the value at `data[start]`, with `looks` over `data`.
#[inline(always)]
fn scan_from(looks: &mut Looks<'_>, start: usize, whole: bool) -> Option<usize> {
    let data = looks.data;
    let mut stack = Stack {
        depth: 0,
        bits: 0,
        more: Vec::new(),
    };
    // Whether the innermost open container is an object (kept here, not looked up in the
    // stack after every value: the stack is read only when a container closes).
    let mut object = false;
    // `looks` finds where strings end; it also tells whether a byte outside ASCII was seen
    // (UTF-8 is then checked).
    let mut i = start;
    'value: loop {
        // A value starts at `i` (or whitespace before it).
        match data.get(i) {
            Some(b'"') => i = looks.string(i + 1)?.0,
            Some(b'-' | b'0'..=b'9') => i = scan_number(data, i)?,
            Some(b't') => i = literal(data, i, b"true")?,
            Some(b'f') => i = literal(data, i, b"false")?,
            Some(b'n') => i = literal(data, i, b"null")?,
            Some(b'[') => {
                i = skip_ws(data, i + 1);
                if data.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(false);
                    object = false;
                    continue 'value;
                }
            }
            Some(b'{') => {
                i = skip_ws(data, i + 1);
                match data.get(i) {
                    Some(b'}') => i += 1,
                    Some(b'"') => {
                        stack.push(true);
                        object = true;
                        i = key(looks, i)?;
                        continue 'value;
                    }
                    Some(_) => return None,
                    None => return None,
                }
            }
            Some(b' ' | b'\t' | b'\n' | b'\r') => {
                i = skip_ws(data, i + 1);
                continue 'value;
            }
            Some(_) => return None,
            None => return None,
        }
        // A value ended at `i`: a comma, the end of containers, or the end of the message.
        loop {
            if stack.depth == 0 {
                let end = if whole { skip_ws(data, i) } else { i };
                if whole && end != data.len() {
                    return None;
                }
                if looks.high && std::str::from_utf8(data.get(start..end)?).is_err() {
                    return None;
                }
                return Some(end);
            }
            match data.get(i) {
                Some(b',') => {
                    if !object {
                        i += 1;
                        continue 'value;
                    }
                    i = skip_ws(data, i + 1);
                    if data.get(i) != Some(&b'"') {
                        return None;
                    }
                    i = key(looks, i)?;
                    continue 'value;
                }
                Some(b']') if !object => {}
                Some(b'}') if object => {}
                Some(b' ' | b'\t' | b'\n' | b'\r') => {
                    i = skip_ws(data, i + 1);
                    continue;
                }
                _ => return None,
            }
            stack.depth -= 1;
            object = stack.top() == Some(true);
            i += 1;
        }
    }
}

/// Scans `"key" :` with the quote at `i`; returns where the value (or whitespace before it)
/// starts.
#[inline(always)]
fn key(looks: &mut Looks<'_>, i: usize) -> Option<usize> {
    let data = looks.data;
    let i = looks.string(i + 1)?.0;
    match data.get(i) {
        Some(b':') => Some(skip_ws(data, i + 1)),
        Some(_) => {
            let i = skip_ws(data, i);
            (data.get(i) == Some(&b':')).then(|| skip_ws(data, i + 1))
        }
        None => None,
    }
}

#[inline]
fn literal(data: &[u8], i: usize, word: &'static [u8]) -> Option<usize> {
    match data.get(i..i + word.len()) {
        Some(s) if s == word => Some(i + word.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{
        check, look64, look64_swar, object_members, piece_len, piece_len_in, plain_run_end,
        text_value_len, value_len, Block,
    };

    fn serde_ok(s: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(s).is_ok()
    }

    #[test]
    fn digits_are_found_eight_at_a_time_as_one_at_a_time() {
        let one_at_a_time = |data: &[u8], from: usize| {
            from + data[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        // Every byte value after runs of 0..=20 digits, at every start, with bytes of 0xFA
        // and above (whose carry spills into the next byte) around them.
        for run in 0..=20usize {
            for stop in 0..=255u8 {
                for tail in [b'7', 0xff, 0xfa, b'/', b':'] {
                    let mut data: Vec<u8> = (0..run).map(|k| b'0' + (k % 10) as u8).collect();
                    data.push(stop);
                    data.extend_from_slice(&[tail, b'1', b'2', b'3', 0xff, b'9', b'0', b'8']);
                    for from in 0..data.len() {
                        assert_eq!(
                            super::scan_digits(&data, from),
                            one_at_a_time(&data, from),
                            "{data:?} from {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        let cases: &[&str] = &[
            "0",
            "-0",
            "1",
            "-1",
            "12",
            "01",
            "-01",
            "1.",
            "1.5",
            ".5",
            "1e5",
            "1E+5",
            "1e-5",
            "1e",
            "1e+",
            "-",
            "--1",
            "+1",
            "1.5e3",
            "0.0",
            "00",
            "1.e3",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "truex",
            "True",
            "\"\"",
            "\"a\"",
            "\"\\n\"",
            "\"\\x\"",
            "\"\\u00e9\"",
            "\"\\u00g9\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\t\"",
            "\"a",
            "\"\\",
            "[]",
            "[ ]",
            "[1]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1,2]",
            "[[[]]]",
            "[[[]]",
            "[]]",
            "{}",
            "{ }",
            "{\"a\":1}",
            "{\"a\":1,}",
            "{\"a\" : 1 , \"b\":[true,{\"c\":null}]}",
            "{a:1}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{1:1}",
            "{\"a\":1 \"b\":2}",
            "[1}",
            "{\"a\":1]",
            " 1 ",
            "\n[1]\r\n",
            "1 2",
            "",
            "   ",
            "[1] x",
            "{\"a\":1}}",
            "\u{feff}1",
            "\"é\"",
            "[\"\\\"\"]",
            "[\"\\\\\"]",
            "[-]",
            "[0x1]",
            "[1.0e+2]",
            "[\"a\\/b\"]",
            "{\"\":\"\"}",
            "[null,true,false,\"x\",1,-2.5e-3,{},[]]",
        ];
        for c in cases {
            assert_eq!(check(c.as_bytes()), serde_ok(c.as_bytes()), "case {c:?}");
        }
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert_eq!(check(deep.as_bytes()), serde_ok(deep.as_bytes()));
        let deep_obj = format!("{}1{}", "{\"a\":[".repeat(100), "]}".repeat(100));
        assert!(check(deep_obj.as_bytes()));
        let bad_deep = format!("{}1{}", "{\"a\":[".repeat(100), "}]".repeat(100));
        assert!(!check(bad_deep.as_bytes()));
    }

    /// Random token soups: the verdict must match serde_json's on every one.
    #[test]
    fn random_inputs_agree_with_serde_json() {
        let tokens: &[&str] = &[
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "\"",
            "\"k\"",
            "\"v\"",
            "1",
            "0",
            "-",
            ".",
            "e",
            "5",
            "true",
            "null",
            " ",
            "\\",
            "\\u",
            "a",
            "\n",
            "\"\\n\"",
            "[1,2]",
            "{\"a\":1}",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut agreed_ok = 0;
        for _ in 0..200_000 {
            let n = (next() % 12) as usize;
            let mut s = String::new();
            for _ in 0..n {
                s.push_str(tokens[(next() % tokens.len() as u64) as usize]);
            }
            let ok = check(s.as_bytes());
            assert_eq!(ok, serde_ok(s.as_bytes()), "case {s:?}");
            agreed_ok += usize::from(ok);
        }
        assert!(agreed_ok > 100);
    }

    /// Strings of every length up to 70 with one special byte at every position (a quote, an
    /// escape, a control character, a multi-byte character, a byte that breaks UTF-8), inside
    /// objects and arrays at different offsets: the 16-byte, 8-byte and byte-by-byte parts of
    /// the string scan and their hand-overs all agree with serde_json (plus UTF-8).
    #[test]
    fn long_strings_with_a_special_byte_anywhere() {
        let strict = |b: &[u8]| serde_ok(b) && std::str::from_utf8(b).is_ok();
        let specials: &[&[u8]] = &[
            b"\"",
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            b"\\",
            b"\\x",
            b"\t",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\xc3",
            b"\xff",
            b"\xe2\x82",
            b" ",
            b"\x20",
        ];
        let mut checked = 0;
        let mut valid = 0;
        for len in 0..70 {
            for at in 0..=len {
                for sp in specials {
                    let mut text = vec![b'a'; len];
                    text.splice(at..at, sp.iter().copied());
                    // Strings are looked at 64 bytes at a time from where the first one
                    // starts: the last form puts the text across the end of such a block.
                    let long_first = format!("{{\"{}\":0,\"k\":\"", "b".repeat(40));
                    for (open, close) in [
                        (&b"\""[..], &b"\""[..]),
                        (b"[\"", b"\"]"),
                        (b"{\"k\":\"", b"\",\"z\":1}"),
                        (long_first.as_bytes(), b"\",\"z\":\"\"}"),
                    ] {
                        let mut doc = open.to_vec();
                        doc.extend_from_slice(&text);
                        doc.extend_from_slice(close);
                        let ok = check(&doc);
                        assert_eq!(ok, strict(&doc), "{:?}", String::from_utf8_lossy(&doc));
                        if doc[0] == b'{' {
                            let members = object_members(&doc, |_, _, _, _| {});
                            assert_eq!(members, ok.then_some(doc.len()));
                        }
                        checked += 1;
                        valid += usize::from(ok);
                    }
                }
            }
        }
        assert!(
            checked > 70_000 && valid > 20_000,
            "{checked} checked, {valid} valid"
        );
    }

    /// Whitespace (of each kind, and a run of it) inserted at every position of valid and
    /// invalid documents: the verdict still matches serde_json's, and `value_len` ends a value
    /// where it did (whitespace is now looked for only in the arms compact JSON never takes).
    #[test]
    fn whitespace_anywhere_agrees_with_serde_json() {
        let docs: &[&str] = &[
            r#"{"i":123456,"type":"bench.event","user":"u1","p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            r#"[1,-2.5e3,true,false,null,"a\"b",{"k":[]},{},[[]]]"#,
            r#"{"a":{"b":{"c":[1,{"d":"e"}]}}}"#,
            r#"{"a" 1}"#,
            r#"[1,,2]"#,
            r#"{"a":1,}"#,
            "\"x\"",
            "-0.5",
        ];
        let mut checked = 0;
        for doc in docs {
            let doc = doc.as_bytes();
            for at in 0..=doc.len() {
                for ws in [&b" "[..], b"\n", b"\t", b"\r", b" \r\n\t "] {
                    let mut d = doc[..at].to_vec();
                    d.extend_from_slice(ws);
                    d.extend_from_slice(&doc[at..]);
                    assert_eq!(check(&d), serde_ok(&d), "{:?}", String::from_utf8_lossy(&d));
                    if serde_ok(&d) && at > 0 {
                        // The value ends where it ends, whitespace after it not counted.
                        let len = value_len(&d).unwrap_or(0);
                        assert!(d[len..].iter().all(u8::is_ascii_whitespace), "{d:?}");
                        assert!(!d[len - 1].is_ascii_whitespace(), "{d:?}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// Time per message of both checks on the benchmark's message shape:
    /// `cargo test --release -p durable-streams-client --lib validation_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn validation_cost() {
        let msgs: Vec<Vec<u8>> = (0..200_000)
            .map(|i| {
                format!(
                    r#"{{"i":{i},"ts":1764201600000,"type":"bench.event","user":"u{:05}","p":"{}"}}"#,
                    i % 100_000,
                    "x".repeat(30)
                )
                .into_bytes()
            })
            .collect();
        for round in 0..3 {
            let t = std::time::Instant::now();
            let ok = msgs.iter().filter(|m| serde_ok(m)).count();
            let serde = t.elapsed().as_nanos() as f64 / msgs.len() as f64;
            let t = std::time::Instant::now();
            let ok2 = msgs.iter().filter(|m| check(m)).count();
            let ours = t.elapsed().as_nanos() as f64 / msgs.len() as f64;
            assert_eq!(ok, ok2);
            println!("round {round}: serde_json IgnoredAny {serde:.1} ns/msg, json::check {ours:.1} ns/msg");
        }
    }

    #[test]
    fn piece_len_agrees_with_splitting_then_checking() {
        // Every document of the other tests, and the same with a separator, another
        // message or junk after it: `piece_len` must say what memchr + `check` say.
        let docs: Vec<Vec<u8>> = {
            let mut rng = 0x2545_f491_4f6c_dd1du64;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let alphabet: &[&[u8]] = &[
                b"{",
                b"}",
                b"[",
                b"]",
                b",",
                b":",
                b"\"",
                b"\"a\"",
                b"1",
                b"-0.5e3",
                b"true",
                b"null",
                b" ",
                b"\n",
                b"\\",
                b"\\u00e9",
                b"\xc3\xa9",
                b"\xff",
                b"\0",
                b"x",
            ];
            (0..20_000)
                .map(|_| {
                    let n = (next() % 10) as usize;
                    let mut d = Vec::new();
                    for _ in 0..n {
                        d.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
                    }
                    d
                })
                .chain(
                    [
                        &br#"{"i":1,"ts":1764201600000,"type":"bench.event","user":"u00001"}"#[..],
                        b" [1, 2] ",
                        b"\"a\\u0000b\"",
                        b"12",
                        b"",
                        b"  ",
                        // Bytes that are not UTF-8 right after valid non-ASCII, close enough
                        // to share a block when joined.
                        b"\"\xc3\xa9\"",
                        b"\"\xff\"",
                        b"[\"\xc3\xa9\"]",
                        b"{\"k\":\"\xc3\"}",
                        b"\"\xe2\x82\xac\"",
                    ]
                    .iter()
                    .map(|d| d.to_vec()),
                )
                .collect()
        };
        let mut valid = 0;
        for d in &docs {
            for tail in [&b""[..], b"\0", b"\0{\"b\":2}", b"\0\0", b"x\0", b"5\0"] {
                let mut text = d.clone();
                text.extend_from_slice(tail);
                let split = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                let expected = check(&text[..split]).then_some(split);
                assert_eq!(
                    piece_len(&text, 0),
                    expected,
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
                valid += usize::from(expected.is_some());
            }
        }
        assert!(valid > 1000, "{valid}");
        // All of them joined, as a producer's batch form hands them: messages next to each
        // other share blocks, and each still gets its own verdict.
        let docs: Vec<&[u8]> = docs
            .iter()
            .map(|d| &d[..])
            .filter(|d| !d.contains(&0))
            .collect();
        let joined = docs.join(&b"\0"[..]);
        let mut block = Block::NONE;
        let mut at = 0;
        let mut pieces = 0;
        while at <= joined.len() {
            let split = joined[at..]
                .iter()
                .position(|&b| b == 0)
                .map_or(joined.len(), |n| at + n);
            let expected = check(&joined[at..split]).then_some(split - at);
            assert_eq!(
                piece_len_in(&joined, at, &mut block, 0),
                expected,
                "{:?}",
                String::from_utf8_lossy(&joined[at..split])
            );
            pieces += 1;
            at = split + 1;
        }
        assert_eq!(pieces, docs.len());
        assert!(pieces > 10_000, "{pieces}");
    }

    #[test]
    fn a_block_left_past_the_next_start_is_not_reused() {
        // The first scan takes the separator for whitespace, reads on into the next piece and
        // fails at the end, leaving the block of `"\xff"`, which begins after the next piece
        // does. The next piece is then scanned afresh and its bad UTF-8 found.
        let joined = b"[\n[\"\xff\"]";
        let mut block = Block::NONE;
        assert_eq!(piece_len_in(joined, 0, &mut block, b'\n'), None);
        assert_eq!(piece_len_in(joined, 2, &mut block, b'\n'), None);
        assert_eq!(piece_len(b"[\"\xff\"]", b'\n'), None);
        // The same with valid UTF-8 is found valid either way.
        let joined = "[\n[\"é\"]".as_bytes();
        let mut block = Block::NONE;
        assert_eq!(piece_len_in(joined, 0, &mut block, b'\n'), None);
        assert_eq!(piece_len_in(joined, 2, &mut block, b'\n'), Some(6));
    }

    #[test]
    fn value_len_finds_where_a_value_ends() {
        for v in [
            &br#"{"a":[1,2,{"b":"x\"}"}],"c":null}"#[..],
            b"\"\xc3\xa9\"",
            b"[ ]",
            b"-1.5e3",
            b"true",
            b"[[[[1]]]]",
        ] {
            assert_eq!(value_len(v), Some(v.len()), "{v:?}");
            let mut more = v.to_vec();
            more.extend_from_slice(b" ,[9]");
            assert_eq!(value_len(&more), Some(v.len()), "{v:?}");
            // Cut anywhere inside a container or string, it has not ended yet.
            if matches!(v[0], b'{' | b'[' | b'"') {
                for cut in 0..v.len() {
                    assert_eq!(value_len(&v[..cut]), None, "{v:?} cut at {cut}");
                }
            }
        }
        for bad in [
            &b"{\"a\":}"[..],
            b"[1,]",
            b"\"\xff\"",
            b"nul",
            b"[1 2]",
            b"}",
        ] {
            assert_eq!(value_len(bad), None, "{bad:?}");
        }
    }

    /// Values valid and invalid, for the scanners' agreement tests.
    /// The 64-byte masks (SSE2 on x86-64, and the portable form) agree with a byte-by-byte
    /// test: every byte value at every position, and random blocks.
    #[test]
    fn block_masks_agree_with_bytes() {
        let expect = |block: &[u8; 64]| {
            let mut look = 0u64;
            let mut high = 0u64;
            for (k, &b) in block.iter().enumerate() {
                if b < 0x20 || b == b'"' || b == b'\\' {
                    look |= 1 << k;
                }
                if b >= 0x80 {
                    high |= 1 << k;
                }
            }
            (look, high)
        };
        let mut blocks = Vec::new();
        for at in 0..64 {
            for b in 0..=255u8 {
                let mut block = [b'a'; 64];
                block[at] = b;
                blocks.push(block);
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly plain letters, some of every other kind.
                *b = if x.is_multiple_of(4) {
                    (x >> 8) as u8
                } else {
                    b'a' + (x >> 8) as u8 % 26
                };
            }
            blocks.push(block);
        }
        for block in &blocks {
            assert_eq!(look64(block), expect(block), "{block:?}");
            assert_eq!(look64_swar(block), expect(block), "{block:?}");
        }
    }

    const TEST_VALUES: &[&str] = &[
        r#""plain""#,
        r#""esc\"aped\\""#,
        r#""\u00e9\ud83d\ude00""#,
        r#""bad\x""#,
        "\"ctl\u{1}\"",
        "\"é😀\"",
        "0",
        "-0",
        "12",
        "-1.5e3",
        "1.",
        "01",
        "-",
        "true",
        "false",
        "null",
        "nul",
        "tru",
        r#"{"a":[1,"b",{"c":null}]}"#,
        "[ ]",
        "[1,]",
        "\"\u{ff}\"",
        "[\"é\"]",
    ];

    #[test]
    fn object_members_agrees_with_value_len() {
        // Objects built from the same values, as keys and as member values, cut everywhere
        // and with bytes after them: `object_members` ends each where `value_len` does, and
        // reports the members of every valid one.
        let values = TEST_VALUES;
        let mut texts = vec!["{}".to_owned(), "{ }".to_owned(), "{,}".to_owned()];
        for k in values {
            for v in values {
                texts.push(format!("{{{k}:{v}}}"));
                texts.push(format!("{{ {k} : {v} , \"z\":0 }}"));
                texts.push(format!("{{\"z\":0,{k}:{v},}}"));
            }
        }
        let mut valid = 0;
        for text in &texts {
            for after in ["", " ", ",", "x"] {
                let text = format!("{text}{after}");
                for cut in 0..=text.len() {
                    let Some(t) = text.get(..cut) else { continue };
                    let mut members = Vec::new();
                    let got = object_members(t.as_bytes(), |k, escaped, v, end| {
                        assert_eq!(escaped, k.contains(&b'\\'), "{t:?}");
                        members.push((k.to_vec(), t.as_bytes()[v..end].to_vec()))
                    });
                    assert_eq!(got, value_len(t.as_bytes()), "{t:?}");
                    if let Some(end) = got {
                        let parsed: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_str(&t[..end]).unwrap();
                        for (k, v) in &members {
                            let k: String = serde_json::from_slice(k).unwrap();
                            let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                            assert_eq!(parsed.get(&k), Some(&v), "{t:?}");
                        }
                        assert_eq!(members.len(), parsed.len(), "{t:?}");
                        valid += 1;
                    }
                }
            }
        }
        assert!(valid > 100, "{valid}");
    }

    /// `text_value_len` (scalars measured directly) ends every value where `value_len` does,
    /// on valid and invalid texts, whole or cut, with something after them or not.
    #[test]
    fn text_value_len_agrees_with_value_len() {
        let values = TEST_VALUES;
        let mut checked = 0;
        for v in values {
            for after in ["", " ", ",", "]", "}", ",{\"i\":1}", "x"] {
                let text = format!("{v}{after}");
                for cut in 0..=text.len() {
                    let Some(t) = text.get(..cut) else { continue };
                    assert_eq!(
                        text_value_len(t.as_bytes()),
                        value_len(t.as_bytes()),
                        "{t:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
        // A run of plain string bytes ends at a quote, a backslash, a control character or
        // the end, wherever it starts.
        assert_eq!(plain_run_end(b"abc\" rest", 0), 3);
        assert_eq!(plain_run_end(b"a\\\"b\"", 0), 1);
        assert_eq!(plain_run_end(b"a\\\"b\"", 3), 4);
        assert_eq!(plain_run_end(b"a\nb\"", 0), 1);
        assert_eq!(plain_run_end(b"abc", 1), 3);
        let long: Vec<u8> = [b'x'; 40].iter().chain(b"\"").copied().collect();
        assert_eq!(plain_run_end(&long, 0), 40);
        assert_eq!(plain_run_end(&long, 7), 40);
    }

    #[test]
    fn requires_utf8() {
        assert!(!check(b"\"\xff\""));
        assert!(check(b"\"\xc3\xa9\""));
        assert!(!check(b"\xc3\xa9"));
        assert!(check("[\"ééééééééééé\"]".as_bytes()));
        assert!(!check(b"[\"abcdefgh\xffabcdefgh\"]"));
        assert!(!check(b"[\"abcdefghabcdefgh\x01abcdefgh\"]"));
        assert!(check(b"[\"abcdefghabcdefgh\\\"abcdefgh\"]"));
    }
}
