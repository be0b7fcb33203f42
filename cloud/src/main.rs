//! `pvm-cloud`: configuration, wiring, shutdown. Everything else is in the library.

use clap::{Parser, Subcommand};
use pvm_cloud::token::TokenKeys;
use pvm_cloud::CloudConfig;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pvm-cloud", version, about = "PVM cloud service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    config: CloudConfig,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Create a tenant and its first admin; the password is read from standard input.
    CreateTenant {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
    },
    /// Write a new access-token key file (mode 0600) and print its public key.
    GenTokenKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Create (or keep) the NATS operator and accounts in DIR and write the nats-server
    /// auth config (`auth.conf`) and this service's credentials (`cloud.creds`).
    NatsInit {
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pvm-cloud: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Cmd::Serve) {
            Cmd::Serve => serve(cli.config).await,
            Cmd::Migrate => migrate(&cli.config).await,
            Cmd::CreateTenant { name, admin_email } => {
                create_tenant(&cli.config, &name, &admin_email).await
            }
            Cmd::GenTokenKey { out } => gen_token_key(&out),
            Cmd::NatsInit { dir } => nats_init(&dir),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvm-cloud: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

async fn serve(config: CloudConfig) -> CliResult {
    let key_file = config
        .token_key_file
        .clone()
        .ok_or("no token key: set --token-key-file (make one with `pvm-cloud gen-token-key`)")?;
    let keys = TokenKeys::load(&key_file, &config.token_verify_key_files)?;
    let running = pvm_cloud::start(config, keys).await?;
    println!("pvm-cloud listening on http://{}", running.addr);
    println!("API document: http://{}/api/v1/openapi.json", running.addr);
    shutdown_signal().await;
    println!("pvm-cloud stopping");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn migrate(config: &CloudConfig) -> CliResult {
    if config.database_url.is_empty() {
        return Err("set --database-url".into());
    }
    let pool = pvm_cloud::db::pool(&config.database_url, 1)?;
    let applied = pvm_cloud::db::migrate(&pool).await?;
    println!("applied migrations: {applied:?}");
    Ok(())
}

async fn create_tenant(config: &CloudConfig, name: &str, admin_email: &str) -> CliResult {
    if config.database_url.is_empty() {
        return Err("set --database-url".into());
    }
    eprintln!("password for {admin_email} (one line on standard input):");
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let pool = pvm_cloud::db::pool(&config.database_url, 1)?;
    pvm_cloud::db::migrate(&pool).await?;
    let passwords = pvm_cloud::password::Passwords::new(
        config.password_memory_kib,
        config.password_iterations,
    )?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let user_id =
        pvm_cloud::accounts::create_user(&tx, &passwords, admin_email, password, "").await?;
    let tenant_id = pvm_cloud::accounts::create_tenant(&tx, name, user_id).await?;
    tx.commit().await?;
    println!("tenant {tenant_id}\nadmin  {user_id}");
    Ok(())
}

fn gen_token_key(out: &PathBuf) -> CliResult {
    let seed = TokenKeys::generate_seed()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(out).map_err(|e| {
        format!(
            "cannot create {} (it must not exist yet): {e}",
            out.display()
        )
    })?;
    file.write_all(TokenKeys::seed_text(&seed).as_bytes())?;
    println!(
        "wrote {}; its public key (for --token-verify-key-files after a rotation): {}",
        out.display(),
        TokenKeys::from_seed(seed).public_key_text()
    );
    Ok(())
}

fn nats_init(dir: &std::path::Path) -> CliResult {
    use pvm_cloud::sync::nats_auth::{self, files};
    nats_auth::nats_init(dir)?;
    println!(
        "NATS auth in {dir}: include {dir}/{conf} in nats-server's config; run pvm-cloud with \
         --nats-creds {dir}/{creds} --nats-account-seed-file {dir}/{seed}",
        dir = dir.display(),
        conf = files::SERVER_CONFIG,
        creds = files::CLOUD_CREDS,
        seed = files::ACCOUNT_SEED,
    );
    Ok(())
}
