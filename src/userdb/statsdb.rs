//! coturn's Redis statistics database (`--redis-statsdb`, `turndb/schema.stats.redis`).
//!
//! Owns the formatting of allocation status and traffic reports and the task
//! that writes them. Relay threads must never wait on Redis, so the entry
//! point is a [`StatsSink`]: a cheap, cloneable handle whose methods put a
//! [`StatsEvent`] on a bounded queue and return at once. When the queue is
//! full (Redis slow or down) the event is dropped and counted. One task on
//! the database runtime drains the queue, connecting and reconnecting with
//! backoff; the first time it reaches Redis it deletes the `status` keys a
//! previous run left behind.
//!
//! Keys (prefix `turn/realm/<realm>/` when the realm is known, else `turn/`):
//!
//! | key | on |
//! |---|---|
//! | `user/<u>/allocation/<id>/status` | SET + PUBLISH `new ...` / `refreshed ...`; DEL + PUBLISH `deleted` |
//! | `user/<u>/allocation/<id>/traffic` (and `/peer`) | PUBLISH `rcvp=, rcvb=, sentp=, sentb=` |
//! | `user/<u>/allocation/<id>/total_traffic` (and `/peer`) | PUBLISH on delete |

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::mpsc;

use super::redis::{scan_keys, RedisSpec};
use super::DbResult;

/// Events queued per sink before new ones are dropped.
pub const DEFAULT_QUEUE: usize = 4096;
/// First wait after a failed connection attempt; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Keys deleted per DEL when cleaning stale status keys.
const DEL_CHUNK: usize = 500;
/// SCAN pattern of every status key this module writes, with or without realm.
pub const STATUS_PATTERN: &str = "turn/*allocation/*/status";

/// Which allocation a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRef {
    /// Empty when the server has no realm for the session.
    pub realm: String,
    pub user: String,
    /// Decimal allocation id as it appears in the key; see [`AllocationRef::format_id`].
    pub id: String,
}

impl AllocationRef {
    /// coturn prints allocation ids as 18 zero-padded decimal digits.
    pub fn format_id(id: u64) -> String {
        format!("{id:018}")
    }

    /// `turn/realm/<realm>/user/<u>/allocation/<id>` or `turn/user/<u>/allocation/<id>`.
    pub fn base_key(&self) -> String {
        if self.realm.is_empty() {
            format!("turn/user/{}/allocation/{}", self.user, self.id)
        } else {
            format!(
                "turn/realm/{}/user/{}/allocation/{}",
                self.realm, self.user, self.id
            )
        }
    }
}

/// What a status line says about an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationStatus {
    /// Seconds.
    pub lifetime: u64,
    /// Client transport as coturn names it: `UDP`, `TCP`, `TLS`, `DTLS`.
    pub transport: String,
    /// Server address the client reached.
    pub local: SocketAddr,
    /// Client address.
    pub remote: SocketAddr,
    /// TLS version or `NONE`.
    pub ssl: String,
    /// TLS cipher or `NONE`.
    pub cipher: String,
}

/// Packet and byte counters of one direction pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    pub rcvp: u64,
    pub rcvb: u64,
    pub sentp: u64,
    pub sentb: u64,
}

impl TrafficCounters {
    /// `rcvp=1, rcvb=2, sentp=3, sentb=4`.
    pub fn payload(&self) -> String {
        format!(
            "rcvp={}, rcvb={}, sentp={}, sentb={}",
            self.rcvp, self.rcvb, self.sentp, self.sentb
        )
    }
}

/// One report for the stats database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsEvent {
    New {
        alloc: AllocationRef,
        status: AllocationStatus,
    },
    Refreshed {
        alloc: AllocationRef,
        status: AllocationStatus,
    },
    /// The allocation is gone; `total` counts the client side, `peer_total` the peer side.
    Deleted {
        alloc: AllocationRef,
        total: TrafficCounters,
        peer_total: TrafficCounters,
    },
    /// Periodic counters of the client side, or of the peer side when `peer`.
    Traffic {
        alloc: AllocationRef,
        peer: bool,
        counters: TrafficCounters,
    },
}

