//! One client for any OpenAI-compatible server (vLLM, llama.cpp `llama-server`, Ollama, hosted
//! APIs): `POST {base}/chat/completions` with the request's JSON Schema in each backend's
//! dialect, over blocking HTTP with a bounded pool of threads.
//!
//! Robustness, in order of what a run meets:
//! - connection errors, timeouts, 408 and 5xx are retried with exponential backoff and jitter,
//!   honouring `Retry-After`;
//! - 429 goes to an AIMD limiter: the number of requests in flight halves and every worker
//!   pauses for `Retry-After` (or the backoff), then grows back by one per limit of successes;
//! - 401/403/404 stop at once with what to fix; a `Retry-After` beyond two minutes (a quota)
//!   stops too;
//! - every answer is validated ([`super::validate`]); a rejected one is asked again with the next
//!   seed, a few times, and so is a request whose retries all met HTTP 500;
//! - when more than half of the last 20 answers failed (after at least 20), the run stops with
//!   the server and the commonest reason.
//!
//! Answers are cached by request hash ([`super::cache`]); every exchange can be written to a
//! transcript. Counters of requests, cache hits, accepted, rejected and retried answers (by
//! reason) make the run summary.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::RngExt;
use serde_json::{Value, json};

mod dialect;
mod limiter;

pub use dialect::Dialect;
use limiter::{Limiter, lock};

use super::cache::{self, Cache, Entry};
use super::prompt::ChatRequest;
use super::validate::{self, Reject, reason};
use crate::error::{Error, Result};

/// Where to send requests.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL to which `/chat/completions` is appended (e.g. `http://127.0.0.1:8080/v1`).
    pub base_url: String,
    pub model: String,
    /// Sent as a bearer token; never printed, cached or written to a transcript.
    pub api_key: Option<String>,
    pub dialect: Dialect,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dialect", &self.dialect)
            .finish()
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most requests in flight.
    pub concurrency: usize,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries of one request after connection errors, timeouts, 408 and 5xx.
    pub max_retries: u32,
    /// Retries of one request after 429.
    pub max_throttles: u32,
    /// Times a rejected answer is asked again (with the next seed).
    pub restarts: u32,
    /// First backoff; doubles per retry (with jitter), at most 30 s.
    pub backoff: Duration,
    pub cache: Option<PathBuf>,
    pub transcript: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 4,
            timeout: Duration::from_secs(120),
            max_retries: 4,
            max_throttles: 8,
            restarts: 2,
            backoff: Duration::from_millis(500),
            cache: None,
            transcript: None,
        }
    }
}

/// Window of the error-rate stop, and the answers needed before it applies.
const ERROR_WINDOW: usize = 20;
/// Longest `Retry-After` honoured; a longer one (a quota) stops the run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Run counters for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// HTTP requests sent (retries included).
    pub requests: usize,
    pub cache_hits: usize,
    pub accepted: usize,
    pub rejected: BTreeMap<String, usize>,
    pub retried: BTreeMap<String, usize>,
    /// Requests given up after their retries.
    pub failed: BTreeMap<String, usize>,
    /// Lowest concurrency the limiter reached.
    pub min_limit: usize,
    /// The server's message of the last request it refused or failed (HTTP 4xx other than
    /// 401/403/404/429, and 408/5xx), for the summary when requests were given up: a refusal
    /// that repeats (a prompt longer than the server's context, an unsupported field) is
    /// otherwise only in the transcript.
    pub last_refusal: Option<String>,
}

/// The server's answer to one request.
struct Answer {
    content: String,
    finish_reason: Option<String>,
    model: Option<String>,
    system_fingerprint: Option<String>,
}

