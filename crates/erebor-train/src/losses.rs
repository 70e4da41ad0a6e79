//! Preference losses (DPOP, DPO, IPO, `SLiC`) as functions of per-sequence summed log-probs.
//!
//! Every loss is a function of four `[pairs]` tensors: the policy's and the reference model's
//! log-probabilities of the chosen and the rejected completion, each summed over the completion
//! tokens. With `Δ = (π_c − ref_c) − (π_r − ref_r)`:
//!
//! | loss | per pair |
//! | --- | --- |
//! | DPO | `−log σ(βΔ)` |
//! | DPOP | `−log σ(β(Δ − λ·max(0, ref_c − π_c)))` (Pal et al. 2024, the v3 bracketing) |
//! | IPO | `(Δ − 1/(2β))²`, on length-normalised log-probs (below) |
//! | `SLiC` | `max(0, 1 − βΔ)` |
//!
//! IPO's log-probs are each sequence's sum divided by its completion token count, as TRL's
//! `DPOTrainer` computes them for `loss_type="ipo"`; the caller divides
//! ([`PreferenceLossKind::normalises_by_length`]), the functions here take what they are given.
//!
//! The functions return the per-pair losses; the training loop sums them over a micro-batch and
//! divides by the number of pairs in the whole accumulated batch, so the gradient equals that of
//! the mean over the accumulated batch whatever the micro-batch split.
//!
//! **DPOP's penalty at exactly zero.** `max(0, ref_c − π_c)` is a `relu`, whose gradient at 0 is
//! 0 (Burn's, and `PyTorch`'s `torch.relu`); `torch.clamp(x, min=0)` would pass a gradient of 1
//! there. erebor takes the relu's: the penalty acts only once the chosen log-likelihood is below
//! the reference's, not when it equals it. The choice matters at step 0, where erebor computes the
//! reference through the policy's own forward, so every pair has exactly `π_c = ref_c`: with the
//! relu's gradient the first step is plain DPO; with clamp's it would scale the chosen answers'
//! gradient by `1 + λ` (51) for every pair, a first step unlike any later one. Away from exact
//! ties the two agree.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, relu};
use serde::{Deserialize, Serialize};

/// The DPOP paper's default λ.
pub(crate) const DEFAULT_DPOP_LAMBDA: f64 = 50.0;

/// Which preference objective to optimise.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceLossKind {
    /// Direct Preference Optimisation (Rafailov et al. 2023).
    Dpo,
    /// DPO-Positive: DPO plus a penalty keeping the chosen log-likelihood at or above the
    /// reference's (Pal et al. 2024).
    Dpop,
    /// Identity Preference Optimisation (Azar et al. 2023).
    Ipo,
    /// Sequence Likelihood Calibration, hinge form (Zhao et al. 2023).
    Slic,
}

impl PreferenceLossKind {
    /// Lower-case name as written in workflow files.
    pub fn as_str(self) -> &'static str {
        match self {
            PreferenceLossKind::Dpo => "dpo",
            PreferenceLossKind::Dpop => "dpop",
            PreferenceLossKind::Ipo => "ipo",
            PreferenceLossKind::Slic => "slic",
        }
    }

    /// Whether the loss takes each sequence's log-prob divided by its completion length rather
    /// than the sum: IPO, as TRL computes it (so a β tuned there means the same here).
    pub(crate) fn normalises_by_length(self) -> bool {
        self == PreferenceLossKind::Ipo
    }
}

/// A preference loss with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreferenceObjective {
    /// The loss.
    pub kind: PreferenceLossKind,
    /// β: the strength of the implicit KL constraint (DPO, DPOP, `SLiC`) or the target margin
    /// `1/(2β)` (IPO).
    pub beta: f64,
    /// λ: weight of the DPOP penalty. Only DPOP uses it.
    pub lambda: f64,
}

/// Summed completion log-probabilities of one batch of pairs, each `[pairs]`.
#[derive(Clone, Debug)]
pub struct PairLogps {
    /// `log π_θ(y_w | x)`, tracked by autodiff.
    pub policy_chosen: Tensor<1>,
    /// `log π_θ(y_l | x)`, tracked by autodiff.
    pub policy_rejected: Tensor<1>,
    /// `log π_ref(y_w | x)`, a constant.
    pub reference_chosen: Tensor<1>,
    /// `log π_ref(y_l | x)`, a constant.
    pub reference_rejected: Tensor<1>,
}

/// What a preference loss returns for a batch of pairs.
#[derive(Clone, Debug)]
pub struct PreferenceLossOutput {
    /// Loss of each pair, `[pairs]`, differentiable.
    pub per_pair: Tensor<1>,
    /// `λ·max(0, ref_c − π_c)` of each pair, `[pairs]`: the DPOP penalty, reported for every
    /// loss so the arms of a DPO-vs-DPOP comparison can be read side by side (with DPOP's λ,
    /// or [`DEFAULT_DPOP_LAMBDA`] for the other losses).
    pub penalty: Tensor<1>,
}

