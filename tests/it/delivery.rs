//! Owner-only, in-order delivery; the stream contract (positions, resume, gap markers) across
//! reconnects, slow readers, modes and reaping; idle reaping.

use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use wsreg::{
    channel_sink, Envelope, Error, GapReason, LifecycleReason, Mode, Payload, Position, Registry,
    RegistryConfig, UserContext,
};

use crate::support::{completed, executing, started, tool_done, Recorder};

fn kinds(envelopes: &[Envelope]) -> Vec<&'static str> {
    envelopes
        .iter()
        .map(|e| match e.payload() {
            Payload::Agent(a) => a.kind(),
            Payload::Text { .. } => "text",
            Payload::Gap { .. } => "gap",
        })
        .collect()
}

async fn take(inbox: &mut Receiver<Envelope>, n: usize) -> Vec<Envelope> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(inbox.recv().await.expect("inbox closed early"));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn twenty_users_each_get_exactly_their_own_then_everything_is_reaped() {
    let config = RegistryConfig {
        idle_ttl: Duration::from_secs(5),
        ..Default::default()
    };
    let registry = Registry::new(config);
    let mut users = Vec::new();
    for i in 0..20 {
        let ctx = UserContext::new(&format!("user-{i:02}")).unwrap();
        let (sink, inbox) = channel_sink(64);
        let conn = registry.connect(&ctx, sink).unwrap();
        users.push((ctx, conn, inbox));
    }
    for round in 0..3 {
        for (ctx, _, _) in &users {
            registry
                .send_text(ctx.key(), &format!("{}#{round}", ctx.user_id()))
                .unwrap();
        }
    }
    for (ctx, _, inbox) in &mut users {
        let got = take(inbox, 3).await;
        for (round, msg) in got.iter().enumerate() {
            assert_eq!(msg.to(), ctx.key());
            assert_eq!(msg.seq(), round as u64 + 1);
            assert_eq!(
                msg.payload(),
                &Payload::Text {
                    text: format!("{}#{round}", ctx.user_id())
                }
            );
        }
        assert!(inbox.try_recv().is_err());
    }
    for (_, conn, _) in &users {
        conn.close().unwrap();
    }
    assert_eq!(registry.inspect().connections, 0);
    assert_eq!(registry.inspect().managers.len(), 20);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        registry.inspect().managers.is_empty(),
        "idle managers outlived their TTL"
    );
    let again = registry.send_text(users[0].0.key(), "late");
    assert!(matches!(again, Err(Error::UnknownUser { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_within_the_ttl_keeps_the_manager_and_cancels_the_reap() {
    let config = RegistryConfig {
        idle_ttl: Duration::from_secs(5),
        ..Default::default()
    };
    let registry = Registry::new(config);
    let ctx = UserContext::new("u").unwrap();
    let (sink, _inbox) = channel_sink(4);
    let first = registry.connect(&ctx, sink).unwrap();
    let manager = first.manager().clone();
    first.close().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (sink, _inbox2) = channel_sink(4);
    let second = registry.connect(&ctx, sink).unwrap();
    assert!(second.manager().same(&manager));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(registry.get(ctx.key()).is_some(), "reaped while connected");
    second.close().unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(registry.get(ctx.key()).is_none());
    assert!(manager.is_closed());
    let (sink, _inbox3) = channel_sink(4);
    assert!(matches!(
        manager.add_connection(sink, None),
        Err(Error::ManagerClosed { .. })
    ));
}

#[tokio::test]
async fn lifecycle_in_order_arrives_in_order_and_out_of_order_is_refused() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut inbox) = channel_sink(64);
    registry.connect(&ctx, sink).unwrap();
    let err = registry
        .emit(ctx.key(), tool_done("r1", "search"))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Lifecycle(ref e) if e.reason == LifecycleReason::NotStarted && e.event == "tool_completed"
    ));
    registry.emit(ctx.key(), started("r1")).unwrap();
    registry.emit(ctx.key(), executing("r1", "a")).unwrap();
    assert!(registry.emit(ctx.key(), completed("r1")).is_err());
    assert!(registry.emit(ctx.key(), tool_done("r1", "b")).is_err());
    registry.emit(ctx.key(), tool_done("r1", "a")).unwrap();
    registry.emit(ctx.key(), completed("r1")).unwrap();
    let got = take(&mut inbox, 4).await;
    assert_eq!(
        kinds(&got),
        [
            "agent_started",
            "tool_executing",
            "tool_completed",
            "agent_completed"
        ]
    );
    assert!(got.windows(2).all(|w| w[0].seq() < w[1].seq()));
    assert!(inbox.try_recv().is_err(), "a refused event was sent");
}

/// What a tab holds right now, without waiting.
fn drain(inbox: &mut Receiver<Envelope>) -> Vec<Envelope> {
    std::iter::from_fn(|| inbox.try_recv().ok()).collect()
}

