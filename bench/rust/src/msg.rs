//! The benchmark messages. Every contender, in every language, builds the same bytes.

/// JSON message `i`, padded with `x` to `size` bytes (when `size` allows):
/// `{"i":7,"type":"bench.event","user":"u7","p":"xxxx"}`.
pub fn json_message(i: u64, size: usize) -> String {
    let head = format!(
        "{{\"i\":{i},\"type\":\"bench.event\",\"user\":\"u{}\",\"p\":\"",
        i % 1000
    );
    let pad = size.saturating_sub(head.len() + 2);
    let mut s = String::with_capacity(head.len() + pad + 2);
    s.push_str(&head);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// Binary message `i` of `size` bytes (at least 8): `i` as big-endian u64, then the byte
/// `b'a' + i % 26` repeated.
pub fn bytes_message(i: u64, size: usize) -> Vec<u8> {
    let mut v = vec![b'a' + (i % 26) as u8; size.max(8)];
    v[..8].copy_from_slice(&i.to_be_bytes());
    v
}

/// Only the field the verifiers and readers need.
#[derive(serde::Deserialize)]
pub struct Id {
    pub i: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_message_has_the_requested_size() {
        for i in [0, 9, 12_345, 999_999] {
            let m = json_message(i, 100);
            assert_eq!(m.len(), 100, "{m}");
            let id: Id = serde_json::from_str(&m).unwrap();
            assert_eq!(id.i, i);
        }
        assert_eq!(
            json_message(3, 0),
            r#"{"i":3,"type":"bench.event","user":"u3","p":""}"#
        );
    }

    #[test]
    fn bytes_message_starts_with_its_index() {
        let m = bytes_message(300, 64);
        assert_eq!(m.len(), 64);
        assert_eq!(u64::from_be_bytes(m[..8].try_into().unwrap()), 300);
    }
}