/// One Redis command an event turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsWrite {
    Set { key: String, value: String },
    Del { key: String },
    Publish { channel: String, message: String },
}

fn status_line(word: &str, s: &AllocationStatus) -> String {
    format!(
        "{word} lifetime={}, type={}, local={}, remote={}, ssl={}, cipher={}",
        s.lifetime, s.transport, s.local, s.remote, s.ssl, s.cipher
    )
}

fn with_peer(key: String, peer: bool) -> String {
    if peer {
        key + "/peer"
    } else {
        key
    }
}

impl StatsEvent {
    /// The commands that record this event, in order.
    pub fn writes(&self) -> Vec<StatsWrite> {
        let set_and_publish = |alloc: &AllocationRef, line: String| {
            let key = format!("{}/status", alloc.base_key());
            vec![
                StatsWrite::Set {
                    key: key.clone(),
                    value: line.clone(),
                },
                StatsWrite::Publish {
                    channel: key,
                    message: line,
                },
            ]
        };
        match self {
            StatsEvent::New { alloc, status } => set_and_publish(alloc, status_line("new", status)),
            StatsEvent::Refreshed { alloc, status } => {
                set_and_publish(alloc, status_line("refreshed", status))
            }
            StatsEvent::Deleted {
                alloc,
                total,
                peer_total,
            } => {
                let base = alloc.base_key();
                let status = format!("{base}/status");
                vec![
                    StatsWrite::Publish {
                        channel: format!("{base}/total_traffic"),
                        message: total.payload(),
                    },
                    StatsWrite::Publish {
                        channel: format!("{base}/total_traffic/peer"),
                        message: peer_total.payload(),
                    },
                    StatsWrite::Del {
                        key: status.clone(),
                    },
                    StatsWrite::Publish {
                        channel: status,
                        message: "deleted".to_string(),
                    },
                ]
            }
            StatsEvent::Traffic {
                alloc,
                peer,
                counters,
            } => vec![StatsWrite::Publish {
                channel: with_peer(format!("{}/traffic", alloc.base_key()), *peer),
                message: counters.payload(),
            }],
        }
    }
}

/// Non-blocking handle for reporting to the stats database. Clone it freely;
/// every method returns at once.
#[derive(Clone)]
pub struct StatsSink {
    tx: mpsc::Sender<StatsEvent>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for StatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSink").field("dropped", &self.dropped()).finish()
    }
}

impl StatsSink {
    /// Queues `event`; false (and counted in [`StatsSink::dropped`]) when the
    /// queue is full or the writer is gone.
    pub fn send(&self, event: StatsEvent) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn allocation_new(&self, alloc: AllocationRef, status: AllocationStatus) -> bool {
        self.send(StatsEvent::New { alloc, status })
    }

    pub fn allocation_refreshed(&self, alloc: AllocationRef, status: AllocationStatus) -> bool {
        self.send(StatsEvent::Refreshed { alloc, status })
    }

    pub fn allocation_deleted(
        &self,
        alloc: AllocationRef,
        total: TrafficCounters,
        peer_total: TrafficCounters,
    ) -> bool {
        self.send(StatsEvent::Deleted {
            alloc,
            total,
            peer_total,
        })
    }

    pub fn traffic(&self, alloc: AllocationRef, peer: bool, counters: TrafficCounters) -> bool {
        self.send(StatsEvent::Traffic {
            alloc,
            peer,
            counters,
        })
    }

    /// Events lost so far: queue full, or Redis failed while writing them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The stats database writer.
pub struct StatsDb;

impl StatsDb {
    /// Parses `spec` (coturn's Redis connection string; a bad one is
    /// `BadSpec`) and starts the writer task on `runtime` with a queue of
    /// [`DEFAULT_QUEUE`] events. Does not wait for Redis.
    pub fn start(spec: &str, runtime: &tokio::runtime::Handle) -> DbResult<StatsSink> {
        Self::start_with_capacity(spec, runtime, DEFAULT_QUEUE)
    }

