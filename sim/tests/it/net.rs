//! Network mode: the real server on a simulated node, clients over simulated TCP. The real core
//! passes through latency, partitions and restarts; a planted bug is caught through the frames
//! a client read off its socket; runs replay.

use std::sync::Arc;

use wsreg_sim::check::coverage::{CONNECT_DEADLINE_MARK, NET_POINTS};
use wsreg_sim::check::invariant::Invariant;
use wsreg_sim::check::outcome::Outcome;
use wsreg_sim::check::trace::{Step, What};
use wsreg_sim::generate::config::{NetConfig, SimConfig};
use wsreg_sim::generate::plan::Plan;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign::{derive, run_campaign, CampaignOptions};
use wsreg_sim::tooling::target::Target;
use wsreg_sim::zoo::Bug;

fn net_config() -> SimConfig {
    SimConfig {
        net: Some(NetConfig::default()),
        ..SimConfig::default()
    }
}

fn trace_of(bug: Option<Bug>, plan: Plan, seed: u64) -> (Outcome, Vec<Step>) {
    let r = Target::builtin(bug)
        .run(Arc::new(plan), Seed(seed), Keep::All)
        .unwrap();
    (r.outcome, r.trace)
}

#[test]
fn the_real_core_passes_a_network_campaign_with_partitions_and_restarts() {
    let opts = CampaignOptions {
        jobs: 2,
        config: net_config(),
        check_determinism: true,
        ..CampaignOptions::new("0..60".parse().unwrap())
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).unwrap();
    assert!(summary.passed(), "{:?}", summary.failures);
    assert!(
        summary.target.contains("WebSocket server"),
        "{}",
        summary.target
    );
    // The faults bit: every network coverage point was reached.
    for (point, _) in NET_POINTS {
        assert!(summary.coverage[point] > 0, "{point} never reached");
    }
    assert!(!summary.coverage.contains_key("stale_cleanup"));
}

#[test]
fn a_restart_loses_the_registry_and_clients_come_back_to_a_fresh_one() {
    let plan = Plan::from_json(
        r#"{"version": 1, "buggify": false,
        "net": {"latency_ms": [1, 10], "faults": [
            {"at_ms": 100, "fault": "restart"},
            {"at_ms": 400, "fault": "partition", "ms": 150}]},
        "users": [{"name": "u1", "thread": "t1"}, {"name": "u2", "thread": "t1"}],
        "ops": [
            {"at_ms": 0, "user": "u1", "op": "connect"},
            {"at_ms": 0, "user": "u2", "op": "connect"},
            {"at_ms": 50, "user": "u1", "op": "run", "tools": 2, "step_ms": 20},
            {"at_ms": 200, "user": "u1", "op": "connect"},
            {"at_ms": 250, "user": "u1", "op": "run", "tools": 1},
            {"at_ms": 420, "user": "u2", "op": "send"},
            {"at_ms": 430, "user": "u2", "op": "connect"}
        ]}"#,
        "restart.json",
    )
    .unwrap();
    let (outcome, trace) = trace_of(None, plan, 7);
    assert_eq!(outcome, Outcome::Pass);
    let at = |pred: &dyn Fn(&What) -> bool| trace.iter().position(|s| pred(&s.what));
    let down = at(&|w| matches!(w, What::ServerDown)).expect("the server went down");
    let up = at(&|w| matches!(w, What::ServerUp)).expect("and came back");
    let cut = at(&|w| matches!(w, What::Partition { .. })).expect("a partition");
    let healed = at(&|w| matches!(w, What::Healed)).expect("that healed");
    assert!(down < up && up < cut && cut < healed);
    // After the restart, u1 connects to the fresh registry: a new first manager, same key.
    let reconnected = trace[up..]
        .iter()
        .find(|s| &*s.user == "u1" && matches!(s.what, What::Connected { .. }))
        .expect("u1 connected again after the restart");
    assert_eq!(reconnected.mgr, Some(1), "{reconnected}");
    // And reads its new run's events over the socket.
    assert!(trace[up..].iter().any(|s| &*s.user == "u1"
        && matches!(&s.what, What::Received { msg, .. } if msg.tag.as_ref() == "u1/r2")));
    // u2's second connect was made during the partition and only got through after it healed.
    let u2_late = trace[cut..]
        .iter()
        .find(|s| &*s.user == "u2" && matches!(s.what, What::Connected { .. }))
        .expect("u2 connected once the partition healed");
    assert!(u2_late.n > trace[healed].n, "{u2_late}");
}

