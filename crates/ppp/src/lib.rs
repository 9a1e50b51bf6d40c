//! l2sec ppp.
#![forbid(unsafe_code)]
