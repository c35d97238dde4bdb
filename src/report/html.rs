//! The HTML audit report: one self-contained file (inline CSS and SVG, no scripts, nothing
//! fetched), readable offline and printable.

use std::fmt::Write;

use super::gates::Status;
use super::{Report, xml};
use crate::evaluate::fidelity::{Distribution, Pair};
use crate::evaluate::risk::AttackResult;

const TRAIN: &str = "#7f7f7f";
const SYNTH: &str = "#1f77b4";
const HOLD: &str = "#ff7f0e";

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => {
            if v.abs() >= 100.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.4}")
            }
        }
        _ => "–".into(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

/// Font sizes of the chart classes (the page's CSS sets the same: `.ax` 10px, `.lbl` 12px).
const AX_PX: f64 = 10.0;
const LBL_PX: f64 = 12.0;

/// A generous estimate of a text's width in px: 0.6 em per character is wider than the
/// average glyph of the sans-serif faces the CSS names, so a layout that fits this estimate
/// fits the rendered text (the screenshot check, tests/clients/html_screenshots.sh, looks).
pub fn text_width(s: &str, px: f64) -> f64 {
    s.chars().count() as f64 * 0.6 * px
}

/// A round upper end for a share axis (0..1) with four equal ticks: the smallest of 4, 8, 10,
/// 20, 40, 60, 80, 100 % at or above `top`, so the ticks read 0/1/2/3/4 %, 0/5/10/15/20 %, ...
fn nice_top(top: f64) -> f64 {
    [0.04, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0].into_iter().find(|&t| t >= top - 1e-12).unwrap_or(1.0)
}

/// Grouped bars of one column's distribution in the three tables. The x-labels are rotated by
/// 40 degrees and anchored at their end, so they reach down and to the left of their bar: the
/// left and bottom margins are sized from the longest label, so none is clipped.
fn distribution_svg(d: &Distribution) -> String {
    let keep: Vec<usize> = (0..d.bins.len()).filter(|&i| d.train[i] + d.synthetic[i] + d.holdout[i] > 0.0).collect();
    let (w, plot_h, top_pad) = (380.0, 120.0, 8.0);
    // Categories may be long: cut them (the full label is the text's tooltip); numeric
    // ranges are never cut (a cut range reads as a different range).
    let labels: Vec<String> = keep
        .iter()
        .map(|&i| {
            let b = &d.bins[i];
            if b.starts_with('[') || b.starts_with('<') || b.starts_with(">=") { b.clone() } else { short(b, 18) }
        })
        .collect();
    let (cos, sin) = (40f64.to_radians().cos(), 40f64.to_radians().sin());
    let widest = labels.iter().map(|l| text_width(l, AX_PX)).fold(0.0, f64::max);
    let bottom = 10.0 + widest * sin + AX_PX + 4.0;
    let h = (top_pad + plot_h + bottom).ceil();
    // Left margin: room for the y ticks ("100%") and for the first labels' leftward reach.
    let mut left = 34.0f64;
    for _ in 0..3 {
        let slot = (w - left - 4.0) / keep.len().max(1) as f64;
        let need = labels
            .iter()
            .enumerate()
            .map(|(k, l)| text_width(l, AX_PX) * cos + AX_PX * sin - slot * (k as f64 + 0.5) + 4.0)
            .fold(34.0, f64::max);
        left = left.max(need);
    }
    let top = nice_top(keep.iter().map(|&i| d.train[i].max(d.synthetic[i]).max(d.holdout[i])).fold(0.01f64, f64::max));
    let slot = (w - left - 4.0) / keep.len().max(1) as f64;
    let bw = (slot / 3.6).min(14.0);
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" class=\"dist\"><title>{}</title>",
        xml(&d.column)
    );
    for t in 0..=4 {
        let y = top_pad + plot_h * (1.0 - t as f64 / 4.0);
        let _ = write!(s, "<line x1=\"{left:.1}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>", w - 4.0);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{:.0}%</text>",
            left - 3.0,
            y + 3.0,
            100.0 * top * t as f64 / 4.0
        );
    }
    for (k, &i) in keep.iter().enumerate() {
        let x0 = left + slot * k as f64 + (slot - 3.0 * bw) / 2.0;
        for (j, (v, color, name)) in
            [(d.train[i], TRAIN, "train"), (d.synthetic[i], SYNTH, "synthetic"), (d.holdout[i], HOLD, "holdout")]
                .into_iter()
                .enumerate()
        {
            let bh = plot_h * v / top;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{}: {name} {}</title></rect>",
                x0 + j as f64 * bw,
                top_pad + plot_h - bh,
                xml(&d.bins[i]),
                pct(v)
            );
        }
        let lx = left + slot * (k as f64 + 0.5);
        let ly = top_pad + plot_h + 10.0;
        let tip = if labels[k] != d.bins[i] { format!("<title>{}</title>", xml(&d.bins[i])) } else { String::new() };
        let _ = write!(
            s,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"ax\" text-anchor=\"end\" transform=\"rotate(-40 {lx:.1} {ly:.1})\">{}{tip}</text>",
            xml(&labels[k])
        );
    }
    s + "</svg>"
}