/// How sending one request ended, short of an answer.
enum Failure {
    /// Stop the run.
    Fatal(Error),
    /// This request is given up (after its retries); the run goes on.
    GaveUp(&'static str),
}

pub struct Client {
    endpoint: Endpoint,
    opts: Options,
    agent: ureq::Agent,
    limiter: Limiter,
    cache: Option<Cache>,
    stats: Mutex<Stats>,
    transcript: Mutex<Vec<Value>>,
    /// Recent outcomes for the error-rate stop: `None` = accepted, `Some(reason)` = failed.
    recent: Mutex<(usize, VecDeque<Option<&'static str>>)>,
    stopped: AtomicBool,
    /// Show a progress bar on a terminal.
    progress: AtomicBool,
}

/// Parse `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let t = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (t.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// The message of an OpenAI-style error body, shortened.
fn server_message(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| v.pointer("/error/message").or_else(|| v.get("error")).or_else(|| v.get("message")))
        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
        .unwrap_or_else(|| body.trim().to_string());
    let short: String = msg.chars().take(300).collect();
    if short.is_empty() { "(no message)".into() } else { short }
}

/// A seed derived from the request, so equal requests are equal (and cache hits) across runs.
fn seed_of(req: &ChatRequest) -> u64 {
    let h = cache::request_hash("seed", &json!([req.system(), req.user(), req.schema()]));
    u64::from_str_radix(&h[..8], 16).unwrap_or(0) & 0x7fff_ffff
}

impl Client {
    pub fn new(endpoint: Endpoint, opts: Options) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .timeout_connect(Some(opts.timeout.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .user_agent(concat!("privsynth/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let cache = opts.cache.as_deref().map(Cache::new);
        let stats = Stats { min_limit: opts.concurrency, ..Default::default() };
        Client {
            limiter: Limiter::new(opts.concurrency.max(1)),
            endpoint,
            opts,
            agent,
            cache,
            stats: Mutex::new(stats),
            transcript: Mutex::new(vec![]),
            recent: Mutex::new((0, VecDeque::new())),
            stopped: AtomicBool::new(false),
            progress: AtomicBool::new(false),
        }
    }

    /// Show a progress bar of jobs while [`Client::run_all`] works (only on a terminal).
    pub fn show_progress(&self, on: bool) {
        self.progress.store(on, Ordering::SeqCst);
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn stats(&self) -> Stats {
        let mut s = lock(&self.stats).clone();
        s.min_limit = lock(&self.limiter.state).min_seen;
        s
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base_url.trim_end_matches('/'))
    }

    fn where_(&self) -> String {
        format!("the LLM server at {} (model {:?})", self.endpoint.base_url, self.endpoint.model)
    }

    /// Check the server answers before any budget is spent: `GET {base}/models`. Unreachable
    /// servers and refused keys are errors; a server without the endpoint is only noted.
    pub fn preflight(&self) -> Result<Option<String>> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.opts.timeout.min(Duration::from_secs(15))))
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(&self.url("/models"));
        if let Some(k) = &self.endpoint.api_key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        match req.call() {
            Err(e) => Err(Error::Usage(format!(
                "cannot reach {}: {e}. Start the server or fix --llm-url / PRIVSYNTH_LLM_URL (no privacy budget was spent).",
                self.where_()
            ))),
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body = r.body_mut().read_to_string().unwrap_or_default();
                match status {
                    401 | 403 => Err(Error::Usage(format!(
                        "{} refused the API key (HTTP {status}: {}); set PRIVSYNTH_LLM_API_KEY (no privacy budget was spent).",
                        self.where_(),
                        server_message(&body)
                    ))),
                    200 => {
                        let ids: Vec<String> = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
                            .collect();
                        Ok((!ids.is_empty() && !ids.contains(&self.endpoint.model)).then(|| {
                            format!(
                                "note: model {:?} is not among the models {} lists ({}); sending anyway",
                                self.endpoint.model,
                                self.endpoint.base_url,
                                ids.join(", ")
                            )
                        }))
                    }
                    _ => Ok(Some(format!(
                        "note: {} answered HTTP {status} to GET /models; continuing (the URL should be the base that /chat/completions is appended to, e.g. http://127.0.0.1:8080/v1)",
                        self.endpoint.base_url
                    ))),
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.backoff.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
        let d = base.min(30.0);
        // Equal jitter: half fixed, half random, so workers that failed together spread out.
        Duration::from_secs_f64(d / 2.0 + rand::rng().random::<f64>() * d / 2.0)
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }

    fn log(&self, entry: Value) {
        if self.opts.transcript.is_some() {
            lock(&self.transcript).push(entry);
        }
    }

    /// Send one body, retrying what is worth retrying.
    fn send(&self, body: &Value) -> std::result::Result<Answer, Failure> {
        let text = body.to_string();
        let url = self.url("/chat/completions");
        let (mut retries, mut throttles) = (0u32, 0u32);
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return Err(Failure::GaveUp("stopped"));
            }
            let result = {
                let _permit = self.limiter.acquire();
                self.count(|s| s.requests += 1);
                let mut req = self.agent.post(&url).header("Content-Type", "application/json");
                if let Some(k) = &self.endpoint.api_key {
                    req = req.header("Authorization", format!("Bearer {k}"));
                }
                req.send(text.as_str()).and_then(|mut r| {
                    let status = r.status().as_u16();
                    let retry_after =
                        r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                    let body = r.body_mut().with_config().limit(64 << 20).read_to_string()?;
                    Ok((status, retry_after, body))
                })
            };
            let (why, wait): (&'static str, Option<Duration>) = match result {
                Ok((200, _, body)) => {
                    self.limiter.success();
                    return Ok(parse_answer(&body));
                }
                Ok((429, ra, body)) => {
                    throttles += 1;
                    let pause = ra.unwrap_or_else(|| self.backoff(throttles));
                    if pause > MAX_RETRY_AFTER {
                        return Err(Failure::Fatal(Error::Usage(format!(
                            "{} asked to wait {:.0} s before retrying (HTTP 429: {}); a rate limit or quota that long stops the run. Retry later or lower --llm-concurrency.",
                            self.where_(),
                            pause.as_secs_f64(),
                            server_message(&body)
                        ))));
                    }
                    self.limiter.throttle(pause);
                    if throttles > self.opts.max_throttles {
                        self.count(|s| *s.failed.entry("http_429".into()).or_default() += 1);
                        return Err(Failure::GaveUp("http_429"));
                    }
                    self.count(|s| *s.retried.entry("http_429".into()).or_default() += 1);
                    self.log(json!({"event": "retry", "reason": "http_429", "retry_after_s": pause.as_secs_f64(), "concurrency_limit": self.limiter.limit()}));
                    // The limiter's pause makes this worker (and every other) wait.
                    continue;
                }
                Ok((status @ (401 | 403), _, body)) => {
                    return Err(Failure::Fatal(Error::Usage(format!(
                        "{} refused the request (HTTP {status}: {}); check PRIVSYNTH_LLM_API_KEY.",
                        self.where_(),
                        server_message(&body)
                    ))));
                }
                Ok((404, _, body)) => {
                    return Err(Failure::Fatal(Error::Usage(format!(
                        "{} answered HTTP 404 to POST {url}: {}. Check --llm-url (the base that /chat/completions is appended to, usually ending in /v1) and --llm-model.",
                        self.where_(),
                        server_message(&body)
                    ))));
                }
                Ok((status, ra, body)) if status == 408 || status >= 500 => {
                    let msg = server_message(&body);
                    self.count(|s| s.last_refusal = Some(format!("HTTP {status}: {msg}")));
                    (http_reason(status), ra)
                }
                Ok((status, _, body)) => {
                    // Other 4xx: this request is malformed for the server; retrying will not help.
                    let why = if status == 400 { "http_400" } else { "http_4xx" };
                    self.count(|s| *s.failed.entry(why.into()).or_default() += 1);
                    let msg = server_message(&body);
                    self.count(|s| s.last_refusal = Some(format!("HTTP {status}: {msg}")));
                    self.log(json!({"event": "failed", "reason": why, "status": status, "message": msg}));
                    return Err(Failure::GaveUp(why));
                }
                Err(ureq::Error::Timeout(_)) => ("timeout", None),
                Err(ureq::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
                {
                    ("timeout", None)
                }
                Err(
                    ureq::Error::Io(_)
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::HostNotFound
                    | ureq::Error::Protocol(_),
                ) => ("connection", None),
                Err(e) => return Err(Failure::Fatal(Error::Usage(format!("cannot send to {}: {e}", self.where_())))),
            };
            retries += 1;
            if retries > self.opts.max_retries {
                self.count(|s| *s.failed.entry(why.into()).or_default() += 1);
                self.log(json!({"event": "failed", "reason": why, "attempts": retries}));
                if why == "connection" {
                    return Err(Failure::Fatal(Error::Usage(format!(
                        "lost the connection to {} ({} attempts failed); is the server still running?",
                        self.where_(),
                        retries
                    ))));
                }
                return Err(Failure::GaveUp(why));
            }
            self.count(|s| *s.retried.entry(why.into()).or_default() += 1);
            let pause = wait.filter(|w| *w <= MAX_RETRY_AFTER).unwrap_or_else(|| self.backoff(retries));
            self.log(json!({"event": "retry", "reason": why, "wait_s": pause.as_secs_f64()}));
            std::thread::sleep(pause);
        }
    }

    /// Record an answer's outcome; stop when sustained failures make the run pointless.
    fn outcome(&self, failed: Option<&'static str>) -> Result<()> {
        let mut r = lock(&self.recent);
        r.0 += 1;
        r.1.push_back(failed);
        if r.1.len() > ERROR_WINDOW {
            r.1.pop_front();
        }
        let fails: Vec<&str> = r.1.iter().flatten().copied().collect();
        if r.0 >= ERROR_WINDOW && fails.len() * 2 > r.1.len() {
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for f in &fails {
                *by.entry(f).or_default() += 1;
            }
            let (top, n) = by.iter().max_by_key(|x| *x.1).map(|(k, v)| (*k, *v)).unwrap_or(("unknown", 0));
            let hint = match top {
                reason::INVALID_JSON | reason::SCHEMA | reason::OUT_OF_DOMAIN | reason::EMPTY => {
                    "the server may not enforce structured output for this model: try another --llm-dialect (prompt-only works without enforcement) or a model that follows JSON schemas"
                }
                reason::TRUNCATED => "answers hit the token limit: lower --llm-batch or --llm-max-chars",
                "timeout" => "raise --llm-timeout or lower --llm-concurrency / --llm-batch",
                _ => "see the transcript (--llm-transcript) for the server's answers",
            };
            self.stopped.store(true, Ordering::SeqCst);
            return Err(Error::Usage(format!(
                "stopping the LLM stage: {} of the last {} answers from {} failed; the commonest reason is {top} ({n}). Hint: {hint}.",
                fails.len(),
                r.1.len(),
                self.where_()
            )));
        }
        Ok(())
    }

    /// Ask `req` and judge the answer with `accept` (after the envelope check). A rejected answer
    /// is asked again with the next seed, up to `restarts` times. `Ok(None)`: given up (the run
    /// goes on); `Err`: stop the run.
    pub fn ask<T>(
        &self,
        req: &ChatRequest,
        accept: impl Fn(&Value) -> std::result::Result<T, Reject>,
    ) -> Result<Option<T>> {
        let seed0 = seed_of(req);
        for attempt in 0..=self.opts.restarts {
            if self.stopped.load(Ordering::SeqCst) {
                return Err(Error::Usage("the LLM stage was stopped".into()));
            }
            let body = self.endpoint.dialect.body(&self.endpoint.model, req, seed0 + attempt as u64);
            let key = cache::request_hash("/chat/completions", &body);
            let cached = self.cache.as_ref().and_then(|c| c.get(&key));
            let (answer, source) = match cached {
                Some(e) => {
                    self.count(|s| s.cache_hits += 1);
                    (
                        Answer {
                            content: e.content,
                            finish_reason: e.finish_reason,
                            model: e.model,
                            system_fingerprint: e.system_fingerprint,
                        },
                        "cache",
                    )
                }
                None => match self.send(&body) {
                    Ok(a) => {
                        if let Some(c) = &self.cache {
                            let entry = Entry {
                                key: key.clone(),
                                content: a.content.clone(),
                                finish_reason: a.finish_reason.clone(),
                                model: a.model.clone(),
                                system_fingerprint: a.system_fingerprint.clone(),
                            };
                            c.put(&entry)?;
                        }
                        (a, "server")
                    }
                    Err(Failure::Fatal(e)) => {
                        self.stopped.store(true, Ordering::SeqCst);
                        self.log(json!({"purpose": req.purpose().name(), "request_hash": key, "attempt": attempt, "request": body, "error": e.to_string()}));
                        return Err(e);
                    }
                    Err(Failure::GaveUp("stopped")) => return Err(Error::Usage("the LLM stage was stopped".into())),
                    Err(Failure::GaveUp(why)) => {
                        self.log(json!({"purpose": req.purpose().name(), "request_hash": key, "attempt": attempt, "request": body, "verdict": "failed", "reason": why}));
                        self.outcome(Some(why))?;
                        // A server error on every retry of the same body may come from what
                        // this seed generates (llama-server answers 500 when its chat parser
                        // cannot read the model's output): the next seed may pass.
                        if why == "http_500" && attempt < self.opts.restarts {
                            continue;
                        }
                        return Ok(None);
                    }
                },
            };
            let verdict = if answer.finish_reason.as_deref() == Some("length") {
                Err(Reject::new(reason::TRUNCATED, "the answer hit the token limit (finish_reason: length)"))
            } else if answer.finish_reason.as_deref() == Some("bad_response") {
                Err(Reject::new(reason::BAD_RESPONSE, answer.content.clone()))
            } else {
                validate::extract_json(&answer.content).and_then(|v| {
                    validate::validate(req.envelope(), &v)?;
                    accept(&v)
                })
            };
            let (tag, why, detail) = match &verdict {
                Ok(_) => ("accepted", None, None),
                Err(r) => ("rejected", Some(r.reason), Some(r.detail.clone())),
            };
            self.log(json!({
                "purpose": req.purpose().name(), "request_hash": key, "attempt": attempt, "source": source,
                "request": body, "answer": answer.content, "finish_reason": answer.finish_reason,
                "model": answer.model, "system_fingerprint": answer.system_fingerprint,
                "verdict": tag, "reason": why, "detail": detail,
            }));
            match verdict {
                Ok(t) => {
                    self.count(|s| s.accepted += 1);
                    self.outcome(None)?;
                    return Ok(Some(t));
                }
                Err(r) => {
                    self.count(|s| *s.rejected.entry(r.reason.into()).or_default() += 1);
                    self.outcome(Some(r.reason))?;
                }
            }
        }
        Ok(None)
    }

    /// Run `f` on every job with at most `concurrency` at once; results in job order. The first
    /// error stops the others.
    pub fn run_all<J: Send, T: Send>(
        &self,
        what: &str,
        jobs: Vec<J>,
        f: impl Fn(J) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let n = jobs.len();
        use std::io::IsTerminal;
        let bar = if self.progress.load(Ordering::SeqCst) && std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(n as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} batches [{elapsed}<{eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(format!("LLM {what}"));
        let queue = Mutex::new(jobs.into_iter().enumerate().collect::<VecDeque<_>>());
        let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..self.opts.concurrency.max(1).min(n) {
                s.spawn(|| {
                    loop {
                        if self.stopped.load(Ordering::SeqCst) && lock(&first_error).is_some() {
                            break;
                        }
                        let Some((i, job)) = lock(&queue).pop_front() else { break };
                        let r = f(job);
                        bar.inc(1);
                        match r {
                            Ok(t) => lock(&results)[i] = Some(t),
                            Err(e) => {
                                self.stopped.store(true, Ordering::SeqCst);
                                let mut fe = lock(&first_error);
                                // Keep the cause, not the echoes of the stop in other workers.
                                if fe.is_none()
                                    || fe.as_ref().is_some_and(|x| x.to_string() == "the LLM stage was stopped")
                                {
                                    *fe = Some(e);
                                }
                                break;
                            }
                        }
                    }
                });
            }
        });
        bar.finish_and_clear();
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|r| r.ok_or_else(|| Error::Internal("an LLM job produced no result".into())))
            .collect()
    }

