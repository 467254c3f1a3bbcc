//! Running a plan: the seam a backend plugs into, backends by name, buggify's sites, the simulated world and its
//! clients, the recorder that turns what happens into steps, the madsim runtime, and the real
//! server over the simulated network.

pub mod backend;
pub mod buggify;
#[cfg(madsim)]
pub mod net;
pub mod recorder;
pub mod runtime;
pub mod world;
