//! The stream store against a real `redis-server` (started by the tests on a free loopback
//! port): the model and the Lua scripts reply alike, and nodes over Redis are one service.
#![cfg(not(madsim))]

mod command;
mod differential;
mod failover;
mod faults;
mod nodes;
mod proxy;
mod server;
