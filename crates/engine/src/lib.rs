//! l2sec engine.
