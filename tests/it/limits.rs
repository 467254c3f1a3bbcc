//! Bad input and limits: typed errors that change nothing.

use std::sync::Arc;

use tokio::sync::Barrier;
use wsreg::{
    channel_sink, ContextError, ContextField, Error, GapReason, Payload, Registry, RegistryConfig,
    UserContext,
};

use crate::support::Recorder;

#[test]
fn invalid_contexts_are_rejected_with_the_field_named() {
    assert_eq!(
        UserContext::from_parts(None, Some("t"), None),
        Err(ContextError::MissingUserId)
    );
    assert_eq!(
        UserContext::new(""),
        Err(ContextError::Empty {
            field: ContextField::UserId
        })
    );
    assert!(matches!(
        UserContext::new(&"u".repeat(300)),
        Err(ContextError::TooLong {
            field: ContextField::UserId,
            len: 300,
            ..
        })
    ));
    assert!(matches!(
        UserContext::new("u").unwrap().with_request_id("a\u{7}b"),
        Err(ContextError::ControlCharacter {
            field: ContextField::RequestId,
            at: 1
        })
    ));
    let e = Error::from(UserContext::new(" ").unwrap_err());
    assert_eq!(e.to_string(), "user_id is blank");
}

#[tokio::test]
async fn the_manager_limit_refuses_a_new_user_only_when_every_manager_is_busy() {
    let registry = Registry::new(RegistryConfig {
        max_managers: 2,
        ..Default::default()
    });
    let mut inboxes = Vec::new();
    let mut conns = Vec::new();
    for u in ["a", "b"] {
        let (sink, inbox) = channel_sink(1);
        conns.push(
            registry
                .connect(&UserContext::new(u).unwrap(), sink)
                .unwrap(),
        );
        inboxes.push(inbox);
    }
    let before = registry.inspect();
    let err = registry
        .get_or_create(&UserContext::new("c").unwrap())
        .unwrap_err();
    assert_eq!(err, Error::ManagerLimit { max: 2 });
    let (sink, _inbox) = channel_sink(1);
    assert!(registry
        .connect(&UserContext::new("c").unwrap(), sink)
        .is_err());
    assert_eq!(registry.inspect(), before);
    // Existing users are still served.
    assert!(registry
        .get_or_create(&UserContext::new("a").unwrap())
        .is_ok());
}

#[tokio::test]
async fn after_a_wave_of_logins_a_new_user_evicts_the_manager_idle_longest() {
    let observer = Recorder::new();
    let registry = Registry::with_observer(
        RegistryConfig {
            max_managers: 3,
            ..Default::default()
        },
        observer.clone(),
    );
    let ctx = |u: &str| UserContext::new(u).unwrap();
    // a and b log in and leave (a first); c stays.
    let (sink, _a_tab) = channel_sink(4);
    let a = registry.connect(&ctx("a"), sink).unwrap();
    let seen = registry.send_text(ctx("a").key(), "hello").unwrap();
    let (sink, _b_tab) = channel_sink(4);
    let b = registry.connect(&ctx("b"), sink).unwrap();
    let (sink, _c_tab) = channel_sink(4);
    let _c = registry.connect(&ctx("c"), sink).unwrap();
    a.close().unwrap();
    b.close().unwrap();
    // d is served: a, idle longest, makes room; b (idle since later) and c (connected) stay.
    let (sink, _d_tab) = channel_sink(4);
    registry.connect(&ctx("d"), sink).unwrap();
    let held: Vec<String> = registry
        .inspect()
        .managers
        .iter()
        .map(|m| m.user.to_string())
        .collect();
    assert_eq!(held, ["b", "c", "d"]);
    assert_eq!(observer.matching("removed a").len(), 1);
    // a comes back with its old position: a new manager, a new epoch, and the client is told
    // its old stream is gone rather than handed a position that means something else now.
    let (sink, mut a_again) = channel_sink(4);
    let resumed = registry.resume(&ctx("a"), sink, Some(seen)).unwrap();
    assert_eq!(
        observer.matching("removed b").len(),
        1,
        "b, idle now, made room"
    );
    assert!(!resumed.recovered());
    assert_ne!(resumed.continues_after().epoch, seen.epoch);
    let first = a_again.recv().await.unwrap();
    assert!(
        matches!(
            first.payload(),
            Payload::Gap {
                reason: GapReason::EpochChanged,
                ..
            }
        ),
        "{first:?}"
    );
}

#[tokio::test]
async fn the_per_user_limit_holds_under_concurrent_connects() {
    let registry = Registry::new(RegistryConfig {
        max_connections_per_user: 9,
        ..Default::default()
    });
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let (sink, inbox) = channel_sink(1);
            barrier.wait().await;
            (
                registry.connect(&UserContext::new("u").unwrap(), sink),
                inbox,
            )
        }));
    }
    let mut ok = 0;
    let mut _keep = Vec::new();
    for t in tasks {
        let (result, inbox) = t.await.unwrap();
        match result {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(
                e,
                Error::UserConnectionLimit {
                    user: "u".into(),
                    max: 9
                }
            ),
        }
        _keep.push(inbox);
    }
    assert_eq!(ok, 9);
    assert_eq!(registry.inspect().connections, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_connection_limit_holds_across_users() {
    let registry = Registry::new(RegistryConfig {
        max_connections: 5,
        ..Default::default()
    });
    let barrier = Arc::new(Barrier::new(12));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let (sink, inbox) = channel_sink(1);
            barrier.wait().await;
            let ctx = UserContext::new(&format!("u{i}")).unwrap();
            (registry.connect(&ctx, sink).is_ok(), inbox)
        }));
    }
    let mut ok = 0;
    let mut _keep = Vec::new();
    for t in tasks {
        let (connected, inbox) = t.await.unwrap();
        ok += usize::from(connected);
        _keep.push(inbox);
    }
    assert_eq!(ok, 5);
    assert_eq!(registry.inspect().connections, 5);
}

#[tokio::test]
async fn a_shut_down_registry_hands_out_nothing() {
    let registry = Registry::default();
    let ctx = UserContext::new("u").unwrap();
    let (sink, mut inbox) = channel_sink(4);
    let conn = registry.connect(&ctx, sink).unwrap();
    registry.shutdown();
    assert!(conn.manager().is_closed());
    assert_eq!(
        registry.get_or_create(&ctx).unwrap_err(),
        Error::ShuttingDown
    );
    assert!(registry.inspect().managers.is_empty());
    assert!(inbox.recv().await.is_none(), "the socket was not closed");
}
