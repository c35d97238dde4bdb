//! Ballista: the DataFusion counting plan (`super::datafusion`) on a cluster.
//!
//! The plan's three UDFs and its counting aggregate carry state (a column's codec, the run's
//! bounding key, the subsets to count), so the scheduler and the executors must decode them:
//! they are privsynth's own processes (`privsynth engine scheduler` / `privsynth engine
//! executor`, or [`start_scheduler`] and [`start_executor`] in process), using the codecs of
//! this module, which wrap Ballista's own and add the functions: an encode UDF travels as its
//! table's schema (JSON) and column name, the counting aggregate as its subsets and domain
//! sizes, the draw UDF as its 256-bit key. **The key therefore crosses the network to the
//! executors**: run the cluster on a trusted network (the executors read the raw files anyway)
//! and keep Ballista's gRPC on loopback or TLS; the key is fresh per run and never written to
//! disk.
//!
//! A query on an executor that dies fails with Ballista's error (the job is not retried here),
//! and the fit stops with it before anything is recorded: never a partial count.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use super::udaf::{decode_udaf, encode_udaf};
use super::udf::{decode_udf, encode_udf};

type DfResult<T> = std::result::Result<T, DataFusionError>;

/// Ballista's logical codec plus privsynth's UDFs.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }
    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }
    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        self.inner.try_decode_table_provider(buf, table_ref, schema, ctx)
    }
    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }
    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }
    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        match decode_udf(name, buf)? {
            Some(u) => Ok(u),
            None => self.inner.try_decode_udf(name, buf),
        }
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if encode_udf(node, buf)? { Ok(()) } else { self.inner.try_encode_udf(node, buf) }
    }
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        match decode_udaf(name, buf)? {
            Some(u) => Ok(u),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }
    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if encode_udaf(node, buf)? { Ok(()) } else { self.inner.try_encode_udaf(node, buf) }
    }
}

/// Ballista's physical codec plus privsynth's UDFs.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        conv: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.inner.try_decode(buf, inputs, ctx, conv)
    }
    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        conv: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        self.inner.try_encode(node, buf, conv)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        match decode_udf(name, buf)? {
            Some(u) => Ok(u),
            None => self.inner.try_decode_udf(name, buf),
        }
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if encode_udf(node, buf)? { Ok(()) } else { self.inner.try_encode_udf(node, buf) }
    }
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        match decode_udaf(name, buf)? {
            Some(u) => Ok(u),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }
    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if encode_udaf(node, buf)? { Ok(()) } else { self.inner.try_encode_udaf(node, buf) }
    }
}

/// The largest gRPC message the client, the shuffle readers and the executors' Flight
/// services take (Ballista's default: 16 MB). A partition's partial counts travel as one
/// binary value in one message (`super::udaf`); a subset with millions of distinct cells in a
/// partition passes 16 MB. 1 GiB stays under Arrow's 2 GiB binary offsets.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// A Ballista session configuration with privsynth's codecs, on top of `config`.
pub fn session_config(config: SessionConfig) -> SessionConfig {
    config
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()))
        .with_ballista_grpc_client_max_message_size(MAX_MESSAGE_BYTES)
}

fn state(config: SessionConfig) -> SessionState {
    SessionStateBuilder::new().with_config(session_config(config)).with_default_features().build()
}

/// What a scheduler builds a job's session from: the client's settings (the counting plan
/// turns file-scan repartitioning off, which its file-order numbering needs) and privsynth's
/// codecs.
fn session_builder() -> ballista_scheduler::scheduler_server::SessionBuilder {
    Arc::new(|config: SessionConfig| Ok(state(config)))
}

/// A client session on the scheduler at `addr` (`host:port`); first checks that a scheduler
/// answers there (within [`PROBE_WAIT`]), so a wrong address is an error, not a wait.
pub async fn connect(addr: &str, config: SessionConfig) -> DfResult<SessionContext> {
    probe_scheduler(addr, PROBE_WAIT).await?;
    SessionContext::remote_with_state(&format!("df://{addr}"), state(config)).await
}

/// How long a client or an executor waits for a scheduler to answer before giving up.
pub const PROBE_WAIT: Duration = Duration::from_secs(10);

