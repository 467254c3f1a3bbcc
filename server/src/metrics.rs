//! [`Metrics`]: what the server and its core are doing, as Prometheus metrics and `tracing`
//! events. The core knows nothing of either: it reports through an [`Observer`], and
//! [`Metrics`] is one.
//!
//! Every series lives in the server's own [`prometheus::Registry`] (no process-global state, so
//! two servers in one process, as in tests, never mix their numbers), rendered in the text
//! exposition format by [`Metrics::render`], which `serve --metrics-addr` serves at `/metrics`.
//! Counters with labels are resolved once, when the server starts, so an observation costs a
//! few atomic adds.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, TextEncoder};
use wsreg::{CloseReason, Observation, Observer, Payload, RemoveReason};

/// Why a handshake was refused (the `reason` label of `wsreg_handshake_refusals_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A missing, forged or expired token (401).
    Unauthorized,
    /// A malformed `thread`, `since` or `epoch` (400).
    BadRequest,
    /// A path that is not the WebSocket endpoint (404).
    NotFound,
    /// A user connecting faster than its connect budget (429).
    TooManyConnects,
    /// The handshake did not finish within the handshake timeout.
    Timeout,
    /// Not a WebSocket handshake, or the connection broke during it.
    Broken,
    /// The core refused the connection (a limit, a resume ahead of the stream, shutting down).
    Core,
    /// The core did not accept the connection within the connect timeout.
    ConnectTimeout,
}

/// Why the server closed a socket (the `reason` label of `wsreg_server_closes_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Nothing heard for the idle timeout (1008).
    Heartbeat,
    /// A frame could not be written within the write timeout: the client stopped reading.
    WriteTimeout,
    /// Past its message budget for a whole budget more (1008).
    Rate,
    /// A protocol violation (1002), invalid UTF-8 (1007) or an oversize frame (1009).
    Protocol,
    /// The server shut down (1001).
    Shutdown,
    /// The registry let the connection go on its own, and the client is told to resume (1012):
    /// a node of several whose copy of the user's stream was lost.
    Ended,
}

const REFUSALS: [(Refusal, &str); 8] = [
    (Refusal::Unauthorized, "unauthorized"),
    (Refusal::BadRequest, "bad_request"),
    (Refusal::NotFound, "not_found"),
    (Refusal::TooManyConnects, "too_many_connects"),
    (Refusal::Timeout, "timeout"),
    (Refusal::Broken, "broken"),
    (Refusal::Core, "core"),
    (Refusal::ConnectTimeout, "connect_timeout"),
];

const CLOSES: [(Close, &str); 6] = [
    (Close::Heartbeat, "heartbeat"),
    (Close::WriteTimeout, "write_timeout"),
    (Close::Rate, "rate"),
    (Close::Protocol, "protocol"),
    (Close::Shutdown, "shutdown"),
    (Close::Ended, "ended"),
];

/// The server's metrics; also the core's [`Observer`].
pub struct Metrics {
    registry: prometheus::Registry,
    managers: IntGauge,
    connections: IntGauge,
    sockets: IntGauge,
    pending: IntGauge,
    accepted: IntCounter,
    delivered: IntCounter,
    trimmed: IntCounter,
    gaps: IntCounter,
    gap_messages: IntCounter,
    removed: [IntCounter; 3],
    conn_closed: [IntCounter; 3],
    refusals: [IntCounter; 8],
    closes: [IntCounter; 6],
    rate_limited: IntCounter,
    runs_refused: IntCounter,
    accept_errors: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn gauge(r: &prometheus::Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid gauge");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn counter(r: &prometheus::Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid counter");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

/// One counter per label value, resolved now.
fn by<const N: usize>(
    r: &prometheus::Registry,
    name: &str,
    help: &str,
    label: &str,
    values: [&str; N],
) -> [IntCounter; N] {
    let vec = IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid counter");
    r.register(Box::new(vec.clone())).expect("registered once");
    values.map(|v| vec.with_label_values(&[v]))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series at zero.
    pub fn new() -> Self {
        let r = prometheus::Registry::new();
        let messages = IntCounterVec::new(
            Opts::new("wsreg_messages_total", "Messages by outcome: accepted into a user's stream, delivered to a socket, or trimmed from a history."),
            &["outcome"],
        )
        .expect("a valid counter");
        r.register(Box::new(messages.clone()))
            .expect("registered once");
        Self {
            managers: gauge(&r, "wsreg_managers", "Live per-user managers."),
            connections: gauge(&r, "wsreg_connections", "Live connections in the core."),
            sockets: gauge(&r, "wsreg_sockets", "WebSocket connections past their handshake."),
            pending: gauge(
                &r,
                "wsreg_pending_messages",
                "Messages accepted and not yet handed to every live connection (at the last scrape).",
            ),
            accepted: messages.with_label_values(&["accepted"]),
            delivered: messages.with_label_values(&["delivered"]),
            trimmed: messages.with_label_values(&["trimmed"]),
            gaps: counter(&r, "wsreg_gaps_total", "Gap markers handed to sockets (a client told it lost messages)."),
            gap_messages: counter(&r, "wsreg_gap_messages_total", "Messages those gap markers covered."),
            removed: by(
                &r,
                "wsreg_managers_removed_total",
                "Managers removed, by reason.",
                "reason",
                ["idle", "evicted", "shutdown"],
            ),
            conn_closed: by(
                &r,
                "wsreg_connections_closed_total",
                "Connections removed from the core, by reason.",
                "reason",
                ["closed", "transport_failed", "shutdown"],
            ),
            refusals: by(
                &r,
                "wsreg_handshake_refusals_total",
                "Connections refused before or at registration, by reason.",
                "reason",
                REFUSALS.map(|(_, n)| n),
            ),
            closes: by(
                &r,
                "wsreg_server_closes_total",
                "Sockets the server closed, by reason.",
                "reason",
                CLOSES.map(|(_, n)| n),
            ),
            rate_limited: counter(&r, "wsreg_rate_limited_total", "Client frames refused for exceeding the socket's message budget."),
            runs_refused: counter(&r, "wsreg_runs_refused_total", "start_run refused: the user had max_runs_per_user in flight."),
            accept_errors: counter(&r, "wsreg_accept_errors_total", "Failed TCP accepts (the server backs off and goes on)."),
            registry: r,
        }
    }

    /// Every series in Prometheus's text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// The Prometheus registry, to add series of your own or gather into another exporter.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    pub(crate) fn refused(&self, why: Refusal) {
        let i = REFUSALS.iter().position(|(r, _)| *r == why).unwrap_or(0);
        self.refusals[i].inc();
        tracing::debug!(reason = REFUSALS[i].1, "handshake refused");
    }

