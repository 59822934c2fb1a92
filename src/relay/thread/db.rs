//! Requests waiting for the user database, on one relay thread.
//!
//! When the core answers a request with credential queries instead of a
//! response (see `core::dbauth`), the request's bytes are parked here with
//! their (transport, local, from), the queries go to the database service
//! (without blocking: a full queue fails the request at once), and when the
//! answers arrive they are provided to the core and the parked request is
//! handled again. A stream request whose connection has gone is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::RelayThread;
use crate::core::dbauth::{CredentialQuery, DbAnswer};
use crate::core::{Now, Transport};
use crate::userdb::service::DbClient;

/// Requests one thread keeps waiting at most; past this new ones fail (500).
const MAX_PARKED: usize = 256;
/// A query unanswered for this long fails (the service answers much sooner
/// unless it is gone).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One parked request.
struct Parked {
    queries: Vec<CredentialQuery>,
    transport: Transport,
    local: SocketAddr,
    from: SocketAddr,
    data: Vec<u8>,
}

/// The thread's side of the database service.
pub(crate) struct DbWait {
    client: DbClient,
    parked: Vec<Parked>,
    /// Queries submitted and not answered yet, with when they were sent.
    in_flight: HashMap<CredentialQuery, Instant>,
}

impl DbWait {
    pub(crate) fn new(client: DbClient) -> Self {
        DbWait { client, parked: Vec::new(), in_flight: HashMap::new() }
    }
}

impl RelayThread {
    /// Call right after the core handled a client message: when it asked for
    /// credentials, park the message and submit the queries.
    pub(super) fn park_if_waiting(&mut self, now: Now, transport: Transport, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        if self.out.credential_queries.is_empty() {
            return;
        }
        let queries = std::mem::take(&mut self.out.credential_queries);
        let Some(db) = self.db.as_mut() else {
            return self.fail_now(now, queries, transport, local, from, data);
        };
        if db.parked.len() >= MAX_PARKED {
            tracing::warn!("too many requests waiting for the user database; answering 500");
            return self.fail_now(now, queries, transport, local, from, data);
        }
        let sent = Instant::now();
        for q in &queries {
            if db.in_flight.contains_key(q) {
                continue;
            }
            if !db.client.submit(q.clone()) {
                tracing::warn!("user database queue full; answering 500");
                return self.fail_now(now, queries, transport, local, from, data);
            }
            db.in_flight.insert(q.clone(), sent);
        }
        db.parked.push(Parked { queries, transport, local, from, data: data.to_vec() });
    }

    /// [`Self::park_if_waiting`] for the message in `self.frame`.
    pub(super) fn park_frame_if_waiting(&mut self, now: Now, transport: Transport, local: SocketAddr, from: SocketAddr) {
        if self.out.credential_queries.is_empty() {
            return;
        }
        let frame = std::mem::take(&mut self.frame);
        self.park_if_waiting(now, transport, local, from, &frame);
        self.frame = frame;
    }

    /// The request cannot wait: its queries fail and it is answered (500) now.
    fn fail_now(&mut self, now: Now, queries: Vec<CredentialQuery>, transport: Transport, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        for q in queries {
            self.server.provide_credentials(q, DbAnswer::Failed, now);
        }
        self.rerun(now, transport, local, from, data);
    }

    /// Take the service's answers (and time out lost ones), then handle the
    /// parked requests that have everything they waited for.
    pub(super) fn db_answers(&mut self, now: Now) {
        let Some(db) = self.db.as_mut() else { return };
        let mut answered = false;
        while let Some((q, a)) = db.client.try_recv() {
            db.in_flight.remove(&q);
            self.server.provide_credentials(q, a, now);
            answered = true;
        }
        let mono = Instant::now();
        let lost: Vec<CredentialQuery> =
            db.in_flight.iter().filter(|(_, &t)| mono.duration_since(t) >= ANSWER_TIMEOUT).map(|(q, _)| q.clone()).collect();
        for q in lost {
            db.in_flight.remove(&q);
            self.server.provide_credentials(q, DbAnswer::Failed, now);
            answered = true;
        }
        if !answered {
            return;
        }
        let (ready, waiting): (Vec<Parked>, Vec<Parked>) =
            std::mem::take(&mut db.parked).into_iter().partition(|p| p.queries.iter().all(|q| !db.in_flight.contains_key(q)));
        db.parked = waiting;
        for p in ready {
            self.rerun(now, p.transport, p.local, p.from, &p.data);
        }
    }

    /// Handle a request again (its answers are now in the core's cache).
    fn rerun(&mut self, now: Now, transport: Transport, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        let conn = match transport {
            Transport::Tcp | Transport::Tls => match self.by_conn.get(&(local, from)) {
                Some(&k) => Some(k),
                None => return, // the connection went away
            },
            Transport::Dtls if !self.dtls_sessions.contains_key(&(local, from)) => return,
            _ => None,
        };
        self.server.handle_client_datagram(now, transport, local, from, data, &mut self.relays, &mut self.out);
        // A re-run is not a new packet: it was counted when it arrived.
        self.server.stats.packets_processed = self.server.stats.packets_processed.saturating_sub(1);
        // Answers expired in between: wait again.
        self.park_if_waiting(now, transport, local, from, data);
        let allocated = self.server.allocation_on(transport, from, local).is_some();
        if let Some(c) = conn.and_then(|k| self.conns.get_mut(k)) {
            c.allocated |= allocated;
        }
        if transport == Transport::Dtls {
            if let Some(e) = self.dtls_sessions.get_mut(&(local, from)) {
                e.allocated |= allocated;
            }
        }
    }
}