/// The heat map's colour scale runs from 0 (white) to `top` (dark red): 0.25 (a fresh real
/// sample of a few hundred rows sits well below it) unless a value is larger, then the next
/// multiple of 0.25, so a poor table still shows which pairs are worst.
fn heat_top(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    ((m / 0.25).ceil() * 0.25).clamp(0.25, 1.0)
}

fn heat_rgb(v: f64, top: f64) -> (f64, f64, f64) {
    let t = (v / top).clamp(0.0, 1.0);
    (255.0 - 75.0 * t, 255.0 - 235.0 * t, 255.0 - 225.0 * t)
}

fn heat_color(v: f64, top: f64) -> String {
    let (r, g, b) = heat_rgb(v, top);
    format!("rgb({r:.0},{g:.0},{b:.0})")
}

/// Pairwise 2-way TVD: synthetic vs train above the diagonal, holdout vs train below it. Every
/// cell prints its value (paper has no hover) and a colour scale with ticks sits beside it.
fn heatmap_svg(r: &Report) -> String {
    let names: Vec<&str> = r.audit.inputs.columns.iter().map(|c| c.name.as_str()).collect();
    let d = names.len();
    // Cells large enough for "0.00" in a readable size; wide tables make a wide map, which
    // the page scales down (svg max-width 100%).
    let cell = (560.0 / d.max(1) as f64).clamp(26.0, 40.0);
    let vpx = (cell * 0.34).min(11.0);
    let shown: Vec<String> = names.iter().map(|n| short(n, 18)).collect();
    let widest = shown.iter().map(|n| text_width(n, AX_PX)).fold(0.0, f64::max);
    let (cos60, sin60) = (60f64.to_radians().cos(), 60f64.to_radians().sin());
    // Row labels to the left, column labels above (rotated 60 degrees, anchored at their
    // start, so they reach up and to the right).
    let lab_x = widest + 8.0;
    let lab_y = widest * sin60 + AX_PX + 8.0;
    let grid_w = cell * d as f64;
    let scale_x = lab_x + grid_w + (widest * cos60 - cell / 2.0).max(0.0) + 16.0;
    let (scale_w, scale_h) = (14.0, (grid_w * 0.8).clamp(120.0, 300.0));
    let w = (scale_x + scale_w + 6.0 + text_width("≥ 0.00", AX_PX) + 6.0).ceil();
    let h = (lab_y + grid_w + 8.0).max(lab_y + scale_h + 24.0).ceil();
    let mut grid = vec![vec![None; d]; d];
    for p in &r.audit.fidelity.pairs {
        let a = names.iter().position(|n| *n == p.columns[0]);
        let b = names.iter().position(|n| *n == p.columns[1]);
        if let (Some(a), Some(b)) = (a, b) {
            grid[a][b] = p.tvd.synthetic;
            grid[b][a] = p.tvd.holdout;
        }
    }
    let top = heat_top(grid.iter().flatten().flatten().copied());
    let mut s = format!(
        "<svg viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" role=\"img\" class=\"heat\"><title>pairwise TVD</title>\
         <defs><linearGradient id=\"tvd-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\"><stop offset=\"0\" stop-color=\"{}\"/><stop offset=\"1\" stop-color=\"{}\"/></linearGradient></defs>",
        heat_color(0.0, top),
        heat_color(top, top)
    );
    for (i, n) in shown.iter().enumerate() {
        let c = cell * (i as f64 + 0.5);
        let tip = if *n != names[i] { format!("<title>{}</title>", xml(names[i])) } else { String::new() };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\" dominant-baseline=\"middle\">{}{tip}</text>",
            lab_x - 4.0,
            lab_y + c,
            xml(n)
        );
        let (x, y) = (lab_x + c, lab_y - 4.0);
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" class=\"ax\" text-anchor=\"start\" transform=\"rotate(-60 {x:.1} {y:.1})\">{}{tip}</text>",
            xml(n)
        );
    }
    for (i, row) in grid.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let (x, y) = (lab_x + cell * j as f64, lab_y + cell * i as f64);
            match v {
                Some(v) => {
                    let tip = format!(
                        "{} × {}: TVD {:.3} ({} vs train)",
                        names[i],
                        names[j],
                        v,
                        if j > i { "synthetic" } else { "holdout" }
                    );
                    // Dark cells take white text (luminance of the fill below one half).
                    let (cr, cg, cb) = heat_rgb(*v, top);
                    let ink = if 0.2126 * cr + 0.7152 * cg + 0.0722 * cb < 128.0 { "#fff" } else { "#222" };
                    let _ = write!(
                        s,
                        "<g class=\"cell\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" fill=\"{}\" stroke=\"#fff\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"val\" font-size=\"{vpx:.1}\" fill=\"{ink}\" text-anchor=\"middle\" dominant-baseline=\"middle\">{:.2}</text></g>",
                        xml(&tip),
                        heat_color(*v, top),
                        x + cell / 2.0,
                        y + cell / 2.0,
                        v
                    );
                }
                None => {
                    let _ = write!(
                        s,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" fill=\"#ddd\" stroke=\"#fff\"><title>{}</title></rect>",
                        xml(if i == j { names[i] } else { "not computed" })
                    );
                }
            }
        }
    }
    // The colour scale: a gradient bar with ticks, its top open-ended.
    let sy = lab_y;
    let _ = write!(
        s,
        "<g class=\"scale\"><text x=\"{scale_x:.1}\" y=\"{:.1}\" class=\"ax\">TVD</text><rect x=\"{scale_x:.1}\" y=\"{sy:.1}\" width=\"{scale_w}\" height=\"{scale_h:.1}\" fill=\"url(#tvd-scale)\" stroke=\"#999\" stroke-width=\"0.5\"/>",
        sy - 6.0
    );
    for k in 0..=5 {
        let v = top * k as f64 / 5.0;
        let y = sy + scale_h * (1.0 - k as f64 / 5.0);
        let label = if k == 5 { format!("≥ {v:.2}") } else { format!("{v:.2}") };
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#999\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\">{label}</text>",
            scale_x + scale_w,
            scale_x + scale_w + 3.0,
            scale_x + scale_w + 6.0,
            y + 3.5
        );
    }
    s + "</g></svg>"
}

