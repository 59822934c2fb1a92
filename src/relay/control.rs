//! The management plane's way into the relay threads. The telnet CLI, the
//! Prometheus exporter, the web admin and the signal handler never touch a
//! thread's sessions directly: they post a [`Control`] to the thread's
//! [`ControlBox`] and wake it; the thread answers between two poll rounds.
//! Nothing here is on the packet path, and no lock is held by a relay thread
//! except for the moment it takes its queued requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::core::admin::{session_thread, SessionInfo, Traffic, TrafficKey};
use crate::core::{CoreConfig, ServerStats, Transport};
use crate::relay::udp::UdpStats;

/// A request to one relay thread.
pub enum Control {
    /// Describe this thread: counters always, sessions when asked.
    Report { sessions: bool, reply: SyncSender<ThreadReport> },
    /// End a session (CLI `cs`, web admin); answers whether it was here.
    Cancel { session_id: u64, reply: SyncSender<bool> },
    /// Use these settings from now on (SIGHUP, CLI `tc`/`cc`).
    Reconfigure(Arc<CoreConfig>),
}

/// One thread's state as the management plane sees it.
#[derive(Debug, Clone, Default)]
pub struct ThreadReport {
    pub thread: u32,
    /// Allocations by client transport.
    pub allocations: Vec<(Transport, usize)>,
    /// Filled only when the request asked for sessions.
    pub sessions: Vec<SessionInfo>,
    pub stats: ServerStats,
    pub udp: UdpStats,
    /// Traffic by realm (and user): finished plus live sessions.
    pub traffic: HashMap<TrafficKey, Traffic>,
    /// Open TCP/TLS client connections (with or without an allocation).
    pub connections: usize,
    /// DTLS sessions.
    pub dtls_sessions: usize,
    /// Process-wide fast-path switches as this thread sees them (they only go
    /// from on to off, when the kernel refuses them).
    pub recvmmsg: bool,
    pub sendmmsg: bool,
    pub gso: bool,
}

impl ThreadReport {
    pub fn allocation_count(&self) -> usize {
        self.allocations.iter().map(|(_, n)| n).sum()
    }
}

/// One thread's queue of management requests.
pub struct ControlBox {
    queue: Mutex<Vec<Control>>,
    waker: Arc<Waker>,
}

impl ControlBox {
    pub fn new(waker: Arc<Waker>) -> Self {
        ControlBox { queue: Mutex::new(Vec::new()), waker }
    }

    fn post(&self, c: Control) -> bool {
        match self.queue.lock() {
            Ok(mut q) => q.push(c),
            Err(_) => return false,
        }
        self.waker.wake().is_ok()
    }

    /// The requests queued so far (called by the owning thread when woken).
    pub fn take(&self) -> Vec<Control> {
        match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => Vec::new(),
        }
    }
}

/// A handle on every relay thread, cheap to clone and to share with the
/// management threads.
#[derive(Clone)]
pub struct Management {
    boxes: Arc<Vec<ControlBox>>,
    draining: Arc<AtomicBool>,
}

/// How long a management request waits for the threads by default.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

impl Management {
    pub fn new(boxes: Arc<Vec<ControlBox>>, draining: Arc<AtomicBool>) -> Self {
        Management { boxes, draining }
    }

    pub fn threads(&self) -> usize {
        self.boxes.len()
    }

    /// Every thread's report; a thread that does not answer within `timeout`
    /// is left out (its counters are missing from that scrape, nothing more).
    pub fn reports(&self, sessions: bool, timeout: Duration) -> Vec<ThreadReport> {
        let (tx, rx) = sync_channel(self.boxes.len().max(1));
        let mut asked = 0;
        for b in self.boxes.iter() {
            if b.post(Control::Report { sessions, reply: tx.clone() }) {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(asked);
        while out.len() < asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) => out.push(r),
                Err(_) => break,
            }
        }
        out.sort_by_key(|r| r.thread);
        out
    }

    /// Every session of every thread, oldest first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self.reports(true, REPLY_TIMEOUT).into_iter().flat_map(|r| r.sessions).collect();
        all.sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then(a.session_id.cmp(&b.session_id)));
        all
    }

    /// Allocations on the whole server.
    pub fn allocation_count(&self) -> usize {
        self.reports(false, REPLY_TIMEOUT).iter().map(ThreadReport::allocation_count).sum()
    }

    /// End session `session_id`; false when no thread has it.
    pub fn cancel(&self, session_id: u64) -> bool {
        let (tx, rx) = sync_channel(self.boxes.len().max(1));
        // The id names its thread; an id from elsewhere is asked everywhere.
        let targets: Vec<&ControlBox> = match session_thread(session_id).and_then(|t| self.boxes.get(t)) {
            Some(b) => vec![b],
            None => self.boxes.iter().collect(),
        };
        let mut asked = 0;
        for b in targets {
            if b.post(Control::Cancel { session_id, reply: tx.clone() }) {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        for _ in 0..asked {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(_) => break,
            }
        }
        false
    }

    /// New settings for every thread.
    pub fn reconfigure(&self, cfg: Arc<CoreConfig>) {
        for b in self.boxes.iter() {
            b.post(Control::Reconfigure(Arc::clone(&cfg)));
        }
    }

    /// Enter or leave drain mode: new Allocates get 403 while it is on.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