impl PreferenceObjective {
    /// Per-pair losses and penalties of a batch.
    pub fn loss(&self, logps: &PairLogps) -> PreferenceLossOutput {
        let chosen_ratio = logps.policy_chosen.clone() - logps.reference_chosen.clone();
        let rejected_ratio = logps.policy_rejected.clone() - logps.reference_rejected.clone();
        let delta = chosen_ratio.clone() - rejected_ratio;
        // max(0, ref_c − π_c) = relu(−(π_c − ref_c)); its gradient at exactly 0 is 0 (see the
        // module docs).
        let shortfall = relu(chosen_ratio.neg());
        let lambda = match self.kind {
            PreferenceLossKind::Dpop => self.lambda,
            _ => DEFAULT_DPOP_LAMBDA,
        };
        let penalty = shortfall.clone().mul_scalar(lambda);
        let beta = self.beta;
        let per_pair = match self.kind {
            PreferenceLossKind::Dpo => log_sigmoid(delta.mul_scalar(beta)).neg(),
            PreferenceLossKind::Dpop => {
                log_sigmoid((delta - shortfall.mul_scalar(self.lambda)).mul_scalar(beta)).neg()
            }
            PreferenceLossKind::Ipo => delta.sub_scalar(1.0 / (2.0 * beta)).square(),
            PreferenceLossKind::Slic => relu(delta.mul_scalar(-beta).add_scalar(1.0)),
        };
        PreferenceLossOutput {
            per_pair,
            penalty: penalty.detach(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn tensor(values: &[f32]) -> Tensor<1> {
        Tensor::from_floats(values, &Device::flex())
    }

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn losses_match_hand_computed_values() {
        // Δ = (−10 − −12) − (−11 − −10) = 2 + 1 = 3 for pair 0; the chosen rose, no penalty.
        // Pair 1: Δ = (−14 − −12) − (−13 − −12) = −2 + 1 = −1; chosen fell by 2, penalty λ·2.
        let logps = PairLogps {
            policy_chosen: tensor(&[-10.0, -14.0]),
            policy_rejected: tensor(&[-11.0, -13.0]),
            reference_chosen: tensor(&[-12.0, -12.0]),
            reference_rejected: tensor(&[-10.0, -12.0]),
        };
        let objective = |kind| PreferenceObjective {
            kind,
            beta: 0.5,
            lambda: 2.0,
        };
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        let cases: [(PreferenceLossKind, [f64; 2]); 4] = [
            // −log σ(x) = softplus(−x)
            (PreferenceLossKind::Dpo, [softplus(-1.5), softplus(0.5)]),
            // β(Δ − λ·2) = 0.5·(−1 − 4) = −2.5
            (PreferenceLossKind::Dpop, [softplus(-1.5), softplus(2.5)]),
            // (Δ − 1)²
            (PreferenceLossKind::Ipo, [4.0, 4.0]),
            // max(0, 1 − 0.5Δ)
            (PreferenceLossKind::Slic, [0.0, 1.5]),
        ];
        for (kind, expected) in cases {
            let output = objective(kind).loss(&logps);
            let got = values(output.per_pair);
            for (g, e) in got.iter().zip(expected) {
                assert!(
                    (f64::from(*g) - e).abs() < 1e-6,
                    "{kind:?}: {got:?} vs {expected:?}"
                );
            }
        }
        let penalty = values(objective(PreferenceLossKind::Dpop).loss(&logps).penalty);
        assert_eq!(penalty, vec![0.0, 4.0]);
    }

    #[test]
    fn at_step_zero_dpo_is_ln2_and_the_penalty_is_zero() {
        let same = tensor(&[-7.25, -30.5, -1.0]);
        let logps = PairLogps {
            policy_chosen: same.clone(),
            policy_rejected: tensor(&[-8.0, -29.0, -3.0]),
            reference_chosen: same,
            reference_rejected: tensor(&[-8.0, -29.0, -3.0]),
        };
        for kind in [PreferenceLossKind::Dpo, PreferenceLossKind::Dpop] {
            let output = PreferenceObjective {
                kind,
                beta: 0.3,
                lambda: 50.0,
            }
            .loss(&logps);
            for loss in values(output.per_pair) {
                assert!((f64::from(loss) - std::f64::consts::LN_2).abs() < 1e-7);
            }
            assert!(values(output.penalty).iter().all(|p| *p == 0.0));
        }
    }

    /// `d(loss)/d(π_c)` of one pair, through autodiff.
    fn chosen_gradient(kind: PreferenceLossKind, policy_chosen: f32) -> f64 {
        let device = Device::flex().autodiff();
        let t = |v: f32| Tensor::<1>::from_floats([v], &device);
        let chosen = t(policy_chosen).require_grad();
        let logps = PairLogps {
            policy_chosen: chosen.clone(),
            policy_rejected: t(-9.0),
            reference_chosen: t(-6.0),
            reference_rejected: t(-8.5),
        };
        let objective = PreferenceObjective {
            kind,
            beta: 0.3,
            lambda: 50.0,
        };
        let grads = objective.loss(&logps).per_pair.sum().backward();
        let grad = chosen
            .grad(&grads)
            .expect("a gradient for the policy's chosen log-prob");
        f64::from(values(grad)[0])
    }

    #[test]
    fn the_dpop_penalty_has_no_gradient_at_exactly_zero() {
        // π_c = ref_c: the penalty is 0 and passes no gradient (relu's, not torch.clamp's), so
        // DPOP's gradient is DPO's: −β·σ(−βΔ) with Δ = 0 − (−9 − −8.5) = 0.5.
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let (beta, lambda) = (0.3, 50.0);
        let dpo = -beta * sigmoid(-beta * 0.5);
        let at_zero = chosen_gradient(PreferenceLossKind::Dpop, -6.0);
        assert!((at_zero - dpo).abs() < 1e-6, "{at_zero} vs {dpo}");
        assert!((chosen_gradient(PreferenceLossKind::Dpo, -6.0) - dpo).abs() < 1e-6);
        // Just below the reference the penalty acts: −β(1 + λ)·σ(−β(Δ − λ·s)).
        let (below, s) = (-6.25f32, 0.25);
        let delta = f64::from(below) + 6.0 + 0.5;
        let want = -beta * (1.0 + lambda) * sigmoid(-beta * (delta - lambda * s));
        let got = chosen_gradient(PreferenceLossKind::Dpop, below);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
