//! The gateway on real tokio, as production runs it: the cap holds, and a closed tab gives its
//! slot back.

use team_gateway::{Gateway, Release};
use wsreg::backend::Backend;
use wsreg::{channel_sink, Error, RegistryConfig, UserContext};

#[tokio::test]
async fn the_cap_holds_and_a_closed_tab_gives_its_slot_back() {
    let config = RegistryConfig {
        max_connections_per_user: 2,
        ..RegistryConfig::default()
    };
    let gateway = Gateway::new(Release::Always, config, None);
    let alice = UserContext::new("alice").unwrap();
    let tab = |_| Box::new(channel_sink(8).0);
    let first = gateway.connect(&alice, tab(1), None).await.unwrap();
    let _second = gateway.connect(&alice, tab(2), None).await.unwrap();
    let refused = gateway.connect(&alice, tab(3), None).await.unwrap_err();
    assert!(matches!(refused, Error::UserConnectionLimit { max: 2, .. }));
    gateway.close(&first.handle).await.unwrap();
    assert!(gateway.connect(&alice, tab(4), None).await.is_ok());
}
