//! Time as the core sees it: passed in by the caller, never read here.

/// A point in time given to every core entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Now {
    /// Monotonic milliseconds since an arbitrary origin (timers).
    pub ms: u64,
    /// Wall-clock unix seconds (nonces, REST API expiry).
    pub unix: u64,
}

impl Now {
    pub fn new(ms: u64, unix: u64) -> Self {
        Now { ms, unix }
    }

    /// The same instant plus `secs` seconds on both clocks (for tests).
    pub fn plus_secs(self, secs: u64) -> Self {
        Now { ms: self.ms + secs * 1000, unix: self.unix + secs }
    }

    pub fn plus_ms(self, ms: u64) -> Self {
        Now { ms: self.ms + ms, unix: self.unix + ms / 1000 }
    }
}
