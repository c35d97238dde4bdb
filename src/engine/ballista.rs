//! Ballista: the DataFusion counting plan (`super::datafusion`) on a cluster.
//!
//! The plan's three UDFs carry state (a column's codec, the run's bounding key), so the
//! scheduler and the executors must decode them: they are privsynth's own processes
//! (`privsynth engine scheduler` / `privsynth engine executor`, or [`start_scheduler`] and
//! [`start_executor`] in process), using the codecs of this module, which wrap Ballista's own
//! and add the UDFs: an encode UDF travels as its table's schema (JSON) and column name, the
//! draw UDF as its 256-bit key. **The key therefore crosses the network to the executors**:
//! run the cluster on a trusted network (the executors read the raw files anyway) and keep
//! Ballista's gRPC on loopback or TLS; the key is fresh per run and never written to disk.
//!
//! A query on an executor that dies fails with Ballista's error (the job is not retried here),
//! and the fit stops with it before anything is recorded: never a partial count.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

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
}

/// A Ballista session configuration with privsynth's codecs, on top of `config`.
pub fn session_config(config: SessionConfig) -> SessionConfig {
    config
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()))
}

fn state(config: SessionConfig) -> SessionState {
    SessionStateBuilder::new().with_config(session_config(config)).with_default_features().build()
}

/// A client session on the scheduler at `addr` (`host:port`).
pub async fn connect(addr: &str, config: SessionConfig) -> DfResult<SessionContext> {
    SessionContext::remote_with_state(&format!("df://{addr}"), state(config)).await
}

/// Start a scheduler with privsynth's codecs in this process (on localhost, a free port);
/// returns its address. It runs until the process ends.
pub async fn start_scheduler() -> DfResult<SocketAddr> {
    ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state(SessionConfig::new()))
        .await
        .map_err(|e| DataFusionError::Configuration(format!("cannot start the Ballista scheduler: {e}")))
}

/// Start an executor with privsynth's codecs in this process, registered with the scheduler
/// at `scheduler` (`host:port`), running `vcores` tasks at once.
pub async fn start_executor(scheduler: &str, vcores: usize) -> DfResult<()> {
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let url = format!("http://{scheduler}");
    let mut tries = 0;
    let client = loop {
        match SchedulerGrpcClient::connect(url.clone()).await {
            Ok(c) => break c,
            Err(e) if tries >= 50 => {
                return Err(DataFusionError::Configuration(format!(
                    "cannot reach the Ballista scheduler at {scheduler}: {e}"
                )));
            }
            Err(_) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    ballista_executor::new_standalone_executor_from_state(client, vcores, &state(SessionConfig::new()))
        .await
        .map_err(|e| DataFusionError::Configuration(format!("cannot start a Ballista executor: {e}")))
}

/// What `privsynth engine cluster` / `privsynth engine executor` serve.
pub enum Serve {
    /// A scheduler and this many executors (each running `vcores` tasks at once).
    Cluster { executors: usize, vcores: usize },
    /// One executor for the scheduler at `scheduler` (`host:port`).
    Executor { scheduler: String, vcores: usize },
}

/// Start what `what` names and serve until the process is stopped; prints the address.
pub fn serve(what: Serve) -> crate::error::Result<i32> {
    use crate::error::Error;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        match what {
            Serve::Cluster { executors, vcores } => {
                let addr = start_scheduler().await.map_err(|e| Error::Usage(e.to_string()))?;
                let at = format!("127.0.0.1:{}", addr.port());
                for _ in 0..executors {
                    start_executor(&at, vcores).await.map_err(|e| Error::Usage(e.to_string()))?;
                }
                println!("ballista://{at}");
            }
            Serve::Executor { scheduler, vcores } => {
                start_executor(&scheduler, vcores).await.map_err(|e| Error::Usage(e.to_string()))?;
                println!("executor registered with {scheduler}");
            }
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
        Ok(0)
    })
}
