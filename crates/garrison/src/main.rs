//! `garrison`: the server (`serve`), the reconcile loop alone (`worker`), the demo (`demo`), the
//! appliance agent (`appliance run`), and the alcli-grammar client
//! (`garrison <service> <operation> --param value …`).

mod appliance;
mod client;
mod demo;
mod onboard;
mod output;
mod publish;
mod rotate;
mod serve;
mod service_cli;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("garrison: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(argv))
}

async fn run(argv: Vec<String>) -> ExitCode {
    // The first word that is not a global option decides: a command or a service.
    let first = service_cli::first_word(&argv[1..]);
    match first.as_deref() {
        Some("serve") => serve::main(argv).await,
        Some("worker") => serve::worker_main(argv).await,
        Some("demo") => demo::main(argv).await,
        Some("onboard") => onboard::main(argv).await,
        Some("publish-templates") => publish::main(argv).await,
        Some("rotate-seal-key") => rotate::main(argv).await,
        Some("appliance") => appliance::main(argv).await,
        _ => service_cli::main(argv).await,
    }
}
