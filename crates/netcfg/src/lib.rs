//! l2sec netcfg.
