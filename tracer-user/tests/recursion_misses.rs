//! The kernel skips a program's run when the program is already running on
//! that CPU and counts it in the program's `recursion_misses`; muxtrace reads
//! that count for each of its programs and reports it as a loss. muxtrace's
//! own programs (BTF-typed tracepoints) cannot re-enter in practice, so this
//! builds two tiny programs that do — one printing on every syscall of this
//! process, one printing from inside the printing — and checks that the
//! reader muxtrace uses sees the misses the kernel counted.
use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};

/// One BPF instruction.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// `bpf_trace_printk("x\n", 3); return 0;`
const PRINT: [Insn; 6] = [
    insn(0x62, 10, 0, -8, 0x000a78), // *(u32 *)(r10 - 8) = "x\n\0"
    insn(0xbf, 1, 10, 0, 0),         // r1 = r10
    insn(0x07, 1, 0, 0, -8),         // r1 += -8
    insn(0xb7, 2, 0, 0, 3),          // r2 = 3
    insn(0x85, 0, 0, 0, 6),          // call bpf_trace_printk
    insn(0x95, 0, 0, 0, 0),          // exit (r0 = its result; ignored)
];

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> std::io::Result<OwnedFd> {
    // SAFETY: attr is a zeroed 128-byte union of the command's arguments.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128usize) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A raw-tracepoint program running PRINT, attached to `tracepoint`.
fn printing_program(tracepoint: &std::ffi::CStr) -> (OwnedFd, OwnedFd) {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
    const BPF_PROG_TYPE_RAW_TRACEPOINT: u64 = 17;
    let license = c"GPL";
    let mut attr = [0u64; 16];
    attr[0] = BPF_PROG_TYPE_RAW_TRACEPOINT | ((PRINT.len() as u64) << 32);
    attr[1] = PRINT.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    let prog = bpf(BPF_PROG_LOAD, &mut attr).expect("load a raw tracepoint program");
    let mut attr = [0u64; 16];
    attr[0] = tracepoint.as_ptr() as u64;
    attr[1] = std::os::fd::AsRawFd::as_raw_fd(&prog) as u64;
    let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr).expect("attach it");
    (prog, link)
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_reader_sees_the_misses_the_kernel_counted() {
    // Printing from inside bpf_trace_printk's own tracepoint re-enters it.
    let (nested, _nested_link) = printing_program(c"bpf_trace_printk");
    let before = tracer_user::recursion_misses(nested.as_fd()).expect("read the program's info");
    let (_outer, outer_link) = printing_program(c"sys_enter");
    for _ in 0..100 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    drop(outer_link);
    let after = tracer_user::recursion_misses(nested.as_fd()).expect("read the program's info");
    assert!(
        after >= before + 100,
        "the nested program re-entered at least once per syscall: {before} → {after}"
    );
}
