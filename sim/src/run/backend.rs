//! The seam the harness drives: [`wsreg::Backend`], the same trait the WebSocket server
//! serves. The real core ([`wsreg::Registry`]) is one; so are the planted bugs of the zoo, and so
//! can a team's own WebSocket layer be, to be fuzzed by the same harness. This module adds what
//! only the harness needs: how a backend is made for a run ([`Factory`]) and the faults of the
//! simulated network ([`Network`]).
//!
//! A complete registry written from scratch, plugged in, fuzzed, shrunk and replayed, is in
//! `sim/examples/from_scratch/`. In outline:
//!
//! ```
//! use wsreg::backend::{Backend, BoxFuture, Connected, Handle};
//! use wsreg::{AgentEvent, Error, Mode, Position, Sink, UserContext};
//! use wsreg_sim::tooling::target::{Target, Targets};
//!
//! struct Mine {/* its own maps, ids, queues */}
//!
//! impl Backend for Mine {
//!     fn connect<'a>(
//!         &'a self,
//!         ctx: &'a UserContext,
//!         sink: Box<dyn Sink>,
//!         resume: Option<Position>,
//!     ) -> BoxFuture<'a, Result<Connected, Error>> {
//!         Box::pin(async move { todo!("file the tab, start its writer, say where it continues") })
//!     }
//!     fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
//!         Box::pin(async move { todo!() })
//!     }
//!     fn emit<'a>(
//!         &'a self,
//!         ctx: &'a UserContext,
//!         event: AgentEvent,
//!     ) -> BoxFuture<'a, Result<Position, Error>> {
//!         Box::pin(async move { todo!("number it, keep it for resumes, hand it to the tabs") })
//!     }
//!     fn send_text<'a>(
//!         &'a self,
//!         ctx: &'a UserContext,
//!         text: &'a str,
//!     ) -> BoxFuture<'a, Result<Position, Error>> {
//!         Box::pin(async move { todo!() })
//!     }
//!     fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
//!         todo!()
//!     }
//! }
//!
//! // Registered by name: campaigns, shrinking, snapshots and replay all find it so.
//! let targets = Targets::builtin().with(Target::new("mine", |_config, _observer| Mine {}));
//! assert!(targets.get("mine").is_ok());
//! // A team's binary then runs the whole command line: `wsreg_sim::cli::main_with(targets)`.
//! ```

use std::sync::Arc;

pub use wsreg::backend::{Backend, BoxFuture, Capabilities, Connected, Handle, Probe};
use wsreg::{Observer, Registry, RegistryConfig};

/// How a backend is made from a run's limits and an observer to report to (`None`: nobody
/// listens, as in the benchmark's unchecked baseline or under the black-box oracle alone).
pub type Factory =
    Arc<dyn Fn(RegistryConfig, Option<Arc<dyn Observer>>) -> Arc<dyn Backend> + Send + Sync>;

/// A node's handle on the stream store and its live messages, rewrapped (how a planted bug of
/// many nodes gets into the core's nodes: see the zoo's `nodes`).
pub type StoreWrap = fn(
    Arc<dyn wsreg::store::StreamStore>,
    tokio::sync::mpsc::UnboundedReceiver<wsreg::store::Live>,
) -> (
    Arc<dyn wsreg::store::StreamStore>,
    tokio::sync::mpsc::UnboundedReceiver<wsreg::store::Live>,
);

/// How a planted bug of many nodes gets into the core's nodes.
#[derive(Clone, Copy)]
pub struct StorePlant {
    /// Rewraps each node's handle on the store and its live messages.
    pub wrap: StoreWrap,
    /// Whether each node's store client checks that its subscription still hears (`false`:
    /// it only checks that the connection answers, as a `PING` does).
    pub echo: bool,
}

