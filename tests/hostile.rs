//! A hostile-input battery: malformed, extreme and conflicting inputs through every command.
//! Each case asserts the exit code, no panic (the runner checks every stderr), what the message
//! must say, what it must never show (cell values on the modelling path), that no input was
//! changed, that a refused run charged nothing, and that it ended in bounded time.

mod common;
use common::{path_str, privsynth};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;

/// A small table whose values would be recognisable in a message.
const PEOPLE: &str = "name,age,dx,admitted\n\
John Smith,61,HIV,2020-03-04\n\
Ann Lee,34,flu,2021-05-06\n\
Bo Chen,47,flu,2019-12-31\n\
Cy Diaz,29,asthma,2020-07-08\n\
Di Eke,52,HIV,2022-01-02\n";

const SCHEMA: &str = "version: 1
tables:
  - name: people
    columns:
      - {name: name, type: identifier, role: identifier}
      - {name: age, type: integer, domain: {bounds: [0, 99], bins: 10}}
      - {name: dx, type: categorical, domain: {categories: [HIV, flu, asthma]}}
      - {name: admitted, type: date, domain: {bounds: ['2015-01-01', '2024-12-31'], granularity: year}}
";

/// The scratch folder of a battery: the table, its schema, a ledger, and a fitted model.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env { dir: tempfile::tempdir().unwrap() };
        std::fs::write(e.p("people.csv"), PEOPLE).unwrap();
        std::fs::write(e.p("schema.yaml"), SCHEMA).unwrap();
        e
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        path_str(&self.p(name)).to_string()
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        std::fs::write(self.p(name), bytes).unwrap();
        self.s(name)
    }

    /// A model file fitted on the table (charged to a ledger of its own).
    fn model(&self) -> String {
        let m = self.s("model.json");
        if !Path::new(&m).exists() {
            let r = privsynth(&[
                "fit",
                &self.s("people.csv"),
                "--schema",
                &self.s("schema.yaml"),
                "--epsilon",
                "1",
                "--mechanism",
                "mst",
                "-o",
                &m,
                "--ledger",
                &self.s("setup-ledger.jsonl"),
                "-q",
            ]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        m
    }

    fn ledger_lines(&self) -> usize {
        std::fs::read_to_string(self.p("ledger.jsonl")).map_or(0, |t| t.lines().count())
    }
}

/// One hostile case.
struct Case<'a> {
    name: &'a str,
    args: Vec<String>,
    code: i32,
    /// The message names what is wrong.
    says: Vec<&'a str>,
    /// Never in stdout or stderr (cell values of the real data).
    never: Vec<&'a str>,
    /// Files that must be byte-for-byte unchanged.
    unchanged: Vec<PathBuf>,
    secs: u64,
}