    /// The counters as summary lines.
    pub fn summary(&self) -> String {
        let s = self.stats();
        let list = |m: &BTreeMap<String, usize>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            }
        };
        let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
        // llama-server: "request (N tokens) exceeds the available context size" (400) for one
        // prompt longer than a slot's context; "Context size has been exceeded" (500) when the
        // slots' prompts together overflow a KV cache they share (--kv-unified).
        // Shown when requests were given up: a retried error that then succeeded needs no fix.
        let refusal = match s.last_refusal.as_ref().filter(|_| !s.failed.is_empty()) {
            Some(m) if m.contains("exceeds the available context size") => {
                format!(
                    "; last server error: {m} (lower --llm-batch, or start the server with a larger context per slot, llama-server -c)"
                )
            }
            Some(m) if m.contains("Context size has been exceeded") => {
                format!(
                    "; last server error: {m} (the prompts in flight overflow the server's context: lower --llm-concurrency or --llm-batch, or raise llama-server -c)"
                )
            }
            Some(m) => format!("; last server error: {m}"),
            None => String::new(),
        };
        format!(
            "llm: {} request(s) to {} (model {}, dialect {}), {} cache hit(s); answers: {} accepted, {} rejected ({}); retried: {} ({}); given up: {} ({}); lowest concurrency {}{refusal}",
            s.requests,
            self.endpoint.base_url,
            self.endpoint.model,
            self.endpoint.dialect.name(),
            s.cache_hits,
            s.accepted,
            total(&s.rejected),
            list(&s.rejected),
            total(&s.retried),
            list(&s.retried),
            total(&s.failed),
            list(&s.failed),
            s.min_limit,
        )
    }

    /// Write the transcript (JSON lines, atomically), if one was asked for.
    pub fn write_transcript(&self) -> Result<()> {
        let Some(path) = &self.opts.transcript else { return Ok(()) };
        let entries = lock(&self.transcript);
        let mut text = String::new();
        for e in entries.iter() {
            text += &e.to_string();
            text.push('\n');
        }
        crate::data::write_atomic(path, |f| std::io::Write::write_all(f, text.as_bytes()))
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        408 => "http_408",
        500 => "http_500",
        502 => "http_502",
        503 => "http_503",
        504 => "http_504",
        _ => "http_5xx",
    }
}

