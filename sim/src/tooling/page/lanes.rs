//! Swimlanes: which lane each step is drawn in. One lane for the world (phases, network and
//! server faults); per simulated user, one lane for what it did without a tab (connect requests,
//! emits, texts, mode changes) and one per tab; per manager, one lane for what the backend
//! reported about it. A manager's lane belongs to the users who were filed under its key, so a
//! filter by user keeps the managers that served that user, including one shared by mistake.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::check::trace::{escaped, Side, Step, What};

/// One lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lane {
    /// What the lane is labelled with.
    pub label: String,
    /// `world`, `user`, `tab`, `manager` or `key` (core steps naming no manager).
    pub kind: &'static str,
    /// The filter entries (indexes into [`Layout::users`]) the lane belongs to.
    pub users: Vec<usize>,
}

/// The lanes of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The filter entries: every simulated user, then every key the backend used that no user
    /// connected under (shown as `key …`).
    pub users: Vec<String>,
    /// The lanes, top to bottom.
    pub lanes: Vec<Lane>,
    /// For each step of the trace, its lane.
    pub lane_of: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LaneKey {
    World,
    User(usize),
    Tab(usize, u64),
    Manager(u64),
    Key(Arc<str>),
}

/// Lays out the trace's steps in lanes.
pub fn layout(trace: &[Step]) -> Layout {
    let mut names: Vec<Arc<str>> = Vec::new();
    let mut index: BTreeMap<Arc<str>, usize> = BTreeMap::new();
    let mut entry = |names: &mut Vec<Arc<str>>, name: &Arc<str>| {
        *index.entry(Arc::clone(name)).or_insert_with(|| {
            names.push(Arc::clone(name));
            names.len() - 1
        })
    };
    for s in trace {
        if s.what.side() == Side::Client {
            entry(&mut names, &s.user);
        }
    }
    let users = names.len();
    // Who was filed under which key, as the clients were told.
    let mut owners: BTreeMap<Arc<str>, Vec<usize>> = BTreeMap::new();
    for s in trace {
        if let What::Connected { key, .. } = &s.what {
            let u = entry(&mut names, &s.user);
            let list = owners.entry(Arc::clone(key)).or_default();
            if !list.contains(&u) {
                list.push(u);
            }
        }
    }
    let mut keys: Vec<LaneKey> = Vec::new();
    let mut lane_index: BTreeMap<LaneKey, usize> = BTreeMap::new();
    // The user (for a manager: the key) the lane's first step names.
    let mut first_named: Vec<Arc<str>> = Vec::new();
    let mut lane_users: Vec<Vec<usize>> = Vec::new();
    let mut lane_of = Vec::with_capacity(trace.len());
    for s in trace {
        let (key, who) = match s.what.side() {
            Side::World => (LaneKey::World, Vec::new()),
            Side::Client => {
                let u = entry(&mut names, &s.user);
                match s.conn {
                    Some(c) => (LaneKey::Tab(u, c), vec![u]),
                    None => (LaneKey::User(u), vec![u]),
                }
            }
            Side::Core => {
                let who = match owners.get(&s.user) {
                    Some(list) => list.clone(),
                    None => vec![entry(&mut names, &s.user)],
                };
                match s.mgr {
                    Some(m) => (LaneKey::Manager(m), who),
                    None => (LaneKey::Key(Arc::clone(&s.user)), who),
                }
            }
        };
        let lane = *lane_index.entry(key.clone()).or_insert_with(|| {
            keys.push(key);
            first_named.push(Arc::clone(&s.user));
            lane_users.push(Vec::new());
            keys.len() - 1
        });
        for u in who {
            if !lane_users[lane].contains(&u) {
                lane_users[lane].push(u);
            }
        }
        lane_of.push(lane);
    }
    // Top to bottom: the world, then each user's own lane, tabs and managers together.
    let rank = |i: usize| {
        let first = lane_users[i].iter().min().copied().unwrap_or(0);
        let kind = match &keys[i] {
            LaneKey::World => return (0, 0, 0, i),
            LaneKey::User(_) => 0,
            LaneKey::Tab(..) => 1,
            LaneKey::Manager(_) | LaneKey::Key(_) => 2,
        };
        (1, first, kind, i)
    };
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| rank(i));
    let mut moved = vec![0; keys.len()];
    for (to, &from) in order.iter().enumerate() {
        moved[from] = to;
    }
    let shown = |u: usize| -> String {
        let name = escaped(&names[u]).into_owned();
        if u < users || owners.values().any(|o| o.contains(&u)) {
            name
        } else {
            format!("key {name}")
        }
    };
    let lanes = order
        .iter()
        .map(|&i| {
            let (label, kind) = match &keys[i] {
                LaneKey::World => ("world".to_owned(), "world"),
                LaneKey::User(u) => (shown(*u), "user"),
                LaneKey::Tab(u, c) => (format!("{} tab c{c}", shown(*u)), "tab"),
                LaneKey::Manager(m) => (
                    format!("manager m{m} (key {})", escaped(&first_named[i])),
                    "manager",
                ),
                LaneKey::Key(k) => (format!("key {} (no manager)", escaped(k)), "key"),
            };
            Lane {
                label,
                kind,
                users: lane_users[i].clone(),
            }
        })
        .collect();
    Layout {
        users: (0..names.len()).map(shown).collect(),
        lanes,
        lane_of: lane_of.into_iter().map(|l| moved[l]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use wsreg::{Epoch, Position};

    use super::*;

    fn step(n: u64, user: &str, conn: Option<u64>, mgr: Option<u64>, what: What) -> Step {
        Step {
            n,
            t_us: n,
            user: user.into(),
            conn,
            mgr,
            tab: None,
            what,
        }
    }

    #[test]
    fn users_tabs_and_managers_get_lanes_and_a_shared_key_belongs_to_both_users() {
        let at = Position::new(Epoch::new(0, 1), 0);
        let connected = |n, user: &str, conn| {
            step(
                n,
                user,
                Some(conn),
                Some(1),
                What::Connected {
                    key: "alice".into(),
                    asked: None,
                    from: at,
                    recovered: true,
                },
            )
        };
        let trace = [
            step(1, "-", None, None, What::Phase("safety")),
            step(
                2,
                "Alice",
                None,
                None,
                What::Connect {
                    slow: false,
                    resume: None,
                },
            ),
            step(
                3,
                "alice",
                None,
                Some(1),
                What::ManagerCreated { epoch: at.epoch },
            ),
            connected(4, "Alice", 1),
            connected(5, "alice", 2),
            step(6, "Alice", Some(1), None, What::Close),
        ];
        let l = layout(&trace);
        assert_eq!(l.users, ["Alice", "alice"]);
        let labels: Vec<&str> = l.lanes.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "world",
                "Alice",
                "Alice tab c1",
                "manager m1 (key alice)",
                "alice tab c2"
            ]
        );
        assert_eq!(l.lanes[3].users, [0, 1]);
        assert_eq!(l.lane_of, [0, 1, 3, 2, 4, 2]);
    }
}
