//! Builders of training rows: the DPOP paper's multiple-choice pairs, MetaMath-style low-edit
//! pairs, and the synthetic arithmetic task.

pub mod low_edit;
pub mod multiple_choice;
pub mod synth;
