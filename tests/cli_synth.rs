//! End-to-end synthesis: `synth`, `fit` + `sample` without the real data, the model file's
//! contents, budget accounting, and fidelity against a DP independent baseline.

mod common;
use common::{path_str, privsynth, root};

use privsynth::codec::{EncodedTable, TableCodec};
use privsynth::data;
use privsynth::marginals::{self, mean_tvd, subsets};
use privsynth::mechanism::{self, mst};
use privsynth::model::{GraphicalModel, JunctionTree, estimate, sample};
use privsynth::schema::Schema;
use privsynth_privacy::ledger::Ledger;
use privsynth_privacy::{Budget, mechanisms};
use rand::SeedableRng;
use rand::rngs::StdRng;

const ADULT: &str = "data/adult/adult.csv";
const SCHEMA: &str = "schemas/adult.yaml";

fn adult() -> (TableCodec, EncodedTable) {
    let s = Schema::load(&root().join(SCHEMA)).unwrap();
    let t = s.table(None).unwrap();
    let codec = TableCodec::new(t).unwrap();
    let raw = data::read_for_table(&root().join(ADULT), t).unwrap();
    let enc = codec.encode(&raw).unwrap();
    (codec, enc)
}

#[test]
fn synth_writes_a_valid_table_and_charges_the_ledger_once() {
    let dir = tempfile::tempdir().unwrap();
    let (out, model, ledger) =
        (dir.path().join("synth.parquet"), dir.path().join("m.json"), dir.path().join("l.jsonl"));
    let r = privsynth(&[
        "synth",
        ADULT,
        "--schema",
        SCHEMA,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&out),
        "--model-out",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
        "--seed",
        "7",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("spent epsilon 1.000") && r.stderr.contains("15 1-way, 14 2-way"), "{}", r.stderr);
    // The synthetic table fits the schema and has about as many rows as the real one (DP total).
    let c = privsynth(&["schema", "check", path_str(&out), "--schema", SCHEMA, "--json"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let rows = serde_json::from_str::<serde_json::Value>(&c.stdout).unwrap()["rows"].as_f64().unwrap();
    assert!((rows - 32_561.0).abs() < 500.0, "{rows}");
    // One ledger entry: 15 one-way, 14 selections, 14 two-way releases, adding up to the budget.
    let e = Ledger::new(&ledger).entries().unwrap();
    assert_eq!(e.len(), 1);
    let count = |m: &str| e[0].mechanisms.iter().filter(|c| c.mechanism == m).count();
    assert_eq!((count("discrete_gaussian"), count("exponential")), (15 + 14, 14));
    let rho = privsynth_privacy::accountant::rho_for(1.0, 1e-9);
    assert!((e[0].rho - rho).abs() < 1e-6 * rho, "spent {} of {rho}", e[0].rho);
    // Same seed, same model: same sample.
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    for p in [&a, &b] {
        assert_eq!(privsynth(&["sample", path_str(&model), "--rows", "500", "-o", path_str(p), "--seed", "3"]).code, 0);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn sample_needs_no_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_copy = dir.path().join("private.csv");
    std::fs::copy(root().join(ADULT), &data_copy).unwrap();
    let model = dir.path().join("m.json");
    let ledger = dir.path().join("l.jsonl");
    let r = privsynth(&[
        "fit",
        path_str(&data_copy),
        "--schema",
        SCHEMA,
        "--epsilon",
        "0.5",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::remove_file(&data_copy).unwrap();
    let out = dir.path().join("s.csv");
    let r = privsynth(&["sample", path_str(&model), "-o", path_str(&out), "--seed", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(privsynth(&["schema", "check", path_str(&out), "--schema", SCHEMA]).code == 0);
    // A damaged model file is a clear error, not a panic.
    let text = std::fs::read_to_string(&model).unwrap();
    std::fs::write(&model, text.replacen("\"total\":", "\"total\":-", 1)).unwrap();
    let r = privsynth(&["sample", path_str(&model), "-o", path_str(&out)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("m.json") && r.stderr.contains("inconsistent"), "{}", r.stderr);
}

#[test]
fn the_model_file_holds_released_values_only() {
    let (_, enc) = adult();
    let mut budget = Budget::from_epsilon_delta(1.0, 1e-9).unwrap();
    let fit = mst::fit(&enc, &mut budget, estimate::Options { max_iters: 300, ..Default::default() }).unwrap();
    // Every measurement comes from a charged release whose scale is its sigma.
    for m in &fit.measurements {
        let cost = &m.cost()[0];
        assert_eq!(cost.scale, m.value().sigma);
        assert!(budget.charges().contains(cost));
    }
    // The released one-way counts are noisy: with sigma ~ 30 counts, a released cell equals the
    // exact count about 1% of the time.
    let (mut equal, mut cells) = (0, 0);
    for m in fit
        .measurements
        .iter()
        .filter(|m| m.value().attrs.len() == 1 && m.value().y.len() == enc.sizes()[m.value().attrs[0]])
    {
        let a = m.value().attrs[0];
        let mut exact = vec![0.0; enc.sizes()[a]];
        for c in enc.codes(a) {
            exact[c as usize] += 1.0;
        }
        equal += exact.iter().zip(&m.value().y).filter(|(x, y)| x == y).count();
        cells += exact.len();
    }
    assert!(equal * 10 < cells, "{equal} of {cells} released cells equal the exact counts");
    // All of the budget is spent, and no more.
    assert!((budget.rho_spent() - budget.rho_total()).abs() < 1e-6 * budget.rho_total());
    let s = Schema::load(&root().join(SCHEMA)).unwrap();
    let t = s.table(None).unwrap();
    let mf = fit.model_file(
        t,
        &privsynth::codec::TableCodec::new(t).unwrap(),
        budget.charges(),
        budget.spent_epsilon_delta().unwrap(),
    );
    let released: Vec<_> = fit.measurements.iter().map(|m| m.value().clone()).collect();
    assert_eq!(mf.measurements, released);
    assert_eq!(mf.privacy.releases, budget.charges());
}

#[test]
fn mst_beats_the_dp_independent_baseline() {
    let (_, enc) = adult();
    let two = subsets(enc.sizes().len(), 2);
    let mut rng = StdRng::seed_from_u64(11);
    // MST at epsilon 1.
    let mut budget = Budget::from_epsilon_delta(1.0, 1e-9).unwrap();
    let fit = mst::fit(&enc, &mut budget, estimate::Options::default()).unwrap();
    let codes =
        mechanism::expand(&fit.compression, &fit.expansion, sample::sample(&fit.model, enc.rows(), &mut rng), &mut rng);
    let mst_tvd =
        mean_tvd(&enc, &EncodedTable::from_synthetic(enc.names().to_vec(), enc.sizes().to_vec(), codes), &two);
    // Independent baseline: the whole budget on one-way marginals.
    let mut budget = Budget::from_epsilon_delta(1.0, 1e-9).unwrap();
    let d = enc.sizes().len();
    let s = mechanisms::gaussian_scale(budget.rho_total() / d as f64 * (1.0 - 1e-9), 1).unwrap();
    let ms: Vec<estimate::Measurement> = (0..d)
        .map(|a| {
            let y = mechanisms::gaussian_counts(&mut budget, marginals::count(&enc, &[a]), 1, s, "1-way").unwrap();
            estimate::Measurement {
                attrs: vec![a],
                weights: vec![],
                y: y.value().iter().map(|&v| v as f64).collect(),
                sigma: s,
            }
        })
        .collect();
    let sets: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).collect();
    let mut indep = GraphicalModel::uniform(JunctionTree::build(enc.sizes(), &sets), estimate::estimate_total(&ms));
    estimate::mirror_descent(&mut indep, &ms, estimate::Options::default());
    let codes = sample::sample(&indep, enc.rows(), &mut rng);
    let ind_tvd =
        mean_tvd(&enc, &EncodedTable::from_synthetic(enc.names().to_vec(), enc.sizes().to_vec(), codes), &two);
    assert!(mst_tvd < 0.8 * ind_tvd, "MST 2-way TVD {mst_tvd:.4} vs independent {ind_tvd:.4}");
}

#[test]
fn fit_refuses_data_domains_and_respects_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let inferred = dir.path().join("inferred.yaml");
    assert_eq!(privsynth(&["schema", "infer", ADULT, "-o", path_str(&inferred)]).code, 0);
    let model = dir.path().join("m.json");
    let ledger = dir.path().join("l.jsonl");
    let r = privsynth(&[
        "fit",
        ADULT,
        "--schema",
        path_str(&inferred),
        "--epsilon",
        "1",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot be used for DP fitting") && r.stderr.contains("--allow-data-domains"),
        "{}",
        r.stderr
    );
    assert!(!model.exists());
    let r = privsynth(&[
        "fit",
        ADULT,
        "--schema",
        path_str(&inferred),
        "--epsilon",
        "1",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
        "--allow-data-domains",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("NOT differentially private"), "{}", r.stderr);
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "default: {epsilon: 1.2, delta: 1.0e-9}\n").unwrap();
    let out = dir.path().join("s.csv");
    let r = privsynth(&[
        "synth",
        ADULT,
        "--schema",
        SCHEMA,
        "--epsilon",
        "1",
        "-o",
        path_str(&out),
        "--ledger",
        path_str(&ledger),
        "--policy",
        path_str(&policy),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn synth_runs_on_every_bundled_table() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l.jsonl");
    for ((data, schema), mechanism) in [
        ("data/adult/adult_test.csv", "schemas/adult.yaml"),
        ("data/private-pgm/adult.csv", "schemas/adult-pgm.yaml"),
        ("data/uci-heart-disease/processed.cleveland.data", "schemas/heart.yaml"),
        ("data/synthea/patients.csv", "schemas/synthea-patients.yaml"),
    ]
    .into_iter()
    .flat_map(|t| [(t, "mst"), (t, "aim")])
    {
        let out = dir.path().join("out.csv");
        let r = privsynth(&[
            "synth",
            data,
            "--schema",
            schema,
            "--epsilon",
            "1",
            "--mechanism",
            mechanism,
            "-o",
            path_str(&out),
            "--ledger",
            path_str(&ledger),
            "--iterations",
            "500",
            "--seed",
            "1",
        ]);
        assert_eq!(r.code, 0, "{data} ({mechanism}): {}", r.stderr);
        // 111 records cannot carry 126 birth years at epsilon 1, and the run says so: the
        // columns no count stood out of are merged into one group, drawn nearly uniformly, or flagged
        // as noise-dominated. Adult's records carry theirs.
        let line = |needle: &str| r.stderr.lines().find(|l| l.contains(needle)).unwrap_or_default().to_owned();
        let noisy = line("warning: the noise outweighs the data in the one-way marginals of");
        let uniform = line("stood out of the noise, so each is drawn over its schema domain");
        if schema.contains("synthea") && mechanism == "aim" {
            // AIM compresses the one-way domains as MST does, but on a table this small its
            // small-data top-up puts most of the budget on the one-way marginals, so a birth
            // year shared by a few records can stand out of the noise (about half the runs):
            // BIRTHDATE is not always merged. What always holds is that the run reports the
            // columns the noise outweighs (111 records cannot carry all of them).
            assert!(!noisy.is_empty() || !uniform.is_empty(), "{data} ({mechanism}): {}", r.stderr);
        } else if schema.contains("synthea") {
            // Which columns merge varies with the noise (INCOME, HEALTHCARE_EXPENSES and
            // HEALTHCARE_COVERAGE each in about 95% of 300 fits); that none does is ~1e-4.
            assert!(!uniform.is_empty(), "{data} ({mechanism}): {}", r.stderr);
        } else if schema.contains("adult") {
            assert!(noisy.is_empty() && uniform.is_empty(), "{data} ({mechanism}): {}", r.stderr);
        }
        let c = privsynth(&["schema", "check", path_str(&out), "--schema", schema, "--json"]);
        if schema.contains("synthea") {
            // Identifier and text columns are not modelled and not written: checked against the
            // schema written beside the output, which leaves them out (issue 23).
            assert_eq!(c.code, 2);
            assert!(c.stderr.contains("absent from the file: Id"), "{}", c.stderr);
            let beside = privsynth::pipeline::output::schema_beside(&out);
            let c = privsynth(&["schema", "check", path_str(&out), "--schema", path_str(&beside)]);
            assert_eq!(c.code, 0, "{data}: against {}:\n{}{}", beside.display(), c.stdout, c.stderr);
        } else {
            assert_eq!(c.code, 0, "{data}: the synthetic table does not fit its schema:\n{}", c.stdout);
        }
    }
}