/// Lets every writer task run.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The contract every tab's stream keeps: after `from`, positions are contiguous in one epoch,
/// a gap marker covering exactly what is skipped. Returns the texts received, in order.
fn contiguous_texts(from: Position, got: &[Envelope]) -> Vec<String> {
    let mut next = from.seq + 1;
    let mut texts = Vec::new();
    for env in got {
        assert_eq!(env.epoch(), from.epoch, "{env:?} left the stream's epoch");
        match env.payload() {
            Payload::Gap { from, to, .. } => {
                assert_eq!(*from, next, "a gap must start where the tab is: {env:?}");
                assert_eq!(env.seq(), *to);
                next = to + 1;
            }
            Payload::Text { text } => {
                assert_eq!(env.seq(), next, "silent hole or duplicate before {env:?}");
                texts.push(text.clone());
                next += 1;
            }
            Payload::Agent(_) => {
                assert_eq!(env.seq(), next, "silent hole or duplicate before {env:?}");
                next += 1;
            }
        }
    }
    texts
}

fn gap_of(env: &Envelope) -> (u64, u64, GapReason) {
    match env.payload() {
        Payload::Gap { from, to, reason } => (*from, *to, *reason),
        other => panic!("expected a gap marker, got {other:?}"),
    }
}

fn send_all(registry: &Registry, ctx: &UserContext, texts: std::ops::RangeInclusive<u32>) {
    for i in texts {
        registry.send_text(ctx.key(), &format!("m{i}")).unwrap();
    }
}

fn names(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

#[tokio::test(start_paused = true)]
async fn a_tab_that_drops_while_another_stays_resumes_exactly_what_it_missed() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut stays) = channel_sink(64);
    let stays_conn = registry.connect(&ctx, sink).unwrap();
    let (sink, mut drops) = channel_sink(64);
    let dropping = registry.connect(&ctx, sink).unwrap();
    send_all(&registry, &ctx, 1..=2);
    settle().await;
    let seen = drain(&mut drops);
    let last = seen.last().unwrap().position();
    dropping.close().unwrap();
    send_all(&registry, &ctx, 3..=5);
    let (sink, mut back) = channel_sink(64);
    let resumed = registry.resume(&ctx, sink, Some(last)).unwrap();
    assert!(resumed.recovered());
    assert_eq!(resumed.continues_after(), last);
    send_all(&registry, &ctx, 6..=6);
    settle().await;
    assert_eq!(contiguous_texts(last, &drain(&mut back)), names(3..=6));
    let from = stays_conn.continues_after();
    assert_eq!(contiguous_texts(from, &drain(&mut stays)), names(1..=6));
}

/// The modelled system's recovery queue is this special case: a user with no live connection
/// reconnects with its last position.
#[tokio::test(start_paused = true)]
async fn an_offline_user_resumes_its_runs_in_lifecycle_order() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut inbox) = channel_sink(64);
    let conn = registry.connect(&ctx, sink).unwrap();
    registry.emit(ctx.key(), started("r1")).unwrap();
    settle().await;
    let last = drain(&mut inbox).last().unwrap().position();
    conn.close().unwrap();
    for e in [executing("r1", "a"), tool_done("r1", "a"), completed("r1")] {
        registry.emit(ctx.key(), e).unwrap();
    }
    let (sink, mut inbox) = channel_sink(64);
    registry.resume(&ctx, sink, Some(last)).unwrap();
    let got = take(&mut inbox, 3).await;
    assert_eq!(
        kinds(&got),
        ["tool_executing", "tool_completed", "agent_completed"]
    );
    assert_eq!(got[0].seq(), last.seq + 1);
}

