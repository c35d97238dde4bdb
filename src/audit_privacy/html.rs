//! The HTML privacy audit report: one self-contained file (inline CSS and SVG, no scripts,
//! nothing fetched), in the style of the data audit's report.

use std::fmt::Write;

use super::{Report, Score};

const WITHOUT: &str = "#7f7f7f";
const WITH: &str = "#d62728";
const CLAIM: &str = "#1f77b4";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Overlaid histograms of one score without and with the canary, with the chosen threshold.
fn histogram_svg(sc: &Score) -> String {
    let (w, h, left, bottom) = (520.0, 220.0, 40.0, 30.0);
    let plot_h = h - bottom - 10.0;
    let all: Vec<f64> = sc.without.iter().chain(&sc.with).copied().filter(|x| x.is_finite()).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (lo.min(0.0), lo.max(0.0) + 1.0) };
    let bins = 40usize;
    let width = (hi - lo) / bins as f64;
    let hist = |v: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0; bins];
        for &x in v.iter().filter(|x| x.is_finite()) {
            let b = (((x - lo) / width) as usize).min(bins - 1);
            c[b] += 1.0;
        }
        let n = v.len().max(1) as f64;
        c.iter().map(|k| k / n).collect()
    };
    let (a, b) = (hist(&sc.without), hist(&sc.with));
    let top = a.iter().chain(&b).copied().fold(0.01f64, f64::max);
    let sx = |x: f64| left + (w - left - 8.0) * (x - lo) / (hi - lo);
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\"><title>{} score distributions</title>",
        esc(&sc.name)
    );
    for t in 0..=4 {
        let y = 10.0 + plot_h * (1.0 - t as f64 / 4.0);
        let _ = write!(s, "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>", w - 8.0);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{:.0}%</text>",
            left - 3.0,
            y + 3.0,
            100.0 * top * t as f64 / 4.0
        );
    }
    for (series, color, name) in [(&a, WITHOUT, "without the canary"), (&b, WITH, "with the canary")] {
        let mut path = String::new();
        for (i, &v) in series.iter().enumerate() {
            let x0 = sx(lo + width * i as f64);
            let x1 = sx(lo + width * (i + 1) as f64);
            let y = 10.0 + plot_h * (1.0 - v / top);
            let _ = write!(path, "{}{x0:.1},{y:.1} L{x1:.1},{y:.1} ", if i == 0 { "M" } else { "L" });
        }
        let _ = write!(
            s,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"><title>{name}</title></path>"
        );
    }
    let t = sc.bound.test.threshold;
    if t.is_finite() && t >= lo && t <= hi {
        let x = sx(t);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"10\" y2=\"{:.1}\" stroke=\"#000\" stroke-dasharray=\"4 3\"><title>threshold of the test ({})</title></line>",
            10.0 + plot_h,
            esc(&sc.bound.test.direction)
        );
    }
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"middle\">{v:.2}</text>",
            sx(v),
            h - bottom + 16.0
        );
    }
    s + "</svg>"
}

/// Bars of the lower bounds, with the claim and the ceiling as lines.
fn bounds_svg(r: &Report) -> String {
    let mut rows: Vec<(String, f64)> = r.scores.iter().map(|s| (s.name.clone(), s.bound.epsilon)).collect();
    if let Some(o) = &r.one_run {
        rows.push(("one-run".into(), o.epsilon));
    }
    let (w, row_h, left) = (520.0, 26.0, 90.0);
    let h = 30.0 + row_h * rows.len() as f64;
    let ceiling = r.ceiling.as_ref().map(|c| c.epsilon).unwrap_or(0.0);
    let top = rows.iter().map(|x| x.1).fold(r.claim.epsilon, f64::max) * 1.1;
    let sx = |x: f64| left + (w - left - 10.0) * x / top;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\"><title>empirical lower bounds against the claim</title>"
    );
    for (i, (name, e)) in rows.iter().enumerate() {
        let y = 8.0 + row_h * i as f64;
        let color = if *e > r.claim.epsilon { WITH } else { WITHOUT };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 14.0,
            esc(name)
        );
        let _ = write!(
            s,
            "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"18\" fill=\"{color}\"><title>{}: epsilon &gt;= {e:.3}</title></rect>",
            (sx(*e) - left).max(0.5),
            esc(name)
        );
    }
    let bottom = 8.0 + row_h * rows.len() as f64;
    let x = sx(r.claim.epsilon);
    let _ = write!(
        s,
        "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"2\" y2=\"{bottom:.1}\" stroke=\"{CLAIM}\" stroke-width=\"2\"><title>claimed epsilon {}</title></line>",
        r.claim.epsilon
    );
    let _ = write!(
        s,
        "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"middle\">claim {}</text>",
        bottom + 14.0,
        r.claim.epsilon
    );
    if r.ceiling.is_some() {
        let x = sx(ceiling);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"2\" y2=\"{bottom:.1}\" stroke=\"#2ca02c\" stroke-dasharray=\"5 3\" stroke-width=\"2\"><title>ceiling: what a mechanism exactly at the claim would show with these runs ({ceiling:.3})</title></line>"
        );
    }
    s + "</svg>"
}

pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>privsynth privacy audit</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\
         table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ddd;padding:.25em .6em;text-align:left}}\
         .ax{{font-size:10px;fill:#555}}.bad{{background:#fdd;padding:.6em;border-left:4px solid #d62728}}\
         .ok{{background:#efe;padding:.6em;border-left:4px solid #2ca02c}}.note{{color:#555;font-size:.9em}}\
         .key span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}</style></head><body>"
    );
    let _ =
        write!(h, "<h1>Privacy audit: {} at epsilon {}</h1>", esc(&r.claim.mechanism.to_uppercase()), r.claim.epsilon);
    let _ = write!(
        h,
        "<p class=\"{}\">{}</p>",
        if r.verdict.exceeds_claim { "bad" } else { "ok" },
        esc(&r.verdict.message)
    );
    let _ = write!(h, "<p class=\"note\">{}. Data: {}. {}.</p>", esc(&r.note), esc(&r.data), esc(&r.tool));
    let _ = write!(h, "<h2>Claim and canary</h2><table>");
    let _ = write!(
        h,
        "<tr><th>claimed epsilon</th><td>{}</td></tr><tr><th>delta</th><td>{:e}</td></tr><tr><th>rho (zCDP)</th><td>{:.6}</td></tr>",
        r.claim.epsilon, r.claim.delta, r.claim.rho
    );
    let _ = write!(
        h,
        "<tr><th>privacy unit</th><td>{} (at most {} row(s) per unit)</td></tr>",
        esc(r.claim.unit.as_deref().unwrap_or("one row")),
        r.claim.rows_per_unit
    );
    let _ = write!(h, "<tr><th>canary</th><td>{} ({} row(s))</td></tr>", esc(&r.canary.kind), r.canary.rows);
    if !r.canary.values.is_empty() {
        let v: Vec<String> = r.canary.values.iter().map(|(c, v)| format!("{}={}", esc(c), esc(v))).collect();
        let _ = write!(h, "<tr><th>canary values</th><td>{}</td></tr>", v.join(", "));
    }
    let _ = write!(
        h,
        "<tr><th>runs</th><td>{} without and {} with the canary; confidence {:.0}%; {:.1} s</td></tr></table>",
        r.runs,
        r.runs,
        100.0 * r.confidence,
        r.seconds
    );
    let _ = write!(h, "<h2>Lower bounds against the claim</h2><p>{}</p>", bounds_svg(r));
    if let Some(c) = &r.ceiling {
        let _ = write!(
            h,
            "<p class=\"note\">Dashed green: the median bound this procedure gives, with the same runs and confidence, for a Gaussian mechanism \
             exactly at the claim (mu {:.3}): {:.3}. At small delta the claim is set by the far tail of the privacy loss, which {} runs cannot \
             observe, so this ceiling lies far below the claim; the Gaussian-DP view below is where a tight audit shows. The white-box score \
             sees mu {:.3} (the releases the canary falls in, from the model files' noise scales).</p>",
            r.claim.gaussian_mu, c.epsilon, r.runs, c.white_box_mu
        );
    }
    if !r.scores.is_empty() {
        let _ = write!(
            h,
            "<table><tr><th>score</th><th>epsilon lower bound</th><th>test</th><th>hit rate without / with</th><th>mu estimate [95%]</th><th>mu lower bound</th><th>claim's mu</th></tr>"
        );
        for sc in &r.scores {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.3}</td><td>{} {:.3}</td><td>{:.3} / {:.3}</td><td>{:.3} [{:.3}, {:.3}]</td><td>{:.3}</td><td>{:.3}</td></tr>",
                esc(&sc.name),
                sc.bound.epsilon,
                esc(&sc.bound.test.direction),
                sc.bound.test.threshold,
                sc.bound.rates.0,
                sc.bound.rates.1,
                sc.gdp.mu_estimate,
                sc.gdp.mu_interval.0,
                sc.gdp.mu_interval.1,
                sc.gdp.mu_lower_bound,
                r.claim.gaussian_mu
            );
        }
        let _ = write!(h, "</table>");
        let _ = write!(
            h,
            "<h2>Score distributions</h2><p class=\"key\"><span style=\"background:{WITHOUT}\"></span>without the canary<span style=\"background:{WITH}\"></span>with the canary; dashed: the test's threshold</p>"
        );
        for sc in &r.scores {
            let _ = write!(
                h,
                "<h3>{}</h3><p class=\"note\">{}</p>{}",
                esc(&sc.name),
                esc(&sc.description),
                histogram_svg(sc)
            );
        }
    }
    if let Some(o) = &r.one_run {
        let _ = write!(
            h,
            "<h2>One-run audit</h2><table><tr><th>canaries</th><td>{} ({} in D')</td></tr><tr><th>guesses</th><td>{} ({} right)</td></tr><tr><th>epsilon lower bound</th><td>{:.3} at {:.0}% confidence</td></tr></table>",
            o.canaries,
            o.included,
            o.guesses,
            o.correct,
            o.epsilon,
            100.0 * o.confidence
        );
    }
    h + "</body></html>\n"
}
