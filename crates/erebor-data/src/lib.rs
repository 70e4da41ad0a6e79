//! erebor-data: under construction in this session.