/// Wait (up to `wait`) until a Ballista scheduler answers at `addr` (`host:port`): a gRPC
/// call any scheduler answers (the status of a job that does not exist). An address where
/// nothing listens, or something that is not a Ballista scheduler, gives an error naming it.
pub async fn probe_scheduler(addr: &str, wait: Duration) -> DfResult<()> {
    use ballista_core::serde::protobuf::GetJobStatusParams;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let url = format!("http://{addr}");
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(100));
        let attempt = tokio::time::timeout(left, async {
            let mut client = SchedulerGrpcClient::connect(url.clone()).await.map_err(|e| e.to_string())?;
            client
                .get_job_status(GetJobStatusParams { job_id: "privsynth-probe".into() })
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        })
        .await
        .unwrap_or_else(|_| Err("no answer".into()));
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(DataFusionError::Configuration(format!(
                    "no Ballista scheduler answers at {addr} (waited {} s: {e}); check the address and that \
                     `privsynth engine scheduler` runs there",
                    wait.as_secs()
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Start a scheduler with privsynth's codecs in this process (on localhost, a free port);
/// returns its address. It runs until the process ends. For one machine (the tests,
/// `privsynth engine cluster`); a cluster's scheduler is [`run_scheduler`].
pub async fn start_scheduler() -> DfResult<SocketAddr> {
    let config = session_config(SessionConfig::new());
    let codec = ballista_core::serde::BallistaCodec::new(
        config.ballista_logical_extension_codec(),
        config.ballista_physical_extension_codec(),
    );
    ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        session_builder(),
        Arc::new(move || config.clone()),
        codec,
    )
    .await
    .map_err(|e| DataFusionError::Configuration(format!("cannot start the Ballista scheduler: {e}")))
}

/// Start an executor with privsynth's codecs in this process, registered with the scheduler
/// at `scheduler` (`host:port`), running `vcores` tasks at once. For one machine; a
/// cluster's executor is [`run_executor`].
pub async fn start_executor(scheduler: &str, vcores: usize) -> DfResult<()> {
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    probe_scheduler(scheduler, PROBE_WAIT).await?;
    let client = SchedulerGrpcClient::connect(format!("http://{scheduler}")).await.map_err(|e| {
        DataFusionError::Configuration(format!("cannot reach the Ballista scheduler at {scheduler}: {e}"))
    })?;
    ballista_executor::new_standalone_executor_from_state(client, vcores, &state(SessionConfig::new()))
        .await
        .map_err(|e| DataFusionError::Configuration(format!("cannot start a Ballista executor: {e}")))
}

/// Resolve `HOST:PORT` (a name or an IP; an IPv6 address in brackets) to one socket address.
fn resolve(what: &str, s: &str) -> crate::error::Result<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let bad = |m: String| crate::error::Error::Usage(format!("{what} {s:?}: {m}"));
    s.to_socket_addrs()
        .map_err(|e| bad(format!("expected HOST:PORT ({e})")))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// Split `HOST:PORT` (PORT a number > 0) into its parts, the host as given.
fn host_port(what: &str, s: &str) -> crate::error::Result<(String, u16)> {
    s.rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok().filter(|&p| p > 0)?)))
        .ok_or_else(|| crate::error::Error::Usage(format!("{what} {s:?}: expected HOST:PORT")))
}

/// A scheduler for a cluster of several machines: listens on `bind` (`HOST:PORT`; `0.0.0.0`
/// for every interface) until the process is stopped. Executors on other machines reach it
/// with `privsynth engine executor --scheduler HOST:PORT`, clients with `--engine
/// ballista://HOST:PORT`. Calls `ready` with the address it listens on once it does.
pub async fn run_scheduler(bind: &str, ready: impl FnOnce(SocketAddr)) -> crate::error::Result<()> {
    use crate::error::Error;
    use ballista_core::config::TaskSchedulingPolicy;
    use ballista_scheduler::config::SchedulerConfig;
    use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
    let addr = resolve("--bind", bind)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("--bind {bind}: cannot listen on {addr}: {e}")))?;
    let at = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    let base = session_config(SessionConfig::new());
    let config = SchedulerConfig {
        bind_host: at.ip().to_string(),
        bind_port: at.port(),
        external_host: host_port("--bind", bind).map(|(h, _)| h).unwrap_or_else(|_| at.ip().to_string()),
        // Executors ask for work: the scheduler never connects to them, so only their Flight
        // port must be reachable (by the other executors and the client).
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        ..SchedulerConfig::default()
    }
    .with_override_session_builder(session_builder())
    .with_override_config_producer(Arc::new(move || base.clone()));
    let config = SchedulerConfig {
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..config
    };
    config.validate().map_err(|e| Error::Usage(format!("the scheduler's configuration: {e}")))?;
    let cluster = ballista_scheduler::cluster::BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| Error::Internal(format!("cannot start the Ballista scheduler: {e}")))?;
    let scheduler = ballista_scheduler::scheduler_process::create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(
        cluster,
        Arc::new(config),
    )
    .await
    .map_err(|e| Error::Internal(format!("cannot start the Ballista scheduler: {e}")))?;
    ready(at);
    ballista_scheduler::scheduler_process::start_grpc_service_with_listener(listener, scheduler)
        .await
        .map_err(|e| Error::Internal(format!("the Ballista scheduler stopped: {e}")))
}

