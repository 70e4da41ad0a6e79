//! erebor-store: under construction in this session.
