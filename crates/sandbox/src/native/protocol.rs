//! What the worker and a slot's keeper say to each other over their socket.
//!
//! Each message is one frame: a 4-byte little-endian length, then that many
//! bytes of JSON. A `Run` request carries the step's stdin, stdout and stderr
//! as `SCM_RIGHTS` descriptors attached to the first byte of its frame, so the
//! program writes straight into pipes the worker reads: its output never
//! passes through the keeper or a file. A checker's step also carries the
//! test's files (`StepSpec::files`) as descriptors after those three, so test
//! data of any size and any bytes never passes through JSON.

use serde::{Deserialize, Serialize};

/// The longest frame either side accepts: sources and extra files are capped
/// far below this by the API, so a longer length means a broken peer.
pub(crate) const MAX_FRAME: u32 = 64 << 20;

/// Worker to keeper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Start one step in fresh namespaces. Comes with three descriptors
    /// (stdin, stdout, stderr), then one per name in `StepSpec::files`.
    Run(StepSpec),
    /// Kill the running step (the answer is still its `Exited`).
    Kill,
    /// Send this signal to the running step's program (an interactive
    /// run's client); no answer. Ignored between steps.
    Signal(i32),
    /// End the job: detach `/work` and `/judge`, freeing whatever the job
    /// left there, and move to a fresh network namespace for the next one.
    Clear,
}

/// Which of a job's two directories a step sees, and how. The submission's
/// steps and the checker's never see each other's directory: each step's
/// init detaches the other one in the step's own mount namespace before the
/// program is forked (see `keeper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum View {
    /// The submission's compile and runs: `/work`, writable, is the working
    /// directory; `/judge` is not there.
    Solution,
    /// A custom checker's compile: `/judge`, writable, is the working
    /// directory; `/work` is not there.
    CheckerCompile,
    /// A custom checker's run after a test: `/judge`, read-only, is the
    /// working directory; `/work` is not there.
    Checker,
}

/// A job's `/work` or `/judge`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Workspace {
    pub bytes: u64,
    pub inodes: u64,
    /// `(plain file name, contents)`.
    pub files: Vec<(String, String)>,
}

/// One sandboxed command.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StepSpec {
    pub view: View,
    /// On the first step in the view's directory: mount a fresh, empty
    /// tmpfs there (detaching the previous one) and write these files into
    /// it, before the step starts.
    pub workspace: Option<Workspace>,
    /// Plain names of files the keeper writes into the view's directory just
    /// before the step starts (replacing whatever had the name) and removes
    /// when it ends; their contents are the descriptors that follow the three
    /// standard ones, read from offset 0.
    pub files: Vec<String>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `(resource, soft, hard)` for `setrlimit`.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Size and inode count of each of the step's `/tmp` and `/dev/shm`.
    pub tmp_bytes: u64,
    pub tmp_inodes: u64,
    /// Fork the program from the slot's zygote of `argv[0]` instead of
    /// exec'ing `argv` (see `keeper::prefork`): a python run step of a
    /// language with `prefork = true`.
    #[serde(default)]
    pub prefork: bool,
    /// The job's last step: the keeper may answer as soon as the program's
    /// status is in, before the step's init and namespaces are gone (the
    /// next request, a Clear, waits for that). A step followed by another
    /// of the same job is answered only once nothing of it is left, since
    /// the worker reads the slot's cgroup to set the next step's limits.
    #[serde(default)]
    pub last_of_job: bool,
}

/// Keeper to worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// Set up and waiting for requests.
    Ready,
    /// `/work` and `/judge` are cleared (and the network namespace renewed
    /// if the job used it). `helpers`: the processes the keeper keeps in the
    /// slot besides itself between jobs (a prefork zygote), which the
    /// slot's count of processes may hold beyond its fresh baseline.
    /// `standby`: the next step's init is already in the slot, waiting
    /// (counted among the slot's processes when that step starts).
    Done {
        helpers: u32,
        #[serde(default)]
        standby: bool,
    },
    /// The step is over and every one of its processes is gone.
    Exited(StepEnd),
    /// A request could not be carried out; the keeper goes on.
    Failed(String),
}

/// How a step ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct StepEnd {
    /// The program's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed the program (or, when the step was killed from
    /// outside before the program's status was known, SIGKILL).
    pub signal: Option<i32>,
    /// CPU time of every process of the step, user plus system.
    pub cpu_micros: u64,
}

/// Frames `message`: length prefix and JSON.
pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let body = serde_json::to_vec(message).expect("protocol messages serialize");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// The body length announced by a frame's prefix, if acceptable.
pub(crate) fn body_len(prefix: [u8; 4]) -> std::io::Result<usize> {
    let len = u32::from_le_bytes(prefix);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    Ok(len as usize)
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
