//! Settled batch outcomes, kept for receipts.

use std::collections::VecDeque;

use super::Delivery;
use crate::error::{Error, Result};

/// Outcomes kept for receipts.
const OUTCOME_CAP: usize = 65_536;

/// Settled batch outcomes by message range, for receipts.
#[derive(Default)]
pub(crate) struct OutcomeLog {
    /// The first message number still covered.
    start: u64,
    /// `(end, outcome)`: messages from the previous entry's end up to `end` (exclusive).
    entries: VecDeque<(u64, Result<Delivery>)>,
}

impl OutcomeLog {
    pub(super) fn push(&mut self, end: u64, outcome: Result<Delivery>) {
        if self.entries.len() >= OUTCOME_CAP {
            if let Some((e, _)) = self.entries.pop_front() {
                self.start = e;
            }
        }
        self.entries.push_back((end, outcome));
    }

    pub(crate) fn lookup(&self, no: u64) -> Result<Delivery> {
        if no < self.start {
            return Err(Error::invalid(format!(
                "receipt of message {no} awaited too late: the outcomes of only the last \
                 {OUTCOME_CAP} batches are kept"
            )));
        }
        let idx = self.entries.partition_point(|(end, _)| *end <= no);
        match self.entries.get(idx) {
            Some((_, outcome)) => outcome.clone(),
            None => Err(Error::invalid(format!("message {no} has not settled yet"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::Offset;

    fn delivered(seq: u64) -> Result<Delivery> {
        Ok(Delivery {
            offset: Some(Offset::from(format!("0_{seq}"))),
            duplicate: false,
            epoch: 0,
            seq,
        })
    }

    #[test]
    fn outcome_log_finds_ranges_and_forgets_the_oldest() {
        let mut log = OutcomeLog::default();
        log.push(3, delivered(0));
        log.push(4, Err(Error::invalid("bad message")));
        log.push(10, delivered(1));
        assert_eq!(log.lookup(0).unwrap().seq, 0);
        assert_eq!(log.lookup(2).unwrap().seq, 0);
        assert_eq!(
            log.lookup(3).unwrap_err().code(),
            crate::ErrorCode::InvalidArgument
        );
        assert_eq!(log.lookup(9).unwrap().seq, 1);
        assert!(log.lookup(10).is_err(), "not settled yet");
        for i in 0..OUTCOME_CAP as u64 {
            log.push(11 + i, delivered(2 + i));
        }
        assert!(log.lookup(5).unwrap_err().to_string().contains("too late"));
        assert_eq!(log.lookup(10).unwrap().seq, 2);
        assert_eq!(log.entries.len(), OUTCOME_CAP);
    }
}
