//! The reconnect churn: every user's one socket closed by force every 12-18 s and offline
//! 1.5-2.5 s while the user's runs go on; each user's ledger of what it read.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use wsreg::Position;
use wsreg_server::protocol::ServerMessage;

use crate::tab::{Peer, Tab};

/// A connected client starts a run this often.
const RUN_EVERY: Duration = Duration::from_secs(4);
/// Longer than a run (seven events 300 ms apart): by then every run has ended.
const SETTLE: Duration = Duration::from_secs(3);

/// What every user read, added up.
#[derive(Default)]
pub struct Churn {
    pub reconnects: usize,
    /// Positions read once, before the marker run.
    pub read: u64,
    /// Events the users' streams held before the marker run.
    pub total: u64,
    pub duplicates: usize,
    pub unsignalled: usize,
    pub signalled: usize,
    /// Users whose final connect or marker run failed (their counts are left out).
    pub unfinished: usize,
}

impl Churn {
    pub fn delivery(&self) -> f64 {
        self.read as f64 / self.total.max(1) as f64
    }

    fn add(&mut self, l: Ledger) {
        self.reconnects += l.reconnects;
        self.duplicates += l.duplicates;
        self.unsignalled += l.unsignalled;
        self.signalled += l.signalled;
        match l.marker {
            Some(m) => {
                self.total += m - 1;
                self.read += l.seen.range(..m).count() as u64;
            }
            None => self.unfinished += 1,
        }
    }
}

/// One user's ledger.
#[derive(Default)]
struct Ledger {
    seen: BTreeSet<u64>,
    /// The last position read or announced by a gap frame.
    last: Option<Position>,
    reconnects: usize,
    duplicates: usize,
    unsignalled: usize,
    signalled: usize,
    /// The first position of the marker run.
    marker: Option<u64>,
}

impl Ledger {
    /// Takes one frame.
    fn read(&mut self, frame: &ServerMessage) {
        match frame {
            ServerMessage::Event { epoch, seq, .. } => {
                if !self.seen.insert(*seq) {
                    self.duplicates += 1;
                } else if self.last.is_some_and(|l| *seq > l.seq + 1) {
                    self.unsignalled += 1;
                }
                if self.last.is_none_or(|l| *seq > l.seq) {
                    self.last = Some(Position::new(*epoch, *seq));
                }
            }
            // A first welcome says where the user's stream stood: a client resumes from there
            // (without it, a socket dropped before its first event would resume from nothing,
            // and the server would owe it nothing).
            ServerMessage::Welcome { epoch, seq, .. } if self.last.is_none() => {
                self.last = Some(Position::new(*epoch, *seq));
            }
            ServerMessage::Gap { epoch, to, .. } => {
                self.signalled += 1;
                self.last = Some(Position::new(*epoch, *to));
            }
            _ => {}
        }
    }
}

pub async fn run(peer: Peer, addr: String, users: usize, length: Duration) -> Churn {
    let gate = Arc::new(Semaphore::new(200));
    let end = Instant::now() + length;
    let tasks: Vec<_> = (0..users)
        .map(|i| tokio::spawn(user(peer, addr.clone(), i, end, Arc::clone(&gate))))
        .collect();
    let mut churn = Churn::default();
    for t in tasks {
        churn.add(t.await.expect("a user's task"));
    }
    churn
}

async fn connect(
    peer: Peer,
    addr: &str,
    name: &str,
    ledger: &mut Ledger,
    gate: &Semaphore,
) -> Option<Tab> {
    for _ in 0..20 {
        let permit = gate.acquire().await.expect("semaphore");
        let tab = Tab::connect(peer, addr, name, ledger.last).await;
        drop(permit);
        if let Ok((tab, welcome)) = tab {
            ledger.read(&welcome);
            return Some(tab);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn user(peer: Peer, addr: String, i: usize, end: Instant, gate: Arc<Semaphore>) -> Ledger {
    let name = format!("churn{i}");
    let mut rng = StdRng::seed_from_u64(i as u64);
    let mut ledger = Ledger::default();
    // Connections start spread over the first cycle, so the closes are too.
    let mut online_until = Instant::now() + Duration::from_millis(rng.gen_range(0..15_000));
    while Instant::now() < end {
        let Some(mut tab) = connect(peer, &addr, &name, &mut ledger, &gate).await else {
            return ledger;
        };
        let mut next_run = Instant::now() + Duration::from_millis(rng.gen_range(0..4_000));
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(online_until.min(end)) => break,
                _ = tokio::time::sleep_until(next_run) => {
                    let _ = tab.start_run().await;
                    next_run += RUN_EVERY;
                }
                frame = tab.next() => match frame {
                    Some(f) => ledger.read(&f),
                    None => break,
                },
            }
        }
        drop(tab); // by force: no close frame
        if Instant::now() >= end {
            break;
        }
        ledger.reconnects += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1_500..2_500))).await;
        online_until = Instant::now() + Duration::from_millis(rng.gen_range(12_000..18_000));
    }
    tokio::time::sleep_until(end + SETTLE).await;
    // Once more, to read what a resume gives, then the marker run.
    let Some(mut tab) = connect(peer, &addr, &name, &mut ledger, &gate).await else {
        return ledger;
    };
    let quiet = Duration::from_millis(500);
    while let Ok(Some(f)) = tokio::time::timeout(quiet, tab.next()).await {
        ledger.read(&f);
    }
    if tab.start_run().await.is_err() {
        return ledger;
    }
    while let Ok(Some(f)) = tokio::time::timeout(Duration::from_secs(10), tab.next()).await {
        // Every earlier run has ended: the next run to start is the marker (read like any
        // event, so a jump to it is a gap too).
        ledger.read(&f);
        if let ServerMessage::Event { seq, event, .. } = &f {
            if event.kind() == "agent_started" {
                ledger.marker = Some(*seq);
                break;
            }
        }
    }
    ledger
}