#[test]
fn a_planted_bug_is_caught_through_real_websocket_frames() {
    // B16 routes events by thread id: u2 shares u1's thread, so u1's events reach u2's socket.
    let plan = Plan::from_json(
        r#"{"version": 1, "buggify": false,
        "net": {"latency_ms": [2, 5], "faults": []},
        "users": [{"name": "u1", "thread": "t1"}, {"name": "u2", "thread": "t1"}],
        "ops": [
            {"at_ms": 0, "user": "u2", "op": "connect"},
            {"at_ms": 100, "user": "u1", "op": "run"}
        ]}"#,
        "b16.json",
    )
    .unwrap();
    let (outcome, trace) = trace_of(Some(Bug::B16), plan, 1);
    let Outcome::Violation(v) = &outcome else {
        panic!("B16 was not caught: {outcome:?}");
    };
    assert_eq!(v.invariant, Invariant::I1, "{}", v.message);
    // The misdelivered event was read off u2's socket: it crossed the simulated network, so it
    // arrived at least the minimum latency after the server's sink took it.
    let received = trace.last().unwrap();
    assert!(matches!(received.what, What::Received { .. }), "{received}");
    let delivered = trace
        .iter()
        .find(|s| matches!(s.what, What::Delivered { seq: 1 }))
        .expect("the server handed the frame to u2's socket");
    assert!(
        received.t_us >= delivered.t_us + 2_000,
        "{delivered}\n{received}"
    );
}

#[test]
fn network_runs_replay_step_for_step() {
    let config = net_config();
    for seed in [3, 11] {
        let (_, plan, runtime) = derive(&config, Seed(seed));
        assert!(plan.net.is_some());
        let run = || {
            Target::core()
                .run(Arc::new(plan.clone()), runtime, Keep::Tail(1))
                .unwrap()
        };
        let (a, b) = (run(), run());
        assert_eq!((a.hash, a.steps), (b.hash, b.steps), "seed {seed}");
        assert!(a.steps > 100);
    }
}

#[test]
fn a_client_running_behind_its_plan_on_a_slow_network_is_not_stuck() {
    // Each reconnect takes several round trips of 150 ms: the user falls seconds behind its
    // plan, far past the last op's time plus the 1 s bound, yet no op ever takes 1 s.
    let ops: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"at_ms": {}, "user": "u1", "op": "reconnect"}}"#,
                i * 10
            )
        })
        .collect();
    let plan = Plan::from_json(
        &format!(
            r#"{{"version": 1, "liveness_bound_ms": 1000,
            "net": {{"latency_ms": [150, 150], "faults": []}},
            "users": [{{"name": "u1", "thread": "t1"}}],
            "ops": [{{"at_ms": 0, "user": "u1", "op": "connect"}}, {}]}}"#,
            ops.join(", ")
        ),
        "slow.json",
    )
    .unwrap();
    let r = Target::core()
        .run(Arc::new(plan), Seed(2), Keep::Tail(1))
        .unwrap();
    assert_eq!(r.outcome, Outcome::Pass);
    assert!(r.virtual_us > 5_000_000, "ran {} us", r.virtual_us);
}

