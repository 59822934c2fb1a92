//! A relay thread's side of the management plane (see [`crate::relay::control`]):
//! answering reports, cancelling sessions and taking new settings, between
//! two poll rounds.

use std::sync::Arc;

use super::RelayThread;
use crate::core::{Now, Transport};
use crate::relay::control::{Control, ControlBox, ThreadReport};

impl RelayThread {
    pub fn set_control(&mut self, boxes: Arc<Vec<ControlBox>>) {
        self.control = Some(boxes);
    }

    /// Carry out the management requests queued for this thread.
    pub(super) fn drain_control(&mut self, now: Now) {
        let Some(boxes) = self.control.clone() else { return };
        let Some(mine) = boxes.get(self.index as usize) else { return };
        for c in mine.take() {
            match c {
                Control::Report { sessions, reply } => {
                    let _ = reply.try_send(self.report(now, sessions));
                }
                Control::Cancel { session_id, reply } => {
                    let found = self.cancel_session(session_id);
                    let _ = reply.try_send(found);
                }
                Control::Reconfigure(cfg) => self.server.set_config(cfg),
            }
        }
    }

    fn report(&self, now: Now, sessions: bool) -> ThreadReport {
        ThreadReport {
            thread: self.index,
            allocations: self.server.allocations_by_transport().to_vec(),
            sessions: if sessions { self.server.sessions(now.ms) } else { Vec::new() },
            stats: self.server.stats,
            udp: self.stats.clone(),
            traffic: self.server.traffic_totals(),
            connections: self.conns.iter().filter(|(_, c)| c.pipe.is_none()).count(),
            dtls_sessions: self.dtls_sessions.len(),
            recvmmsg: self.fast.caps.recvmmsg_enabled(),
            sendmmsg: self.fast.caps.sendmmsg_enabled(),
            gso: self.fast.caps.gso_enabled(),
        }
    }

    /// End a session: its allocation first (so the log names the reason),
    /// then its TCP/TLS connection or DTLS association.
    fn cancel_session(&mut self, session_id: u64) -> bool {
        let Some((transport, local, client)) = self.server.cancel_session(session_id, &mut self.relays) else {
            return false;
        };
        match transport {
            Transport::Udp => {}
            Transport::Dtls => self.close_dtls((local, client)),
            Transport::Tcp | Transport::Tls => {
                if let Some(&key) = self.by_conn.get(&(local, client)) {
                    self.close_conn(key, "session cancelled");
                }
            }
        }
        // TCP relay connections the allocation held are closed by the actions
        // the core queued; answers go out with the next flush.
        self.flush();
        true
    }
}
