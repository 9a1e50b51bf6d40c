//! l2sec ike.
#![forbid(unsafe_code)]