#[tokio::test(start_paused = true)]
async fn a_resume_past_what_the_history_holds_gets_a_gap_marker_first() {
    let config = RegistryConfig {
        history_capacity: 3,
        ..Default::default()
    };
    let registry = Registry::new(config);
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut inbox) = channel_sink(64);
    let conn = registry.connect(&ctx, sink).unwrap();
    send_all(&registry, &ctx, 1..=1);
    settle().await;
    let last = drain(&mut inbox)[0].position();
    conn.close().unwrap();
    send_all(&registry, &ctx, 2..=7);
    let (sink, mut inbox) = channel_sink(64);
    let resumed = registry.resume(&ctx, sink, Some(last)).unwrap();
    assert!(!resumed.recovered());
    settle().await;
    let got = drain(&mut inbox);
    assert_eq!(gap_of(&got[0]), (2, 4, GapReason::Trimmed));
    assert_eq!(contiguous_texts(last, &got), names(5..=7));
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_catches_up_from_history_and_only_trimmed_messages_become_a_gap() {
    let config = RegistryConfig {
        history_capacity: 4,
        ..Default::default()
    };
    let registry = Registry::new(config);
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut fast) = channel_sink(64);
    let fast_conn = registry.connect(&ctx, sink).unwrap();
    let (sink, mut slow) = channel_sink(1); // room for one, and nobody reads yet
    let slow_conn = registry.connect(&ctx, sink).unwrap();
    for i in 1..=10 {
        registry.send_text(ctx.key(), &format!("m{i}")).unwrap();
        settle().await;
    }
    let from = fast_conn.continues_after();
    assert_eq!(contiguous_texts(from, &drain(&mut fast)), names(1..=10));
    // The slow tab took #1 and #2 (one in its buffer, one held by its writer); #3..#6 were
    // let go of meanwhile, which it is told, then it catches up from the history.
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(slow.recv().await.unwrap());
    }
    let from = slow_conn.continues_after();
    assert_eq!(
        contiguous_texts(from, &got),
        ["m1", "m2", "m7", "m8", "m9", "m10"]
    );
    assert_eq!(gap_of(&got[2]), (3, 6, GapReason::Trimmed));
    assert!(slow.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_position_from_a_reaped_manager_is_never_taken_in_the_new_epoch() {
    let config = RegistryConfig {
        idle_ttl: Duration::from_secs(5),
        ..Default::default()
    };
    let registry = Registry::new(config);
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut inbox) = channel_sink(64);
    let conn = registry.connect(&ctx, sink).unwrap();
    send_all(&registry, &ctx, 1..=3);
    settle().await;
    let last = drain(&mut inbox).last().unwrap().position();
    conn.close().unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(registry.get(ctx.key()).is_none(), "reaped");
    let (sink, mut inbox) = channel_sink(64);
    let resumed = registry.resume(&ctx, sink, Some(last)).unwrap();
    let epoch = resumed.manager().epoch();
    assert_ne!(epoch, last.epoch);
    assert!(!resumed.recovered());
    assert_eq!(resumed.continues_after(), Position::new(epoch, 0));
    send_all(&registry, &ctx, 4..=4);
    let got = take(&mut inbox, 2).await;
    assert_eq!(got[0].epoch(), epoch);
    assert_eq!(gap_of(&got[0]), (1, 0, GapReason::EpochChanged));
    assert_eq!(
        contiguous_texts(resumed.continues_after(), &got),
        names(4..=4)
    );
}

#[tokio::test]
async fn a_resume_from_a_position_the_stream_never_reached_is_refused() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let (sink, _inbox) = channel_sink(4);
    let conn = registry.connect(&ctx, sink).unwrap();
    let at = registry.send_text(ctx.key(), "one").unwrap();
    let ahead = Position::new(at.epoch, at.seq + 1);
    let (sink, _inbox) = channel_sink(4);
    let err = registry.resume(&ctx, sink, Some(ahead)).unwrap_err();
    assert!(matches!(err, Error::ResumeAhead { .. }), "{err}");
    assert_eq!(
        registry.inspect().connections,
        1,
        "the refusal changed nothing"
    );
    drop(conn);
}

#[tokio::test(start_paused = true)]
async fn a_fresh_tab_that_joins_mid_run_gets_the_whole_run() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let (sink, _first) = channel_sink(64);
    registry.connect(&ctx, sink).unwrap();
    send_all(&registry, &ctx, 1..=1);
    registry.emit(ctx.key(), started("r1")).unwrap();
    registry.emit(ctx.key(), executing("r1", "a")).unwrap();
    let (sink, mut late) = channel_sink(64);
    let joined = registry.connect(&ctx, sink).unwrap();
    assert_eq!(
        joined.continues_after().seq,
        1,
        "starts at agent_started, not the text"
    );
    registry.emit(ctx.key(), tool_done("r1", "a")).unwrap();
    let got = take(&mut late, 3).await;
    assert_eq!(
        kinds(&got),
        ["agent_started", "tool_executing", "tool_completed"]
    );
    // With no run in flight a fresh tab starts at live messages.
    registry.emit(ctx.key(), completed("r1")).unwrap();
    let (sink, mut idle) = channel_sink(64);
    let fresh = registry.connect(&ctx, sink).unwrap();
    assert_eq!(fresh.continues_after().seq, 5);
    settle().await;
    assert!(idle.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn modes_pause_and_refuse_for_their_user_only_and_nothing_is_lost() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let other = UserContext::new("v").unwrap();
    let (sink, mut old_tab) = channel_sink(64);
    let old = registry.connect(&ctx, sink).unwrap();
    let (sink, mut other_tab) = channel_sink(64);
    registry.connect(&other, sink).unwrap();

    registry.set_mode(ctx.key(), Mode::Degraded).unwrap();
    send_all(&registry, &ctx, 1..=2);
    registry.send_text(other.key(), "for v").unwrap();
    settle().await;
    assert!(
        old_tab.try_recv().is_err(),
        "degraded delivers nothing live"
    );
    assert_eq!(other_tab.recv().await.unwrap().seq(), 1, "v is unaffected");

    registry.set_mode(ctx.key(), Mode::Emergency).unwrap();
    let refused = registry.send_text(ctx.key(), "chatter");
    assert!(matches!(refused, Err(Error::Suppressed { .. })));
    registry.emit(ctx.key(), started("r1")).unwrap();
    settle().await;
    assert_eq!(
        kinds(&drain(&mut old_tab)),
        ["text", "text", "agent_started"]
    );

    registry.set_mode(ctx.key(), Mode::Isolated).unwrap();
    let (sink, mut new_tab) = channel_sink(64);
    let newest = registry.connect(&ctx, sink).unwrap();
    send_all(&registry, &ctx, 3..=3);
    settle().await;
    assert!(
        old_tab.try_recv().is_err(),
        "isolated pauses all but the newest"
    );
    assert_eq!(
        contiguous_texts(newest.continues_after(), &drain(&mut new_tab)),
        ["m3"]
    );
    registry.set_mode(ctx.key(), Mode::Unified).unwrap();
    settle().await;
    assert_eq!(
        contiguous_texts(
            Position::new(old.continues_after().epoch, 3),
            &drain(&mut old_tab)
        ),
        ["m3"],
        "the paused tab catches up, without a gap"
    );
}

