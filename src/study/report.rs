//! `tunnelbench report`.
