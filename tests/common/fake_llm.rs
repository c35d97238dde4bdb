//! A loopback fake of an OpenAI-compatible server (127.0.0.1, random port) for the LLM stage's
//! tests. It answers `POST /v1/chat/completions` with JSON generated from the request's own
//! JSON Schema (found in the dialect's field: `response_format.json_schema.schema`,
//! `structured_outputs.json`, llama.cpp's `response_format.schema`, or `<response_schema>` tags
//! in the prompt), seeded by the request's `seed` so equal requests get equal answers, and it
//! injects faults on demand. Every request is recorded. Nothing it says is a quality result.
//!
//! For Private Evolution it also answers variation requests (the earlier texts the prompt
//! lists) with the earlier text, each word replaced with probability 0.3 by a random word of
//! its vocabulary, and `POST /v1/embeddings` with letter-frequency vectors.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

/// What the next chat request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// A valid answer.
    None,
    /// HTTP 429 with `Retry-After: s`.
    TooMany(u64),
    /// HTTP 503 "Loading model" with `Retry-After: 1` (llama.cpp while loading).
    Unavailable,
    /// HTTP 500.
    ServerError,
    /// Answer only after this long (the client should time out first).
    Stall(Duration),
    /// Half the answer, `finish_reason: length`.
    Truncated,
    /// Not JSON.
    InvalidJson,
    /// JSON with a key the schema forbids.
    SchemaViolation,
    /// The first enum value replaced by a hallucinated one.
    OutOfDomain,
    /// HTTP 401.
    Unauthorized,
    /// Close the connection without answering.
    Hangup,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
    pub fault: Fault,
    /// The content the fake answered (for 200 answers).
    pub answer: Option<String>,
}

struct State {
    script: Mutex<VecDeque<Fault>>,
    default: Mutex<Fault>,
    log: Mutex<Vec<Recorded>>,
    /// Probability that a generated boolean is true (the check's `plausible`).
    p_true: Mutex<f64>,
    /// Vocabulary of free text and words per fresh text (default: `WORDS`, 2 to 4).
    words: Mutex<(Vec<String>, usize, usize)>,
}

pub struct FakeLlm {
    /// Base URL to pass as --llm-url.
    pub url: String,
    state: Arc<State>,
}

impl FakeLlm {
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let words = (WORDS.iter().map(|w| w.to_string()).collect(), 2, 4);
        let state = Arc::new(State {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Fault::None),
            log: Mutex::new(vec![]),
            p_true: Mutex::new(0.8),
            words: Mutex::new(words),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &s);
                });
            }
        });
        FakeLlm { url: format!("http://127.0.0.1:{port}/v1"), state }
    }

    /// Faults for the next chat requests, in order; then the default.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.script.lock().unwrap().extend(faults);
    }

    pub fn set_default(&self, f: Fault) {
        *self.state.default.lock().unwrap() = f;
    }

    /// Free text from this vocabulary, `min..=max` words per fresh text.
    pub fn set_words(&self, words: &[&str], min: usize, max: usize) {
        *self.state.words.lock().unwrap() = (words.iter().map(|w| w.to_string()).collect(), min, max);
    }

    pub fn set_p_true(&self, p: f64) {
        *self.state.p_true.lock().unwrap() = p;
    }

    /// Every request received so far (models listing included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().unwrap().clone()
    }

    /// The chat requests received so far.
    pub fn chats(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path.ends_with("/chat/completions")).collect()
    }
}

