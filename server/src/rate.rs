//! [`MessageBudget`]: how many frames one socket may send per second — a token bucket on tokio's
//! clock (so virtual, and deterministic, inside the simulator).
//!
//! A client within its rate is never affected. Past it, the frame is refused with an error frame
//! `rate_limited` (the client is told, and can slow down); a client that keeps sending a whole
//! second's budget past that is closed with 1008 (policy), so a flood costs the server one
//! second's worth of parsing per socket and never reaches the core.

use tokio::time::Instant;

/// What to do with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget: handle it.
    Take,
    /// Over the budget: refuse it with an error frame (only the first of a run of refusals is
    /// answered, so a flood gets one error frame, not one per frame).
    Refuse {
        /// Whether this is the first refusal since the client was last within its budget.
        first: bool,
    },
    /// Over the budget for a whole budget more: close the socket.
    Close,
}

/// A token bucket: `per_second` tokens a second, holding at most `per_second`.
#[derive(Debug)]
pub struct MessageBudget {
    per_second: f64,
    tokens: f64,
    at: Instant,
    refused: u32,
}

impl MessageBudget {
    /// A full bucket of `per_second` (at least 1).
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            tokens: per_second,
            at: now,
            refused: 0,
        }
    }

    /// Whether the bucket will be full again at `now` (as if never used).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.per_second
    }

    /// Spends one frame's token, if there is one.
    pub fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            return Verdict::Take;
        }
        self.refused += 1;
        if f64::from(self.refused) > self.per_second {
            Verdict::Close
        } else {
            Verdict::Refuse {
                first: self.refused == 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_refusals_then_close() {
        let t0 = Instant::now();
        let mut b = MessageBudget::new(3, t0);
        for _ in 0..3 {
            assert_eq!(b.take(t0), Verdict::Take);
        }
        assert_eq!(b.take(t0), Verdict::Refuse { first: true });
        assert_eq!(b.take(t0), Verdict::Refuse { first: false });
        assert_eq!(b.take(t0), Verdict::Refuse { first: false });
        assert_eq!(b.take(t0), Verdict::Close);
    }

    #[test]
    fn the_budget_refills_with_time_and_forgives() {
        let t0 = Instant::now();
        let mut b = MessageBudget::new(10, t0);
        for _ in 0..10 {
            b.take(t0);
        }
        assert_eq!(b.take(t0), Verdict::Refuse { first: true });
        // A tenth of a second later there is one token again, and the refusals are forgotten.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(t1), Verdict::Take);
        assert_eq!(b.take(t1), Verdict::Refuse { first: true });
        // A steady 10 a second is always within the budget.
        let mut t = t1 + Duration::from_secs(1);
        for _ in 0..100 {
            t += Duration::from_millis(100);
            assert_eq!(b.take(t), Verdict::Take);
        }
    }
}
