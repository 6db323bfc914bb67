//! Metrics over numbers (no burn types): tunnel metrics, continual-learning metrics, numerical rank.

pub mod continual;
pub mod rank;
pub mod tunnel;
