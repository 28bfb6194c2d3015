//! The live hub: one task owns the projections (no locks), folds ingested
//! events into them, and on every tick encodes what changed in each watched
//! view once and broadcasts it to every WebSocket client (`ws`) subscribed
//! to that view. A client that falls behind a view's bounded broadcast
//! buffer is resynced with a fresh snapshot.

pub mod hub;
pub mod patch;
pub mod ws;

pub use hub::{Hub, HubHandle};
