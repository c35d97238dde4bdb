//! The adaptive (AIMD) limit on requests in flight: a 429 halves it and pauses every worker
//! for `Retry-After`; each success grows it back by 1/limit, up to the configured concurrency.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Adaptive (AIMD) limit on requests in flight, with a shared pause after a 429.
pub(super) struct Limiter {
    pub(super) state: Mutex<LimState>,
    cv: Condvar,
    max: usize,
}

pub(super) struct LimState {
    limit: f64,
    in_flight: usize,
    paused_until: Option<Instant>,
    pub(super) min_seen: usize,
}

pub(super) struct Permit<'a>(&'a Limiter);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.in_flight -= 1;
        self.0.cv.notify_all();
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked cannot leave these counters in a state worth refusing.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limiter {
    pub(super) fn new(max: usize) -> Limiter {
        Limiter {
            state: Mutex::new(LimState { limit: max as f64, in_flight: 0, paused_until: None, min_seen: max }),
            cv: Condvar::new(),
            max,
        }
    }

    pub(super) fn acquire(&self) -> Permit<'_> {
        let mut s = lock(&self.state);
        loop {
            let now = Instant::now();
            match s.paused_until {
                Some(t) if t > now => {
                    s = self.cv.wait_timeout(s, t - now).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
                }
                _ if (s.in_flight as f64) < s.limit.floor().max(1.0) => {
                    s.in_flight += 1;
                    return Permit(self);
                }
                _ => s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Additive increase: one more slot per `limit` successes.
    pub(super) fn success(&self) {
        let mut s = lock(&self.state);
        s.limit = (s.limit + 1.0 / s.limit).min(self.max as f64);
        self.cv.notify_all();
    }

    /// Multiplicative decrease and a pause for everyone.
    pub(super) fn throttle(&self, pause: Duration) {
        let mut s = lock(&self.state);
        s.limit = (s.limit / 2.0).max(1.0);
        s.min_seen = s.min_seen.min(s.limit.floor() as usize);
        let until = Instant::now() + pause;
        s.paused_until = Some(s.paused_until.map_or(until, |t| t.max(until)));
        self.cv.notify_all();
    }

    pub(super) fn limit(&self) -> f64 {
        lock(&self.state).limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_halves_on_throttle_and_grows_back_additively() {
        let l = Limiter::new(8);
        l.throttle(Duration::ZERO);
        assert_eq!(l.limit(), 4.0);
        l.throttle(Duration::ZERO);
        l.throttle(Duration::ZERO);
        l.throttle(Duration::ZERO);
        assert_eq!(l.limit(), 1.0, "never below one");
        for _ in 0..3 {
            l.success();
        }
        assert!(l.limit() > 2.0 && l.limit() < 3.0, "{}", l.limit());
        for _ in 0..1000 {
            l.success();
        }
        assert_eq!(l.limit(), 8.0, "capped at the configured concurrency");
        // A pause holds every acquirer back.
        l.throttle(Duration::from_millis(150));
        let t = Instant::now();
        drop(l.acquire());
        assert!(t.elapsed() >= Duration::from_millis(140), "{:?}", t.elapsed());
    }
}
