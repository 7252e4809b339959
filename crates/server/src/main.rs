//! `colloquy-server`: the main job. Starts the server on the configured
//! address (127.0.0.1:8080 and `./data` by default), prints the
//! credentials on first start and where to look, and shuts down gracefully
//! on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use server::{Cli, Server, ServerConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match ServerConfig::resolve(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("colloquy-server: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(server::config::LOG_FILTER_DEFAULT));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("colloquy-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ServerConfig) -> Result<(), server::ServerError> {
    let server = Server::bind(&config).await?;
    let base = server.base_url().to_owned();
    if let Some(c) = server.first_start_credentials() {
        println!("First start: created the account. These are printed once; they are stored in {}/account.json.", config.data_dir.display());
        println!("  Account SID:          {}", c.account_sid);
        println!("  Auth token:           {}", c.auth_token);
        println!("  API key SID:          {}", c.api_key.sid);
        println!("  API key secret:       {}", c.api_key.secret);
        println!("  Default service SID:  {}", c.default_chat_service_sid);
    }
    println!("Colloquy server listening on {base}");
    println!("  REST API:  {base}/v1   (HTTP Basic: account SID and auth token)");
    println!(
        "  WebSocket: {}/v1/Realtime   (access tokens from POST {base}/v1/Tokens; docs/REALTIME.md)",
        base.replacen("http", "ws", 1)
    );
    println!("  Demo:      {base}/demo   (paste the API key SID and secret)");
    println!("  Data:      {}", config.data_dir.display());
    tracing::info!(%base, data_dir = %config.data_dir.display(), "serving");
    server.run(shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining requests");
}
