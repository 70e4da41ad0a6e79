//! Reports in headless Chromium, for the end-to-end tests: find the browser (under CI=true a
//! missing one fails), open a page with a layout-check script added to a copy of it, keep a
//! full-page screenshot; and read a chart's plotted points back through its tick labels.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Chromium binary, or None (a skip) outside CI; under CI=true a missing one fails.
pub(crate) fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("EREBOR_CHROMIUM").ok(),
        Some("chromium".to_owned()),
        Some("chromium-browser".to_owned()),
    ];
    for candidate in candidates.into_iter().flatten() {
        let found = Command::new(&candidate).arg("--version").output();
        if found.is_ok_and(|o| o.status.success()) {
            return Some(PathBuf::from(candidate));
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "chromium is needed for the report browser test (apt-get install chromium; .ci/run installs it)"
    );
    eprintln!("skipping: no chromium on PATH (set EREBOR_CHROMIUM or apt-get install chromium)");
    None
}

/// Runs chromium headless with `args` on `page`; returns stdout (through a file: a DOM dump
/// is larger than a pipe's buffer). Killed after two minutes.
pub(crate) fn run_chromium(
    chromium: &Path,
    profile: &Path,
    args: &[String],
    page: &Path,
) -> String {
    let stdout_path = profile.with_extension("stdout");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_mins(2) {
            child.kill().unwrap();
            panic!(
                "chromium did not finish with {} in two minutes",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&stdout_path).unwrap()
}

/// Measures the page from its own layout: every text of every chart inside its chart and the
/// page, no two legend or tick labels of a chart overlapping, no element wider than the page.
pub(crate) const LAYOUT_CHECK: &str = r#"<script>
(() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  const inside = (r, b) => r.left >= b.left - 0.5 && r.right <= b.right + 0.5 && r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5;
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  let texts = 0;
  const charts = document.querySelectorAll('svg.chart');
  for (const svg of charts) {
    const box = svg.getBoundingClientRect();
    const name = svg.dataset.chart;
    if (box.left < -0.5 || box.right > width + 0.5) problems.push(`chart ${name} is outside the page`);
    const labels = [];
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      const text = t.textContent;
      texts += 1;
      if (text.trim() && r.width < 1) problems.push(`chart ${name}: "${text}" has no width (no font?)`);
      if (!inside(r, box)) problems.push(`chart ${name}: "${text}" is outside its chart`);
      if (r.right > width + 0.5 || r.left < -0.5) problems.push(`chart ${name}: "${text}" is outside the page`);
      const cls = t.getAttribute('class') || (t.parentNode.getAttribute('class') || '');
      if (['ytick', 'xtick', 'legend-item', 'category', 'step-label', 'duration'].includes(cls)) labels.push([text, r]);
    }
    for (let i = 0; i < labels.length; i++)
      for (let j = i + 1; j < labels.length; j++)
        if (overlap(labels[i][1], labels[j][1])) problems.push(`chart ${name}: "${labels[i][0]}" overlaps "${labels[j][0]}"`);
  }
  for (const el of document.querySelectorAll('h1, h2, h3, dl, table, figure')) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 0.5) problems.push(`${el.tagName} ${el.id || el.className} ends at ${r.right} > ${width}`);
  }
  if (document.documentElement.scrollWidth > width) problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
  const out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = JSON.stringify({ width, height: document.documentElement.scrollHeight, charts: charts.length, texts, problems });
  document.body.appendChild(out);
})();
</script>"#;

/// Opens `page` at `window_width`, checks its layout, and keeps a full-page screenshot as
/// `shots/NAME.png`. Returns the number of charts.
pub(crate) fn check_in_browser(
    chromium: &Path,
    page: &Path,
    shots: &Path,
    name: &str,
    window_width: u32,
) -> u64 {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(!html.contains("<script"), "the report itself has no script");
    let probe = page.with_file_name(format!("{name}.layout-check.html"));
    std::fs::write(
        &probe,
        html.replace("</body>", &format!("{LAYOUT_CHECK}\n</body>")),
    )
    .unwrap();
    let profile = shots.join(format!("profile-{name}"));
    let dom = run_chromium(
        chromium,
        &profile,
        &[
            "--dump-dom".to_owned(),
            format!("--window-size={window_width},900"),
        ],
        &probe,
    );
    let start = dom.find("<pre id=\"layout-check\">").unwrap_or_else(|| {
        panic!(
            "no layout check in the DOM: {}",
            &dom[..dom.len().min(2000)]
        )
    }) + 23;
    let end = dom[start..].find("</pre>").unwrap() + start;
    let json = dom[start..end]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"");
    let check: serde_json::Value = serde_json::from_str(&json).unwrap();
    eprintln!("{name} at {window_width}px: {check}");
    assert_eq!(
        check["problems"],
        serde_json::json!([]),
        "{name} at {window_width}px"
    );
    assert_eq!(
        check["width"].as_u64(),
        Some(u64::from(window_width)),
        "{check}"
    );
    let height = check["height"].as_u64().unwrap().clamp(600, 16_000);
    let shot = shots.join(format!("{name}.png"));
    run_chromium(
        chromium,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={window_width},{height}"),
        ],
        page,
    );
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    check["charts"].as_u64().unwrap()
}

/// The value of attribute `name` in an opening tag.
pub(crate) fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[start..start + tag[start..].find('"')?].to_owned())
}

/// The SVG of the chart titled `title` in a report page.
pub(crate) fn chart_svg<'a>(html: &'a str, title: &str) -> &'a str {
    let start = html
        .find(&format!("data-chart=\"{title}\""))
        .unwrap_or_else(|| panic!("no chart {title}"));
    let start = html[..start].rfind("<svg").unwrap();
    &html[start..start + html[start..].find("</svg>").unwrap()]
}

/// (pixel, value) of each tick label of `class`, read from the SVG.
pub(crate) fn ticks(svg: &str, class: &str, coordinate: &str) -> Vec<(f64, f64)> {
    svg.match_indices(&format!("<text class=\"{class}\""))
        .map(|(at, _)| {
            let tag = &svg[at..at + svg[at..].find('>').unwrap()];
            let text = &svg[at + tag.len() + 1..at + svg[at..].find("</text>").unwrap()];
            let value: f64 = text.replace('\u{2212}', "-").parse().unwrap();
            (attr(tag, coordinate).unwrap().parse().unwrap(), value)
        })
        .collect()
}

/// The plotted points of series `label`, mapped back to data through two tick labels per axis.
pub(crate) fn plotted(svg: &str, label: &str) -> Vec<(f64, f64)> {
    let linear = |t: Vec<(f64, f64)>| {
        let ((p0, v0), (p1, v1)) = (t[0], t[t.len() - 1]);
        move |p: f64| v0 + (p - p0) / (p1 - p0) * (v1 - v0)
    };
    let to_x = linear(ticks(svg, "xtick", "x"));
    let to_y = linear(ticks(svg, "ytick", "y"));
    let mut points = Vec::new();
    for (at, _) in svg.match_indices("<polyline ") {
        let tag = &svg[at..at + svg[at..].find("/>").unwrap()];
        if attr(tag, "data-series").as_deref() != Some(label) {
            continue;
        }
        for pair in attr(tag, "points").unwrap().split(' ') {
            let (x, y) = pair.split_once(',').unwrap();
            points.push((to_x(x.parse().unwrap()), to_y(y.parse().unwrap())));
        }
    }
    points
}