#[tokio::test(start_paused = true)]
async fn the_history_is_bounded_by_age_and_across_users() {
    let config = RegistryConfig {
        history_ttl: Duration::from_secs(1),
        max_history_messages: 5,
        ..Default::default()
    };
    let registry = Registry::new(config);
    let (u, v) = (
        UserContext::new("u").unwrap(),
        UserContext::new("v").unwrap(),
    );
    let (sink, _tab) = channel_sink(64);
    registry.connect(&u, sink).unwrap();
    let (sink, _tab2) = channel_sink(64);
    registry.connect(&v, sink).unwrap();
    send_all(&registry, &u, 1..=4);
    send_all(&registry, &v, 1..=4);
    let held: usize = registry.inspect().managers.iter().map(|m| m.history).sum();
    assert!(held <= 5 + 2, "{held} messages retained");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at = registry.send_text(u.key(), "fresh").unwrap();
    assert_eq!(
        registry.get(u.key()).unwrap().view().history,
        1,
        "older ones expired"
    );
    let (sink, mut late) = channel_sink(64);
    let start = Position::new(at.epoch, 0);
    registry.resume(&u, sink, Some(start)).unwrap();
    let got = take(&mut late, 2).await;
    assert_eq!(gap_of(&got[0]), (1, 4, GapReason::Trimmed));
    assert_eq!(contiguous_texts(start, &got), ["fresh"]);
}

#[tokio::test(start_paused = true)]
async fn a_dead_socket_loses_nothing_its_client_cannot_resume() {
    let observer = Recorder::new();
    let registry = Registry::with_observer(RegistryConfig::default(), observer.clone());
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut inbox) = channel_sink(64);
    registry.connect(&ctx, sink).unwrap();
    send_all(&registry, &ctx, 1..=1);
    settle().await;
    let last = drain(&mut inbox)[0].position();
    drop(inbox); // the socket dies
    send_all(&registry, &ctx, 2..=3);
    settle().await;
    assert_eq!(observer.matching("ConnectionRemoved").len(), 1);
    let (sink, mut back) = channel_sink(64);
    assert!(registry.resume(&ctx, sink, Some(last)).unwrap().recovered());
    let got = take(&mut back, 2).await;
    assert_eq!(contiguous_texts(last, &got), names(2..=3));
}

#[tokio::test]
async fn closing_one_tab_removes_exactly_that_connection() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let mut conns = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..3 {
        let (sink, inbox) = channel_sink(8);
        conns.push(registry.connect(&ctx, sink).unwrap());
        inboxes.push(inbox);
    }
    conns[1].close().unwrap();
    let view = registry.inspect();
    let live: Vec<_> = view.managers[0].connections.iter().map(|c| c.id).collect();
    assert_eq!(live, [conns[0].id(), conns[2].id()]);
    // A stale second close is an error and removes nothing.
    assert!(matches!(
        conns[1].close(),
        Err(Error::UnknownConnection { .. })
    ));
    assert_eq!(registry.inspect().connections, 2);
    // Ids are never reused.
    let (sink, _inbox) = channel_sink(8);
    let fresh = registry.connect(&ctx, sink).unwrap();
    assert!(conns.iter().all(|c| c.id() != fresh.id()));
    assert!(fresh.id() > conns[2].id());
}
