//! Charts as SVG text, written by hand: columns over time and labelled
//! bars. Labels come from the store, so they are escaped like any value.

use std::fmt::Write as _;

use super::html::escape;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 180;
const LEFT: u32 = 48;
const BOTTOM: u32 = 24;
const TOP: u32 = 12;

/// One column per minute of the last hour, oldest first.
pub(crate) fn per_minute(id: &str, title: &str, counts: &[u64]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = u32::try_from(counts.len()).unwrap_or(u32::MAX).max(1);
    let col = f64::from(plot_w) / f64::from(n);
    let mut svg = format!(
        r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}"><title>{title}</title>"#,
        id = escape(id),
        title = escape(title),
    );
    let base = TOP + plot_h;
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{}" y2="{base}"/><text class="tick" x="{}" y="{}" text-anchor="end">{max}</text><text class="tick" x="{}" y="{base}" text-anchor="end">0</text>"#,
        WIDTH - 8,
        LEFT - 6,
        TOP + 10,
        LEFT - 6,
    );
    for (i, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let h = (count as f64 / max as f64) * f64::from(plot_h);
        let x = f64::from(LEFT) + col * i as f64;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{count}</title></rect>"#,
            f64::from(base) - h,
            (col - 1.0).max(1.0),
        );
    }
    let label_y = HEIGHT - 6;
    let _ = write!(
        svg,
        r#"<text class="tick" x="{LEFT}" y="{label_y}">-60 min</text><text class="tick" x="{}" y="{label_y}" text-anchor="middle">-30 min</text><text class="tick" x="{}" y="{label_y}" text-anchor="end">now</text></svg>"#,
        LEFT + plot_w / 2,
        WIDTH - 8,
    );
    svg
}

/// One horizontal bar per item, longest value full width.
pub(crate) fn bars(id: &str, title: &str, items: &[(String, u64)]) -> String {
    const ROW: u32 = 22;
    const LABEL_W: u32 = 240;
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let rows = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let height = ROW * rows.max(1) + 8;
    let bar_w = f64::from(WIDTH - LABEL_W - 80);
    let mut svg = format!(
        r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{title}"><title>{title}</title>"#,
        id = escape(id),
        title = escape(title),
    );
    for (row, (label, value)) in (0u32..).zip(items) {
        let y = 4 + row * ROW;
        let w = (*value as f64 / max as f64) * bar_w;
        let _ = write!(
            svg,
            r#"<text class="label" x="{}" y="{}" text-anchor="end">{}</text><rect class="bar" x="{LABEL_W}" y="{}" width="{w:.1}" height="{}"/><text class="tick" x="{:.1}" y="{}">{value}</text>"#,
            LABEL_W - 6,
            y + 15,
            escape(&crate::output::shorten(label, 36)),
            y + 3,
            ROW - 6,
            f64::from(LABEL_W) + w + 4.0,
            y + 15,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_empty_charts_draw() {
        let svg = bars("b", "t", &[("<script>".into(), 3), ("a".into(), 0)]);
        assert!(
            svg.contains("&lt;script&gt;") && !svg.contains("<script>"),
            "{svg}"
        );
        assert!(per_minute("p", "t", &[0; 60]).ends_with("</svg>"));
        assert!(bars("e", "t", &[]).ends_with("</svg>"));
    }
}
