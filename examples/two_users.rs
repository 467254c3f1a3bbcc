//! Two users, each with a socket (an in-memory channel here), each receiving only its own
//! agent run. `cargo run --example two_users`.

use wsreg::{channel_sink, AgentEvent, Payload, Registry, UserContext};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let registry = Registry::default();
    let mut inboxes = Vec::new();
    for user in ["alice", "bob"] {
        let ctx = UserContext::new(user)?.with_thread_id("thread-1")?;
        let (sink, inbox) = channel_sink(32);
        registry.connect(&ctx, sink)?;
        let run = format!("{user}-run-1");
        registry.emit(
            ctx.key(),
            AgentEvent::AgentStarted {
                run_id: run.clone(),
            },
        )?;
        registry.emit(
            ctx.key(),
            AgentEvent::AgentCompleted {
                run_id: run,
                status: "ok".into(),
                final_response: format!("hello {user}"),
            },
        )?;
        inboxes.push((user, inbox));
    }
    for (user, mut inbox) in inboxes {
        for _ in 0..2 {
            let msg = inbox.recv().await.ok_or("socket closed")?;
            if let Payload::Agent(event) = msg.payload() {
                println!(
                    "{user} <- #{} {} ({})",
                    msg.seq(),
                    event.kind(),
                    event.run_id()
                );
            }
        }
    }
    Ok(())
}