fn dcr_svg(r: &Report) -> String {
    let h = &r.audit.memorization.dcr.histogram;
    let (w, ht, left, bottom) = (560.0, 236.0, 58.0, 46.0);
    let plot_h = ht - bottom - 10.0;
    let n = h.edges.len();
    let share = |v: &[usize]| -> Vec<f64> {
        let t = v.iter().sum::<usize>().max(1) as f64;
        v.iter().map(|&x| x as f64 / t).collect()
    };
    let series = [
        (share(&h.synthetic_to_train), SYNTH, "synthetic → train"),
        (share(&h.synthetic_to_holdout), HOLD, "synthetic → holdout"),
        (share(&h.holdout_to_train), TRAIN, "holdout → train"),
    ];
    // Edges: one rounding rule, as the distributions' bins (decimals from the bin width).
    let step = if n > 2 { h.edges[2] - h.edges[1] } else { h.edges.last().copied().unwrap_or(1.0) };
    let dec = crate::evaluate::frame::decimals_for(step);
    let top = nice_top(series.iter().flat_map(|(v, _, _)| v.iter()).copied().fold(0.01f64, f64::max));
    let slot = (w - left - 10.0) / n as f64;
    let bw = slot / 3.4;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\" class=\"dcr\"><title>DCR histogram</title>"
    );
    for t in 0..=4 {
        let y = 10.0 + plot_h * (1.0 - t as f64 / 4.0);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{:.0}%</text>",
            w - 10.0,
            left - 4.0,
            y + 3.0,
            100.0 * top * t as f64 / 4.0
        );
    }
    for b in 0..n {
        for (j, (v, color, name)) in series.iter().enumerate() {
            let bh = plot_h * v[b] / top;
            let label =
                if b == 0 { "= 0".to_string() } else { format!("({:.dec$}, {:.dec$}]", h.edges[b - 1], h.edges[b]) };
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{name} {label}: {}</title></rect>",
                left + slot * b as f64 + j as f64 * bw,
                10.0 + plot_h - bh,
                pct(v[b])
            );
        }
        if b % 4 == 0 {
            let label = if b == 0 { "0".to_string() } else { format!("{:.dec$}", h.edges[b]) };
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"middle\">{label}</text>",
                left + slot * (b as f64 + 0.5),
                10.0 + plot_h + 14.0
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"middle\">Gower distance to the closest record (bin upper edge)</text>",
        left + (w - left) / 2.0,
        ht - 6.0
    );
    let (yx, yy) = (14.0, 10.0 + plot_h / 2.0);
    let _ = write!(
        s,
        "<text x=\"{yx:.1}\" y=\"{yy:.1}\" class=\"ax\" text-anchor=\"middle\" transform=\"rotate(-90 {yx:.1} {yy:.1})\">share of rows</text>"
    );
    s + "</svg>"
}

