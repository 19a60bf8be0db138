//! Forwards the core's `tracing` events to Python's `logging` (logger `durable_streams_client`).
//!
//! A global subscriber is installed when the module loads. Whether an event is forwarded is
//! decided by one atomic load, against the logger's effective level as read at the start of the
//! last call into the package ([`refresh`]); so with logging at its default level (WARNING) the
//! core's debug and info events cost nothing, and a level set by the application takes effect
//! from its next call. Only events of the core (target `durable_streams_client`) are forwarded.
//! Events of runtime threads are dropped once the interpreter is exiting ([`runtime::attach`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::runtime;

/// The most verbose tracing level forwarded: 0 none, 1 error ... 5 trace.
static MAX_RANK: AtomicU8 = AtomicU8::new(0);
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const TARGET: &str = "durable_streams_client";

/// Installs the forwarding subscriber, unless the process already has a global one.
pub(crate) fn install(py: Python<'_>) {
    // Another global subscriber can only come from Rust code in the same library, which has
    // none: an error here just means the subscriber is already in place.
    let _ = tracing::subscriber::set_global_default(LoggingSubscriber);
    refresh(py);
}

/// Reads the logger's effective level again.
pub(crate) fn refresh(py: Python<'_>) {
    let level = logger(py)
        .and_then(|l| l.call_method0("getEffectiveLevel"))
        .and_then(|v| v.extract::<u32>())
        .unwrap_or(u32::MAX);
    // logging levels: DEBUG 10, INFO 20, WARNING 30, ERROR 40; tracing's TRACE is below DEBUG.
    let rank = match level {
        0..=5 => 5,
        6..=10 => 4,
        11..=20 => 3,
        21..=30 => 2,
        31..=40 => 1,
        _ => 0,
    };
    MAX_RANK.store(rank, Ordering::Relaxed);
}

/// Logs a warning of the binding itself, from a thread attached to the interpreter.
pub(crate) fn warn(py: Python<'_>, message: &str) {
    if let Ok(l) = logger(py) {
        // A failing handler is logging's business.
        let _ = l.call_method1("warning", (message,));
    }
}

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", (TARGET,))
                .map(Bound::unbind)
        })
        .map(|l| l.bind(py))
}

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn python_level(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// A subscriber with no span support (the core emits events only).
struct LoggingSubscriber;

impl Subscriber for LoggingSubscriber {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target().starts_with(TARGET) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        rank(metadata.level()) <= MAX_RANK.load(Ordering::Relaxed)
            && metadata.target().starts_with(TARGET)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let level = python_level(event.metadata().level());
        // Dropped when a runtime thread may no longer enter Python (the interpreter is exiting).
        runtime::attach(|py| {
            if let Ok(l) = logger(py) {
                // A failing handler is logging's business; it reports through its own hooks.
                let _ = l.call_method1("log", (level, line.text()));
            }
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The event's message followed by its other fields as `name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn text(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}
