//! Subscriptions (PROTOCOL §6–7): durable cursors over many streams that wake workers.
//!
//! * [`Subscriptions`] manages them (create or confirm, get, delete, explicit membership) and
//!   speaks the lease protocol (claim, ack, release, webhook callback).
//! * [`PullWakeWorker`] turns a pull-wake subscription into a work queue.
//! * [`WebhookVerifier`] (feature `webhooks`, on by default) checks signed webhook deliveries.

mod manage;
mod types;
#[cfg(feature = "webhooks")]
mod webhook;
mod worker;

pub use manage::{Subscriptions, SubscriptionsBuilder};
pub use types::{
    Ack, AckResult, DeliveryMode, LinkType, SignatureCheck, SigningInfo, StreamLink, Subscription,
    SubscriptionConfig, SubscriptionErrorCode, SubscriptionStatus, Token, Wake, WakeEvent,
    WakeStream, WebhookInfo,
};
#[cfg(feature = "webhooks")]
pub use webhook::{WebhookVerifier, WEBHOOK_DONE};
pub use worker::{Job, PullWakeWorker, StopSignal, WakeOutcome, WorkItem, WorkQueue};
