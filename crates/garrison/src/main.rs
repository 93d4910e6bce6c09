//! `garrison`: the server (`serve`), the reconcile loop alone (`worker`), the demo (`demo`), the
//! appliance agent (`appliance run`), and the alcli-grammar client
//! (`garrison <service> <operation> --param value …`).

mod appliance;
mod client;
mod demo;
mod onboard;
mod output;
mod publish;
mod resident;
mod rotate;
mod serve;
mod service_cli;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_huge_pages();
    c_library_memory();
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

/// Transparent huge pages off for this process. mimalloc asks for them on its heap, and a
/// 2 MiB page stays whole while any of it is in use: 18-20 MiB of the API server's RSS after
/// load were huge pages kept for a few live blocks each (bench/api), for a speed-up this
/// process does not measure. Kernels without the call leave things as they were.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// The C library's allocator serves SQLite (Rust's memory is mimalloc's). By default glibc
/// gives each thread that allocates an arena of its own and keeps what is freed in it: with a
/// thread per SQLite connection, each held 4 MiB or more once pages of deployments had been
/// read (33 MiB of the API server's RSS over eight connections, bench/api). Two arenas, blocks
/// of 64 KiB and more mapped on their own (glibc otherwise raises that bound to the largest
/// block freed, and SQLite's result buffers then stay in the arenas), and free space above
/// 128 KiB at an arena's top given back: 5 MiB for the same work.
fn c_library_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes integers; called before any thread but this one exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
    }
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
