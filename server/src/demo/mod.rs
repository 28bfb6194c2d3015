//! Demo mode: a managed local nats-server (`managed_nats`) and a built-in
//! producer of log and metric events (`producer`), so that `eventscope` with
//! no arguments shows a live dashboard. Both are ordinary NATS parts: the
//! dashboard does not special-case them.

pub mod managed_nats;
pub mod producer;
pub mod scenarios;
