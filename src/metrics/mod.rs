//! Metrics over numbers (no burn types): tunnel metrics, their test-set uncertainty,
//! continual-learning metrics, numerical rank.

pub mod continual;
pub mod evaluation;
pub mod rank;
pub mod tunnel;
