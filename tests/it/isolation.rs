//! One manager per user under concurrency; nothing shared between users.

use std::sync::Arc;

use tokio::sync::Barrier;
use wsreg::{channel_sink, Mode, Payload, Registry, UserContext};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_requests_for_one_user_get_one_manager() {
    let registry = Registry::default();
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let ctx = UserContext::new("user-1")
                .unwrap()
                .with_thread_id(&format!("thread-{i}"))
                .unwrap()
                .with_request_id(&format!("req-{i}"))
                .unwrap();
            barrier.wait().await;
            registry.get_or_create(&ctx).unwrap()
        }));
    }
    let mut managers = Vec::new();
    for t in tasks {
        managers.push(t.await.unwrap());
    }
    let held = registry.get(managers[0].key()).unwrap();
    for m in &managers {
        assert!(
            m.same(&held),
            "a caller got a manager the registry does not hold"
        );
    }
    assert_eq!(registry.inspect().managers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_connects_for_one_user_land_on_one_manager() {
    let registry = Registry::default();
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let ctx = UserContext::new("u").unwrap();
            let (sink, inbox) = channel_sink(8);
            barrier.wait().await;
            (registry.connect(&ctx, sink).unwrap(), inbox)
        }));
    }
    let mut inboxes = Vec::new();
    for t in tasks {
        inboxes.push(t.await.unwrap().1);
    }
    let view = registry.inspect();
    assert_eq!(view.managers.len(), 1);
    assert_eq!(view.managers[0].connections.len(), 8);
    let key = UserContext::new("u").unwrap().key().clone();
    registry.send_text(&key, "to all tabs").unwrap();
    for inbox in &mut inboxes {
        assert_eq!(inbox.recv().await.unwrap().seq(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_users_created_concurrently_share_nothing() {
    let registry = Registry::default();
    let barrier = Arc::new(Barrier::new(5));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let ctx = UserContext::new(&format!("user-{i}")).unwrap();
            barrier.wait().await;
            registry.get_or_create(&ctx).unwrap()
        }));
    }
    let mut managers = Vec::new();
    for t in tasks {
        managers.push(t.await.unwrap());
    }
    for (i, a) in managers.iter().enumerate() {
        for b in &managers[i + 1..] {
            assert!(!a.same(b));
            assert_ne!(a.id(), b.id());
            assert_ne!(a.key(), b.key());
        }
    }
    // Per-user state: changing one user's mode and queue touches nobody else.
    managers[2].set_mode(Mode::Degraded).unwrap();
    managers[2].send_text("only for user-2").unwrap();
    for (i, m) in managers.iter().enumerate() {
        let view = m.view();
        if i == 2 {
            assert_eq!(
                (view.mode, view.history, view.accepted),
                (Mode::Degraded, 1, 1)
            );
        } else {
            assert_eq!(
                (view.mode, view.history, view.accepted),
                (Mode::Unified, 0, 0)
            );
        }
    }
}

#[tokio::test]
async fn demo_and_production_users_never_share_state_or_context() {
    let registry = Registry::default();
    let demo = UserContext::new("demo-user")
        .unwrap()
        .with_thread_id("shared-thread")
        .unwrap();
    let prod: Vec<UserContext> = (0..3)
        .map(|i| {
            UserContext::new(&format!("prod-{i}"))
                .unwrap()
                .with_thread_id("shared-thread")
                .unwrap()
        })
        .collect();
    let (demo_sink, mut demo_inbox) = channel_sink(16);
    registry.connect(&demo, demo_sink).unwrap();
    let mut prod_inboxes = Vec::new();
    for ctx in &prod {
        let (sink, inbox) = channel_sink(16);
        registry.connect(ctx, sink).unwrap();
        prod_inboxes.push(inbox);
    }
    registry.send_text(demo.key(), "demo only").unwrap();
    registry.set_mode(demo.key(), Mode::Emergency).unwrap();
    for (ctx, inbox) in prod.iter().zip(&mut prod_inboxes) {
        registry.send_text(ctx.key(), ctx.user_id()).unwrap();
        let msg = inbox.recv().await.unwrap();
        assert_eq!(msg.to(), ctx.key());
        assert_eq!(
            msg.payload(),
            &Payload::Text {
                text: ctx.user_id().into()
            }
        );
        assert!(
            inbox.try_recv().is_err(),
            "{} got more than its own",
            ctx.user_id()
        );
        assert_eq!(registry.get(ctx.key()).unwrap().mode(), Mode::Unified);
    }
    let msg = demo_inbox.recv().await.unwrap();
    assert_eq!(msg.to(), demo.key());
    assert!(demo_inbox.try_recv().is_err());
}