/// Where a cluster executor listens and whom it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: String,
    /// The address its Arrow Flight service (results and shuffle data) listens on:
    /// `HOST[:PORT]`, port 50051 if not given.
    pub bind: String,
    /// The name or address other machines reach it by; by default the bind address, or (bound
    /// to every interface) the address the scheduler sees it connect from.
    pub external_host: Option<String>,
    /// Tasks it runs at once.
    pub vcores: usize,
    /// Where it keeps shuffle files (default: a temporary directory).
    pub work_dir: Option<String>,
}

/// The Flight port an executor listens on when `--bind` names none.
pub const EXECUTOR_PORT: u16 = 50051;

/// An executor for a cluster of several machines, until the process is stopped (or the
/// scheduler is gone). Checks first that the scheduler answers (an error naming it if not,
/// within [`PROBE_WAIT`]); then calls `ready` with the address it serves on.
pub async fn run_executor(opts: ExecutorOptions, ready: impl FnOnce(SocketAddr)) -> crate::error::Result<()> {
    use crate::error::Error;
    use ballista_core::config::TaskSchedulingPolicy;
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    let bind = match opts.bind.rsplit_once(':') {
        Some((_, p)) if !opts.bind.ends_with(']') && p.parse::<u16>().is_ok() => opts.bind.clone(),
        _ => format!("{}:{EXECUTOR_PORT}", opts.bind),
    };
    let addr = resolve("--bind", &bind)?;
    if addr.port() == 0 {
        return Err(Error::Usage(format!(
            "--bind {}: the executor needs a port other machines can be told",
            opts.bind
        )));
    }
    let (scheduler_host, scheduler_port) = host_port("--scheduler", &opts.scheduler)?;
    probe_scheduler(&opts.scheduler, PROBE_WAIT).await.map_err(|e| Error::Usage(e.to_string()))?;
    // Refuse a taken port here, with its name: Ballista's own message says less.
    drop(
        std::net::TcpListener::bind(addr)
            .map_err(|e| Error::Usage(format!("--bind {bind}: cannot listen on {addr}: {e}")))?,
    );
    let ip = addr.ip();
    let bind_host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
    let external_host = opts.external_host.clone().or_else(|| (!ip.is_unspecified()).then(|| ip.to_string()));
    let base = session_config(SessionConfig::new());
    let config = ExecutorProcessConfig {
        bind_host,
        external_host,
        port: addr.port(),
        // The gRPC port serves push scheduling only; with pull scheduling it is not opened.
        grpc_port: addr.port().wrapping_add(1).max(1),
        scheduler_host,
        scheduler_port,
        // One attempt: the probe above waited for the scheduler (Ballista's own retry loop in
        // 55.0 measures its timeout from `Instant::now()` and so never gives up).
        scheduler_connect_timeout_seconds: 0,
        vcores: opts.vcores.max(1),
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        grpc_max_encoding_message_size: MAX_MESSAGE_BYTES as u32,
        grpc_max_decoding_message_size: MAX_MESSAGE_BYTES as u32,
        work_dir: opts.work_dir.clone(),
        override_config_producer: Some(Arc::new(move || base.clone())),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    ready(addr);
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| Error::Usage(format!("the Ballista executor stopped: {e}")))
}

/// What `privsynth engine cluster|scheduler|executor` serve.
pub enum Serve {
    /// A scheduler and this many executors (each running `vcores` tasks at once), in this
    /// process, on localhost.
    Cluster { executors: usize, vcores: usize },
    /// A cluster's scheduler, listening on `bind` (`HOST:PORT`).
    Scheduler { bind: String },
    /// A cluster's executor.
    Executor(ExecutorOptions),
}

/// Start what `what` names and serve until the process is stopped; prints the address.
pub fn serve(what: Serve) -> crate::error::Result<i32> {
    use crate::error::Error;
    use std::io::Write as _;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    let say = |line: String| {
        println!("{line}");
        let _ = std::io::stdout().flush();
    };
    rt.block_on(async {
        match what {
            Serve::Cluster { executors, vcores } => {
                let addr = start_scheduler().await.map_err(|e| Error::Usage(e.to_string()))?;
                let at = format!("127.0.0.1:{}", addr.port());
                for _ in 0..executors {
                    start_executor(&at, vcores).await.map_err(|e| Error::Usage(e.to_string()))?;
                }
                say(format!("ballista://{at}"));
                std::future::pending::<()>().await;
            }
            Serve::Scheduler { bind } => {
                run_scheduler(&bind, |at| {
                    let name = match at.ip().is_unspecified() {
                        true => format!("THIS-HOST:{}", at.port()),
                        false => at.to_string(),
                    };
                    say(format!(
                        "scheduler listening on {at}: executors `privsynth engine executor --scheduler {name}`, \
                         clients `--engine ballista://{name}`"
                    ))
                })
                .await?;
            }
            Serve::Executor(opts) => {
                let scheduler = opts.scheduler.clone();
                run_executor(opts, |at| say(format!("executor on {at} serving the scheduler at {scheduler}"))).await?;
            }
        }
        Ok(0)
    })
}
