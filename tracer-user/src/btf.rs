//! What muxtrace needs from the kernel's BTF (/sys/kernel/btf/vmlinux): that
//! each tracepoint it attaches to exists (a `btf_trace_<name>` typedef), and
//! the offsets of the `task_struct` fields its scheduler programs read. A
//! small reader of the format (Documentation/bpf/btf.rst), bounds-checked:
//! a malformed file is an error, never a panic.

use std::path::PathBuf;

use crate::error::{Result, UserError};

/// Overrides where the kernel's BTF is read from: for tests that need a
/// kernel without some tracepoint.
pub const BTF_ENV: &str = "MUXTRACE_BTF";
const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC: u32 = 12;

/// One type's header: (kind, name offset, member count, kind flag, where
/// its trailing data starts).
type TypeEntry = (u32, u32, usize, bool, usize);

pub struct KernelBtf {
    pub path: PathBuf,
    data: Vec<u8>,
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
    /// Where each type's header is, indexed by type id - 1: walked once at
    /// parse, not at each of the thirty-odd lookups muxtrace makes before it
    /// attaches (that was 30 ms of its start). Positions only (4 bytes a
    /// type), decoded on demand: this is alive while aya parses the same
    /// file, at muxtrace's peak of memory.
    positions: Vec<u32>,
}

impl KernelBtf {
    /// Where the kernel's BTF is read from.
    pub fn path() -> PathBuf {
        std::env::var_os(BTF_ENV).map_or_else(|| PathBuf::from(VMLINUX), PathBuf::from)
    }

    /// Reads the running kernel's BTF (or the file [`BTF_ENV`] names).
    pub fn load() -> Result<KernelBtf> {
        let path = KernelBtf::path();
        let data = std::fs::read(&path).map_err(|e| {
            UserError::runtime(format!(
                "cannot read the kernel's BTF type information at {}: {e}",
                path.display()
            ))
            .hint("muxtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 2020)")
        })?;
        KernelBtf::parse(path, data)
    }

