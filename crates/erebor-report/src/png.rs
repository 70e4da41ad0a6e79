//! Charts as PNG images: the same SVG rasterised by resvg (tiny-skia) with the fonts fontdb
//! finds on the system. Without any system font the charts still render, without their text.

use crate::error::ReportError;
use resvg::{tiny_skia, usvg};

/// Renders SVG charts to PNG; holds the loaded system fonts, so make one and reuse it.
pub struct PngRenderer {
    options: usvg::Options<'static>,
}

impl Default for PngRenderer {
    fn default() -> Self {
        Self::with_system_fonts()
    }
}

impl PngRenderer {
    /// A renderer with every font of the system's font folders (DejaVu Sans is the first
    /// family the charts ask for; `sans-serif` falls back to it).
    pub fn with_system_fonts() -> Self {
        let mut options = usvg::Options::default();
        let fonts = options.fontdb_mut();
        fonts.load_system_fonts();
        fonts.set_sans_serif_family("DejaVu Sans");
        Self { options }
    }

    /// How many font faces were found.
    pub fn font_faces(&self) -> usize {
        self.options.fontdb.len()
    }

    /// The PNG of `svg` at `scale` (2.0 for sharp images on high-density screens); `chart`
    /// names it in errors.
    pub fn render(&self, chart: &str, svg: &str, scale: f32) -> Result<Vec<u8>, ReportError> {
        self.pixmap(chart, svg, scale)?
            .encode_png()
            .map_err(|e| ReportError::Encode {
                chart: chart.to_owned(),
                message: e.to_string(),
            })
    }

    /// The rendered pixels of `svg` at `scale`.
    pub fn pixmap(
        &self,
        chart: &str,
        svg: &str,
        scale: f32,
    ) -> Result<tiny_skia::Pixmap, ReportError> {
        let tree = usvg::Tree::from_str(svg, &self.options).map_err(|e| ReportError::Svg {
            chart: chart.to_owned(),
            message: e.to_string(),
        })?;
        let size = tree.size();
        // Sizes are positive; one too large for `u32` saturates, and `Pixmap::new` refuses it
        // as `ReportError::Size`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (width, height) = (
            (size.width() * scale).ceil() as u32,
            (size.height() * scale).ceil() as u32,
        );
        let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or(ReportError::Size {
            chart: chart.to_owned(),
            width,
            height,
        })?;
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(scale, scale),
            &mut pixmap.as_mut(),
        );
        Ok(pixmap)
    }
}
