//! Retry policy: full-jitter exponential backoff that honours `Retry-After`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Result};

/// How failed requests are retried.
///
/// The delay before retry `n` (0-based) is a random value in `[0, min(max_delay,
/// initial_delay * multiplier^n)]` ("full jitter"), but never less than a `Retry-After` the
/// server sent, capped at `max_retry_after`. Only errors for which [`Error::is_retryable`]
/// holds are retried, and every retry counts against `max_retries`, whether its delay came
/// from the backoff or from `Retry-After`.
///
/// The defaults match the reference client: 100 ms initial delay, 60 s maximum, multiplier 1.3,
/// and no limit on the number of retries; a `Retry-After` is honoured up to 60 s.
///
/// ```
/// use std::time::Duration;
/// use durable_streams_client::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .with_initial_delay(Duration::from_millis(50))
///     .with_max_retries(Some(5));
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Upper bound of the first delay.
    pub initial_delay: Duration,
    /// Upper bound of any backoff delay (a `Retry-After` may exceed it, up to
    /// `max_retry_after`).
    pub max_delay: Duration,
    /// Growth factor of the bound, at least 1.
    pub multiplier: f64,
    /// How many retries after the first attempt; `None` means no limit.
    pub max_retries: Option<u32>,
    /// The longest server `Retry-After` honoured: a longer one waits this long instead.
    /// Default: [`DEFAULT_MAX_RETRY_AFTER`] (60 s).
    pub max_retry_after: Duration,
}

/// The longest `Retry-After` value parsed at all (longer ones are read as this).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The default of [`RetryPolicy::max_retry_after`].
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(60),
            multiplier: 1.3,
            max_retries: None,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: Some(0),
            ..Self::default()
        }
    }

    /// Sets the initial delay bound.
    pub fn with_initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    /// Sets the maximum delay bound.
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Sets the multiplier.
    pub fn with_multiplier(mut self, m: f64) -> Self {
        self.multiplier = m;
        self
    }

    /// Sets the retry limit (`None`: unlimited).
    pub fn with_max_retries(mut self, n: Option<u32>) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the longest server `Retry-After` honoured (a longer one waits this long).
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// A policy from plain numbers, as bindings and configuration files carry them: delays in
    /// milliseconds, `max_retries` `None` for unlimited. Every value is checked, and the error
    /// names the option that is wrong in both spellings the bindings use, e.g.
    /// `max_retries (maxRetries)`.
    ///
    /// ```
    /// use durable_streams_client::RetryPolicy;
    /// assert!(RetryPolicy::from_millis(100.0, 5_000.0, 2.0, Some(3)).is_ok());
    /// let err = RetryPolicy::from_millis(100.0, 5_000.0, 2.0, Some(-1)).unwrap_err();
    /// assert!(err.to_string().contains("max_retries"));
    /// ```
    pub fn from_millis(
        initial_delay_ms: f64,
        max_delay_ms: f64,
        multiplier: f64,
        max_retries: Option<i64>,
    ) -> Result<Self> {
        let ms = |name: &str, v: f64| {
            if (0.0..=1e12).contains(&v) {
                Ok(Duration::from_secs_f64(v / 1000.0))
            } else {
                Err(Error::invalid(format!(
                    "{name} must be a finite, non-negative number of milliseconds, got {v}"
                )))
            }
        };
        let max_retries = match max_retries {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                Error::invalid(format!(
                    "max_retries (maxRetries) must be between 0 and {}, got {n}",
                    u32::MAX
                ))
            })?),
        };
        let policy = Self {
            initial_delay: ms("initial_delay_ms (initialDelayMs)", initial_delay_ms)?,
            max_delay: ms("max_delay_ms (maxDelayMs)", max_delay_ms)?,
            multiplier,
            max_retries,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the values: the initial delay must be positive and not exceed the maximum, and
    /// the multiplier must be a finite number ≥ 1.
    pub fn validate(&self) -> Result<()> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(Error::invalid(format!(
                "multiplier must be a finite number >= 1, got {}",
                self.multiplier
            )));
        }
        if self.initial_delay.is_zero() {
            return Err(Error::invalid(
                "initial_delay_ms (initialDelayMs) must be greater than zero",
            ));
        }
        if self.initial_delay > self.max_delay {
            return Err(Error::invalid(format!(
                "max_delay_ms (maxDelayMs) {:?} must not be less than initial_delay_ms (initialDelayMs) {:?}",
                self.initial_delay, self.max_delay
            )));
        }
        Ok(())
    }

    /// Whether retry number `attempt` (0-based) is allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_retries.is_none_or(|m| attempt < m)
    }

    /// The delay before retry number `attempt` (0-based), given the server's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let bound = self.bound(attempt);
        let jittered = if bound.is_zero() {
            Duration::ZERO
        } else {
            let nanos = rand::rng().random_range(0..=bound.as_nanos().min(u64::MAX as u128) as u64);
            Duration::from_nanos(nanos)
        };
        match retry_after {
            Some(ra) => jittered.max(ra.min(self.max_retry_after).min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    fn bound(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.powi(attempt.min(1000) as i32);
        let secs = self.initial_delay.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

/// The request a [`FailedAttempt`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `PUT`: creating a stream.
    Create,
    /// `HEAD`: a stream's metadata.
    Head,
    /// `POST` with data: an append (also a close with a final message, and a streamed append).
    Append,
    /// `POST` with `Stream-Closed: true` and no data.
    Close,
    /// `DELETE`.
    Delete,
    /// `GET`: a read (catch-up, long-poll or SSE).
    Read,
}

impl Operation {
    /// The operation as a lower-case word, e.g. `"append"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Head => "head",
            Self::Append => "append",
            Self::Close => "close",
            Self::Delete => "delete",
            Self::Read => "read",
        }
    }
}

