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

/// Grouped bars of one column's distribution in the three tables.
fn distribution_svg(d: &Distribution) -> String {
    let keep: Vec<usize> = (0..d.bins.len()).filter(|&i| d.train[i] + d.synthetic[i] + d.holdout[i] > 0.0).collect();
    let (w, h, left, bottom) = (380.0, 190.0, 34.0, 62.0);
    let plot_h = h - bottom - 8.0;
    let top = keep.iter().map(|&i| d.train[i].max(d.synthetic[i]).max(d.holdout[i])).fold(0.01f64, f64::max);
    let slot = (w - left - 4.0) / keep.len().max(1) as f64;
    let bw = (slot / 3.6).min(14.0);
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\"><title>{}</title>",
        xml(&d.column)
    );
    for t in 0..=4 {
        let y = 8.0 + plot_h * (1.0 - t as f64 / 4.0);
        let _ = write!(s, "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>", w - 4.0);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{:.0}%</text>",
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
                8.0 + plot_h - bh,
                xml(&d.bins[i]),
                pct(v)
            );
        }
        let lx = left + slot * (k as f64 + 0.5);
        let ly = 8.0 + plot_h + 10.0;
        let _ = write!(
            s,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"ax\" text-anchor=\"end\" transform=\"rotate(-40 {lx:.1} {ly:.1})\">{}</text>",
            xml(&short(&d.bins[i], 14))
        );
    }
    s + "</svg>"
}

fn heat_color(v: f64) -> String {
    // 0 -> white, 0.25 and above -> dark red.
    let t = (v / 0.25).clamp(0.0, 1.0);
    let r = 255.0 - 75.0 * t;
    let g = 255.0 - 235.0 * t;
    let b = 255.0 - 225.0 * t;
    format!("rgb({r:.0},{g:.0},{b:.0})")
}

/// Pairwise 2-way TVD: synthetic vs train above the diagonal, holdout vs train below it.
fn heatmap_svg(r: &Report) -> String {
    let names: Vec<&str> = r.audit.inputs.columns.iter().map(|c| c.name.as_str()).collect();
    let d = names.len();
    let cell = (520.0 / d.max(1) as f64).clamp(8.0, 34.0);
    let lab = 110.0;
    let size = lab + cell * d as f64 + 10.0;
    let mut grid = vec![vec![None; d]; d];
    for p in &r.audit.fidelity.pairs {
        let a = names.iter().position(|n| *n == p.columns[0]);
        let b = names.iter().position(|n| *n == p.columns[1]);
        if let (Some(a), Some(b)) = (a, b) {
            grid[a][b] = p.tvd.synthetic;
            grid[b][a] = p.tvd.holdout;
        }
    }
    let mut s = format!(
        "<svg viewBox=\"0 0 {size:.0} {size:.0}\" width=\"{size:.0}\" height=\"{size:.0}\" role=\"img\"><title>pairwise TVD</title>"
    );
    for (i, n) in names.iter().enumerate() {
        let c = lab + cell * (i as f64 + 0.5);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{c:.1}\" class=\"ax\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            lab - 4.0,
            xml(&short(n, 16))
        );
        let _ = write!(
            s,
            "<text x=\"{c:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"start\" transform=\"rotate(-60 {c:.1} {:.1})\">{}</text>",
            lab - 4.0,
            lab - 4.0,
            xml(&short(n, 16))
        );
    }
    for (i, row) in grid.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let (x, y) = (lab + cell * j as f64, lab + cell * i as f64);
            let (fill, tip) = match v {
                Some(v) => (
                    heat_color(*v),
                    format!(
                        "{} × {}: TVD {:.3} ({})",
                        names[i],
                        names[j],
                        v,
                        if j > i { "synthetic" } else { "holdout" }
                    ),
                ),
                None => ("#ddd".into(), names[i].to_string()),
            };
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" fill=\"{fill}\" stroke=\"#fff\"><title>{}</title></rect>",
                xml(&tip)
            );
        }
    }
    s + "</svg>"
}

fn dcr_svg(r: &Report) -> String {
    let h = &r.audit.memorization.dcr.histogram;
    let (w, ht, left, bottom) = (560.0, 220.0, 46.0, 40.0);
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
    let top = series.iter().flat_map(|(v, _, _)| v.iter()).copied().fold(0.01f64, f64::max);
    let slot = (w - left - 10.0) / n as f64;
    let bw = slot / 3.4;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\"><title>DCR histogram</title>"
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
            let label = if b == 0 { "= 0".to_string() } else { format!("({:.3}, {:.3}]", h.edges[b - 1], h.edges[b]) };
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{name} {label}: {}</title></rect>",
                left + slot * b as f64 + j as f64 * bw,
                10.0 + plot_h - bh,
                pct(v[b])
            );
        }
        if b % 4 == 0 {
            let label = if b == 0 { "0".to_string() } else { format!("{:.3}", h.edges[b]) };
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
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"middle\">Gower distance to the closest record</text>",
        left + (w - left) / 2.0,
        ht - 4.0
    );
    s + "</svg>"
}

