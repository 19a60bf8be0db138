//! The shared HTTP client: connection pool, timeouts, TLS, proxies, redirects.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};

/// A configured HTTP client shared by any number of stream handles and producers.
///
/// Cloning is cheap (an `Arc`). Handles built without an explicit client share one process-wide
/// default ([`Client::shared`]), so they share its connection pool.
///
/// Defaults: connect timeout 10 s; request timeout 30 s for every request that is not a live
/// read; long-poll requests get their own timeout (90 s by default, above the usual server
/// long-poll of 20–60 s); SSE connections have no total timeout. TLS is rustls with the
/// web-pki roots and certificates are always verified unless
/// [`ClientBuilder::danger_accept_invalid_certs`] is set. Proxies come from the environment
/// (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`). HTTP/2 is used where the server offers it through
/// ALPN. Redirects are followed within the same origin only, so credentials never travel to
/// another host; [`ClientBuilder::follow_cross_origin_redirects`] changes that (reqwest then
/// strips `Authorization` and `Cookie` on the way).
///
/// ```
/// use std::time::Duration;
/// use durable_streams_client::Client;
/// let client = Client::builder()
///     .request_timeout(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    http: reqwest::Client,
    request_timeout: Duration,
    long_poll_timeout: Duration,
}

impl Client {
    /// A client with the default settings.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder for a client with custom settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The process-wide default client, built once.
    pub fn shared() -> Result<Self> {
        static SHARED: OnceLock<Result<Client>> = OnceLock::new();
        SHARED.get_or_init(Client::new).clone()
    }

    /// Wraps a caller's own `reqwest::Client` (its timeouts, TLS, proxy and redirect settings
    /// are kept as they are); `request_timeout` and `long_poll_timeout` still apply per request.
    pub fn from_reqwest(http: reqwest::Client) -> Self {
        let d = ClientBuilder::default();
        Self {
            inner: Arc::new(ClientInner {
                http,
                request_timeout: d.request_timeout,
                long_poll_timeout: d.long_poll_timeout,
            }),
        }
    }

    /// The underlying `reqwest::Client`.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The timeout of requests that are not live reads.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// The timeout of one long-poll request.
    pub fn long_poll_timeout(&self) -> Duration {
        self.inner.long_poll_timeout
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect_timeout: Duration,
    request_timeout: Duration,
    long_poll_timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    accept_invalid_certs: bool,
    cross_origin_redirects: bool,
    user_agent: String,
    http: Option<reqwest::Client>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            long_poll_timeout: Duration::from_secs(90),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
            accept_invalid_certs: false,
            cross_origin_redirects: false,
            user_agent: concat!("durable-streams-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            http: None,
        }
    }
}

impl ClientBuilder {
    /// Timeout for establishing a connection (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Timeout for a request that is not a long-poll (default 30 s): for a write, the whole
    /// request; for a read (catch-up or SSE), the wait for the response head and then for each
    /// piece of its body. A read's body has no total deadline, since a large one takes long;
    /// cancel the read (or drop it) to bound its total time.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Timeout for one long-poll request's head, and then for each piece of its body (default
    /// 90 s). Keep it above the server's long-poll wait, or idle long-polls end as timeouts
    /// (which are retried, so only efficiency suffers).
    pub fn long_poll_timeout(mut self, d: Duration) -> Self {
        self.long_poll_timeout = d;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s).
    pub fn pool_idle_timeout(mut self, d: Duration) -> Self {
        self.pool_idle_timeout = d;
        self
    }

    /// How many idle connections are kept per host (default 64).
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Accepts any TLS certificate. Only for tests against self-signed servers.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }

    /// Follows redirects to other origins too (default: same origin only).
    pub fn follow_cross_origin_redirects(mut self, yes: bool) -> Self {
        self.cross_origin_redirects = yes;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Uses this `reqwest::Client` instead of building one; the connection, TLS, proxy and
    /// redirect settings of this builder are then ignored.
    pub fn reqwest_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        if self.request_timeout.is_zero() || self.long_poll_timeout.is_zero() {
            return Err(Error::invalid("timeouts must be greater than zero"));
        }
        let http = match self.http {
            Some(h) => h,
            None => {
                let cross = self.cross_origin_redirects;
                let policy = reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() >= 10 {
                        return attempt.error("too many redirects");
                    }
                    let same = attempt
                        .previous()
                        .first()
                        .is_some_and(|first| first.origin() == attempt.url().origin());
                    if same || cross {
                        attempt.follow()
                    } else {
                        attempt.stop()
                    }
                });
                reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout)
                    .pool_idle_timeout(self.pool_idle_timeout)
                    .pool_max_idle_per_host(self.pool_max_idle_per_host)
                    .tcp_nodelay(true)
                    .danger_accept_invalid_certs(self.accept_invalid_certs)
                    .redirect(policy)
                    .user_agent(self.user_agent)
                    .build()
                    .map_err(|e| Error::invalid(format!("could not build the HTTP client: {e}")))?
            }
        };
        Ok(Client {
            inner: Arc::new(ClientInner {
                http,
                request_timeout: self.request_timeout,
                long_poll_timeout: self.long_poll_timeout,
            }),
        })
    }
}
