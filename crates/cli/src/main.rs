//! The l2sec command.
fn main() {}