fn handle(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut rec = Recorded {
        at: Instant::now(),
        method: method.clone(),
        path: path.clone(),
        authorization,
        body: body.clone(),
        fault: Fault::None,
        answer: None,
    };
    let mut out = stream;
    if method == "GET" && path.ends_with("/models") {
        state.log.lock().unwrap().push(rec);
        return respond(
            &mut out,
            200,
            &[],
            &json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}).to_string(),
        );
    }
    if method == "POST" && path.ends_with("/embeddings") {
        state.log.lock().unwrap().push(rec);
        let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let inputs: Vec<String> = match req.get("input") {
            Some(Value::Array(a)) => a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect(),
            Some(Value::String(x)) => vec![x.clone()],
            _ => vec![],
        };
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut v = vec![0.0f64; 27];
                for c in t.to_lowercase().chars() {
                    v[if c.is_ascii_lowercase() { (c as u8 - b'a') as usize } else { 26 }] += 1.0;
                }
                json!({"object": "embedding", "index": i, "embedding": v})
            })
            .collect();
        return respond(
            &mut out,
            200,
            &[],
            &json!({"object": "list", "data": data, "model": req.get("model")}).to_string(),
        );
    }
    if !(method == "POST" && path.ends_with("/chat/completions")) {
        state.log.lock().unwrap().push(rec);
        return respond(
            &mut out,
            404,
            &[],
            r#"{"error": {"code": 404, "message": "not found", "type": "not_found_error"}}"#,
        );
    }
    let fault = state.script.lock().unwrap().pop_front().unwrap_or_else(|| state.default.lock().unwrap().clone());
    rec.fault = fault.clone();
    // Recorded on arrival (a stalled request must show even if the client gave up on it).
    let slot = {
        let mut log = state.log.lock().unwrap();
        log.push(rec);
        log.len() - 1
    };
    match &fault {
        Fault::TooMany(s) => {
            return respond(
                &mut out,
                429,
                &[("Retry-After", s.to_string())],
                r#"{"error": {"message": "rate limit reached", "type": "rate_limit"}}"#,
            );
        }
        Fault::Unavailable => {
            return respond(
                &mut out,
                503,
                &[("Retry-After", "1".into())],
                r#"{"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}"#,
            );
        }
        Fault::ServerError => {
            return respond(
                &mut out,
                500,
                &[],
                r#"{"error": {"code": 500, "message": "the server failed", "type": "server_error"}}"#,
            );
        }
        Fault::Unauthorized => {
            return respond(
                &mut out,
                401,
                &[],
                r#"{"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}"#,
            );
        }
        Fault::Stall(d) => std::thread::sleep(*d),
        Fault::Hangup => return Ok(()),
        _ => {}
    }
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (schema, fenced) = find_schema(&req);
    let seed = req.get("seed").and_then(Value::as_u64).unwrap_or(0);
    let words = state.words.lock().unwrap().clone();
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        hallucinate: fault == Fault::OutOfDomain,
        p_true: *state.p_true.lock().unwrap(),
        words,
    };
    let mut instance = g.instance(&schema);
    vary(&req, &schema, &mut instance, &mut g);
    let (content, finish) = match &fault {
        Fault::Truncated => {
            let t = instance.to_string();
            (t.chars().take(t.chars().count() / 2).collect::<String>(), "length")
        }
        Fault::InvalidJson => ("{\"r1\": {\"oops\": ".to_string(), "stop"),
        Fault::SchemaViolation => {
            let mut v = instance;
            if let Value::Object(m) = &mut v {
                m.insert("unexpected".into(), json!(1));
            }
            (v.to_string(), "stop")
        }
        _ if fenced => (format!("Here is the JSON you asked for:\n```json\n{instance}\n```\n"), "stop"),
        _ => (instance.to_string(), "stop"),
    };
    state.log.lock().unwrap()[slot].answer = Some(content.clone());
    let resp = json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
        "model": req.get("model").cloned().unwrap_or(Value::Null), "system_fingerprint": "fake-fp",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    respond(&mut out, 200, &[], &resp.to_string())
}

fn respond(out: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &str) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

/// The schema a request asks for, in any dialect; `true` when it came from the prompt (the
/// answer then goes in a fenced block, as prompt-only servers do).
fn find_schema(req: &Value) -> (Value, bool) {
    for p in ["/response_format/json_schema/schema", "/structured_outputs/json", "/response_format/schema"] {
        if let Some(s) = req.pointer(p) {
            return (s.clone(), false);
        }
    }
    let system = req.pointer("/messages/0/content").and_then(Value::as_str).unwrap_or_default();
    if let (Some(a), Some(b)) = (system.find("<response_schema>"), system.find("</response_schema>"))
        && let Ok(s) = serde_json::from_str(system[a + "<response_schema>".len()..b].trim())
    {
        return (s, true);
    }
    (json!({"type": "object"}), false)
}

/// Header of the earlier texts in a variation prompt (`privsynth::llm::prompt::VARIATION_HEADER`).
const VARIATION_HEADER: &str = "Earlier texts to vary (synthetic, id: text):";

