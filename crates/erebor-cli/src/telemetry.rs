//! Logging to stderr through `tracing`, with secret values masked, and optional OTLP export of
//! spans (`--otlp-endpoint` / `OTEL_EXPORTER_OTLP_ENDPOINT`).

use crate::cli::GlobalArgs;
use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use std::io::Write;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Masks these values in every later log line (erebor-core's one redactor).
pub(crate) use erebor_core::secrets::register as add_secrets;

/// Keeps the OTLP exporter alive; flushes it on drop.
pub(crate) struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("erebor: could not flush OTLP spans: {error}");
        }
    }
}

/// Installs the global subscriber. Step processes log plainly (their stderr is the step log).
pub(crate) fn init(args: &GlobalArgs, step_process: bool) -> anyhow::Result<TelemetryGuard> {
    let default_level = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},sqlx=warn,h2=warn,hyper=warn,reqwest=warn"
        ))
    });
    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(|| RedactingStderr)
        .with_ansi(!step_process && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(args.verbose > 0);
    let mut provider = None;
    let otel_layer = match args.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let tracer_provider = otlp_provider(endpoint)?;
            let tracer = tracer_provider.tracer("erebor");
            provider = Some(tracer_provider);
            // Spans are exported at info level whatever `-q` / `-v` do to the console.
            let span_filter =
                EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,reqwest=warn,opentelemetry=warn");
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(span_filter),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(endpoint: &str) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let endpoint = endpoint.trim_end_matches('/');
    let traces_url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url.clone())
        .build()
        .with_context(|| format!("setting up OTLP export to {traces_url}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("erebor")
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// stderr, with secrets masked line by line (tracing writes one event per `write`).
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(erebor_core::secrets::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
