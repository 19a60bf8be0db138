//! The producer's session and sequencing rules as pure decisions: no IO, no clock, no queue.
//!
//! The state machine of `machine.rs` owns batches and sequence numbers; for every answer of
//! the server it asks these functions what the answer means and applies the result. Keeping
//! each rule here lets it be tested on its own (see the tests below), including the cases where
//! another session of the same producer id is writing.

use std::time::Duration;

use tokio::time::Instant;

use super::MAX_PROTOCOL_INT;
use crate::error::{CauseKind, Error};

/// Epochs auto-claim may take in one session: a server that fences every claim, or two
/// sessions that both start without an acknowledgement, cannot make it claim forever.
pub(crate) const MAX_AUTO_CLAIMS: u32 = 5;
/// Times one batch may be sent again because of the server's sequencing answers (a 409 naming
/// the sequence just sent, a 409 older than an acknowledgement, gap repairs, waiting for an
/// earlier batch); past it the batch fails.
pub(crate) const MAX_PROTOCOL_RESENDS: u32 = 64;
/// A warning is logged when a batch has been resent this many times, and at each doubling.
pub(crate) const RESEND_WARNING: u32 = 8;

/// What a success answer (200, or 204 for a duplicate) means for the batch it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ack {
    /// Stored now (200).
    Stored,
    /// A duplicate of an earlier attempt of this very batch whose answer was lost: stored.
    OwnDuplicate,
    /// A duplicate this session never sent: another session of the producer id wrote this
    /// sequence in this epoch, and this batch is not stored.
    Foreign,
}

/// Classifies a success answer.
///
/// `sent_here` counts the requests this batch made under its current (epoch, sequence),
/// including the one answered; `max_sent` is the highest sequence this session sent in the
/// epoch; `server_seq` is the `Producer-Seq` of a 204 (the highest sequence the server holds).
pub(crate) fn classify_ack(
    duplicate: bool,
    sent_here: u32,
    server_seq: Option<u64>,
    max_sent: Option<u64>,
) -> Ack {
    if !duplicate {
        return Ack::Stored;
    }
    // A first attempt cannot be a duplicate of itself.
    if sent_here <= 1 {
        return Ack::Foreign;
    }
    // The server holds a sequence this session never sent in this epoch.
    if server_seq.is_some_and(|s| max_sent.is_none_or(|m| s > m)) {
        return Ack::Foreign;
    }
    Ack::OwnDuplicate
}

/// Whether a failed attempt certainly stored nothing: the server turned it away before
/// handling it (429, 503), or no connection was made. Such an attempt does not count as one
/// that may have stored the batch, so a 204 to the next one is not taken for its duplicate.
/// Everything else (a reset, a timeout, another 5xx) may have come after the server stored it.
pub(crate) fn never_stored(err: &Error) -> bool {
    match err {
        Error::RateLimited { .. } | Error::ServerError { status: 503, .. } => true,
        Error::Network {
            source: Some(cause),
            ..
        } => matches!(
            cause.kind(),
            CauseKind::ConnectionRefused | CauseKind::Connect
        ),
        _ => false,
    }
}

/// Whether a 400 may be the protocol's answer to a new epoch that does not start at sequence 0
/// rather than a refusal of the batch: the epoch has no acknowledgement yet (every batch before
/// this one failed, none confirmed stored) and the batch is not at sequence 0. The batch and
/// the later ones are then moved down to start at 0; a batch the server really refuses gets
/// the 400 again at sequence 0, where it fails.
pub(crate) fn may_be_unstarted_epoch(epoch_confirmed: bool, seq: u64) -> bool {
    !epoch_confirmed && seq > 0
}

/// `now + after`, or about a century later when that cannot be represented (a duration given
/// as "forever", `Duration::MAX`): a deadline or linger so far off never comes.
pub(crate) fn instant_after(now: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(after)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// Where a session stands for claiming a new epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing {
    pub(crate) auto_claim: bool,
    /// Whether any batch of this session was acknowledged: it owns its epoch then.
    pub(crate) acked_any: bool,
    /// Epochs auto-claim has taken so far.
    pub(crate) claims: u32,
    /// A claim is already planned (waiting for the requests in flight).
    pub(crate) pending: bool,
}

