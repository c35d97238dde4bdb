//! Every kind of bad input gets a clear error naming file, row and column, and exit code 2 —
//! never a panic.

mod common;
use common::{path_str, privsynth};

use std::path::PathBuf;

struct Case {
    _dir: tempfile::TempDir,
    data: PathBuf,
    schema: PathBuf,
}

/// A data file with the given bytes and a schema for columns a (integer 0..9), b (category x/y).
fn case(name: &str, bytes: &[u8], schema: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(name);
    std::fs::write(&data, bytes).unwrap();
    let s = dir.path().join("schema.yaml");
    std::fs::write(&s, schema).unwrap();
    Case { data, schema: s, _dir: dir }
}

const AB: &str = "version: 1\ntables: [{name: t, columns: [\
    {name: a, type: integer, domain: {bounds: [0, 9]}},\
    {name: b, type: categorical, domain: {categories: [x, y]}}]}]";

/// Run `schema check` and `schema infer` on a case; both must fail with exit 2 and all needles.
fn both_fail(c: &Case, needles: &[&str]) {
    for args in [
        vec!["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)],
        vec!["schema", "infer", path_str(&c.data)],
    ] {
        let r = privsynth(&args);
        assert_eq!(r.code, 2, "{args:?} should exit 2; stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        let file_name = c.data.file_name().unwrap().to_str().unwrap();
        assert!(r.stderr.contains(file_name), "{args:?}: the message names the file:\n{}", r.stderr);
        for n in needles {
            assert!(r.stderr.contains(n), "{args:?}: missing {n:?} in:\n{}", r.stderr);
        }
        assert!(r.stderr.lines().count() <= 3, "one short paragraph:\n{}", r.stderr);
    }
}

#[test]
fn missing_file() {
    let c = case("x.csv", b"", AB);
    let gone = c.data.with_file_name("nope.csv");
    let r = privsynth(&["schema", "check", path_str(&gone), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nope.csv: does not exist"), "{}", r.stderr);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", "no/such/schema.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no/such/schema.yaml"), "{}", r.stderr);
}

#[test]
fn empty_file() {
    both_fail(&case("empty.csv", b"", AB), &["is empty"]);
}

#[test]
fn header_only_file() {
    both_fail(&case("header.csv", b"a,b\n", AB), &["no data rows"]);
}

#[test]
fn wrong_delimiter() {
    both_fail(&case("semi.csv", b"a;b\n1;x\n2;y\n", AB), &["line 1", "looks delimited by ';'", "--delimiter"]);
    // ...and the suggested flag works.
    let c = case("semi.csv", b"a;b\n1;x\n2;y\n", AB);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema), "--delimiter", ";"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn ragged_rows() {
    both_fail(
        &case("ragged.csv", b"a,b\n1,x\n2,y,extra\n3,x\n", AB),
        &["row 2 (line 3)", "3 field(s)", "header has 2"],
    );
    both_fail(&case("short.csv", b"a,b\n1,x\n2,y\n3\n", AB), &["row 3 (line 4)", "1 field(s)"]);
    both_fail(&case("quote.csv", b"a,b\n1,\"x\n2,y\n", AB), &["quoted field that is never closed", "line 2"]);
}

#[test]
fn non_utf8_bytes() {
    both_fail(&case("latin1.csv", b"a,b\n1,x\n2,caf\xe9\n", AB), &["line 3", "not valid UTF-8", "iconv"]);
}

#[test]
fn column_in_schema_absent_from_file() {
    let c = case("cols.csv", b"a,c\n1,x\n", AB);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("column \"b\"")
            && r.stderr.contains("absent from the file")
            && r.stderr.contains("The file has: a, c"),
        "{}",
        r.stderr
    );
}

#[test]
fn duplicated_column_names() {
    both_fail(&case("dup.csv", b"a,b,a\n1,x,2\n", AB), &["column \"a\"", "same name", "columns 1 and 3"]);
}

#[test]
fn wrong_types_are_findings_with_row_and_column() {
    let c = case("types.csv", b"a,b\n1,x\nseven,y\n3,z\n", AB);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("types.csv, row 2 (line 3), column \"a\": value \"seven\" is not of the column's type; expected an integer in [0, 9]"), "{}", r.stdout);
    assert!(r.stdout.contains("types.csv, row 3 (line 4), column \"b\": value \"z\" is outside the declared domain; expected one of [x, y]"), "{}", r.stdout);
}

