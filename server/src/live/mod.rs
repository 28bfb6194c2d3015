//! The live hub: one task owns the projections (no locks), folds ingested
//! events into them, and on every tick encodes what changed once and
//! broadcasts it to all WebSocket clients (`ws`). A client that falls behind
//! the bounded broadcast buffer is resynced with a fresh snapshot.

pub mod hub;
pub mod ws;

pub use hub::{Hub, HubHandle};
