//! Stream offsets: opaque, lexicographically ordered tokens minted by the server.

use std::fmt;
use std::sync::Arc;

/// A position in a stream.
///
/// Offsets are opaque strings chosen by the server; the only thing a client may do with two of
/// them is compare them (byte-wise lexicographic order, which `Ord` implements). Two sentinels
/// exist: [`Offset::beginning`] (`-1`) and [`Offset::now`] (`now`, the current tail).
///
/// ```
/// use durable_streams_client::Offset;
/// let saved = Offset::from("0000000000000000_0000000000000042");
/// assert!(Offset::from("0000000000000000_0000000000000050") > saved);
/// assert_eq!(Offset::beginning().as_str(), "-1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offset(Arc<str>);

impl Offset {
    /// The start of the stream (`-1`).
    pub fn beginning() -> Self {
        Self(Arc::from("-1"))
    }

    /// The current tail of the stream (`now`): skip existing data.
    pub fn now() -> Self {
        Self(Arc::from("now"))
    }

    /// The offset as the string the server sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the sentinels `-1` or `now`.
    pub fn is_sentinel(&self) -> bool {
        matches!(&*self.0, "-1" | "now")
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Offset({:?})", &*self.0)
    }
}

impl From<&str> for Offset {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for Offset {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&String> for Offset {
    fn from(s: &String) -> Self {
        Self(Arc::from(s.as_str()))
    }
}

impl AsRef<str> for Offset {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Default for Offset {
    fn default() -> Self {
        Self::beginning()
    }
}

impl serde::Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::from(&*s))
    }
}
