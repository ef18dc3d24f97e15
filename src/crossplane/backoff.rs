//! Per-object exponential backoff after failed reconciles: 1 s, 2 s, 4 s … capped at 60 s, reset
//! by the next success. Per object, so one broken resource never slows the others down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// The delay after the `n`-th consecutive failure (n starts at 0).
pub fn delay(base: Duration, max: Duration, n: u32) -> Duration {
    base.checked_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max)
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        let d = delay(self.base, self.max, *n);
        *n = n.saturating_add(1);
        d
    }

    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let b = Backoff::default();
        let got: Vec<u64> = (0..8).map(|_| b.failed("a").as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.failed("b").as_secs(), 1, "per object");
        b.succeeded("a");
        assert_eq!(b.failed("a").as_secs(), 1);
        assert_eq!(
            delay(Duration::from_secs(1), Duration::from_secs(60), 200).as_secs(),
            60
        );
    }
}
