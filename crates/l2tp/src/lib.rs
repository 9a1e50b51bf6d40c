//! l2sec l2tp.
#![forbid(unsafe_code)]
