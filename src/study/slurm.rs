//! `tunnelbench slurm`: sbatch scripts that run a study's shards as a job array and merge them in
//! a collect job that starts after every array task succeeded.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::results::write_atomic;

/// What the scripts run.
#[derive(Clone, Debug)]
pub struct SlurmJob {
    /// The tunnelbench binary on the cluster (absolute path).
    pub bin: PathBuf,
    /// The study scenario (absolute path).
    pub scenario: PathBuf,
    /// The study output folder shared by every task (absolute path).
    pub out: PathBuf,
    pub shards: usize,
    /// `--set` overrides passed to every shard.
    pub sets: Vec<String>,
    pub backend: Option<String>,
    /// Extra `#SBATCH` options, e.g. `--partition=gpu` or `--time=04:00:00`.
    pub sbatch: Vec<String>,
    pub job_name: String,
}

/// Quote a word for bash.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn header(job: &SlurmJob, name: &str, log: &str) -> String {
    let mut s = String::from("#!/usr/bin/env bash\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", sh_quote(name)));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        sh_quote(&job.out.join("slurm").join(log).to_string_lossy())
    ));
    for o in &job.sbatch {
        let o = o.trim_start_matches('-');
        s.push_str(&format!("#SBATCH --{o}\n"));
    }
    s
}

/// The job-array script: task I of N runs shard I/N.
pub fn array_script(job: &SlurmJob) -> String {
    let mut s = header(job, &job.job_name, "shard-%a.log");
    s.push_str(&format!("#SBATCH --array=0-{}\n", job.shards.saturating_sub(1)));
    s.push_str("set -euo pipefail\n");
    let mut cmd = vec![
        sh_quote(&job.bin.to_string_lossy()),
        "run".into(),
        sh_quote(&job.scenario.to_string_lossy()),
        "--shard".into(),
        format!("\"${{SLURM_ARRAY_TASK_ID}}/{}\"", job.shards),
        "--out".into(),
        sh_quote(&job.out.to_string_lossy()),
        "--quiet".into(),
    ];
    if let Some(b) = &job.backend {
        cmd.push("--backend".into());
        cmd.push(sh_quote(b));
    }
    for set in &job.sets {
        cmd.push("--set".into());
        cmd.push(sh_quote(set));
    }
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    s
}

/// The collect script, submitted with `--dependency=afterok:<array job id>`.
pub fn collect_script(job: &SlurmJob) -> String {
    let mut s = header(job, &format!("{}-collect", job.job_name), "collect.log");
    s.push_str("set -euo pipefail\n");
    let out = sh_quote(&job.out.to_string_lossy());
    s.push_str(&format!(
        "exec {} collect {out} --out {out}\n",
        sh_quote(&job.bin.to_string_lossy())
    ));
    s
}

/// Submits the array, then the collect job depending on it; prints both job ids.
pub fn submit_script() -> String {
    "#!/usr/bin/env bash\n\
     # Submit the shard array, then the collect job that runs after every shard succeeded.\n\
     set -euo pipefail\n\
     cd \"$(dirname \"$0\")\"\n\
     array_id=$(sbatch --parsable array.sbatch)\n\
     array_id=${array_id%%;*}\n\
     collect_id=$(sbatch --parsable --dependency=afterok:${array_id} collect.sbatch)\n\
     collect_id=${collect_id%%;*}\n\
     echo \"array job ${array_id}, collect job ${collect_id}\"\n"
        .to_string()
}

/// Write array.sbatch, collect.sbatch and submit.sh into `<out>/slurm/`; returns that folder.
pub fn write_scripts(job: &SlurmJob) -> Result<PathBuf> {
    if job.shards == 0 {
        return Err(Error::usage("--shards must be at least 1"));
    }
    let dir = job.out.join("slurm");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    write_atomic(&dir.join("array.sbatch"), array_script(job).as_bytes())?;
    write_atomic(&dir.join("collect.sbatch"), collect_script(job).as_bytes())?;
    let submit = dir.join("submit.sh");
    write_atomic(&submit, submit_script().as_bytes())?;
    make_executable(&submit)?;
    Ok(dir)
}

#[cfg(unix)]
fn make_executable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(p, e))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<()> {
    Ok(())
}

/// An absolute form of `p` (the scripts run from another working directory).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    Ok(cwd.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/a/b.toml"), "/a/b.toml");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