    /// [`StatsDb::start`] with a chosen queue length (at least 1).
    pub fn start_with_capacity(
        spec: &str,
        runtime: &tokio::runtime::Handle,
        capacity: usize,
    ) -> DbResult<StatsSink> {
        let spec = RedisSpec::parse(spec)?;
        let client = spec.client()?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        runtime.spawn(writer(spec, client, rx, dropped.clone()));
        Ok(StatsSink { tx, dropped })
    }

    /// Deletes every allocation `status` key (left by a previous run); returns
    /// how many were deleted.
    pub async fn cleanup_stale(con: &mut MultiplexedConnection) -> redis::RedisResult<usize> {
        let keys = scan_keys(con, STATUS_PATTERN).await?;
        for chunk in keys.chunks(DEL_CHUNK) {
            let _: i64 = redis::cmd("DEL").arg(chunk).query_async(con).await?;
        }
        Ok(keys.len())
    }
}

async fn connect(spec: &RedisSpec, client: &Client) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(spec.connect_timeout)
        .set_response_timeout(spec.connect_timeout);
    match tokio::time::timeout(
        spec.call_timeout(),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(con)) => Ok(con),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {:?}", spec.call_timeout())),
    }
}

async fn write(
    spec: &RedisSpec,
    con: &mut MultiplexedConnection,
    event: &StatsEvent,
) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for w in event.writes() {
        match w {
            StatsWrite::Set { key, value } => pipe.cmd("SET").arg(key).arg(value).ignore(),
            StatsWrite::Del { key } => pipe.cmd("DEL").arg(key).ignore(),
            StatsWrite::Publish { channel, message } => {
                pipe.cmd("PUBLISH").arg(channel).arg(message).ignore()
            }
        };
    }
    match tokio::time::timeout(spec.call_timeout(), pipe.query_async::<()>(con)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {:?}", spec.call_timeout())),
    }
}

