//! The audit on sanity sets built from bundled UCI Adult, split 50/50 into train and holdout:
//! a copy of train, 10% copied rows plus independently resampled columns, independently
//! resampled columns, the holdout itself as "synthetic", a fresh real sample (people of
//! `adult_test.csv`, in neither part) and an AIM epsilon-1 output of the tool. Each must show
//! what the design note calibrated, the default gates must decide as a careful steward would,
//! and no gate's verdict may change with the seed.

use std::collections::HashMap;
use std::path::Path;

use privsynth::data::{self, RawTable};
use privsynth::evaluate::{self, Audit, frame::Frames};
use privsynth::report::{Report, gates};
use privsynth::schema::Schema;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

mod common;

struct Sets {
    dir: tempfile::TempDir,
    header: String,
    train: Vec<String>,
}

fn write(dir: &Path, name: &str, header: &str, rows: &[String]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    p
}

fn sets() -> Sets {
    let text = std::fs::read_to_string(common::root().join("data/adult/adult.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let mut rows: Vec<String> = lines.filter(|l| !l.is_empty()).map(str::to_string).collect();
    rows.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    let h = rows.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let (train, hold) = (rows[..h].to_vec(), rows[h..2 * h].to_vec());
    write(dir.path(), "train.csv", &header, &train);
    write(dir.path(), "holdout.csv", &header, &hold);
    // Independently resampled columns: every cell drawn from its train column.
    let cells: Vec<Vec<&str>> = train.iter().map(|r| r.split(',').collect()).collect();
    let d = cells[0].len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let indep: Vec<String> = (0..train.len())
        .map(|_| (0..d).map(|c| cells[rng.random_range(0..cells.len())][c]).collect::<Vec<_>>().join(","))
        .collect();
    write(dir.path(), "independent.csv", &header, &indep);
    let k = train.len() / 10;
    let mut pick = train.clone();
    pick.shuffle(&mut rng);
    let mut copied: Vec<String> = pick[..k].to_vec();
    copied.extend(indep[..train.len() - k].iter().cloned());
    write(dir.path(), "copied10.csv", &header, &copied);
    write(dir.path(), "copy.csv", &header, &train);
    let test = std::fs::read_to_string(common::root().join("data/adult/adult_test.csv")).unwrap();
    let fresh: Vec<String> = test.lines().skip(1).filter(|l| !l.is_empty()).take(h).map(str::to_string).collect();
    write(dir.path(), "fresh.csv", &header, &fresh);
    Sets { dir, header, train }
}

fn frames(s: &Sets, synthetic: &str) -> Frames {
    let schema = Schema::load(&common::root().join("schemas/adult.yaml")).unwrap();
    let table = schema.table(None).unwrap().clone();
    let read = |n: &str| -> RawTable { data::read_for_table(&s.dir.path().join(n), &table).unwrap() };
    Frames::load(&table, &read("train.csv"), &read("holdout.csv"), &read(synthetic)).unwrap()
}

fn audit_with(frames: &Frames, seed: u64, attacks: usize) -> Report {
    let audit: Audit = evaluate::run(frames, &evaluate::Options { seed, attacks, ..Default::default() }).unwrap();
    let (g, src) = gates::load(None).unwrap();
    Report::new(audit, &g, src).unwrap()
}

fn audit(s: &Sets, synthetic: &str) -> Report {
    audit_with(&frames(s, synthetic), 5, evaluate::Options::default().attacks)
}

fn statuses(r: &Report) -> HashMap<String, gates::Status> {
    r.gates.iter().map(|g| (g.gate.metric.clone(), g.status)).collect()
}

const MEMORIZATION_GATES: [&str; 4] = [
    "memorization.exact_match.excess",
    "memorization.dcr.ci_low_excess",
    "memorization.dcr.below_holdout_p1",
    "memorization.rare_values.excess",
];

#[test]
fn sanity_sets_from_adult() {
    let s = sets();
    assert!(!s.header.is_empty() && s.train.len() > 16_000);

    // A copy of train: every memorization gate fails; its fidelity beats the holdout ceiling
    // (a perfect score is a red flag) and detection falls below 0.5.
    let copy = audit(&s, "copy.csv");
    let st = statuses(&copy);
    for g in MEMORIZATION_GATES {
        assert_eq!(st[g], gates::Status::Fail, "copy of train must fail {g}");
    }
    assert!(!copy.passed());
    let f = &copy.audit.fidelity;
    assert!(f.tvd2.synthetic.unwrap() < 1e-12 && f.tvd2.holdout.unwrap() > 0.01);
    assert!(f.detection_auc.synthetic.unwrap() < 0.5, "{:?}", f.detection_auc);
    assert!((copy.audit.memorization.exact_match.synthetic_in_train - 1.0).abs() < 1e-12);
    assert_eq!(copy.audit.memorization.dcr.zero_to_train, 1.0);
    // The attacks see it too: linkage and inference work far better on train than on holdout.
    let re = &copy.audit.reidentification;
    assert!(re.linkage.as_ref().unwrap().result.risk.unwrap() > 0.2);
    assert!(re.inference.as_ref().unwrap().result.risk.unwrap() > 0.2);

    // 10% copied rows: exact-match share near 0.10 and a closer-to-train share of about
    // 0.5 + 0.10 / 2, significantly above 0.5.
    let c10 = audit(&s, "copied10.csv");
    let m = &c10.audit.memorization;
    assert!((m.exact_match.excess - 0.10).abs() < 0.01, "{:?}", m.exact_match);
    assert!(m.dcr.closer_to_train > 0.53 && m.dcr.closer_to_train < 0.57, "{:?}", m.dcr.closer_to_train);
    assert!(m.dcr.ci_low > m.dcr.expected, "the interval must exclude chance: {} vs {}", m.dcr.ci_low, m.dcr.expected);
    assert!(m.dcr.ci_high - m.dcr.ci_low < 0.03);
    let st = statuses(&c10);
    assert_eq!(st["memorization.exact_match.excess"], gates::Status::Fail);
    assert_eq!(st["memorization.dcr.ci_low_excess"], gates::Status::Fail);

    // Independent columns: no copied rows, but broken 2-way fidelity (well above the ceiling,
    // detected by the trees) and high rare-value re-emission.
    let ind = audit(&s, "independent.csv");
    let f = &ind.audit.fidelity;
    assert!(f.tvd2.synthetic.unwrap() > 2.5 * f.tvd2.holdout.unwrap(), "{:?}", f.tvd2);
    assert!(f.contingency_trend_mean.synthetic.unwrap() < f.contingency_trend_mean.holdout.unwrap() - 0.1);
    assert!(
        f.detection_auc.synthetic.unwrap() > 0.9 && f.detection_auc.holdout.unwrap() < 0.56,
        "{:?}",
        f.detection_auc
    );
    // Column shapes do not see it: each column alone is right.
    assert!(f.column_shapes_mean.synthetic.unwrap() > 0.98);
    let m = &ind.audit.memorization;
    assert!(m.exact_match.excess.abs() < 0.005);
    assert!(m.rare_values.excess > 0.3, "{:?}", m.rare_values.excess);
    assert!((m.dcr.closer_to_train - 0.5).abs() < 0.02);
    let st = statuses(&ind);
    assert_eq!(st["memorization.rare_values.excess"], gates::Status::Fail);
    assert_eq!(st["fidelity.detection_auc.synthetic"], gates::Status::Fail);
    assert_eq!(st["memorization.exact_match.excess"], gates::Status::Pass);
    // Univariate singling out picks up the re-emitted values (0.84 in the design note).
    assert!(ind.audit.reidentification.singling_out_univariate.result.risk.unwrap() > 0.6);

    // The holdout as "synthetic": a fresh real sample passes everything.
    let fresh = audit(&s, "holdout.csv");
    assert!(
        fresh.passed(),
        "{:#?}",
        fresh.gates.iter().filter(|g| g.status != gates::Status::Pass).collect::<Vec<_>>()
    );
    let re = &fresh.audit.reidentification;
    assert!(re.linkage.as_ref().unwrap().result.risk.unwrap() < 0.02);
    assert!(re.inference.as_ref().unwrap().result.risk.unwrap() < 0.02);
    assert!(re.singling_out_multivariate.result.risk.unwrap() < 0.05);
}

#[test]
fn gate_verdicts_do_not_change_with_the_seed() {
    // The CI part of `cargo bench --bench audit_seeds` (seeds 0-9 at --attacks 2000 and 500 on
    // five sets, figures in benchmarks/README.md): three sets, seeds 0-2 at --attacks 500 (the
    // noisier setting) and seed 0 at the default 2000. Every gate must decide the same way for
    // every seed; the fresh real sample and the AIM output pass, the 10% copy fails.
    // False failures: in the full sweep the seed-dependent gated values (singling-out lower
    // bound, DCR lower bound, detection AUC) stay at least 4 of their seed-to-seed standard
    // deviations from their thresholds on these sets (a flip in 12 audits: well below 1%). The
    // AIM output is a new DP draw each run (its noise is never seeded): its detection AUC was
    // 0.852-0.860 on three draws, 0.04 under its gate, and its other gated values sit at 0.
    let s = sets();
    let aim = s.dir.path().join("aim.csv");
    let r = common::privsynth(&[
        "synth",
        common::path_str(&s.dir.path().join("train.csv")),
        "--schema",
        "schemas/adult.yaml",
        "--epsilon",
        "1",
        "-o",
        common::path_str(&aim),
        "--ledger",
        common::path_str(&s.dir.path().join("ledger.jsonl")),
        "--seed",
        "1",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (set, verdict) in [("fresh.csv", true), ("aim.csv", true), ("copied10.csv", false)] {
        let f = frames(&s, set);
        let runs: Vec<(u64, usize)> = vec![(0, 2000), (0, 500), (1, 500), (2, 500)];
        let mut first: Option<HashMap<String, gates::Status>> = None;
        for (seed, attacks) in runs {
            let r = audit_with(&f, seed, attacks);
            let so = &r.audit.reidentification.singling_out_multivariate;
            assert_eq!(
                so.predicates, attacks,
                "{set}: multivariate singling out must use the predicates asked for ({} tries)",
                so.tries
            );
            assert_eq!(so.requested, attacks);
            assert_eq!(r.passed(), verdict, "{set}, seed {seed}, --attacks {attacks}: {:#?}", r.gates);
            let st = statuses(&r);
            match &first {
                None => first = Some(st),
                Some(f0) => {
                    for (g, status) in &st {
                        assert_eq!(
                            f0[g], *status,
                            "{set}: gate {g} changed with seed {seed} / --attacks {attacks}: {:#?}",
                            r.gates
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn audits_are_reproducible_under_a_seed_and_validate_against_the_published_schema() {
    let s = sets();
    let a = audit(&s, "copied10.csv");
    let b = audit(&s, "copied10.csv");
    let strip = |r: &Report| {
        let mut v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("timings");
        v.as_object_mut().unwrap().remove("created");
        v
    };
    assert_eq!(strip(&a), strip(&b), "the same seed must give the same report");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("schemas/audit-report.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&a.to_json().unwrap()).unwrap();
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema is strict: an unknown top-level field is refused.
    let mut bad = doc.clone();
    bad.as_object_mut().unwrap().insert("surprise".into(), serde_json::json!(1));
    assert!(!v.is_valid(&bad));
}
