//! Relative relocations packed (DT_RELR): the 3.5 MB of `.rela.dyn` a position-independent
//! binary this size otherwise carries is read and applied at every start, and stayed resident
//! (3.4 MiB of the API server's RSS, bench/api). Packed, it is a few kilobytes. Needs GNU ld
//! 2.38 or lld 15 to link and glibc 2.36 to run; `scripts/package-deb` declares the latter.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