/// Answer a variation request: each record's text columns become its earlier text with each
/// word replaced, with probability 0.3, by a random vocabulary word (within maxLength).
fn vary(req: &Value, schema: &Value, instance: &mut Value, g: &mut Gen) {
    let user = req.pointer("/messages/1/content").and_then(Value::as_str).unwrap_or_default();
    let Some(at) = user.find(VARIATION_HEADER) else { return };
    let Ok(Value::Object(parents)) = serde_json::from_str::<Value>(user[at + VARIATION_HEADER.len()..].trim()) else {
        return;
    };
    for (id, parent) in parents {
        let Some(parent) = parent.as_str() else { continue };
        let Some(Value::Object(rec)) = instance.get_mut(&id) else { continue };
        for (col, v) in rec.iter_mut() {
            if !v.is_string() {
                continue;
            }
            let max = schema
                .pointer(&format!("/properties/{id}/properties/{col}/maxLength"))
                .and_then(Value::as_u64)
                .unwrap_or(200) as usize;
            let words: Vec<String> = parent
                .split_whitespace()
                .map(|w| {
                    if g.rng.random::<f64>() < 0.3 {
                        g.words.0[g.rng.random_range(0..g.words.0.len())].clone()
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            let mut t = words.join(" ");
            t.truncate(max.max(1));
            *v = json!(t.trim().to_string());
        }
    }
}

const WORDS: [&str; 16] = [
    "quiet", "river", "north", "clinic", "amber", "follow", "stone", "valley", "routine", "visit", "meadow", "review",
    "harbor", "cedar", "plain", "summit",
];

/// Seeded generator of instances of the JSON Schema subset privsynth emits.
struct Gen {
    rng: StdRng,
    hallucinate: bool,
    p_true: f64,
    words: (Vec<String>, usize, usize),
}

impl Gen {
    fn instance(&mut self, s: &Value) -> Value {
        let Some(o) = s.as_object() else { return Value::Null };
        if let Some(Value::Array(b)) = o.get("anyOf") {
            let i = self.rng.random_range(0..b.len().max(1));
            return b.get(i).map_or(Value::Null, |x| self.instance(x));
        }
        if let Some(c) = o.get("const") {
            return c.clone();
        }
        if let Some(Value::Array(e)) = o.get("enum") {
            if self.hallucinate {
                self.hallucinate = false;
                return json!("HALLUCINATED-VALUE");
            }
            return e[self.rng.random_range(0..e.len())].clone();
        }
        let t = match o.get("type") {
            Some(Value::String(t)) => t.clone(),
            // Mostly the first non-null type; null now and then.
            Some(Value::Array(ts)) => {
                let non_null: Vec<&str> = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
                if non_null.is_empty() || (ts.len() > non_null.len() && self.rng.random::<f64>() < 0.1) {
                    "null".into()
                } else {
                    non_null[0].to_string()
                }
            }
            _ if o.contains_key("properties") => "object".into(),
            _ => "string".into(),
        };
        match t.as_str() {
            "object" => {
                let mut m = Map::new();
                if let Some(Value::Object(p)) = o.get("properties") {
                    for (k, ps) in p {
                        m.insert(k.clone(), self.instance(ps));
                    }
                }
                // A min above its max makes most generated rules nonsense; keep them ordered.
                let key =
                    |v: &Value| v.as_f64().map(|f| format!("{f:020.3}")).or_else(|| v.as_str().map(str::to_owned));
                if let (Some(a), Some(b)) = (m.get("min").and_then(key), m.get("max").and_then(key))
                    && a > b
                {
                    let (lo, hi) = (m["max"].clone(), m["min"].clone());
                    m.insert("min".into(), lo);
                    m.insert("max".into(), hi);
                }
                Value::Object(m)
            }
            "array" => {
                // At least one item, at most six unless the schema asks for more.
                let min = o.get("minItems").and_then(Value::as_u64).unwrap_or(0).max(1);
                let max = o.get("maxItems").and_then(Value::as_u64).unwrap_or(6).min(min.max(6)).max(min);
                let n = self.rng.random_range(min..=max);
                let item = o.get("items").cloned().unwrap_or(Value::Null);
                Value::Array((0..n).map(|_| self.instance(&item)).collect())
            }
            "boolean" => json!(self.rng.random::<f64>() < self.p_true),
            "integer" | "number" => {
                let lo = o.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
                let hi = o.get("maximum").and_then(Value::as_f64).unwrap_or(lo + 100.0);
                json!(self.rng.random_range(lo as i64..=hi as i64))
            }
            "null" => Value::Null,
            _ => match o.get("format").and_then(Value::as_str) {
                Some("date") => json!(format!(
                    "{}-{:02}-{:02}",
                    self.rng.random_range(1950..2025),
                    self.rng.random_range(1..13),
                    self.rng.random_range(1..29)
                )),
                Some("date-time") => json!(format!(
                    "{}-{:02}-{:02}T12:00:00",
                    self.rng.random_range(1950..2025),
                    self.rng.random_range(1..13),
                    self.rng.random_range(1..29)
                )),
                _ => {
                    let max = o.get("maxLength").and_then(Value::as_u64).unwrap_or(60) as usize;
                    let (vocab, lo, hi) = &self.words;
                    let n = self.rng.random_range(*lo..=*hi);
                    let mut s = (0..n)
                        .map(|_| vocab[self.rng.random_range(0..vocab.len())].as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    s.truncate(max.max(1));
                    json!(s.trim().to_string())
                }
            },
        }
    }
}
