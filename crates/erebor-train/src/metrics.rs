//! Metric keys recorded every optimizer step, and the preference statistics behind them.
//!
//! Keys follow TRL's names so dashboards carry over: `rewards/chosen` is the mean implicit reward
//! `β·(log π_θ(y_w) − log π_ref(y_w))`, `rewards/margins` the mean chosen-minus-rejected reward,
//! `rewards/accuracies` the fraction of pairs whose chosen reward is higher, `logps/*` the mean
//! summed log-probs of the policy. Held-out values use the same keys under `eval/`.

/// Training loss of the step (mean over the accumulated batch).
pub(crate) const LOSS: &str = "train/loss";
/// Learning rate the step used.
pub(crate) const LR: &str = "train/lr";
/// Global gradient norm before clipping.
pub(crate) const GRAD_NORM: &str = "train/grad_norm";
/// Tokens (real, not padding) processed per second of step wall time.
pub(crate) const TOKENS_PER_SECOND: &str = "train/tokens_per_second";
/// Fractional epoch reached.
pub(crate) const EPOCH: &str = "train/epoch";
/// Mean implicit reward of the chosen answers.
pub(crate) const REWARDS_CHOSEN: &str = "rewards/chosen";
/// Mean implicit reward of the rejected answers.
pub(crate) const REWARDS_REJECTED: &str = "rewards/rejected";
/// Mean of chosen minus rejected reward.
pub(crate) const REWARDS_MARGINS: &str = "rewards/margins";
/// Fraction of pairs with a higher chosen reward.
pub(crate) const REWARDS_ACCURACIES: &str = "rewards/accuracies";
/// Mean summed log-prob of the chosen answers under the policy.
pub(crate) const LOGPS_CHOSEN: &str = "logps/chosen";
/// Mean summed log-prob of the rejected answers under the policy.
pub(crate) const LOGPS_REJECTED: &str = "logps/rejected";
/// Mean DPOP penalty term `λ·max(0, log π_ref(y_w) − log π_θ(y_w))`.
pub(crate) const DPOP_PENALTY: &str = "dpop/penalty";

/// The held-out version of a key: `eval/<key>`.
pub(crate) fn eval_key(key: &str) -> String {
    format!("eval/{}", key.strip_prefix("train/").unwrap_or(key))
}

/// Running sums of per-pair values over the micro-batches of a step (or an evaluation pass).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PairStats {
    /// Pairs seen.
    pub pairs: usize,
    /// Sum of per-pair losses.
    pub loss: f64,
    /// Sum of chosen rewards.
    pub chosen_rewards: f64,
    /// Sum of rejected rewards.
    pub rejected_rewards: f64,
    /// Pairs whose chosen reward is higher.
    pub correct: usize,
    /// Sum of policy chosen log-probs.
    pub chosen_logps: f64,
    /// Sum of policy rejected log-probs.
    pub rejected_logps: f64,
    /// Sum of DPOP penalties.
    pub penalty: f64,
}

/// Per-pair values of one micro-batch, read back from the device.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PairValues {
    /// Per-pair losses.
    pub loss: Vec<f32>,
    /// Policy chosen log-probs.
    pub policy_chosen: Vec<f32>,
    /// Policy rejected log-probs.
    pub policy_rejected: Vec<f32>,
    /// Reference chosen log-probs.
    pub reference_chosen: Vec<f32>,
    /// Reference rejected log-probs.
    pub reference_rejected: Vec<f32>,
    /// Per-pair DPOP penalties.
    pub penalty: Vec<f32>,
}

impl PairStats {
    /// Adds one micro-batch's values; `beta` scales the rewards.
    pub(crate) fn add(&mut self, values: &PairValues, beta: f64) {
        for i in 0..values.loss.len() {
            let chosen =
                beta * (f64::from(values.policy_chosen[i]) - f64::from(values.reference_chosen[i]));
            let rejected = beta
                * (f64::from(values.policy_rejected[i]) - f64::from(values.reference_rejected[i]));
            self.pairs += 1;
            self.loss += f64::from(values.loss[i]);
            self.chosen_rewards += chosen;
            self.rejected_rewards += rejected;
            self.correct += usize::from(chosen > rejected);
            self.chosen_logps += f64::from(values.policy_chosen[i]);
            self.rejected_logps += f64::from(values.policy_rejected[i]);
            self.penalty += f64::from(values.penalty[i]);
        }
    }

    /// `(key, mean)` for every preference metric (the loss under [`LOSS`]).
    pub(crate) fn means(&self) -> Vec<(&'static str, f64)> {
        let n = self.pairs.max(1) as f64;
        vec![
            (LOSS, self.loss / n),
            (REWARDS_CHOSEN, self.chosen_rewards / n),
            (REWARDS_REJECTED, self.rejected_rewards / n),
            (
                REWARDS_MARGINS,
                (self.chosen_rewards - self.rejected_rewards) / n,
            ),
            (REWARDS_ACCURACIES, self.correct as f64 / n),
            (LOGPS_CHOSEN, self.chosen_logps / n),
            (LOGPS_REJECTED, self.rejected_logps / n),
            (DPOP_PENALTY, self.penalty / n),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // the inputs are exact in binary, so are their means
    fn means_match_hand_computed_values() {
        let mut stats = PairStats::default();
        let values = PairValues {
            loss: vec![0.5, 1.5],
            policy_chosen: vec![-10.0, -20.0],
            policy_rejected: vec![-12.0, -18.0],
            reference_chosen: vec![-11.0, -19.0],
            reference_rejected: vec![-11.0, -19.0],
            penalty: vec![0.0, 50.0],
        };
        stats.add(&values, 0.5);
        let means: std::collections::BTreeMap<_, _> = stats.means().into_iter().collect();
        // Rewards: chosen 0.5·1 = 0.5 and 0.5·(−1) = −0.5; rejected −0.5 and 0.5.
        assert_eq!(means[LOSS], 1.0);
        assert_eq!(means[REWARDS_CHOSEN], 0.0);
        assert_eq!(means[REWARDS_REJECTED], 0.0);
        assert_eq!(means[REWARDS_MARGINS], 0.0);
        assert_eq!(means[REWARDS_ACCURACIES], 0.5);
        assert_eq!(means[LOGPS_CHOSEN], -15.0);
        assert_eq!(means[LOGPS_REJECTED], -15.0);
        assert_eq!(means[DPOP_PENALTY], 25.0);
        assert_eq!(eval_key(LOSS), "eval/loss");
        assert_eq!(eval_key(REWARDS_ACCURACIES), "eval/rewards/accuracies");
    }
}
