//! The values of a JSON array of numbers, as machine numbers.
//!
//! A picked read of a numeric member (`field: "i"`) yields array texts such as `[1,2,3]`. A
//! binding builds those faster from machine numbers than by parsing the text again: in Node,
//! `JSON.parse` of a million integers took 50 ms and 9,300 page faults, a loop over an
//! `Int32Array` 7.5–10 ms and 2,000; Python's `read_json(field="i")` took 11 % fewer
//! instructions (BENCHMARKS.md, round 27).

/// The numbers of a JSON array, read as IEEE 754 doubles (as JavaScript reads JSON numbers),
/// in the narrowest form that holds all of them exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonNumbers {
    /// Every value is an integer written without fraction or exponent, from -2^31 to 2^31-1,
    /// and none is `-0`.
    I32(Vec<i32>),
    /// Any numbers: each is the double nearest to the decimal written (ties to even), as
    /// `JSON.parse` and Rust's `f64::from_str` read it; `-0` stays negative zero, and a
    /// magnitude beyond the largest double is an infinity, as in JavaScript.
    F64(Vec<f64>),
}

impl JsonNumbers {
    /// How many numbers there are.
    pub fn len(&self) -> usize {
        match self {
            JsonNumbers::I32(v) => v.len(),
            JsonNumbers::F64(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numbers of `text` when it is a JSON array (whitespace allowed as JSON allows it)
    /// whose every element is a number; `None` for anything else: another value, an element
    /// that is not a number, or text that is not JSON. Linear in the text, and it stops at the
    /// first element that is not a number.
    pub fn parse_array(text: &str) -> Option<JsonNumbers> {
        Self::parse(text, false)
    }

    /// The numbers of `text` as [`parse_array`](Self::parse_array) reads them when all are
    /// [`I32`](Self::I32) integers; `None` otherwise, from the first element that is not one.
    /// For a language whose integers and doubles differ (Python), where a double or a longer
    /// integer is left to its own parser.
    pub fn parse_int_array(text: &str) -> Option<Vec<i32>> {
        match Self::parse(text, true)? {
            JsonNumbers::I32(v) => Some(v),
            JsonNumbers::F64(_) => None,
        }
    }

    fn parse(text: &str, ints_only: bool) -> Option<JsonNumbers> {
        let b = text.as_bytes();
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i = ws(b, i + 1);
        if b.get(i) == Some(&b']') {
            return (ws(b, i + 1) == b.len()).then_some(JsonNumbers::I32(Vec::new()));
        }
        // Most texts are of other values (objects, strings): refused before any room is taken.
        if !matches!(b.get(i), Some(b'-' | b'0'..=b'9')) {
            return None;
        }
        // Each number takes a byte and a comma but the last: the count, at most.
        let cap = b.len() / 2 + 1;
        let mut ints: Vec<i32> = Vec::with_capacity(cap);
        // Integers while they last.
        let first_float = loop {
            if let Some((v, len)) = short_int(b, i) {
                ints.push(v);
                // Whitespace may follow the comma (`[1, 2]`).
                i = ws(b, i + len);
                continue;
            }
            let (n, end) = number(b, i)?;
            match n {
                Number::Int(v) => ints.push(v),
                Number::Float(_) if ints_only => return None,
                Number::Float(v) => {
                    i = end;
                    break v;
                }
            }
            match next(b, end)? {
                Some(j) => i = j,
                None => {
                    ints.shrink_to_fit();
                    return Some(JsonNumbers::I32(ints));
                }
            }
        };
        // Then any numbers.
        let mut floats = Vec::with_capacity(cap);
        floats.extend(ints.iter().map(|&x| f64::from(x)));
        drop(ints);
        floats.push(first_float);
        while let Some(j) = next(b, i)? {
            let (n, end) = number(b, j)?;
            floats.push(match n {
                Number::Int(v) => f64::from(v),
                Number::Float(v) => v,
            });
            i = end;
        }
        floats.shrink_to_fit();
        Some(JsonNumbers::F64(floats))
    }
}

/// After an element ending at `b[i]`: where the next one starts, `None` at the end of the
/// array (nothing but whitespace after it), and `None` outside for anything else.
#[inline(always)]
#[allow(clippy::option_option)]
fn next(b: &[u8], i: usize) -> Option<Option<usize>> {
    let i = ws(b, i);
    match b.get(i) {
        Some(b',') => Some(Some(ws(b, i + 1))),
        Some(b']') if ws(b, i + 1) == b.len() => Some(None),
        _ => None,
    }
}

/// The common case, cheaply: an integer of at most 7 digits (not `-0`) and the comma after it,
/// all within the 8 bytes after its sign. Its value and the length with the comma.
#[inline(always)]
fn short_int(b: &[u8], i: usize) -> Option<(i32, usize)> {
    let neg = b.get(i) == Some(&b'-');
    let at = i + usize::from(neg);
    let word = b.get(at..at + 8)?;
    let (n, v) = leading_digits(word);
    if n == 0 || word.get(n) != Some(&b',') || (n > 1 && word[0] == b'0') || (neg && v == 0) {
        return None;
    }
    // Below 10^7: fits.
    let v = v as i32;
    Some((if neg { -v } else { v }, usize::from(neg) + n + 1))
}

enum Number {
    Int(i32),
    Float(f64),
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The JSON number at `b[start]` (none of `+1`, `01`, `1.`, `.5`, `1e`, `NaN`), and where it
/// ends.
#[inline(always)]
fn number(b: &[u8], start: usize) -> Option<(Number, usize)> {
    let mut i = start;
    let neg = b.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let digits = i;
    // The value of the digits, exact while there are at most 18 (below 2^64); beyond that only
    // their count is used.
    let mut acc: u64 = 0;
    while let Some(word) = b.get(i..i + 8) {
        let (n, v) = leading_digits(word);
        acc = acc.wrapping_mul(POW10[n]).wrapping_add(v);
        i += n;
        if n < 8 {
            break;
        }
    }
    if b.len() - i < 8 {
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
    }
    let n_digits = i - digits;
    if n_digits == 0 || (n_digits > 1 && b.get(digits) == Some(&b'0')) {
        return None;
    }
    let mut integral = true;
    if b.get(i) == Some(&b'.') {
        i = some_digits(b, i + 1)?;
        integral = false;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = some_digits(b, i)?;
        integral = false;
    }
    if integral && n_digits <= 10 && !(neg && acc == 0) {
        let v = if neg { -(acc as i64) } else { acc as i64 };
        if let Ok(v) = i32::try_from(v) {
            return Some((Number::Int(v), i));
        }
    }
    if integral && n_digits <= 15 {
        // Below 2^53: exact as a double.
        let v = acc as f64;
        return Some((Number::Float(if neg { -v } else { v }), i));
    }
    // The slice is ASCII and a valid JSON number, which Rust's parser reads correctly rounded.
    let s = std::str::from_utf8(b.get(start..i)?).ok()?;
    s.parse::<f64>().ok().map(|v| (Number::Float(v), i))
}

const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// How many of the 8 bytes of `word` are digits before the first that is not, and their value:
/// eight bytes at once, as SWAR (SIMD within a register) parsers do it.
#[inline(always)]
fn leading_digits(word: &[u8]) -> (usize, u64) {
    let mut w = [0u8; 8];
    w.copy_from_slice(word);
    // A digit becomes its value (0 to 9); any other byte becomes 10 or more.
    let a = u64::from_le_bytes(w) ^ 0x3030_3030_3030_3030;
    // The top bit of each byte that is 10 or more: set in the byte itself (0x80 and up), or by
    // adding 0x76. A carry out of a byte only reaches bytes after the first non-digit.
    let high = (a | a.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    let n = (high.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // The digits moved to the top bytes (the first, most significant, lowest): zeros ahead.
    let mut v = a << (8 * (8 - n));
    v = (v & 0x0f0f_0f0f_0f0f_0f0f).wrapping_mul(2561) >> 8;
    v = (v & 0x00ff_00ff_00ff_00ff).wrapping_mul(6_553_601) >> 16;
    v = (v & 0x0000_ffff_0000_ffff).wrapping_mul(42_949_672_960_001) >> 32;
    (n, v)
}

/// Where the run of digits from `b[i]` ends; `None` when there is none.
#[inline(always)]
fn some_digits(b: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (i > start).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::JsonNumbers;

    fn f64s(text: &str) -> Vec<f64> {
        match JsonNumbers::parse_array(text) {
            Some(JsonNumbers::F64(v)) => v,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn integers_in_i32_range_stay_integers() {
        assert_eq!(
            JsonNumbers::parse_array("[0,1,-1,2147483647,-2147483648, 42 ]"),
            Some(JsonNumbers::I32(vec![0, 1, -1, i32::MAX, i32::MIN, 42]))
        );
        assert_eq!(
            JsonNumbers::parse_array(" [ ] "),
            Some(JsonNumbers::I32(vec![]))
        );
        assert_eq!(
            JsonNumbers::parse_array("[\n7\r\n,\t8]"),
            Some(JsonNumbers::I32(vec![7, 8]))
        );
    }

    #[test]
    fn anything_else_makes_doubles_rounded_correctly() {
        // One value outside the int form turns the whole array into doubles.
        let cases = [
            "[1,2147483648]",
            "[-2147483649,3]",
            "[-0,5]",
            "[1.5,2]",
            "[2,1e3]",
            "[1E-7,0.1,0.2,0.30000000000000004]",
            "[9007199254740993,123456789012345678901234567890]",
            "[1.7976931348623157e308,5e-324,2.2250738585072014e-308]",
            "[-1.0e+2,3.14159265358979323846264338327950288]",
            "[999999999999999,1000000000000000,18446744073709551615]",
            "[0.1e1,0e0,-0.0]",
        ];
        for text in cases {
            // Rust's parser rounds correctly (serde_json's default one may be off by one unit).
            let want: Vec<f64> = text[1..text.len() - 1]
                .split(',')
                .map(|t| t.parse().unwrap())
                .collect();
            let got = f64s(text);
            assert_eq!(got.len(), want.len(), "{text}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.to_bits(), w.to_bits(), "{text}: {g} vs {w}");
            }
        }
        // Negative zero keeps its sign.
        assert!(f64s("[-0]")[0].is_sign_negative());
        // Beyond the largest double: an infinity, as JSON.parse gives.
        assert_eq!(
            f64s("[1e400,-1e400]"),
            vec![f64::INFINITY, f64::NEG_INFINITY]
        );
    }

    #[test]
    fn integers_from_many_digits_are_exact() {
        let mut text = String::from("[");
        let mut want = Vec::new();
        let mut x: u64 = 1;
        for i in 0..2000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let digits = (i % 20) as u32;
            let v = (x % 10u64.pow(digits.min(19))) as i64 * if i % 3 == 0 { -1 } else { 1 };
            if i > 0 {
                text.push(',');
            }
            text.push_str(&v.to_string());
            want.push(v.to_string().parse::<f64>().unwrap());
        }
        text.push(']');
        let got = f64s(&text);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.to_bits(), w.to_bits());
        }
        assert_eq!(got.len(), 2000);
    }

    #[test]
    fn int_arrays_only_when_all_are_i32() {
        assert_eq!(
            JsonNumbers::parse_int_array("[1,-2,2147483647]"),
            Some(vec![1, -2, i32::MAX])
        );
        assert_eq!(JsonNumbers::parse_int_array("[]"), Some(vec![]));
        assert_eq!(
            JsonNumbers::parse_int_array("[-2147483648, 0,\n1, 2, 3]"),
            Some(vec![i32::MIN, 0, 1, 2, 3])
        );
        // As Python's json.dumps writes an array: a space after each comma.
        let spaced = (0..100)
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            JsonNumbers::parse_int_array(&format!("[{spaced}]")),
            Some((0..100).collect())
        );
        for text in [
            "[1,2.5]",
            "[1,-0]",
            "[-0.0]",
            "[-2147483649]",
            "[2147483648]",
            "[1e2]",
            "[1,\"a\"]",
            "[1",
        ] {
            assert_eq!(JsonNumbers::parse_int_array(text), None, "{text}");
        }
    }

    #[test]
    fn the_short_integer_path_keeps_the_rules() {
        // Long arrays, so that 8 bytes follow each element (the short path's condition).
        let pad = "1234567,".repeat(4);
        let wrap = |mid: &str| format!("[{pad}{mid},{pad}7]");
        let ints = |mid: &str| match JsonNumbers::parse_array(&wrap(mid)) {
            Some(JsonNumbers::I32(v)) => v[4..v.len() - 5].to_vec(),
            other => panic!("{mid}: {other:?}"),
        };
        assert_eq!(ints("0"), vec![0]);
        assert_eq!(ints("-9999999,9999999"), vec![-9_999_999, 9_999_999]);
        assert_eq!(ints("12345678,-87654321"), vec![12_345_678, -87_654_321]);
        assert_eq!(ints("10,100,1000,-1"), vec![10, 100, 1000, -1]);
        assert_eq!(ints("5 ,\n6"), vec![5, 6]);
        // Whitespace after the comma that ends a short integer.
        assert_eq!(ints("5,\n6, 7,\t8"), vec![5, 6, 7, 8]);
        assert_eq!(ints("-5,  -6"), vec![-5, -6]);
        // -0 is a double, negative zero.
        match JsonNumbers::parse_array(&wrap("-0")) {
            Some(JsonNumbers::F64(v)) => assert!(v[4] == 0.0 && v[4].is_sign_negative()),
            other => panic!("{other:?}"),
        }
        for bad in [
            "01", "-01", "00", "-", "1-", "0x1", "1,,2", "1a", "1:", "1/", "1, ,2",
        ] {
            assert_eq!(JsonNumbers::parse_array(&wrap(bad)), None, "{bad}");
        }
    }

    #[test]
    fn anything_not_an_array_of_numbers_is_none() {
        for text in [
            "",
            "1",
            "[",
            "[1",
            "[1,]",
            "[1234567,1234567,]",
            "[1234567, 1234567, ]",
            "[,1]",
            "[1 2]",
            "[1,2]x",
            "[1],",
            "[01]",
            "[-]",
            "[+1]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[1e+]",
            "[--1]",
            "[NaN]",
            "[Infinity]",
            "[1,\"2\"]",
            "[null]",
            "[true]",
            "[1,[2]]",
            "[{}]",
            "{\"a\":1}",
            "[1,2,null]",
        ] {
            assert_eq!(JsonNumbers::parse_array(text), None, "{text:?}");
        }
    }
}