impl<'a> Case<'a> {
    fn says(mut self, s: &[&'a str]) -> Self {
        self.says.extend(s);
        self
    }
    fn never(mut self, s: &[&'a str]) -> Self {
        self.never.extend(s);
        self
    }
    fn keeps(mut self, p: &[PathBuf]) -> Self {
        self.unchanged.extend(p.iter().cloned());
        self
    }
    fn within(mut self, secs: u64) -> Self {
        self.secs = secs;
        self
    }
}

fn snapshot(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

/// Run the cases; a refused case (exit 2 or 3) must leave the ledger as it was.
fn battery(env: &Env, cases: Vec<Case<'_>>) -> usize {
    let n = cases.len();
    for c in cases {
        let before: Vec<(PathBuf, Option<Vec<u8>>)> = c.unchanged.iter().map(|p| (p.clone(), snapshot(p))).collect();
        let ledger_before = env.ledger_lines();
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let r = privsynth(&args);
        let took = t.elapsed();
        let out = format!("{}\n{}", r.stdout, r.stderr);
        assert_eq!(r.code, c.code, "{}: exit {} (expected {}):\n{out}", c.name, r.code, c.code);
        for s in &c.says {
            assert!(out.contains(s), "{}: the message lacks {s:?}:\n{out}", c.name);
        }
        for s in &c.never {
            assert!(!out.contains(s), "{}: the output shows {s:?}:\n{out}", c.name);
        }
        for (p, b) in before {
            assert_eq!(snapshot(&p), b, "{}: {} changed", c.name, p.display());
        }
        if c.code >= 2 {
            assert_eq!(env.ledger_lines(), ledger_before, "{}: a refused run charged the ledger", c.name);
        }
        assert!(took < Duration::from_secs(c.secs), "{}: took {took:?}", c.name);
        let stray: Vec<String> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".tmp") || n.starts_with(".privsynth-"))
            .collect();
        assert!(stray.is_empty(), "{}: left {stray:?}", c.name);
    }
    n
}

fn fit_args(env: &Env, data: &str, out: &str) -> Vec<String> {
    [
        "fit",
        data,
        "--schema",
        &env.s("schema.yaml"),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        out,
        "--ledger",
        &env.s("ledger.jsonl"),
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `synth` with `extra` flags; a flag the base already has takes the new value.
fn synth_args(env: &Env, data: &str, out: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "synth",
        data,
        "--schema",
        &env.s("schema.yaml"),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        out,
        "--ledger",
        &env.s("ledger.jsonl"),
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut i = 0;
    while i < extra.len() {
        let (flag, value) = (extra[i], extra.get(i + 1).copied());
        match (a.iter().position(|x| x == flag), value) {
            (Some(at), Some(v)) if !v.starts_with("--") => {
                a[at + 1] = v.to_string();
                i += 2;
            }
            _ => {
                a.push(flag.to_string());
                i += 1;
            }
        }
    }
    a
}

fn case(name: &str, args: Vec<String>, code: i32) -> Case<'_> {
    Case { name, args, code, says: vec![], never: vec![], unchanged: vec![], secs: 60 }
}

#[test]
fn outputs_never_destroy_inputs_and_nothing_is_charged_before_they_are_checked() {
    let env = Env::new();
    let data = env.s("people.csv");
    let input = env.p("people.csv");
    let schema = env.p("schema.yaml");
    let model = env.model();
    let hard = env.p("hard.csv");
    std::fs::hard_link(&input, &hard).unwrap();
    let soft = env.p("soft.csv");
    std::os::unix::fs::symlink(&input, &soft).unwrap();
    std::fs::create_dir(env.p("adir")).unwrap();
    let linked = env.p("linked");
    std::fs::create_dir(&linked).unwrap();
    for f in ["patients.csv", "encounters.csv", "conditions.csv", "medications.csv"] {
        std::fs::copy(common::root().join("data/ehr/synthea-111").join(f), linked.join(f)).unwrap();
    }
    let real = linked.join("patients.csv");
    let synthea = path_str(&common::root().join("schemas/ehr/synthea-111.yaml")).to_string();
    let ledger = env.s("ledger.jsonl");
    let audit = |extra: &[&str]| {
        let mut a = vec![
            "audit",
            "--train",
            data.as_str(),
            "--holdout",
            data.as_str(),
            "--synthetic",
            data.as_str(),
            "--schema",
            path_str(&schema),
        ];
        a.extend(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let cases = vec![
        case("synth -o the input", synth_args(&env, &data, &data, &[]), 2)
            .says(&["one of this run's inputs"])
            .keeps(&[input.clone()]),
        case("fit -o the input", fit_args(&env, &data, &data), 2).keeps(&[input.clone()]),
        case("synth --model-out the input", synth_args(&env, &data, &env.s("o.csv"), &["--model-out", &data]), 2)
            .keeps(&[input.clone()]),
        case("fit -o a hard link to the input", fit_args(&env, &data, path_str(&hard)), 2).keeps(&[input.clone()]),
        case("fit -o a symlink to the input", fit_args(&env, &data, path_str(&soft)), 2).keeps(&[input.clone()]),
        case("fit -o the schema", fit_args(&env, &data, path_str(&schema)), 2).keeps(&[schema.clone()]),
        case("fit -o the ledger", fit_args(&env, &data, &ledger), 2).says(&["one of this run's inputs"]),
        case("audit --html the training data", audit(&["--html", &data]), 2)
            .says(&["one of this run's inputs"])
            .keeps(&[input.clone()]),
        case(
            "audit --json equal to --html",
            {
                let mut a = audit(&["--json", &env.s("r.x"), "--html", &env.s("r.x")]);
                a.retain(|_| true);
                a
            },
            2,
        )
        .says(&["two outputs"]),
        case("synth -o /dev/full", synth_args(&env, &data, "/dev/full", &[]), 2).says(&["not a regular file"]),
        case("synth -o /dev/stdout", synth_args(&env, &data, "/dev/stdout", &[]), 2).says(&["not a regular file"]),
        case("synth -o a folder", synth_args(&env, &data, &env.s("adir"), &[]), 2).says(&["is a folder"]),
        case("synth -o into a missing folder", synth_args(&env, &data, &env.s("missing/out.csv"), &[]), 2)
            .says(&["does not exist"]),
        case("synth -o into an unwritable folder", synth_args(&env, &data, "/proc/out.csv", &[]), 2)
            .says(&["cannot write"]),
        case(
            "schema infer -o the input",
            vec!["schema".into(), "infer".into(), data.clone(), "-o".into(), data.clone()],
            2,
        )
        .keeps(&[input.clone()]),
        case(
            "linked synth -o the input folder",
            vec![
                "synth".into(),
                path_str(&linked).into(),
                "--schema".into(),
                synthea.clone(),
                "--epsilon".into(),
                "1".into(),
                "-o".into(),
                path_str(&linked).into(),
                "--ledger".into(),
                ledger.clone(),
                "-q".into(),
            ],
            2,
        )
        .says(&["would replace real data"])
        .keeps(&[real.clone()]),
        case(
            "linked synth -o an existing file",
            vec![
                "synth".into(),
                path_str(&linked).into(),
                "--schema".into(),
                synthea.clone(),
                "--epsilon".into(),
                "1".into(),
                "-o".into(),
                data.clone(),
                "--ledger".into(),
                ledger.clone(),
                "-q".into(),
            ],
            2,
        )
        .keeps(&[input.clone()]),
        case("sample -o the model", vec!["sample".into(), model.clone(), "-o".into(), model.clone()], 2)
            .keeps(&[PathBuf::from(&model)]),
        case("--rows 0", synth_args(&env, &data, &env.s("o.csv"), &["--rows", "0"]), 2).says(&["at least 1"]),
        case("--rows 1e12", synth_args(&env, &data, &env.s("o.csv"), &["--rows", "1000000000000"]), 2)
            .says(&["more than one run can hold"]),
        case("--rows u64::MAX", synth_args(&env, &data, &env.s("o.csv"), &["--rows", "18446744073709551615"]), 2)
            .says(&["more than one run can hold"]),
        case("--rows not a number", synth_args(&env, &data, &env.s("o.csv"), &["--rows", "1e12"]), 2),
        case("--epsilon 0", synth_args(&env, &data, &env.s("o.csv"), &["--epsilon", "0"]), 2).says(&["epsilon"]),
        case(
            "--epsilon -1",
            {
                let mut a = synth_args(&env, &data, &env.s("o.csv"), &[]);
                a[5] = "-1".into();
                a
            },
            2,
        ),
        case("--epsilon 1e308", synth_args(&env, &data, &env.s("o.csv"), &["--epsilon", "1e308"]), 2)
            .says(&["at most 1000"]),
        case("--epsilon NaN", synth_args(&env, &data, &env.s("o.csv"), &["--epsilon", "NaN"]), 2),
        case("--delta 0", synth_args(&env, &data, &env.s("o.csv"), &["--delta", "0"]), 2).says(&["delta"]),
        case("--delta 1", synth_args(&env, &data, &env.s("o.csv"), &["--delta", "1"]), 2).says(&["delta"]),
        case("--audit-holdout 1.5", synth_args(&env, &data, &env.s("o.csv"), &["--audit-holdout", "1.5"]), 2)
            .says(&["fraction"]),
        case("--iterations 0", synth_args(&env, &data, &env.s("o.csv"), &["--iterations", "0"]), 2)
            .says(&["--iterations"]),
        case(
            "--mechanism aim --rounds 0",
            {
                let mut a = synth_args(&env, &data, &env.s("o.csv"), &["--rounds", "0"]);
                a[7] = "aim".into();
                a
            },
            2,
        )
        .says(&["--rounds"]),
        case(
            "--max-model-mb 0",
            {
                let mut a = synth_args(&env, &data, &env.s("o.csv"), &["--max-model-mb", "0"]);
                a[7] = "aim".into();
                a
            },
            2,
        )
        .says(&["--max-model-mb"]),
        case(
            "--degree 0",
            {
                let mut a = synth_args(&env, &data, &env.s("o.csv"), &["--degree", "0"]);
                a[7] = "aim".into();
                a
            },
            2,
        )
        .says(&["--degree"]),
        case(
            "a missing workload file",
            {
                let mut a = synth_args(&env, &data, &env.s("o.csv"), &["--workload", "nope.yaml"]);
                a[7] = "aim".into();
                a
            },
            2,
        )
        .says(&["nope.yaml"]),
        case(
            "a missing gates file",
            synth_args(&env, &data, &env.s("o.csv"), &["--audit-holdout", "0.5", "--gates", "nope.yaml"]),
            2,
        )
        .says(&["nope.yaml"]),
        case("report options without a holdout", synth_args(&env, &data, &env.s("o.csv"), &["--json", "r.json"]), 2)
            .says(&["--audit-holdout"]),
    ];
    let n = battery(&env, cases);
    assert!(n >= 35);
    assert_eq!(env.ledger_lines(), 0, "no case charged anything");
}

#[test]
fn no_cell_value_reaches_a_message_on_the_modelling_path() {
    let env = Env::new();
    let secret = ["John Smith", "HIV", "61", "2020-03-04"];
    // A headerless file read as if it had a header: its first record becomes the "header".
    let headerless = env.write("headerless.csv", PEOPLE.lines().skip(1).collect::<Vec<_>>().join("\n"));
    // Its "header" has a repeated value: the duplicate-name error must not show it.
    let dup = env.write("dup.csv", "HIV,HIV,flu,2020-03-04\n1,2,x,2020-01-01\n");
    // A strict schema stopping at a bad cell.
    let strict =
        env.write("strict.yaml", SCHEMA.replace("  - name: people\n", "  - name: people\n    out_of_domain: error\n"));
    let bad_cell = env.write("bad.csv", PEOPLE.replace("61", "sixty-one-HIV"));
    let strict_fit = {
        let mut a = fit_args(&env, &bad_cell, &env.s("m.json"));
        a[3] = strict.clone();
        a
    };
    // A damaged Parquet file (the reader's message must not be passed through).
    let mut df =
        df!["name" => ["John Smith"], "age" => [61i64], "dx" => ["HIV"], "admitted" => ["2020-03-04"]].unwrap();
    let parquet = env.p("t.parquet");
    ParquetWriter::new(std::fs::File::create(&parquet).unwrap()).finish(&mut df).unwrap();
    let bytes = std::fs::read(&parquet).unwrap();
    let truncated = env.write("truncated.parquet", &bytes[..bytes.len() / 2]);
    let cases = vec![
        case("a headerless file read as headed", fit_args(&env, &headerless, &env.s("m.json")), 2)
            .says(&["absent from the file", "--no-header"])
            .never(&secret),
        case("a data row as a duplicated header", fit_args(&env, &dup, &env.s("m.json")), 2)
            .says(&["columns 1 and 2", "same name"])
            .never(&secret),
        case("a strict policy stops at a bad cell", strict_fit, 2)
            .says(&["row 1", "column \"age\"", "`error`"])
            .never(&["sixty-one"]),
        case("a truncated Parquet file", fit_args(&env, &truncated, &env.s("m.json")), 2)
            .says(&["cannot be read as Parquet"])
            .never(&secret),
        case("a headerless file read as headed, synth", synth_args(&env, &headerless, &env.s("o.csv"), &[]), 2)
            .never(&secret),
        case(
            "bad UTF-8",
            fit_args(
                &env,
                &env.write("latin.csv", b"name,age,dx,admitted\nJos\xe9,61,HIV,2020-03-04\n"),
                &env.s("m.json"),
            ),
            2,
        )
        .says(&["UTF-8", "line 2"])
        .never(&["Jos"]),
    ];
    battery(&env, cases);
}

#[test]
fn no_panic_and_no_hang_on_malformed_files_schemas_and_models() {
    let env = Env::new();
    let data = env.s("people.csv");
    let model = env.model();
    let text = std::fs::read_to_string(&model).unwrap();
    let edit = |name: &str, from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        env.write(name, text.replacen(from, to, 1))
    };
    let m_total = edit("m-total.json", "\"total\":", "\"total\":1e300,\"x\":");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut clique = v.clone();
    clique["cliques"][0] = serde_json::json!([0, 7]);
    let m_clique = env.write("m-clique.json", clique.to_string());
    let mut sigma = v.clone();
    sigma["measurements"][0]["sigma"] = serde_json::json!(-1.0);
    let m_sigma = env.write("m-sigma.json", sigma.to_string());
    let mut pot = v.clone();
    pot["potentials"][0] = serde_json::json!(vec![1.0; 997]);
    let m_pot = env.write("m-pot.json", pot.to_string());
    let mut prec = v.clone();
    prec["table"]["columns"][1] = serde_json::json!({"name": "age", "type": "float", "precision": 400, "domain": {"bounds": [0, 99], "bins": 10}});
    let m_prec = env.write("m-prec.json", prec.to_string());
    let schema_with = |name: &str, col: &str| {
        env.write(name, SCHEMA.replace("      - {name: age, type: integer, domain: {bounds: [0, 99], bins: 10}}", col))
    };
    let wide =
        schema_with("wide.yaml", "      - {name: age, type: float, domain: {bounds: [-1e308, 1e308], bins: 10}}");
    let precise = schema_with(
        "precise.yaml",
        "      - {name: age, type: float, precision: 400, domain: {bounds: [0, 99], bins: 10}}",
    );
    let huge = schema_with(
        "huge.yaml",
        "      - {name: age, type: integer, domain: {bounds: [0, 9000000000000000000], bins: 10}}",
    );
    let bad_fmt = env.write("fmt.yaml", SCHEMA.replace("granularity: year}}", "granularity: year}, format: \"%Q\"}"));
    let deep = env.write("deep.yaml", format!("version: 1\ntables: {}{}", "[".repeat(100_000), "]".repeat(100_000)));
    let indent = env.write("indent.yaml", (0..3000).map(|i| format!("{}a{i}:\n", " ".repeat(i))).collect::<String>());
    let many_cols = env.write(
        "wide.csv",
        format!(
            "{}\n{}\n",
            (0..100_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(","),
            vec!["1"; 100_000].join(",")
        ),
    );
    let fifo = env.p("fifo.csv");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Decimal and list columns in Parquet.
    let mut dec = df!["name" => ["a", "b"], "age" => [30.5f64, 40.25], "dx" => ["HIV", "flu"], "admitted" => ["2020-03-04", "2021-01-01"]].unwrap();
    let d = dec.column("age").unwrap().cast(&DataType::Decimal(6, 2)).unwrap();
    dec.with_column(d).unwrap();
    let decimal = env.p("decimal.parquet");
    ParquetWriter::new(std::fs::File::create(&decimal).unwrap()).finish(&mut dec).unwrap();
    let lists = Series::new("age".into(), [Series::new("".into(), [1i64, 2]), Series::new("".into(), [3i64])]);
    let mut lst =
        df!["name" => ["a", "b"], "dx" => ["HIV", "flu"], "admitted" => ["2020-03-04", "2021-01-01"]].unwrap();
    lst.with_column(lists.into()).unwrap();
    let list = env.p("list.parquet");
    ParquetWriter::new(std::fs::File::create(&list).unwrap()).finish(&mut lst).unwrap();
    let with_schema = |a: Vec<String>, s: &str| {
        let mut a = a;
        a[3] = s.to_string();
        a
    };
    let sample = |m: &str| vec!["sample".to_string(), m.to_string(), "-o".into(), env.s("s.csv"), "-q".into()];
    let cases = vec![
        case("model total 1e300", sample(&m_total), 2).says(&["inconsistent", "total"]),
        case("model clique out of range", sample(&m_clique), 2).says(&["clique"]),
        case("model negative sigma", sample(&m_sigma), 2).says(&["measurement"]),
        case("model potential of the wrong size", sample(&m_pot), 2).says(&["potential"]),
        case("model with a precision of 400", sample(&m_prec), 2).says(&["precision"]),
        case("bounds of +-1e308", with_schema(fit_args(&env, &data, &env.s("m.json")), &wide), 2)
            .says(&["bounds must lie within"]),
        case("precision 400", with_schema(fit_args(&env, &data, &env.s("m.json")), &precise), 2)
            .says(&["precision must be at most"]),
        case("integer bounds beyond 2^53", with_schema(fit_args(&env, &data, &env.s("m.json")), &huge), 2)
            .says(&["bounds must lie within"]),
        case("an invalid strftime format", with_schema(fit_args(&env, &data, &env.s("m.json")), &bad_fmt), 2)
            .says(&["strftime"]),
        case("YAML nested 100k deep", with_schema(fit_args(&env, &data, &env.s("m.json")), &deep), 2)
            .says(&["nests"])
            .within(10),
        case("YAML indented 3000 deep", with_schema(fit_args(&env, &data, &env.s("m.json")), &indent), 2)
            .says(&["indented"])
            .within(10),
        case("a CSV file of 100k columns", vec!["schema".into(), "infer".into(), many_cols], 2)
            .says(&["at most 10000 columns"])
            .within(20),
        case("/dev/zero as input", fit_args(&env, "/dev/zero", &env.s("m.json")), 2)
            .says(&["not a regular file"])
            .within(10),
        case("a FIFO as input", fit_args(&env, path_str(&fifo), &env.s("m.json")), 2)
            .says(&["not a regular file"])
            .within(10),
        case("a folder as input", fit_args(&env, path_str(env.dir.path()), &env.s("m.json")), 2).says(&["folder"]),
        case("a Parquet decimal column is read", fit_args(&env, path_str(&decimal), &env.s("m.json")), 0),
        case("a Parquet list column", fit_args(&env, path_str(&list), &env.s("m.json")), 2)
            .says(&["column \"age\"", "its type in the file is list"]),
        case("an empty file", fit_args(&env, &env.write("empty.csv", ""), &env.s("m.json")), 2).says(&["is empty"]),
        case(
            "a ragged row",
            fit_args(&env, &env.write("ragged.csv", "name,age,dx,admitted\na,1,HIV\n"), &env.s("m.json")),
            2,
        )
        .says(&["row 1", "field(s)"]),
        case(
            "an unclosed quote",
            fit_args(&env, &env.write("quote.csv", "name,age,dx,admitted\n\"a,1,HIV,2020-01-01\n"), &env.s("m.json")),
            2,
        )
        .says(&["never closed"]),
        case(
            "CR-only line endings",
            fit_args(&env, &env.write("cr.csv", PEOPLE.replace('\n', "\r")), &env.s("m.json")),
            2,
        )
        .says(&["carriage return"]),
        case(
            "a header-only file fits (total)",
            fit_args(&env, &env.write("header.csv", "name,age,dx,admitted\n"), &env.s("m-empty.json")),
            0,
        ),
        case(
            "a header split inside quotes",
            vec![
                "schema".into(),
                "check".into(),
                env.write("q.csv", "\"name\",\"age\",\"dx\",\"admitted\"\n\"a,b\",1,HIV,2020-01-01\n"),
                "--schema".into(),
                env.s("schema.yaml"),
            ],
            0,
        ),
        case(
            "a header with a quote inside a field",
            vec![
                "schema".into(),
                "check".into(),
                env.write("q2.csv", "name,\"a,ge\",dx,admitted\nx,1,HIV,2020-01-01\n"),
                "--schema".into(),
                env.s("schema.yaml"),
            ],
            2,
        )
        .says(&["age"]),
        case(
            "a table given twice",
            vec![
                "synth".into(),
                "patients=a.csv".into(),
                "patients=b.csv".into(),
                "--schema".into(),
                "schemas/ehr/synthea-111.yaml".into(),
                "--epsilon".into(),
                "1".into(),
                "-o".into(),
                env.s("lo"),
            ],
            2,
        ),
        case(
            "audit --attacks 1e7",
            vec![
                "audit".into(),
                "--train".into(),
                data.clone(),
                "--holdout".into(),
                env.write("h.csv", PEOPLE),
                "--synthetic".into(),
                env.s("people.csv"),
                "--schema".into(),
                env.s("schema.yaml"),
                "--attacks".into(),
                "10000000".into(),
            ],
            2,
        )
        .says(&["--attacks"])
        .within(10),
        case(
            "audit with the same train and holdout",
            vec![
                "audit".into(),
                "--train".into(),
                data.clone(),
                "--holdout".into(),
                data.clone(),
                "--synthetic".into(),
                env.s("people.csv"),
                "--schema".into(),
                env.s("schema.yaml"),
            ],
            2,
        )
        .says(&["same file"]),
    ];
    battery(&env, cases);
}

#[test]
fn the_ledger_cannot_be_forged_or_spoofed_and_a_closed_pipe_ends_quietly() {
    let env = Env::new();
    let data = env.s("people.csv");
    let ledger = env.p("ledger.jsonl");
    let r = privsynth(&fit_args(&env, &data, &env.s("m.json")).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A forged entry with negative rho and a recomputed hash.
    let entries = privsynth_privacy::ledger::Ledger::new(&ledger).entries().unwrap();
    let mut v = serde_json::to_value(&entries[0]).unwrap();
    v["rho"] = serde_json::json!(-5.0);
    let forged = env.write("forged.jsonl", format!("{v}\n"));
    let policy = env.write("policy.yaml", "default: {epsilon: 3, delta: 1.0e-6}\n");
    let inf_policy = env.write("inf.yaml", "default: {epsilon: .inf, delta: 1.0e-6}\n");
    // The battery's ledger is left alone; each case names its own.
    let with = |a: &[&str]| {
        let mut x = fit_args(&env, &data, &env.s("m2.json"));
        let at = x.iter().position(|s| s == "--ledger").unwrap();
        x.drain(at..at + 2);
        x.extend(a.iter().map(|s| s.to_string()));
        if !a.contains(&"--ledger") {
            x.extend(["--ledger".to_string(), env.s("other.jsonl")]);
        }
        x
    };
    let cases = vec![
        case("a forged ledger refuses the run", with(&["--ledger", &forged]), 3).says(&["TAMPERED"]),
        case(
            "ledger show on a forged ledger",
            vec!["ledger".into(), "show".into(), "--ledger".into(), forged.clone()],
            1,
        )
        .says(&["TAMPERED"]),
        case("a policy of infinite epsilon", with(&["--policy", &inf_policy]), 2).says(&["finite"]),
        case("a ledger that is a folder", with(&["--ledger", path_str(env.dir.path())]), 2),
        case(
            "ledger show under a policy",
            vec![
                "ledger".into(),
                "show".into(),
                "--ledger".into(),
                env.s("ledger.jsonl"),
                "--policy".into(),
                policy.clone(),
            ],
            0,
        ),
    ];
    battery(&env, cases);
    // `ledger show | head -1`: the closed pipe ends the process quietly.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} ledger show --ledger {} | head -c 1 >/dev/null; echo done",
            env!("CARGO_BIN_EXE_privsynth"),
            path_str(&ledger)
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
    assert!(!env.dir.path().join("ledger.jsonl.lock").exists(), "no lock file is left");
}

/// Many processes charge one ledger at once, through different names of the file (the path,
/// a symlink, a hard link, a relative path), under a lifetime cap: the cap holds and the chain
/// verifies.
#[test]
fn concurrent_runs_through_every_name_of_the_ledger_respect_the_cap() {
    let env = Env::new();
    let data = env.s("people.csv");
    let ledger = env.p("ledger.jsonl");
    std::fs::write(&ledger, "").unwrap();
    std::os::unix::fs::symlink(&ledger, env.p("link.jsonl")).unwrap();
    std::fs::hard_link(&ledger, env.p("hard.jsonl")).unwrap();
    std::fs::create_dir(env.p("sub")).unwrap();
    let names = [env.s("ledger.jsonl"), env.s("link.jsonl"), env.s("hard.jsonl"), env.s("sub/../ledger.jsonl")];
    // A cap of epsilon 3 admits a whole number of epsilon-1 runs (zCDP composition).
    let policy = env.write("policy.yaml", "default: {epsilon: 3.0, delta: 1.0e-9}\n");
    let fits = (privsynth_privacy::accountant::rho_for(3.0, 1e-9) / privsynth_privacy::accountant::rho_for(1.0, 1e-9))
        .floor() as usize;
    let exe = env!("CARGO_BIN_EXE_privsynth");
    let children: Vec<_> = (0..12)
        .map(|i| {
            std::process::Command::new(exe)
                .args([
                    "fit",
                    &data,
                    "--schema",
                    &env.s("schema.yaml"),
                    "--epsilon",
                    "1",
                    "--mechanism",
                    "mst",
                    "-o",
                    &env.s(&format!("m{i}.json")),
                    "--ledger",
                    &names[i % 4],
                    "--policy",
                    &policy,
                    "-q",
                ])
                .current_dir(common::root())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> =
        children.into_iter().map(|c| c.wait_with_output().unwrap().status.code().unwrap_or(-1)).collect();
    let admitted = codes.iter().filter(|&&c| c == 0).count();
    assert_eq!(admitted, fits, "exactly the runs the cap allows: {codes:?}");
    assert!(codes.iter().all(|&c| c == 0 || c == 3), "{codes:?}");
    let entries = privsynth_privacy::ledger::Ledger::new(&ledger).entries().unwrap();
    assert_eq!(entries.len(), fits);
    let spent = privsynth_privacy::ledger::Ledger::new(&ledger).spending().unwrap();
    let eps = spent.values().next().unwrap().epsilon_at(1e-9).unwrap();
    assert!(eps <= 3.0 + 1e-9, "spent {eps}");
}

/// What privsynth writes, it reads back: a custom date format and a header with a quote in it
/// survive infer -> synth -> schema check.
#[test]
fn outputs_pass_their_own_schema_check() {
    let env = Env::new();
    let data = env.write("odd.csv", "\"x\"\"y\",when\na,03/04/2020\nb,05/06/2021\na,07/08/2019\nb,01/02/2022\n");
    let schema = env.write(
        "odd.yaml",
        "version: 1\ntables:\n  - name: odd\n    columns:\n      - {name: 'x\"y', type: categorical, domain: {categories: [a, b]}}\n      - {name: when, type: date, format: '%d/%m/%Y', domain: {bounds: ['2015-01-01', '2024-12-31'], granularity: year}}\n",
    );
    let out = env.s("odd-synth.csv");
    let r = privsynth(&[
        "synth",
        &data,
        "--schema",
        &schema,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        &out,
        "--ledger",
        &env.s("ledger.jsonl"),
        "--rows",
        "50",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.split(',').nth(1).is_some_and(|d| d.len() == 10 && d.as_bytes()[2] == b'/')),
        "dates in the column's format:\n{text}"
    );
    let r = privsynth(&["schema", "check", &out, "--schema", &schema]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
