//! l2sec profile.
#![forbid(unsafe_code)]
