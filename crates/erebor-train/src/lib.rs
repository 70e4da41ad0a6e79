//! erebor-train: under construction in this session.
