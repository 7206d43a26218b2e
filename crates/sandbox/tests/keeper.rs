//! The keeper executable on its own, outside bubblewrap: how it ends when
//! the worker goes away. Needs root (the keeper makes its own mount and
//! network namespaces), as the native suite does.

// `pre_exec` is unsafe: the closure below only calls dup2, which is
// async-signal-safe, between fork and exec.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The descriptor the keeper is told its control socket is.
const CONTROL_FD: i32 = 3;

/// Starts the keeper on one end of a socket pair; returns it and the other.
fn keeper() -> (std::process::Child, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs_fd = theirs.as_raw_fd();
    let mut command = Command::new(env!("CARGO_BIN_EXE_code-runner-keeper"));
    command
        .arg(CONTROL_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; the new descriptor has no
    // close-on-exec flag, so the keeper inherits it as fd 3.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(theirs_fd, CONTROL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    // Only the keeper holds its end now.
    drop(command);
    drop(theirs);
    (child, ours)
}

fn assert_quiet_exit(child: std::process::Child) {
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "the keeper printed on its way out"
    );
    assert!(output.status.success(), "{:?}", output.status);
}

/// A worker that exits can leave the keeper writing its answer to a closed
/// socket (the CLI exits while the keeper still answers the job's `Clear`).
/// That is the keeper's normal end: exit 0 and print nothing, as it shares
/// the worker's stderr. Here the worker's end is closed before the keeper
/// even says it is ready, so its first answer meets the closed socket.
#[test]
fn a_keeper_answering_a_worker_that_left_exits_quietly() {
    for _ in 0..3 {
        let (child, ours) = keeper();
        drop(ours);
        assert_quiet_exit(child);
    }
}

/// The other way a worker leaves: after the keeper's answer arrived, but
/// without reading it. The keeper's next read fails with ECONNRESET rather
/// than seeing the end of the stream; it is the same quiet end.
#[test]
fn a_keeper_whose_answer_was_left_unread_exits_quietly() {
    for _ in 0..3 {
        let (child, ours) = keeper();
        // Wait for the keeper's `Ready` without taking it off the socket.
        let mut first = [0u8; 1];
        // SAFETY: a one-byte buffer this function owns.
        let got = unsafe {
            libc::recv(
                ours.as_raw_fd(),
                first.as_mut_ptr().cast(),
                first.len(),
                libc::MSG_PEEK,
            )
        };
        assert_eq!(got, 1, "{}", std::io::Error::last_os_error());
        drop(ours);
        assert_quiet_exit(child);
    }
}
