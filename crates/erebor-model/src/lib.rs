//! erebor-model: under construction in this session.
