//! `top`: the host's `ps` (with `-ef`, or the options given), cut down to the processes of
//! the container, parsed as Docker's daemon parses it: the first line's fields are the
//! titles, every later line is split on white space with the last column (the command) kept
//! whole. A process belongs to the container when it lives in the container's PID
//! namespace (the same namespace inode as the container's init).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::error::{Error, Result};
use crate::lifecycle::{alive, Containers};

/// Titles and rows of `top`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// The PIDs (as the host sees them) in the PID namespace of `init`.
fn pids_in_namespace_of(init: i32) -> Result<HashSet<i32>> {
    let ns = |pid: &str| fs::metadata(format!("/proc/{pid}/ns/pid")).map(|m| (m.dev(), m.ino()));
    let want = ns(&init.to_string()).map_err(|e| Error::io(format!("/proc/{init}/ns/pid"), e))?;
    let mut out = HashSet::new();
    for e in fs::read_dir("/proc")
        .map_err(|e| Error::io("/proc", e))?
        .flatten()
    {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        if ns(name).ok() == Some(want) {
            out.insert(pid);
        }
    }
    Ok(out)
}

/// Parses `ps` output, keeping the rows whose PID is in `pids`.
pub fn parse_ps(output: &str, pids: &HashSet<i32>) -> Result<Top> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() <= pid_col {
            continue;
        }
        let pid: i32 = fields[pid_col]
            .parse()
            .map_err(|_| Error::Invalid(format!("Unexpected pid '{}'", fields[pid_col])))?;
        if !pids.contains(&pid) {
            continue;
        }
        let cut = titles.len().saturating_sub(1).min(fields.len());
        let mut row: Vec<String> = fields[..cut].iter().map(|s| s.to_string()).collect();
        row.push(fields[cut..].join(" "));
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

impl Containers {
    /// `docker top NAME [ps OPTIONS]`.
    pub fn top(&self, name: &str, ps_args: &[String]) -> Result<Top> {
        let rec = self.find(name)?;
        if rec.state.status != "running" || !alive(rec.state.pid) {
            return Err(Error::NotRunning(rec.id));
        }
        let pids = pids_in_namespace_of(rec.state.pid)?;
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.to_vec()
        };
        let out = Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::io("ps", e))?;
        if !out.status.success() {
            // The daemon's message: the first line of ps's complaint.
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Invalid(format!(
                "ps: {}",
                err.lines().next().unwrap_or("").trim_end()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_is_parsed_as_dockers_daemon_parses_it() {
        let out = "UID        PID  PPID  C STIME TTY          TIME CMD\n\
                   root         1     0  0 06:24 ?        00:01:33 /sbin/init splash\n\
                   root       200     1  0 06:25 ?        00:00:00 sleep   30\n";
        let t = parse_ps(out, &[200].into_iter().collect()).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(
            t.processes,
            vec![vec![
                "root", "200", "1", "0", "06:25", "?", "00:00:00", "sleep 30"
            ]]
        );
        assert!(parse_ps("USER COMMAND\nroot x\n", &HashSet::new()).is_err());
    }
}