#[test]
fn a_paused_server_runs_nothing_until_it_resumes_and_then_serves_what_reached_it() {
    let plan = Plan::from_json(
        r#"{"version": 1, "buggify": false,
        "net": {"latency_ms": [1, 10], "loss_percent": 0, "faults": [
            {"at_ms": 10, "fault": "pause", "node": 0, "ms": 40}]},
        "users": [{"name": "u1", "thread": "t1"}],
        "ops": [{"at_ms": 10, "user": "u1", "op": "burst", "n": 3}]}"#,
        "pause.json",
    )
    .unwrap();
    for seed in 1..6 {
        let (outcome, trace) = trace_of(None, plan.clone(), seed);
        assert_eq!(outcome, Outcome::Pass, "seed {seed}");
        let at = |pred: &dyn Fn(&What) -> bool| trace.iter().position(|s| pred(&s.what));
        let paused = at(&|w| {
            matches!(
                w,
                What::Paused {
                    node: Some(0),
                    ms: 40
                }
            )
        })
        .expect("paused");
        let resumed = at(&|w| matches!(w, What::Resumed { node: Some(0) })).expect("resumed");
        assert!(paused < resumed);
        // Nothing of the server's happens while it is paused: no manager, no connection.
        let during: Vec<String> = trace[paused..resumed]
            .iter()
            .filter(|s| s.what.side() == wsreg_sim::check::trace::Side::Core)
            .map(|s| s.to_string())
            .collect();
        assert!(during.is_empty(), "seed {seed}: {during:?}");
        // And the three connects sent into the pause are all served after it.
        let connected = trace[resumed..]
            .iter()
            .filter(|s| matches!(s.what, What::Connected { .. }))
            .count();
        assert_eq!(connected, 3, "seed {seed}");
    }
    // A pause names a node that exists and lasts 1 to 10,000 ms; the store's needs many nodes.
    for (faults, why) in [
        (
            r#"{"at_ms": 1, "fault": "pause", "node": 1, "ms": 5}"#,
            "node 1 of 1",
        ),
        (
            r#"{"at_ms": 1, "fault": "pause", "node": 0, "ms": 0}"#,
            "a pause lasts",
        ),
        (
            r#"{"at_ms": 1, "fault": "store_pause", "ms": 5}"#,
            "needs net.nodes of 2",
        ),
    ] {
        let text = format!(
            r#"{{"version": 1, "buggify": false, "net": {{"latency_ms": [1, 10], "faults": [{faults}]}},
            "users": [{{"name": "u1", "thread": "t1"}}], "ops": []}}"#
        );
        let err = Plan::from_json(&text, "bad.json").unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn a_connect_the_server_drops_at_its_deadline_must_be_let_go() {
    // B29 looks the user up for 23 ms on its second connect; the server gives the registry
    // 10 ms, drops the call and refuses the client, and B29 registers the connection anyway.
    let plan = Plan::from_json(
        r#"{"version": 1, "buggify": false,
        "net": {"latency_ms": [2, 2], "connect_deadline_ms": 10, "faults": []},
        "users": [{"name": "u1", "thread": "t1"}],
        "ops": [
            {"at_ms": 0, "user": "u1", "op": "connect"},
            {"at_ms": 50, "user": "u1", "op": "connect"}
        ]}"#,
        "deadline.json",
    )
    .unwrap();
    let (outcome, trace) = trace_of(Some(Bug::B29), plan.clone(), 1);
    let refused = trace
        .iter()
        .position(|s| match &s.what {
            What::Refused { error, .. } => error.contains(CONNECT_DEADLINE_MARK),
            _ => false,
        })
        .expect("the server refused the second connect at its deadline");
    let added_late = trace[refused..]
        .iter()
        .any(|s| matches!(s.what, What::ConnAdded { .. }));
    assert!(
        added_late,
        "B29 registered the dropped connect after the refusal"
    );
    let Outcome::Violation(v) = &outcome else {
        panic!("B29 was not caught: {outcome:?}");
    };
    assert_eq!(v.invariant, Invariant::I9, "{}", v.message);
    // The real core takes a connect at once: nothing to drop, nothing left behind.
    let (outcome, _) = trace_of(None, plan, 1);
    assert!(outcome.passed(), "{outcome:?}");
}
