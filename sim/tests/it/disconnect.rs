//! The disconnect benchmark's ledger on small runs: the core loses nothing silently, a short
//! history turns loss into gap markers, and planted stream bugs show up in the counts.

use wsreg_sim::measure::disconnect::{markdown, run, Options, Summary};
use wsreg_sim::zoo::Bug;

fn small(history: usize, bug: Option<Bug>, net: bool) -> Summary {
    let opts = Options {
        users: 60,
        seconds: 40,
        history,
        bug,
        net: net.then_some([1, 10]),
        ..Options::default()
    };
    run(&opts).expect("runs").0
}

#[test]
fn the_core_delivers_every_message_across_forced_disconnects() {
    let s = small(256, None, false);
    assert!(
        s.accepted > 60 * 50,
        "every agent emits from its first connect on: {s:?}"
    );
    assert_eq!(s.delivered, s.accepted);
    assert_eq!(
        (s.unsignalled_gaps, s.duplicates, s.gaps_signalled),
        (0, 0, 0)
    );
    assert!(
        s.reconnects >= 60,
        "at least one forced close per user in 40 s: {s:?}"
    );
    assert_eq!(s.recovered, s.reconnects);
}

#[test]
fn a_short_history_turns_loss_into_gap_markers() {
    let s = small(2, None, false);
    assert!(s.gaps_signalled > 0 && s.lost_signalled > 0, "{s:?}");
    assert_eq!(s.delivered + s.lost_signalled, s.accepted);
    assert_eq!((s.unsignalled_gaps, s.duplicates), (0, 0));
    assert!(s.recovered < s.reconnects / 2, "{s:?}");
}

#[test]
fn through_the_server_latency_is_virtual_and_nothing_is_lost() {
    let s = small(256, None, true);
    assert_eq!(s.delivered, s.accepted);
    assert_eq!((s.unsignalled_gaps, s.duplicates), (0, 0));
    assert!(
        s.replay_p50_ms > 1.0 && s.replay_p99_ms >= s.replay_p50_ms,
        "{s:?}"
    );
}

#[test]
fn planted_stream_bugs_show_in_the_counts() {
    let silent_trim = small(2, Some(Bug::B20), false);
    assert!(silent_trim.unsignalled_gaps > 0, "{silent_trim:?}");
    assert_eq!(silent_trim.gaps_signalled, 0);
    let off_by_one = small(256, Some(Bug::B19), false);
    assert!(off_by_one.duplicates > 0, "{off_by_one:?}");
    let dropped_offline = small(256, Some(Bug::B14), false);
    assert!(dropped_offline.delivered < dropped_offline.accepted);
    assert!(dropped_offline.unsignalled_gaps > 0);
}

#[test]
fn a_seed_prints_the_same_summary_and_another_seed_does_not() {
    let opts = |seed| Options {
        users: 40,
        seconds: 30,
        seed,
        ..Options::default()
    };
    let first = markdown(&run(&opts(7)).expect("runs").0);
    assert_eq!(first, markdown(&run(&opts(7)).expect("runs").0));
    assert_ne!(first, markdown(&run(&opts(8)).expect("runs").0));
}

#[test]
fn impossible_options_are_refused() {
    for opts in [
        Options {
            users: 0,
            ..Options::default()
        },
        Options {
            seconds: 0,
            ..Options::default()
        },
        Options {
            history: 0,
            ..Options::default()
        },
        Options {
            rate_per_s: 0,
            ..Options::default()
        },
    ] {
        assert!(run(&opts).is_err(), "{opts:?}");
    }
}
