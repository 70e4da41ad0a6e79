//! Errors of report rendering.

/// What can go wrong turning a chart into a PNG.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The SVG of chart `chart` did not parse (a bug in this crate's SVG output).
    #[error("chart `{chart}`: the SVG does not parse: {message}")]
    Svg {
        /// The chart's title.
        chart: String,
        /// The parser's message.
        message: String,
    },
    /// The chart has no drawable size.
    #[error("chart `{chart}`: cannot make a {width}x{height} pixel image")]
    Size {
        /// The chart's title.
        chart: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// PNG encoding failed.
    #[error("chart `{chart}`: PNG encoding failed: {message}")]
    Encode {
        /// The chart's title.
        chart: String,
        /// The encoder's message.
        message: String,
    },
}