/// Read an OpenAI chat-completion body. A body that is not one becomes an answer whose
/// finish_reason is `bad_response` (rejected, asked again).
fn parse_answer(body: &str) -> Answer {
    let bad = |why: &str| Answer {
        content: why.to_string(),
        finish_reason: Some("bad_response".into()),
        model: None,
        system_fingerprint: None,
    };
    let Ok(v) = serde_json::from_str::<Value>(body) else { return bad("the response body is not JSON") };
    let Some(choice) = v.pointer("/choices/0") else { return bad("the response has no choices") };
    let content = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    Answer {
        content,
        finish_reason: choice.get("finish_reason").and_then(Value::as_str).map(str::to_owned),
        model: v.get("model").and_then(Value::as_str).map(str::to_owned),
        system_fingerprint: v.get("system_fingerprint").and_then(Value::as_str).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date means now");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn answers_are_read_from_openai_bodies() {
        let a = parse_answer(
            r#"{"model": "m", "system_fingerprint": "fp", "choices": [{"message": {"content": "{}"}, "finish_reason": "length"}]}"#,
        );
        assert_eq!(
            (a.content.as_str(), a.finish_reason.as_deref(), a.model.as_deref()),
            ("{}", Some("length"), Some("m"))
        );
        assert_eq!(parse_answer("<html>").finish_reason.as_deref(), Some("bad_response"));
        assert_eq!(parse_answer(r#"{"choices": []}"#).finish_reason.as_deref(), Some("bad_response"));
    }
}