/// A failed attempt of a request, as an [`ErrorHook`](crate::ErrorHook) made with
/// [`ErrorHook::decide`](crate::ErrorHook::decide) (reads) or an [`AttemptObserver`] (a
/// handle's other requests) sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FailedAttempt {
    /// Why the attempt failed.
    pub error: Error,
    /// Failed attempts of this request so far, this one included (1 for the first).
    pub attempt: u32,
    /// Whether the retry policy would try again (the error is retryable and the budget is not
    /// spent).
    pub will_retry: bool,
    /// The request that failed.
    pub operation: Operation,
}

type ObserverFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Told about every failed attempt of a handle's requests (create, head, append, close,
/// delete), whether the retry policy then tries again or gives up: for metrics, logs or a
/// "reconnecting" notice. It cannot change what happens next; the request waits for it before
/// the retry pause (or before failing), so it should be quick.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use durable_streams_client::{AttemptObserver, DurableStream, FailedAttempt};
/// let failures = Arc::new(AtomicU32::new(0));
/// let seen = Arc::clone(&failures);
/// let stream = DurableStream::builder("http://127.0.0.1:4437/v1/stream/s")
///     .on_failed_attempt(AttemptObserver::new(move |f: FailedAttempt| {
///         seen.fetch_add(1, Ordering::Relaxed);
///         async move { eprintln!("{} failed: {}", f.operation.as_str(), f.error) }
///     }))
///     .build();
/// # let _ = stream;
/// ```
#[derive(Clone)]
pub struct AttemptObserver(Arc<dyn Fn(FailedAttempt) -> ObserverFuture + Send + Sync + 'static>);

impl AttemptObserver {
    /// An observer from a function returning a future (awaited before the request goes on).
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(FailedAttempt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self(Arc::new(move |failed| {
            Box::pin(f(failed)) as ObserverFuture
        }))
    }

    pub(crate) async fn call(&self, failed: FailedAttempt) {
        (self.0)(failed).await;
    }
}

impl fmt::Debug for AttemptObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttemptObserver(..)")
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(
                secs.min(MAX_RETRY_AFTER.as_secs_f64()),
            ));
        }
        return None;
    }
    let when = parse_http_date(v)?;
    let now = std::time::SystemTime::now();
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers must send.
fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    // An HTTP date has a four-digit year; any other is refused before the arithmetic, which
    // it could overflow (and a time past what `SystemTime` holds would panic).
    if parts.next()? != "GMT"
        || !(1970..=9999).contains(&year)
        || day == 0
        || day > 31
        || h > 23
        || m > 59
        || sec > 60
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day as i64)).ok()?;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    std::time::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        // Years an HTTP date cannot have: ignored, never an overflow or a panic.
        for year in ["400000000000", "99999999999999999", "10000", "1969", "-5"] {
            let v = format!("Sun, 06 Nov {year} 08:49:37 GMT");
            assert_eq!(parse_retry_after(&v), None, "{v}");
        }
        // The last one it can have: far in the future, so capped.
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn delays_stay_within_bounds() {
        let p = RetryPolicy::default()
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .with_multiplier(2.0);
        for attempt in 0..50 {
            let d = p.delay(attempt, None);
            assert!(d <= Duration::from_secs(1), "attempt {attempt}: {d:?}");
            assert!(d <= p.bound(attempt));
        }
        assert_eq!(p.bound(0), Duration::from_millis(100));
        assert_eq!(p.bound(3), Duration::from_millis(800));
        assert_eq!(p.bound(10), Duration::from_secs(1));
        // Retry-After is a floor, up to max_retry_after.
        assert!(p.delay(0, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        assert!(p.delay(0, Some(MAX_RETRY_AFTER)) <= DEFAULT_MAX_RETRY_AFTER);
        let short = p.with_max_retry_after(Duration::from_millis(300));
        let d = short.delay(0, Some(Duration::from_secs(999_999)));
        assert!(
            d >= Duration::from_millis(100) && d <= Duration::from_millis(300),
            "{d:?}"
        );
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(RetryPolicy::default()
            .with_multiplier(0.5)
            .validate()
            .is_err());
        assert!(RetryPolicy::default()
            .with_multiplier(f64::NAN)
            .validate()
            .is_err());
        assert!(RetryPolicy::default()
            .with_initial_delay(Duration::from_secs(10))
            .with_max_delay(Duration::from_secs(1))
            .validate()
            .is_err());
        assert!(RetryPolicy::none().validate().is_ok());
        for (args, name) in [
            ((0.0, 100.0, 2.0, None), "initialDelayMs"),
            ((-5.0, 100.0, 2.0, None), "initial_delay_ms"),
            ((100.0, 50.0, 2.0, None), "maxDelayMs"),
            ((100.0, 500.0, 0.9, None), "multiplier"),
            ((100.0, 500.0, 2.0, Some(-1)), "maxRetries"),
        ] {
            let err = RetryPolicy::from_millis(args.0, args.1, args.2, args.3).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let p = RetryPolicy::from_millis(10.0, 1000.0, 1.5, Some(2)).unwrap();
        assert_eq!(p.initial_delay, Duration::from_millis(10));
        assert_eq!(p.max_retries, Some(2));
        assert!(!RetryPolicy::none().allows(0));
        assert!(RetryPolicy::default().allows(1_000_000));
    }
}
