//! erebor-workflow: under construction in this session.