/// Drains the queue into Redis until every sink is dropped.
async fn writer(
    spec: RedisSpec,
    client: Client,
    mut rx: mpsc::Receiver<StatsEvent>,
    dropped: Arc<AtomicU64>,
) {
    let mut con: Option<MultiplexedConnection> = None;
    let mut cleaned = false;
    let mut backoff = MIN_BACKOFF;
    let mut outage_logged = false;
    loop {
        let Some(c) = con.as_mut() else {
            if rx.is_closed() && rx.is_empty() {
                return;
            }
            match connect(&spec, &client).await {
                Ok(mut c) => {
                    tracing::info!("redis stats database {} connected", spec.describe());
                    if !cleaned {
                        match StatsDb::cleanup_stale(&mut c).await {
                            Ok(n) => {
                                cleaned = true;
                                if n > 0 {
                                    tracing::info!("redis stats database: {n} stale allocation status keys deleted");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(
                                    "redis stats database: cleaning stale keys failed: {e}"
                                );
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(MAX_BACKOFF);
                                continue;
                            }
                        }
                    }
                    con = Some(c);
                    backoff = MIN_BACKOFF;
                    outage_logged = false;
                }
                Err(e) => {
                    if !outage_logged {
                        tracing::warn!(
                            "redis stats database {} unreachable: {e}; retrying",
                            spec.describe()
                        );
                        outage_logged = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        let Some(event) = rx.recv().await else {
            return;
        };
        if let Err(e) = write(&spec, c, &event).await {
            dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("redis stats database write failed: {e}; reconnecting");
            con = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(realm: &str) -> AllocationRef {
        AllocationRef {
            realm: realm.to_string(),
            user: "alice".to_string(),
            id: AllocationRef::format_id(42),
        }
    }

    fn status() -> AllocationStatus {
        AllocationStatus {
            lifetime: 600,
            transport: "UDP".to_string(),
            local: "127.0.0.1:3478".parse().expect("addr"),
            remote: "[::1]:50000".parse().expect("addr"),
            ssl: "NONE".to_string(),
            cipher: "NONE".to_string(),
        }
    }

    #[test]
    fn keys_with_and_without_realm() {
        assert_eq!(AllocationRef::format_id(42), "000000000000000042");
        assert_eq!(
            alloc("example.org").base_key(),
            "turn/realm/example.org/user/alice/allocation/000000000000000042"
        );
        assert_eq!(
            alloc("").base_key(),
            "turn/user/alice/allocation/000000000000000042"
        );
    }

    #[test]
    fn new_and_refreshed() {
        let key = "turn/realm/r/user/alice/allocation/000000000000000042/status".to_string();
        let line = "new lifetime=600, type=UDP, local=127.0.0.1:3478, remote=[::1]:50000, ssl=NONE, cipher=NONE";
        let ev = StatsEvent::New {
            alloc: alloc("r"),
            status: status(),
        };
        assert_eq!(
            ev.writes(),
            vec![
                StatsWrite::Set {
                    key: key.clone(),
                    value: line.to_string()
                },
                StatsWrite::Publish {
                    channel: key.clone(),
                    message: line.to_string()
                },
            ]
        );
        let mut st = status();
        st.lifetime = 300;
        st.transport = "TLS".to_string();
        st.ssl = "TLSv1.3".to_string();
        st.cipher = "TLS_AES_128_GCM_SHA256".to_string();
        let ev = StatsEvent::Refreshed {
            alloc: alloc("r"),
            status: st,
        };
        let w = ev.writes();
        assert_eq!(w.len(), 2);
        assert_eq!(
            w[1],
            StatsWrite::Publish {
                channel: key,
                message: "refreshed lifetime=300, type=TLS, local=127.0.0.1:3478, remote=[::1]:50000, ssl=TLSv1.3, cipher=TLS_AES_128_GCM_SHA256".to_string()
            }
        );
    }

    #[test]
    fn deleted_and_traffic() {
        let base = "turn/user/alice/allocation/000000000000000042";
        let total = TrafficCounters {
            rcvp: 1,
            rcvb: 100,
            sentp: 2,
            sentb: 200,
        };
        let ev = StatsEvent::Deleted {
            alloc: alloc(""),
            total,
            peer_total: TrafficCounters::default(),
        };
        assert_eq!(
            ev.writes(),
            vec![
                StatsWrite::Publish {
                    channel: format!("{base}/total_traffic"),
                    message: "rcvp=1, rcvb=100, sentp=2, sentb=200".to_string()
                },
                StatsWrite::Publish {
                    channel: format!("{base}/total_traffic/peer"),
                    message: "rcvp=0, rcvb=0, sentp=0, sentb=0".to_string()
                },
                StatsWrite::Del {
                    key: format!("{base}/status")
                },
                StatsWrite::Publish {
                    channel: format!("{base}/status"),
                    message: "deleted".to_string()
                },
            ]
        );
        for (peer, channel) in [
            (false, format!("{base}/traffic")),
            (true, format!("{base}/traffic/peer")),
        ] {
            let ev = StatsEvent::Traffic {
                alloc: alloc(""),
                peer,
                counters: total,
            };
            assert_eq!(
                ev.writes(),
                vec![StatsWrite::Publish {
                    channel,
                    message: "rcvp=1, rcvb=100, sentp=2, sentb=200".to_string()
                }]
            );
        }
    }

    #[test]
    fn bad_spec_is_rejected_before_spawning() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        assert!(matches!(
            StatsDb::start("port=nope", rt.handle()),
            Err(super::super::DbError::BadSpec(_))
        ));
    }

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Nothing listens on port 1: the writer never drains the queue.
        let sink =
            StatsDb::start_with_capacity("ip=127.0.0.1 port=1 connect_timeout=1", rt.handle(), 2)
                .expect("starts");
        let mut accepted = 0;
        for _ in 0..10 {
            if sink.allocation_new(alloc("r"), status()) {
                accepted += 1;
            }
        }
        // The writer has not run (current-thread runtime not driven), so exactly
        // the queue length got in.
        assert_eq!(accepted, 2);
        assert_eq!(sink.dropped(), 8);
        let clone = sink.clone();
        assert!(!clone.traffic(alloc("r"), false, TrafficCounters::default()));
        assert_eq!(sink.dropped(), 9);
    }
}
