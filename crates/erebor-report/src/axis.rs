//! Axes: "nice" ticks (steps of 1, 2 or 5 × 10ⁿ) that cover the data, and the mapping between
//! values and pixels of a plot area (and back, for tests that read a chart's points).

/// A numeric axis: its range (a whole number of ticks) and tick positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The value at the start of the axis.
    pub min: f64,
    /// The value at its end.
    pub max: f64,
    /// Distance between ticks.
    pub step: f64,
    /// Tick values, from `min` to `max`.
    pub ticks: Vec<f64>,
}

impl Axis {
    /// An axis covering `lo..=hi` with about `target` ticks, widened to whole tick steps. A flat
    /// or empty range is widened so that it can be drawn.
    pub fn nice(lo: f64, hi: f64, target: usize) -> Self {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo -= pad;
            hi += pad;
        }
        let step = nice_step((hi - lo) / target.max(2) as f64);
        let min = (lo / step).floor() * step;
        let max = (hi / step).ceil() * step;
        // `max >= min` and `step > 0`: a small whole number of steps, never negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = ((max - min) / step).round() as usize;
        let ticks = (0..=count).map(|i| min + i as f64 * step).collect();
        Self {
            min,
            max,
            step,
            ticks,
        }
    }

    /// Where `value` lies along the axis: 0 at `min`, 1 at `max`.
    pub fn fraction(&self, value: f64) -> f64 {
        (value - self.min) / (self.max - self.min)
    }

    /// The value at fraction `f` along the axis (the inverse of [`Axis::fraction`]).
    #[cfg(test)]
    pub(crate) fn value_at(&self, f: f64) -> f64 {
        self.min + f * (self.max - self.min)
    }

    /// The tick labels, with as many decimals as the step needs and a true minus sign.
    pub fn labels(&self) -> Vec<String> {
        self.ticks
            .iter()
            .map(|t| crate::text::tick_label(*t, self.step))
            .collect()
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at least `rough`.
fn nice_step(rough: f64) -> f64 {
    let magnitude = 10f64.powf(rough.log10().floor());
    let residual = rough / magnitude;
    let factor = if residual <= 1.0 {
        1.0
    } else if residual <= 2.0 {
        2.0
    } else if residual <= 5.0 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

/// A plot area in SVG pixels, with an x and a y axis.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Frame {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis (values grow upwards).
    pub y: Axis,
}

impl Frame {
    /// The pixel position of a data point.
    pub(crate) fn project(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.left + self.x.fraction(x) * self.width,
            self.top + (1.0 - self.y.fraction(y)) * self.height,
        )
    }

    /// The data point at a pixel position (the inverse of [`Frame::project`]).
    #[cfg(test)]
    pub(crate) fn unproject(&self, px: f64, py: f64) -> (f64, f64) {
        (
            self.x.value_at((px - self.left) / self.width),
            self.y.value_at(1.0 - (py - self.top) / self.height),
        )
    }

    /// The bottom edge.
    pub(crate) fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// The right edge.
    pub(crate) fn right(&self) -> f64 {
        self.left + self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let axis = Axis::nice(-0.129_769, 0.0717, 5);
        assert!((axis.step - 0.05).abs() < 1e-12, "step {}", axis.step);
        assert!(axis.min <= -0.129_769 && axis.max >= 0.0717);
        assert_eq!(
            axis.labels(),
            ["−0.15", "−0.10", "−0.05", "0.00", "0.05", "0.10"]
        );
        let steps = Axis::nice(0.0, 176.0, 5);
        assert_eq!((steps.min, steps.max, steps.step), (0.0, 200.0, 50.0));
    }

    #[test]
    fn a_flat_range_is_widened() {
        let axis = Axis::nice(3.0, 3.0, 5);
        assert!(axis.min < 3.0 && axis.max > 3.0);
    }

    #[test]
    fn unproject_inverts_project() {
        let frame = Frame {
            left: 60.0,
            top: 30.0,
            width: 300.0,
            height: 200.0,
            x: Axis::nice(0.0, 176.0, 5),
            y: Axis::nice(-3.2, 0.4, 5),
        };
        let (px, py) = frame.project(22.0, -1.25);
        let (x, y) = frame.unproject(px, py);
        assert!((x - 22.0).abs() < 1e-9 && (y + 1.25).abs() < 1e-9);
    }
}