    pub(crate) fn closed(&self, why: Close) {
        let i = CLOSES.iter().position(|(c, _)| *c == why).unwrap_or(0);
        self.closes[i].inc();
        tracing::debug!(reason = CLOSES[i].1, "socket closed by the server");
    }

    pub(crate) fn socket_opened(&self) {
        self.sockets.inc();
    }

    pub(crate) fn socket_finished(&self) {
        self.sockets.dec();
    }

    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub(crate) fn run_refused(&self) {
        self.runs_refused.inc();
    }

    pub(crate) fn accept_failed(&self) {
        self.accept_errors.inc();
    }

    pub(crate) fn set_pending(&self, n: usize) {
        self.pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

impl Observer for Metrics {
    fn observe(&self, o: &Observation<'_>) {
        match o {
            Observation::ManagerCreated {
                user,
                manager,
                epoch,
            } => {
                self.managers.inc();
                tracing::debug!(%user, %manager, %epoch, "manager created");
            }
            Observation::ManagerRemoved {
                user,
                manager,
                reason,
            } => {
                self.managers.dec();
                let i = match reason {
                    RemoveReason::Idle => 0,
                    RemoveReason::Evicted => 1,
                    RemoveReason::Shutdown => 2,
                };
                self.removed[i].inc();
                tracing::debug!(%user, %manager, ?reason, "manager removed");
            }
            Observation::ConnectionAdded {
                user, conn, from, ..
            } => {
                self.connections.inc();
                tracing::debug!(%user, %conn, %from, "connection added");
            }
            Observation::ConnectionRemoved {
                user, conn, reason, ..
            } => {
                self.connections.dec();
                let i = match reason {
                    CloseReason::Closed => 0,
                    CloseReason::TransportFailed => 1,
                    CloseReason::Shutdown => 2,
                };
                self.conn_closed[i].inc();
                tracing::debug!(%user, %conn, ?reason, "connection removed");
            }
            Observation::Accepted { .. } => self.accepted.inc(),
            Observation::Delivered { envelope, .. } => {
                self.delivered.inc();
                if let Payload::Gap { from, to, reason } = envelope.payload() {
                    self.gaps.inc();
                    self.gap_messages.inc_by((to + 1).saturating_sub(*from));
                    tracing::info!(user = %envelope.to(), from, to, ?reason, "gap marker sent");
                }
            }
            Observation::Trimmed { from, to, .. } => {
                self.trimmed.inc_by((to + 1).saturating_sub(*from));
            }
            Observation::ModeChanged { user, to, .. } => {
                tracing::debug!(%user, ?to, "mode changed");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_renders_and_counts() {
        let m = Metrics::new();
        m.refused(Refusal::Unauthorized);
        m.refused(Refusal::Unauthorized);
        m.closed(Close::Rate);
        m.rate_limited();
        let text = m.render();
        assert!(
            text.contains("wsreg_handshake_refusals_total{reason=\"unauthorized\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("wsreg_handshake_refusals_total{reason=\"timeout\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("wsreg_server_closes_total{reason=\"rate\"} 1"),
            "{text}"
        );
        assert!(text.contains("wsreg_rate_limited_total 1"), "{text}");
        assert!(text.contains("# TYPE wsreg_managers gauge"), "{text}");
    }
}
