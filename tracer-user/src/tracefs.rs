//! Record layouts from tracefs format files: the offsets the scheduler
//! programs need, which change between kernels.

use std::{fs, path::Path};

use crate::error::{Result, UserError};

/// Byte offset of `field` in a tracepoint record, from its format file.
pub fn field_offset(root: &Path, category: &str, name: &str, field: &str) -> Result<Option<u32>> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path)
        .map_err(|e| UserError::runtime(format!("cannot read {}: {e}", path.display())))?;
    Ok(parse_field_offset(&text, field))
}

/// Parses lines like `field:pid_t prev_pid; offset:24; size:4; signed:1;`
/// (tab-separated in the file).
pub fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let line = line.trim();
        let decl = line.strip_prefix("field:")?.split(';').next()?;
        let name = decl.split_whitespace().last()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let offset = line.split("offset:").nth(1)?.split(';').next()?;
        offset.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch
ID: 372
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t prev_pid;	offset:24;	size:4;	signed:1;
	field:char next_comm[16];	offset:40;	size:16;	signed:0;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
";

    #[test]
    fn offsets_from_format() {
        assert_eq!(parse_field_offset(SWITCH, "prev_pid"), Some(24));
        assert_eq!(parse_field_offset(SWITCH, "next_pid"), Some(56));
        assert_eq!(parse_field_offset(SWITCH, "next_comm"), Some(40));
        assert_eq!(parse_field_offset(SWITCH, "group_dead"), None);
    }
}