/// What to do when the server says another session owns or shares the epoch (a 403 naming a
/// newer epoch, or an [`Ack::Foreign`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Move to `epoch` once the requests in flight have answered; `new` says whether this
    /// starts a claim (it counts towards [`MAX_AUTO_CLAIMS`]) or joins the planned one.
    To { epoch: u64, new: bool },
    /// Auto-claim is off, or the session owns its epoch already: the newest claim wins and
    /// this session is fenced.
    Fenced,
    /// Auto-claim used up its claims.
    Exhausted,
    /// No epoch above `above` is left below 2^53-1.
    NoEpochLeft,
}

/// Decides a claim above the epoch `above` (the larger of the session's epoch and the one
/// the server named).
pub(crate) fn decide_claim(s: Standing, above: u64) -> Claim {
    if !s.auto_claim || s.acked_any {
        return Claim::Fenced;
    }
    if !s.pending && s.claims >= MAX_AUTO_CLAIMS {
        return Claim::Exhausted;
    }
    match next_epoch(above) {
        Some(epoch) => Claim::To {
            epoch,
            new: !s.pending,
        },
        None => Claim::NoEpochLeft,
    }
}

/// The epoch after `above`, if the protocol has one.
pub(crate) fn next_epoch(above: u64) -> Option<u64> {
    above.checked_add(1).filter(|e| *e <= MAX_PROTOCOL_INT)
}

/// What a 409 naming `expected` means for the batch sent with `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gap {
    /// The server names the very sequence it was sent: a backed-off, bounded resend.
    ResendSame,
    /// The server expects a later sequence: this batch's number was passed over; it fails.
    Fail,
    /// An earlier live batch holds `expected..seq`: wait for it, then send again.
    Wait,
    /// The answer is older than an acknowledgement already received: a backed-off resend.
    ResendStale,
    /// The sequences `expected..seq` belong to batches that failed unstored: renumber this
    /// batch and the later ones down by this much.
    Shift(u64),
}

/// Decides a 409 sequence gap. `earlier_live` says whether a live batch before this one holds
/// a sequence in `expected..seq`; `acked_max` is the highest acknowledged sequence.
pub(crate) fn on_gap(expected: u64, seq: u64, earlier_live: bool, acked_max: Option<u64>) -> Gap {
    if expected == seq {
        return Gap::ResendSame;
    }
    if expected > seq {
        return Gap::Fail;
    }
    if acked_max.is_some_and(|a| a >= expected) {
        return Gap::ResendStale;
    }
    if earlier_live {
        return Gap::Wait;
    }
    Gap::Shift(seq - expected)
}

/// Whether a batch resent for the `resends`-th time (counting this one) may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    Go,
    /// Like `Go`, and worth a warning: the batch has been resent repeatedly.
    GoAndWarn,
    /// Over [`MAX_PROTOCOL_RESENDS`].
    OverBudget,
    /// Its backoff would end after the batch's delivery deadline.
    PastDeadline,
}

