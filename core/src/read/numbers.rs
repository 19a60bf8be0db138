//! The values of a JSON array of numbers, as machine numbers.
//!
//! A picked read of a numeric member (`field: "i"`) yields array texts such as `[1,2,3]`. A
//! binding whose language stores numbers unboxed (JavaScript's arrays, Kotlin's `DoubleArray`)
//! builds those faster from machine numbers than by handing the text to its JSON parser: in
//! Node, `JSON.parse` of a million integers took 50 ms and 9,300 page faults, a loop over an
//! `Int32Array` 10 ms and 2,000 (BENCHMARKS.md, round 27).

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
        let b = text.as_bytes();
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i = ws(b, i + 1);
        if b.get(i) == Some(&b']') {
            return (ws(b, i + 1) == b.len()).then_some(JsonNumbers::I32(Vec::new()));
        }
        // Each number takes a byte and a comma but the last: the count, at most.
        let cap = b.len() / 2 + 1;
        let mut ints: Vec<i32> = Vec::with_capacity(cap);
        let mut floats: Option<Vec<f64>> = None;
        loop {
            let (n, end) = number(b, i)?;
            match (&mut floats, n) {
                (None, Number::Int(v)) => ints.push(v),
                (Some(f), Number::Int(v)) => f.push(f64::from(v)),
                (Some(f), Number::Float(v)) => f.push(v),
                (None, Number::Float(v)) => {
                    let mut f = Vec::with_capacity(cap);
                    f.extend(ints.iter().map(|&x| f64::from(x)));
                    f.push(v);
                    ints = Vec::new();
                    floats = Some(f);
                }
            }
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b']') if ws(b, i + 1) == b.len() => break,
                _ => return None,
            }
        }
        Some(match floats {
            Some(mut f) => {
                f.shrink_to_fit();
                JsonNumbers::F64(f)
            }
            None => {
                ints.shrink_to_fit();
                JsonNumbers::I32(ints)
            }
        })
    }
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
    // Up to 18 digits cannot overflow a u64.
    let mut acc: u64 = 0;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i - digits < 18 {
            acc = acc * 10 + u64::from(d);
        }
        i += 1;
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
    fn anything_not_an_array_of_numbers_is_none() {
        for text in [
            "",
            "1",
            "[",
            "[1",
            "[1,]",
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