/// The faults a run over the simulated network can play. Network runs put the backend behind
/// the real server on a node of its own and every client socket on another.
pub trait Network: Send + Sync {
    /// Cuts the clients off from the server (`true`), or heals the cut (`false`).
    fn partition(&self, cut: bool);

    /// Kills the server node: every socket drops, and the registry with everything it held is
    /// gone. Calls refuse until [`Network::start_server`].
    fn kill_server(&self);

    /// Starts the server node again, over a fresh registry.
    fn start_server(&self);

    /// How many server nodes there are (1 unless the run has many nodes over a store).
    fn nodes(&self) -> u32 {
        1
    }

    /// The node a tab's socket is on.
    fn node_of(&self, handle: &Handle) -> u32 {
        let _ = handle;
        0
    }

    /// Many nodes: kills server node `node` (its sockets drop; the store keeps the streams).
    fn kill_node(&self, node: u32) {
        let _ = node;
    }

    /// Many nodes: starts server node `node` again, over a fresh registry.
    fn start_node(&self, node: u32) {
        let _ = node;
    }

    /// Many nodes: kills the store (everything it held is lost).
    fn kill_store(&self) {}

    /// Many nodes: starts the store again, empty.
    fn start_store(&self) {}

    /// Many nodes: cuts server node `node` off from the store (`true`), or heals the cut.
    fn cut_store(&self, node: u32, cut: bool) {
        let _ = (node, cut);
    }

    /// Many nodes: the store fails over to a replica that lacks each stream's newest `lose`
    /// writes (and continues under a new lineage): the primary is killed now, and
    /// [`Network::start_store`] starts the promoted replica.
    fn fail_over_store(&self, lose: u64) {
        let _ = lose;
    }

    /// The run is over: stops every node the network made, so that what they still had
    /// running (sessions lingering, timers, the store) is dropped with the run instead of
    /// outliving it. Called once the run's report is made.
    fn shut_down(&self) {}

    /// Stops server node `node` (`None`: the store, with many nodes) when `paused`: none of
    /// its tasks runs until it resumes, and then everything that reached it meanwhile runs in
    /// one scheduling draw.
    fn pause(&self, node: Option<u32>, paused: bool) {
        let _ = (node, paused);
    }

    /// Many nodes: the store answers every call `reply_ms` late from now on (0: at once).
    fn slow_store(&self, reply_ms: u64) {
        let _ = reply_ms;
    }

    /// Many nodes: the store forgets every stream while it runs (`FLUSHALL`).
    fn flush_store(&self) {}

    /// Many nodes: the store evicts the meta record (or the history) of the `nth` stream it
    /// holds, counting round; the user's key, if it held any.
    fn evict_in_store(&self, nth: u32, history: bool) -> Option<String> {
        let _ = (nth, history);
        None
    }

    /// Many nodes: every connection the store has now stops getting its pushes, for as long
    /// as it lasts, while it goes on answering.
    fn silence_store(&self) {}

    /// Many nodes: the store holds each push back by up to `max_ms` from now on, each by a
    /// draw of its own (0: at once).
    fn delay_live(&self, max_ms: u64) {
        let _ = max_ms;
    }

    /// Many nodes: what each server node that is up holds (its registry, inspected), node by
    /// node. `None` when the nodes cannot be inspected (or there is one server).
    fn inspect_nodes(&self) -> Option<Vec<wsreg::RegistryView>> {
        None
    }

    /// A tab's client crashed: its socket is gone without a goodbye, and the server notices by
    /// itself. (In process, nothing would notice, so the harness plays the server's cleanup
    /// 20 ms later through [`Backend::close`].)
    fn crash(&self, handle: &Handle);
}

/// A real core registry, observed or not.
pub fn registry(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Registry {
    match observer {
        Some(observer) => Registry::with_observer(config, observer),
        None => Registry::new(config),
    }
}

/// The factory of the real core.
pub fn core_factory() -> Factory {
    Arc::new(|config, observer| Arc::new(registry(config, observer)))
}