/// Decides a resend given its count and whether its backoff ends past the deadline.
pub(crate) fn resend(resends: u32, past_deadline: bool) -> Resend {
    if resends > MAX_PROTOCOL_RESENDS {
        Resend::OverBudget
    } else if past_deadline {
        Resend::PastDeadline
    } else if resends >= RESEND_WARNING && resends.is_power_of_two() {
        Resend::GoAndWarn
    } else {
        Resend::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_200_is_stored() {
        assert_eq!(classify_ack(false, 1, Some(0), Some(0)), Ack::Stored);
        assert_eq!(classify_ack(false, 3, None, None), Ack::Stored);
    }

    #[test]
    fn a_204_on_a_first_attempt_is_another_sessions_write() {
        // A restarted writer at the same epoch: its first batch (seq 0) is answered 204.
        assert_eq!(classify_ack(true, 1, Some(9_999), Some(0)), Ack::Foreign);
        assert_eq!(classify_ack(true, 1, None, Some(0)), Ack::Foreign);
        // Even when the server's sequence is not above ours.
        assert_eq!(classify_ack(true, 1, Some(3), Some(5)), Ack::Foreign);
    }

    #[test]
    fn a_204_after_a_lost_answer_is_our_own_duplicate() {
        assert_eq!(classify_ack(true, 2, Some(4), Some(4)), Ack::OwnDuplicate);
        assert_eq!(classify_ack(true, 2, None, Some(4)), Ack::OwnDuplicate);
        assert_eq!(classify_ack(true, 5, Some(2), Some(7)), Ack::OwnDuplicate);
    }

    #[test]
    fn a_204_naming_a_sequence_we_never_sent_is_another_sessions_write() {
        // A resend after a network error meets the other session's data.
        assert_eq!(classify_ack(true, 2, Some(5), Some(4)), Ack::Foreign);
        assert_eq!(classify_ack(true, 2, Some(0), None), Ack::Foreign);
    }

    fn standing(auto_claim: bool, acked_any: bool, claims: u32, pending: bool) -> Standing {
        Standing {
            auto_claim,
            acked_any,
            claims,
            pending,
        }
    }

    #[test]
    fn without_auto_claim_a_newer_epoch_fences() {
        assert_eq!(
            decide_claim(standing(false, false, 0, false), 3),
            Claim::Fenced
        );
    }

    #[test]
    fn auto_claim_at_session_start_takes_the_next_epoch() {
        assert_eq!(
            decide_claim(standing(true, false, 0, false), 3),
            Claim::To {
                epoch: 4,
                new: true
            }
        );
        // A second 403 while the claim waits for requests in flight joins it.
        assert_eq!(
            decide_claim(standing(true, false, 1, true), 6),
            Claim::To {
                epoch: 7,
                new: false
            }
        );
    }

    #[test]
    fn a_session_that_owns_its_epoch_never_claims_back() {
        // The newest claim wins: no ping-pong between two live writers.
        assert_eq!(
            decide_claim(standing(true, true, 0, false), 1),
            Claim::Fenced
        );
        assert_eq!(
            decide_claim(standing(true, true, 1, true), 1),
            Claim::Fenced
        );
    }

    #[test]
    fn claims_are_bounded() {
        assert_eq!(
            decide_claim(standing(true, false, MAX_AUTO_CLAIMS - 1, false), 0),
            Claim::To {
                epoch: 1,
                new: true
            }
        );
        assert_eq!(
            decide_claim(standing(true, false, MAX_AUTO_CLAIMS, false), 0),
            Claim::Exhausted
        );
    }

    #[test]
    fn epochs_never_overflow() {
        assert_eq!(next_epoch(0), Some(1));
        assert_eq!(next_epoch(MAX_PROTOCOL_INT - 1), Some(MAX_PROTOCOL_INT));
        assert_eq!(next_epoch(MAX_PROTOCOL_INT), None);
        assert_eq!(next_epoch(u64::MAX), None);
        assert_eq!(
            decide_claim(standing(true, false, 0, false), MAX_PROTOCOL_INT),
            Claim::NoEpochLeft
        );
        assert_eq!(
            decide_claim(standing(true, false, 0, false), u64::MAX),
            Claim::NoEpochLeft
        );
    }

    #[test]
    fn gap_rules() {
        // 409 naming the sequence sent.
        assert_eq!(on_gap(4, 4, false, Some(3)), Gap::ResendSame);
        // The server expects a later sequence than this batch's.
        assert_eq!(on_gap(6, 4, false, Some(5)), Gap::Fail);
        // Requests overtook each other: wait for the earlier batch.
        assert_eq!(on_gap(2, 4, true, Some(1)), Gap::Wait);
        // An answer older than an acknowledgement we have.
        assert_eq!(on_gap(2, 4, true, Some(2)), Gap::ResendStale);
        assert_eq!(on_gap(2, 4, false, Some(3)), Gap::ResendStale);
        // The earlier sequences failed unstored: close the hole.
        assert_eq!(on_gap(2, 5, false, Some(1)), Gap::Shift(3));
        assert_eq!(on_gap(0, 5, false, None), Gap::Shift(5));
    }

    #[test]
    fn resends_are_bounded_by_budget_and_deadline() {
        assert_eq!(resend(1, false), Resend::Go);
        assert_eq!(resend(RESEND_WARNING, false), Resend::GoAndWarn);
        assert_eq!(resend(RESEND_WARNING + 1, false), Resend::Go);
        assert_eq!(resend(2 * RESEND_WARNING, false), Resend::GoAndWarn);
        assert_eq!(resend(1, true), Resend::PastDeadline);
        assert_eq!(resend(MAX_PROTOCOL_RESENDS, false), Resend::GoAndWarn);
        assert_eq!(resend(MAX_PROTOCOL_RESENDS + 1, false), Resend::OverBudget);
        assert_eq!(resend(u32::MAX, true), Resend::OverBudget);
    }
}
