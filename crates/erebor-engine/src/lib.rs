//! erebor-engine: under construction in this session.