    fn parse(path: PathBuf, data: Vec<u8>) -> Result<KernelBtf> {
        let bad = || {
            UserError::runtime(format!(
                "{} is not BTF type information muxtrace can read",
                path.display()
            ))
        };
        let u32_at = |o: usize| -> Option<u32> {
            Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?))
        };
        if data.get(0..2) != Some(&MAGIC.to_le_bytes()[..]) {
            return Err(bad());
        }
        let (Some(header), Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
            (u32_at(4), u32_at(8), u32_at(12), u32_at(16), u32_at(20))
        else {
            return Err(bad());
        };
        let at = |off: u32, len: u32| {
            let start = header as usize + off as usize;
            let end = start.checked_add(len as usize)?;
            (end <= data.len()).then_some(start..end)
        };
        let (Some(types), Some(strings)) = (at(type_off, type_len), at(str_off, str_len)) else {
            return Err(bad());
        };
        let mut btf = KernelBtf {
            path,
            data,
            types,
            strings,
            positions: Vec::new(),
        };
        btf.positions = btf.each_type().map(|(.., at)| (at - 12) as u32).collect();
        Ok(btf)
    }

    fn u32_at(&self, o: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.data.get(o..o + 4)?.try_into().ok()?,
        ))
    }

    fn name(&self, offset: u32) -> &[u8] {
        let s = &self.data[self.strings.clone()];
        let Some(rest) = s.get(offset as usize..) else {
            return b"";
        };
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// Each type as (kind, name offset, member count, kind flag, where its
    /// trailing data starts), in file order; stops at the first malformed one.
    fn each_type(&self) -> impl Iterator<Item = TypeEntry> + '_ {
        let mut p = self.types.start;
        std::iter::from_fn(move || {
            if p + 12 > self.types.end {
                return None;
            }
            let item = self.entry_at(p)?;
            let (kind, _, vlen, ..) = item;
            let extra = match kind {
                1 | 14 | 17 => 4,        // int, var, decl_tag
                3 => 12,                 // array
                4 | 5 | 15 => vlen * 12, // struct, union, datasec
                6 | 13 => vlen * 8,      // enum, func_proto
                19 => vlen * 12,         // enum64
                _ => 0,
            };
            p += 12 + extra;
            Some(item)
        })
    }

    /// The type whose header is at `p`.
    fn entry_at(&self, p: usize) -> Option<TypeEntry> {
        let name = self.u32_at(p)?;
        let info = self.u32_at(p + 4)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kflag = info >> 31 == 1;
        Some((kind, name, vlen, kflag, p + 12))
    }

    /// Every type, from the positions found at parse.
    fn entries(&self) -> impl Iterator<Item = TypeEntry> + '_ {
        self.positions
            .iter()
            .filter_map(|&p| self.entry_at(p as usize))
    }

    /// Whether the kernel has the tracepoint `name` (for tp_btf programs).
    pub fn has_tracepoint(&self, name: &str) -> bool {
        let wanted = format!("btf_trace_{name}");
        self.entries()
            .any(|(kind, n, ..)| kind == KIND_TYPEDEF && self.name(n) == wanted.as_bytes())
    }

    /// The BTF id of the struct `name`, if the kernel has it.
    pub fn struct_id(&self, name: &str) -> Option<u32> {
        self.type_id(KIND_STRUCT, name)
    }

    /// The BTF id of the kernel function `name` (a kfunc), if it has it.
    pub fn function_id(&self, name: &str) -> Option<u32> {
        self.type_id(KIND_FUNC, name)
    }

    /// Type ids count from 1 in file order (0 is `void`).
    fn type_id(&self, wanted: u32, name: &str) -> Option<u32> {
        let index = self
            .entries()
            .position(|(kind, n, ..)| kind == wanted && self.name(n) == name.as_bytes())?;
        u32::try_from(index + 1).ok()
    }

    /// The byte offset of `strukt.member`, looking into the struct's
    /// anonymous structs and unions (io_ring_ctx keeps its fields in them).
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u32> {
        for (kind, name, vlen, kflag, members) in self.entries() {
            if kind != KIND_STRUCT || self.name(name) != strukt.as_bytes() {
                continue;
            }
            if let Some(offset) = self.find_member(vlen, kflag, members, member, 0) {
                return Ok(offset);
            }
        }
        Err(UserError::runtime(format!(
            "the kernel's BTF ({}) has no field {strukt}.{member}",
            self.path.display()
        )))
    }

    /// `member` among a struct's or union's members, or inside an
    /// anonymous one of them (to a depth of 4), in bytes from the outer
    /// struct.
    fn find_member(
        &self,
        vlen: usize,
        kflag: bool,
        members: usize,
        member: &str,
        depth: u32,
    ) -> Option<u32> {
        for i in 0..vlen {
            let m = members + i * 12;
            let (Some(member_name), Some(type_id), Some(bits)) =
                (self.u32_at(m), self.u32_at(m + 4), self.u32_at(m + 8))
            else {
                break;
            };
            let offset = (if kflag { bits & 0xff_ffff } else { bits }) / 8;
            let name = self.name(member_name);
            if name == member.as_bytes() {
                return Some(offset);
            }
            if !name.is_empty() || depth >= 4 {
                continue;
            }
            let Some((kind, _, vlen, kflag, inner)) = type_id
                .checked_sub(1)
                .and_then(|i| self.positions.get(i as usize))
                .and_then(|&p| self.entry_at(p as usize))
            else {
                continue;
            };
            if kind == KIND_STRUCT || kind == KIND_UNION {
                if let Some(o) = self.find_member(vlen, kflag, inner, member, depth + 1) {
                    return Some(offset + o);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for data in [
            vec![],
            vec![0x9f, 0xeb],
            vec![
                0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
            ],
            vec![0u8; 64],
        ] {
            assert!(KernelBtf::parse("x".into(), data).is_err());
        }
    }

    /// The running kernel's BTF, read as the programs need it.
    #[test]
    fn this_kernel_has_what_the_programs_read() {
        let Ok(btf) = KernelBtf::load() else {
            return; // no BTF on this machine: nothing to check
        };
        assert!(btf.has_tracepoint("sys_enter"));
        assert!(btf.has_tracepoint("sched_switch"));
        assert!(!btf.has_tracepoint("no_such_tracepoint"));
        let pid = btf.member_offset("task_struct", "pid").unwrap();
        let tgid = btf.member_offset("task_struct", "tgid").unwrap();
        assert_eq!(tgid, pid + 4, "pid_t pid; pid_t tgid; are neighbours");
        assert!(btf.member_offset("task_struct", "no_such_field").is_err());
        // The ids the typed reads cast to (that they are the right ones,
        // the verifier checks when the programs load).
        if btf.function_id("bpf_rdonly_cast").is_some() {
            let file = btf.struct_id("file").unwrap();
            assert!(file > 0);
            assert!(btf.struct_id("eventpoll").unwrap() > 0);
            assert_ne!(btf.struct_id("inode"), Some(file));
        }
        assert_eq!(btf.struct_id("no_such_struct"), None);
        // Inside io_ring_ctx's anonymous structs, where the kernel has io_uring.
        if btf.has_tracepoint("io_uring_submit_req") {
            let flags = btf.member_offset("io_ring_ctx", "flags").unwrap();
            let rings = btf.member_offset("io_ring_ctx", "rings").unwrap();
            assert!(rings > flags, "{flags} {rings}");
            assert!(btf.member_offset("io_ring_ctx", "cached_cq_tail").unwrap() > rings);
        }
    }
}