/// Attack and control rates with their intervals, one row per attack.
fn risk_svg(rows: &[(&str, &AttackResult)]) -> String {
    let (w, row_h, left) = (620.0, 46.0, 190.0);
    let ht = 30.0 + row_h * rows.len() as f64;
    let sx = |v: f64| left + (w - left - 20.0) * v;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\"><title>attack success rates</title>"
    );
    for t in 0..=10 {
        let x = sx(t as f64 / 10.0);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"18\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"12\" class=\"ax\" text-anchor=\"middle\">{:.1}</text>",
            ht - 4.0,
            t as f64 / 10.0
        );
    }
    for (i, (name, a)) in rows.iter().enumerate() {
        let y = 24.0 + row_h * i as f64;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 14.0,
            xml(name)
        );
        let risk = match (a.risk, a.risk_ci_low, a.risk_ci_high) {
            (Some(r), Some(lo), Some(hi)) => format!("risk {r:.3} [{lo:.3}, {hi:.3}]"),
            _ => "risk not computed (too few attempts)".to_string(),
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{risk}</text>",
            left - 8.0,
            y + 28.0
        );
        for (k, (rate, color, what)) in
            [(&a.attack, SYNTH, "train targets"), (&a.control, HOLD, "holdout targets (control)")]
                .into_iter()
                .enumerate()
        {
            let yy = y + 8.0 + 14.0 * k as f64;
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
                y + 2.0,
                y + 28.0
            );
        }
    }
    s + "</svg>"
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
.grid{{display:flex;flex-wrap:wrap;gap:10px}}.card{{border:1px solid #eee;border-radius:6px;padding:6px}}.card h3{{font-size:13px;margin:0 0 2px}}\
.ax{{font-size:10px;fill:#555}}.lbl{{font-size:12px;fill:#222}}.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}}\
.muted{{color:#666;font-size:12px}}svg{{max-width:100%;height:auto}}\
@media (max-width:900px){{body{{padding:10px 12px}}table{{display:block;overflow-x:auto;max-width:100%}}.card{{flex:1 1 100%}}td,th{{padding:3px 6px}}}}\
@media print{{body{{max-width:none;padding:0;font-size:11px}}*{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\
.card,table,svg,.notice{{break-inside:avoid}}h2{{break-after:avoid}}a{{color:inherit;text-decoration:none}}}}</style></head><body>",
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

    h += "<h2>Gates</h2><table><tr><th>status</th><th>metric</th><th>rule</th><th>value</th><th>why</th></tr>";
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
            "<tr><td><span class=\"badge {class}\">{label}</span></td><td><code>{}</code></td><td class=\"r\">{rel} {}</td><td class=\"n\">{}</td><td class=\"note\">{}</td></tr>",
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
    h += "</div><h3>Pairwise 2-way TVD</h3><p class=\"muted\">Above the diagonal: synthetic vs train. Below: holdout vs train (sampling noise alone). Darker = further apart; hover for values.</p>";
    h += &heatmap_svg(r);

    let e = &m.exact_match;
    let dc = &m.dcr;
    let rv = &m.rare_values;
    h += "<h2>Memorization</h2><table><tr><th>measure</th><th>against train</th><th>against holdout</th><th></th></tr>";
    let _ = write!(
        h,
        "<tr><td>synthetic rows equal to a real row</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"note\">excess {} (holdout rows found in train: {})</td></tr>",
        pct(e.synthetic_in_train),
        pct(e.synthetic_in_holdout),
        pct(e.excess),
        pct(e.holdout_in_train)
    );
    let _ = write!(
        h,
        "<tr><td>real rows unique in their table reproduced (UEM)</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"note\">synthetic-internal duplicates {}</td></tr>",
        pct(e.unique_train_reproduced),
        pct(e.unique_holdout_reproduced),
        pct(e.synthetic_duplicates)
    );
    let _ = write!(
        h,
        "<tr><td>median distance to closest record</td><td class=\"n\">{:.4}</td><td class=\"n\">{:.4}</td><td class=\"note\">a fresh real sample: {:.4} (holdout → train)</td></tr>",
        dc.median_synthetic_to_train, dc.median_synthetic_to_holdout, dc.median_holdout_to_train
    );
    let _ = write!(
        h,
        "<tr><td>rows at distance 0</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td></td></tr>",
        pct(dc.zero_to_train),
        pct(dc.zero_to_holdout)
    );
    let _ = write!(
        h,
        "<tr><td>median NNDR</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"note\">memorized rows have NNDR ≈ 0 against train only</td></tr>",
        dc.nndr_median_train, dc.nndr_median_holdout
    );
    let _ = write!(
        h,
        "<tr><td>rare values re-emitted</td><td class=\"n\">{} ({} of {})</td><td class=\"n\">{} ({} of {})</td><td class=\"note\">values that single out one real row, emitted verbatim</td></tr></table>",
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
    h += &risk_svg(&named);
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
