//! Writing a gathered [`Report`] to a folder: `report.html`, `report.md` and every chart as
//! `charts/NAME.svg` and `charts/NAME.png`. `erebor report RUN` and the `report` step kind both
//! call [`write`].

use erebor_report::Report;
use erebor_report::error::ReportError;
use std::path::{Path, PathBuf};

/// What can go wrong writing a report's files.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file or folder could not be created or written.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A chart could not be rendered to PNG.
    #[error(transparent)]
    Png(#[from] ReportError),
}

/// Writes `report.html`, `report.md` and `charts/NAME.svg` + `.png` into `dir` (created if
/// missing); returns the HTML and Markdown paths.
pub fn write(report: &Report, dir: &Path) -> Result<(PathBuf, PathBuf), WriteError> {
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(io_at(&charts_dir))?;
    let renderer = erebor_report::png::PngRenderer::with_system_fonts();
    if renderer.font_faces() == 0 {
        tracing::warn!(
            "no system fonts found: the PNG charts have no text (install fonts-dejavu-core)"
        );
    }
    for chart in erebor_report::html::charts(report) {
        let svg_path = charts_dir.join(format!("{}.svg", chart.name));
        std::fs::write(&svg_path, &chart.svg).map_err(io_at(&svg_path))?;
        let png = renderer.render(&chart.title, &chart.svg, 2.0)?;
        let png_path = charts_dir.join(format!("{}.png", chart.name));
        std::fs::write(&png_path, png).map_err(io_at(&png_path))?;
    }
    let html = dir.join("report.html");
    std::fs::write(&html, erebor_report::html::page(report, Some("charts")))
        .map_err(io_at(&html))?;
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, erebor_report::markdown::document(report))
        .map_err(io_at(&markdown))?;
    Ok((html, markdown))
}

/// Turns an I/O error into a [`WriteError::Io`] naming `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_owned(),
        source,
    }
}