#[test]
fn wrong_types_drop_their_row_or_stop_a_strict_fit_without_echoing_the_value() {
    use privsynth::{codec::TableCodec, data, schema::Schema};
    // The default policy (drop) leaves the row out: the fit stays total.
    let c = case("types.csv", b"a,b\n1,x\nseven,y\n3,y\n", AB);
    let s = Schema::load(&c.schema).unwrap();
    let t = s.table(None).unwrap();
    let raw = data::read_for_table(&c.data, t).unwrap();
    let enc = TableCodec::new(t).unwrap().encode(&raw).unwrap();
    assert_eq!(enc.rows(), 2);
    assert_eq!(enc.codes(0), [1, 3]);
    // The strict policy (error) stops at the cell, naming file, row and column, not the value.
    let strict = AB.replace("tables: [{name: t,", "tables: [{name: t, out_of_domain: error,");
    let c = case("types.csv", b"a,b\n1,x\nseven,y\n", &strict);
    let s = Schema::load(&c.schema).unwrap();
    let t = s.table(None).unwrap();
    let raw = data::read_for_table(&c.data, t).unwrap();
    let e = TableCodec::new(t).unwrap().encode(&raw).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("types.csv, row 2 (line 3), column \"a\": the value is not an integer in [0, 9]")
            && msg.contains("`error`"),
        "{msg}"
    );
    assert!(!msg.contains("seven"), "{msg}");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn all_null_columns() {
    // Declared nullable: a finding (nothing to model), exit 1.
    let nullable = AB.replace("{name: b, type: categorical,", "{name: b, type: categorical, nullable: true,");
    let c = case("nulls.csv", b"a,b\n1,\n2,\n3,\n", &nullable);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("every value is missing"), "{}", r.stdout);
    // Not nullable: every row is a finding, the first ones located.
    let c = case("nulls.csv", b"a,b\n1,\n2,\n3,\n", AB);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains(
            "nulls.csv, row 1 (line 2), column \"b\": value \"\" is missing in a column that is not nullable"
        ),
        "{}",
        r.stdout
    );
    // Infer says so instead of guessing a type.
    let r = privsynth(&["schema", "infer", path_str(&c.data)]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("column \"b\": every value is missing"), "{}", r.stderr);
}

#[test]
fn ten_thousand_categories() {
    let mut text = String::from("a,code\n");
    for i in 0..10_000 {
        text.push_str(&format!("{},C{i:05}x{}\n", i % 10, i % 7));
    }
    for i in 0..10_000 {
        text.push_str(&format!("{},C{i:05}x{}\n", i % 10, i % 7));
    }
    let cats: Vec<String> = (0..10_000).map(|i| format!("C{i:05}x{}", i % 7)).collect();
    let schema = format!(
        "version: 1\ntables: [{{name: t, columns: [{{name: a, type: integer, domain: {{bounds: [0, 9]}}}}, \
         {{name: code, type: categorical, domain: {{categories: [{}]}}}}]}}]",
        cats.join(", ")
    );
    let c = case("codes.csv", text.as_bytes(), &schema);
    // A declared 10k-category domain is refused with the way out.
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("column \"code\"") && r.stderr.contains("10000 codes") && r.stderr.contains("code hierarchy"),
        "{}",
        r.stderr
    );
    // Infer does not propose it as a category list.
    let r = privsynth(&["schema", "infer", path_str(&c.data)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("column \"code\": 10000 distinct values: too many"), "{}", r.stderr);
    assert!(r.stdout.contains("name: code\n    type: text"), "{}", r.stdout);
}

#[test]
fn broken_schema_files() {
    let c = case("ok.csv", b"a,b\n1,x\n", "version: 1\ntables: [{name: t, columns: [{name: a, type: integer}]}]");
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("schema.yaml") && r.stderr.contains("column \"a\": a integer column needs"),
        "{}",
        r.stderr
    );
    let c = case(
        "ok.csv",
        b"a,b\n1,x\n",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: integer, domain: {bounds: [0, 9]}}]\n",
    );
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not a valid schema") && r.stderr.contains("line"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let r = privsynth(&["schema", "check", "data/adult/adult.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--schema"), "{}", r.stderr);
    let r = privsynth(&["schema", "infer", "data/adult/adult.csv", "--delimiter", "ab"]);
    assert_eq!(r.code, 2);
    let r =
        privsynth(&["schema", "check", "data/adult/adult.csv", "--schema", "schemas/adult.yaml", "--table", "nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no table \"nope\""), "{}", r.stderr);
}

#[test]
fn outputs_are_atomic() {
    // A failed run leaves no output file behind (and no temp file).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("schema.yaml");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"a\": -1}").unwrap();
    let r = privsynth(&["schema", "from-domain", path_str(&bad), "-o", path_str(&out)]);
    assert_eq!(r.code, 2);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bad.json")]);
}

#[test]
fn blank_lines() {
    both_fail(&case("blank.csv", b"a,b\n1,x\n\n2,y\n", AB), &["row 2 (line 3)", "is blank"]);
    // Trailing blank lines are not rows.
    let c = case("trail.csv", b"a,b\n1,x\n2,y\n\n\n", AB);
    let r = privsynth(&["schema", "check", path_str(&c.data), "--schema", path_str(&c.schema), "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("\"rows\": 2"), "{}", r.stdout);
}