/// Attack and control rates with their intervals, one row per attack, with a legend and an
/// axis title. The left column (attack name, residual risk) is as wide as its longest text.
fn risk_svg(rows: &[(&str, &AttackResult)]) -> String {
    let risks: Vec<String> = rows
        .iter()
        .map(|(_, a)| match (a.risk, a.risk_ci_low, a.risk_ci_high) {
            (Some(r), Some(lo), Some(hi)) => format!("residual risk {r:.3} [{lo:.3}, {hi:.3}]"),
            _ => "risk not computed (too few attempts)".to_string(),
        })
        .collect();
    // Each row: the attack's name and residual risk on a line of their own, the two intervals
    // under it, so the chart stays narrow enough for a phone and long names are never cut.
    let (left, plot_w, row_h, head) = (20.0f64, 400.0, 72.0, 40.0);
    let widest = rows
        .iter()
        .map(|(n, _)| text_width(n, LBL_PX))
        .chain(risks.iter().map(|r| text_width(r, AX_PX)))
        .fold(0.0, f64::max);
    let w = (left + plot_w + 20.0).max(widest + 12.0).ceil();
    // Legend entries left to right under the plot, wrapping to a new line when full.
    let legend = [
        ("dot", SYNTH, "train targets (attack), 95% interval"),
        ("dot", HOLD, "holdout targets (control)"),
        ("dash", "#2ca02c", "random-guess baseline"),
    ];
    let mut places = Vec::new();
    let (mut lx, mut line) = (4.0, 0usize);
    for (_, _, text) in &legend {
        let width = 20.0 + text_width(text, AX_PX) + 14.0;
        if lx > 4.0 && lx + width > w {
            lx = 4.0;
            line += 1;
        }
        places.push((lx, line));
        lx += width;
    }
    let plot_end = head + row_h * rows.len() as f64;
    let ht = plot_end + 14.0 + 18.0 * (line + 1) as f64;
    let sx = |v: f64| left + plot_w * v;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\" class=\"risk\"><title>attack success rates</title>"
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"12\" class=\"ax\" text-anchor=\"middle\">attack success rate (share of targets the attack got right)</text>",
        left + plot_w / 2.0
    );
    for t in 0..=10 {
        let x = sx(t as f64 / 10.0);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"middle\">{:.1}</text>",
            head - 6.0,
            plot_end,
            head - 10.0,
            t as f64 / 10.0
        );
    }
    for (i, (name, a)) in rows.iter().enumerate() {
        let y = head + row_h * i as f64;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\" class=\"lbl\">{}</text><text x=\"4\" y=\"{:.1}\" class=\"ax\">{}</text>",
            y + 12.0,
            xml(name),
            y + 25.0,
            xml(&risks[i])
        );
        for (k, (rate, color, what)) in
            [(&a.attack, SYNTH, "train targets"), (&a.control, HOLD, "holdout targets (control)")]
                .into_iter()
                .enumerate()
        {
            let yy = y + 38.0 + 14.0 * k as f64;
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{color}\" stroke-width=\"2\"/><circle cx=\"{:.1}\" cy=\"{yy:.1}\" r=\"4\" fill=\"{color}\"><title>{what}: {:.3} [{:.3}, {:.3}] ({:.1} of {})</title></circle>",
                sx(rate.ci_low),
                sx(rate.ci_high),
                sx(rate.rate),
                rate.rate,
                rate.ci_low,
                rate.ci_high,
                rate.successes,
                rate.attempts
            );
        }
        if let Some(b) = a.baseline {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#2ca02c\" stroke-width=\"2\" stroke-dasharray=\"3 2\"><title>random baseline {b:.3}</title></line>",
                sx(b),
                y + 32.0,
                y + 58.0
            );
        }
    }
    let mut s2 = String::from("<g class=\"legend\">");
    for ((kind, color, text), (x, line)) in legend.iter().zip(places) {
        let ly = plot_end + 18.0 + 18.0 * line as f64;
        let mark = if *kind == "dot" {
            format!(
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/><circle cx=\"{:.1}\" cy=\"{ly:.1}\" r=\"4\" fill=\"{color}\"/>",
                x,
                x + 16.0,
                x + 8.0
            )
        } else {
            format!(
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"3 2\"/>",
                x + 8.0,
                ly - 6.0,
                ly + 6.0
            )
        };
        let _ = write!(s2, "{mark}<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\">{text}</text>", x + 20.0, ly + 3.5);
    }
    s += &s2;
    s + "</g></svg>"
}

