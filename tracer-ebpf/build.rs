//! Rebuild when bpf-linker changes: it is the eBPF crate's linker.
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