fn pair_row(name: &str, p: &Pair, better: &str) -> String {
    format!(
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"note\">{better}</td></tr>",
        xml(name),
        num(p.synthetic),
        num(p.holdout)
    )
}

/// Render the report as one HTML page.
pub fn render(r: &Report) -> String {
    let a = &r.audit;
    let f = &a.fidelity;
    let m = &a.memorization;
    let re = &a.reidentification;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>privsynth audit: {}</title><style>\
body{{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:18px 28px;color:#222}}\
h1{{font-size:22px;margin:4px 0}}h2{{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}}\
table{{border-collapse:collapse;margin:6px 0}}td,th{{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}}\
th{{background:#f6f6f6}}td.r{{white-space:nowrap}}td.n{{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums}}td.note{{color:#666;font-size:12px}}\
.notice{{background:#fff4e5;border:1px solid #f0b36b;padding:10px 14px;border-radius:6px}}\
.verdict{{display:inline-block;padding:6px 14px;border-radius:6px;font-weight:700;font-size:16px;color:#fff}}\
.pass{{background:#2e7d32}}.fail{{background:#c62828}}.skipped{{background:#888}}\
.badge{{display:inline-block;padding:1px 8px;border-radius:4px;color:#fff;font-size:12px;font-weight:600}}\
.grid{{display:flex;flex-wrap:wrap;gap:10px}}.card{{border:1px solid #eee;border-radius:6px;padding:6px;box-sizing:border-box;flex:0 1 394px;min-width:0}}.card h3{{font-size:13px;margin:0 0 2px}}\
.ax{{font-size:10px;fill:#555}}.lbl{{font-size:12px;fill:#222}}.val{{font-variant-numeric:tabular-nums}}.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}}\
.muted{{color:#666;font-size:12px}}svg{{max-width:100%;height:auto}}\
.scroll{{overflow-x:auto;max-width:100%}}.scroll svg{{max-width:none}}\
@media (max-width:900px){{body{{padding:10px 12px}}table{{display:block;overflow-x:auto;max-width:100%}}.card{{flex:1 1 100%}}td,th{{padding:3px 6px}}}}\
@media (max-width:640px){{table.stack,table.stack tbody,table.stack tr,table.stack td{{display:block}}table.stack tr:first-child{{display:none}}\
table.stack tr{{border-bottom:1px solid #ddd;padding:4px 0}}table.stack td{{border:0;padding:1px 4px;text-align:left}}\
table.stack td[data-label]::before{{content:attr(data-label) \": \";color:#666;font-size:12px}}table.stack code{{overflow-wrap:anywhere}}}}\
@media print{{body{{max-width:none;padding:0;font-size:11px}}*{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\
.scroll svg{{max-width:100%}}.card,table,svg,.notice{{break-inside:avoid}}h2{{break-after:avoid}}a{{color:inherit;text-decoration:none}}}}</style></head><body>",
        xml(&a.inputs.synthetic.file)
    );
    let _ = write!(h, "<h1>privsynth audit of {}</h1>", xml(&a.inputs.synthetic.file));
    let _ = write!(h, "<p class=\"notice\"><b>For the data holder only.</b> {}</p>", xml(super::NOTICE));
    let failed = r.gates.iter().filter(|g| g.status == Status::Fail).count();
    let _ = write!(
        h,
        "<p><span class=\"verdict {}\">{}</span> &nbsp;{} of {} gates failed, {} skipped. <span class=\"muted\">privsynth {} · {} · seed {} · gates: {}</span></p>",
        r.verdict,
        if r.passed() { "PASS" } else { "FAIL" },
        failed,
        r.gates.len(),
        r.gates.iter().filter(|g| g.status == Status::Skipped).count(),
        r.privsynth,
        xml(&r.created),
        a.inputs.seed,
        xml(&r.gates_source)
    );
    let _ = write!(
        h,
        "<table><tr><th>table</th><th>file</th><th>rows</th></tr><tr><td>train (seen by the generator)</td><td>{}</td><td class=\"n\">{}</td></tr><tr><td>holdout (never seen)</td><td>{}</td><td class=\"n\">{}</td></tr><tr><td>synthetic</td><td>{}</td><td class=\"n\">{}</td></tr></table>",
        xml(&a.inputs.train.file),
        a.inputs.train.rows,
        xml(&a.inputs.holdout.file),
        a.inputs.holdout.rows,
        xml(&a.inputs.synthetic.file),
        a.inputs.synthetic.rows
    );
    let _ = write!(
        h,
        "<p class=\"muted\">Quasi-identifiers: {}. Secret: {}. {} targets per attack, {} neighbour(s) for linkage, {} bootstrap replicates. {}. {}.</p>",
        xml(&if a.inputs.quasi_identifiers.is_empty() {
            "none".to_string()
        } else {
            a.inputs.quasi_identifiers.join(", ")
        }),
        xml(a.inputs.secret.as_deref().unwrap_or("none")),
        a.inputs.attacks,
        a.inputs.neighbours,
        a.inputs.bootstrap_replicates,
        xml(&a.inputs.distance),
        xml(&a.inputs.binning)
    );
    if !a.inputs.columns_left_out.is_empty() {
        let _ = write!(
            h,
            "<p>Not compared (the synthetic output left them out: drawn missing for every row; no measure below covers them): {}.</p>",
            xml(&a.inputs.columns_left_out.join(", "))
        );
    }

    h += "<h2>Gates</h2><table class=\"stack\"><tr><th>status</th><th>metric</th><th>rule</th><th>value</th><th>why</th></tr>";
    for g in &r.gates {
        let (class, label) = match g.status {
            Status::Pass => ("pass", "pass"),
            Status::Fail => ("fail", "FAIL"),
            Status::Skipped => ("skipped", "skipped"),
        };
        let rel = match g.gate.direction {
            super::gates::Direction::AtMost => "≤",
            super::gates::Direction::AtLeast => "≥",
        };
        let _ = write!(
            h,
            "<tr><td><span class=\"badge {class}\">{label}</span></td><td><code>{}</code></td><td class=\"r\" data-label=\"rule\">{rel} {}</td><td class=\"n\" data-label=\"value\">{}</td><td class=\"note\">{}</td></tr>",
            xml(&g.gate.metric),
            g.gate.threshold,
            num(g.value),
            xml(g.gate.why.as_deref().unwrap_or(""))
        );
    }
    h += "</table>";

    h += "<h2>Fidelity</h2><p class=\"muted\">Each score beside the holdout's own score against train: the ceiling a fresh real sample reaches. A synthetic score <i>better</i> than the holdout's is a warning sign (copying), not a success.</p>";
    h += "<table><tr><th>metric</th><th>synthetic</th><th>holdout (ceiling)</th><th></th></tr>";
    h += &pair_row("column shapes (mean KS/TV complement)", &f.column_shapes_mean, "1 = identical marginals");
    h += &pair_row(
        "contingency similarity, all pairs",
        &f.contingency_mean,
        "1 = identical; 10 equal-width bins from train",
    );
    h += &pair_row(
        &format!("contingency similarity, {} trend pairs", f.trend_pairs),
        &f.contingency_trend_mean,
        "pairs with |ρ| > 0.5 or Cramér's V > 0.3 in train",
    );
    h += &pair_row("correlation similarity", &f.correlation_mean, "numeric pairs, 1 − |ρ_T − ρ_X| / 2");
    h += &pair_row("2-way TVD (mean)", &f.tvd2, "0 = identical; train's decile bins");
    h += &pair_row(
        &format!("3-way TVD (mean of {} triples{})", f.triples, if f.triples_sampled { ", sampled" } else { "" }),
        &f.tvd3,
        "",
    );
    h += &pair_row("k-marginal score (2-way)", &f.k_marginal, "SDNist scale, 1000 = identical");
    h += &pair_row(
        "detection AUC (boosted trees, 3-fold CV)",
        &f.detection_auc,
        "0.5 = indistinguishable; < 0.5 suspicious",
    );
    h += "</table>";
    let det = &f.detection;
    let _ = write!(
        h,
        "<p class=\"muted\">Detector: {}; up to {} iterations of up to {} leaves, {} bins, learning rate {}; iterations kept per fold: synthetic {:?}, holdout {:?}.</p>",
        xml(det.settings.detector),
        det.settings.max_iterations,
        det.settings.max_leaves,
        det.settings.bins,
        det.settings.learning_rate,
        det.synthetic.iterations,
        det.holdout.iterations
    );
    h += &format!(
        "<p class=\"legend\"><span style=\"background:{TRAIN}\"></span>train<span style=\"background:{SYNTH}\"></span>synthetic<span style=\"background:{HOLD}\"></span>holdout</p><div class=\"grid\">"
    );
    for (d, shape) in f.distributions.iter().zip(&f.column_shapes) {
        let _ = write!(
            h,
            "<div class=\"card\"><h3>{} <span class=\"muted\">{} {} (holdout {}){}</span></h3>{}</div>",
            xml(&d.column),
            shape.metric,
            num(shape.score.synthetic),
            num(shape.score.holdout),
            if shape.synthetic_out_of_domain > 0 {
                format!(" · {} out-of-domain cells", shape.synthetic_out_of_domain)
            } else {
                String::new()
            },
            distribution_svg(d)
        );
    }
    h += "</div><h3>Pairwise 2-way TVD</h3><p class=\"muted\">Above the diagonal: synthetic vs train. Below: holdout vs train (sampling noise alone). Each cell prints its TVD (0 = identical, 1 = disjoint); darker = further apart, on the scale at the right.</p>";
    h += &format!("<div class=\"scroll\">{}</div>", heatmap_svg(r));

    let e = &m.exact_match;
    let dc = &m.dcr;
    let rv = &m.rare_values;
    h += "<h2>Memorization</h2><table class=\"stack\"><tr><th>measure</th><th>against train</th><th>against holdout</th><th></th></tr>";
    let _ = write!(
        h,
        "<tr><td>synthetic rows equal to a real row</td><td class=\"n\" data-label=\"against train\">{}</td><td class=\"n\" data-label=\"against holdout\">{}</td><td class=\"note\">excess {} (holdout rows found in train: {})</td></tr>",
        pct(e.synthetic_in_train),
        pct(e.synthetic_in_holdout),
        pct(e.excess),
        pct(e.holdout_in_train)
    );
    let _ = write!(
        h,
        "<tr><td>real rows unique in their table reproduced (UEM)</td><td class=\"n\" data-label=\"against train\">{}</td><td class=\"n\" data-label=\"against holdout\">{}</td><td class=\"note\">synthetic-internal duplicates {}</td></tr>",
        pct(e.unique_train_reproduced),
        pct(e.unique_holdout_reproduced),
        pct(e.synthetic_duplicates)
    );
    let _ = write!(
        h,
        "<tr><td>median distance to closest record</td><td class=\"n\" data-label=\"against train\">{:.4}</td><td class=\"n\" data-label=\"against holdout\">{:.4}</td><td class=\"note\">a fresh real sample: {:.4} (holdout → train)</td></tr>",
        dc.median_synthetic_to_train, dc.median_synthetic_to_holdout, dc.median_holdout_to_train
    );
    let _ = write!(
        h,
        "<tr><td>rows at distance 0</td><td class=\"n\" data-label=\"against train\">{}</td><td class=\"n\" data-label=\"against holdout\">{}</td><td></td></tr>",
        pct(dc.zero_to_train),
        pct(dc.zero_to_holdout)
    );
    let _ = write!(
        h,
        "<tr><td>median NNDR</td><td class=\"n\" data-label=\"against train\">{:.3}</td><td class=\"n\" data-label=\"against holdout\">{:.3}</td><td class=\"note\">memorized rows have NNDR ≈ 0 against train only</td></tr>",
        dc.nndr_median_train, dc.nndr_median_holdout
    );
    let _ = write!(
        h,
        "<tr><td>rare values re-emitted</td><td class=\"n\" data-label=\"against train\">{} ({} of {})</td><td class=\"n\" data-label=\"against holdout\">{} ({} of {})</td><td class=\"note\">values that single out one real row, emitted verbatim</td></tr></table>",
        pct(rv.rate_train),
        rv.train_reemitted,
        rv.train_rare,
        pct(rv.rate_holdout),
        rv.holdout_reemitted,
        rv.holdout_rare
    );
    let _ = write!(
        h,
        "<p>Synthetic rows closer to train than to the holdout: <b>{}</b> (95% interval {} – {}, over resampled synthetic rows and over train/holdout splits, worth {:.0} independent rows; ties {}); without memorization {}. Closer to train than 99% of holdout rows are: {}.</p>",
        pct(dc.closer_to_train),
        pct(dc.ci_low),
        pct(dc.ci_high),
        dc.effective_rows,
        pct(dc.ties),
        pct(dc.expected),
        dc.below_holdout_p1.map_or_else(|| "not computed (fewer than 300 holdout rows)".to_string(), pct)
    );
    // The method is privsynth's own sentence (numbers only, no markup).
    let _ = write!(h, "<p>Distances: {}.</p>", dc.sampling.method);
    h += &format!(
        "<p class=\"legend\"><span style=\"background:{SYNTH}\"></span>synthetic → train<span style=\"background:{HOLD}\"></span>synthetic → holdout<span style=\"background:{TRAIN}\"></span>holdout → train (a fresh sample)</p>"
    );
    h += &dcr_svg(r);

    h += "<h2>Re-identification</h2><p class=\"muted\">Each attack runs on train targets and, as the control, on holdout targets. Residual risk = (p_train − p_holdout) / (1 − p_holdout): what the generator leaked beyond what the population's patterns give away. Dots: Wilson 95% intervals; dashed green: random-guess baseline.</p>";
    let mut rows: Vec<(String, &AttackResult)> = Vec::new();
    if let Some(l) = &re.linkage {
        rows.push((format!("linkage ({} nn)", l.neighbours), &l.result));
    }
    if let Some(i) = &re.inference {
        rows.push((format!("inference of {}", i.secret), &i.result));
    }
    rows.push(("singling out, univariate".into(), &re.singling_out_univariate.result));
    let so = &re.singling_out_multivariate;
    rows.push((format!("singling out, 3 conditions ({} of {} predicates)", so.predicates, so.requested), &so.result));
    let named: Vec<(&str, &AttackResult)> = rows.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    h += &format!("<div class=\"scroll\">{}</div>", risk_svg(&named));
    for (n, a) in &rows {
        for w in &a.warnings {
            let _ = write!(h, "<p class=\"muted\">{}: {}</p>", xml(n), xml(w));
        }
    }
    if let Some(d) = &re.disco {
        let _ = write!(
            h,
            "<table><tr><th>DiSCO / DiO on {} → {}</th><th>train</th><th>holdout</th></tr><tr><td>DiO: disclosive in the real data</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr><tr><td>DiSCO: disclosed correctly by the synthetic data</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>",
            xml(&d.quasi_identifiers.join(", ")),
            xml(&d.secret),
            pct(d.dio_train),
            pct(d.dio_holdout),
            pct(d.disco_train),
            pct(d.disco_holdout)
        );
    }
    if let Some(am) = &re.apparent_match {
        let _ = write!(
            h,
            "<table><tr><th>apparent matches on the quasi-identifiers</th><th>train</th><th>holdout</th></tr><tr><td>rows unique on the QIs that match a synthetic row unique on them</td><td class=\"n\">{} ({})</td><td class=\"n\">{} ({})</td></tr><tr><td>of those, all other columns agree too</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>",
            am.train.matches,
            pct(am.train.share),
            am.holdout.matches,
            pct(am.holdout.share),
            pct(am.train.full_agreement),
            pct(am.holdout.full_agreement)
        );
    }
    for s in &re.skipped {
        let _ = write!(h, "<p class=\"muted\">Not run: {}</p>", xml(s));
    }
    // issue 17: the shadow-model membership-inference attack.
    if let Some(m) = &a.membership {
        let _ = write!(
            h,
            "<h2>Membership inference (shadow models)</h2><p class=\"muted\">{}</p><table><tr><th>targets</th><th>AUC on fresh shadows</th><th>advantage (TPR − FPR)</th><th>flagged as members of the real release</th></tr>\
             <tr><td>train (members)</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td></tr><tr><td>holdout (control)</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td></tr></table>\
             <p class=\"muted\">Advantage on the real release (train flagged − holdout flagged): {:.3}. AUC 0.5 and advantage 0: the attack cannot tell members from non-members.</p>",
            xml(&m.threat_model),
            m.train.auc,
            m.train.advantage,
            pct(m.train.flagged_in),
            m.holdout.auc,
            m.holdout.advantage,
            pct(m.holdout.flagged_in),
            m.release_advantage
        );
    }
    let total: f64 = a.timings.iter().map(|t| t.seconds).sum();
    let steps: Vec<String> = a.timings.iter().map(|t| format!("{} {:.2} s", t.step, t.seconds)).collect();
    let _ = writeln!(h, "<p class=\"muted\">Audit time {total:.2} s ({}).</p></body></html>", steps.join(", "));
    h
}
