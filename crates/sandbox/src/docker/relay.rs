//! Joins two job containers' standard streams for an interactive test: the
//! worker relays one container's stdout into the other's stdin and back
//! (their only way to talk), since two containers share no pipe.
//!
//! What a container writes on stdout reaches the worker through the
//! engine's attach stream, followed at the end by the init's status record
//! (`launch`), which must not reach the other program. A [`Relay`] passes
//! every byte on as soon as it cannot be the start of that record (only a
//! tail that is a proper prefix of `"\0code-runner-init:<nonce>:"` waits for
//! the next bytes: text protocols never wait), stops at the record, and
//! keeps the stream's last bytes to find the record in.

use std::time::Duration;

use super::launch::RECORD_MAX;

/// The longest bytes that could begin the init's record are held back
/// waiting for what follows: the init writes its record in one write (far
/// below `PIPE_BUF`), so a start left alone this long is the program's.
pub(crate) const HOLD_AT_MOST: Duration = Duration::from_millis(5);

/// A step's side of an interactive test: where its stdin comes from (the
/// other container's stdout; end of input when the sender is dropped) and
/// where its stdout goes.
pub(crate) struct Link {
    pub input: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pub output: tokio::sync::mpsc::Sender<Vec<u8>>,
}

/// The two links of a pair of containers, each one's output the other's
/// input. Chunks in flight are bounded, so a side that floods a reader
/// that does not read is held back, as by a full pipe.
pub(crate) fn pair() -> (Link, Link) {
    const IN_FLIGHT: usize = 16;
    let (a_out, b_in) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let (b_out, a_in) = tokio::sync::mpsc::channel(IN_FLIGHT);
    (
        Link {
            input: a_in,
            output: a_out,
        },
        Link {
            input: b_in,
            output: b_out,
        },
    )
}

/// One container's stdout on its way to the other's stdin.
pub(crate) struct Relay {
    /// `"\0code-runner-init:<nonce>:"`: where the init's record starts.
    marker: Vec<u8>,
    /// Bytes that may be the start of the record, not passed on yet.
    held: Vec<u8>,
    /// The stream's last bytes (the record, once it came).
    tail: Vec<u8>,
    /// The record was seen: nothing more is passed on.
    ended: bool,
}

impl Relay {
    pub(crate) fn new(nonce: &str) -> Self {
        let mut marker = b"\0code-runner-init:".to_vec();
        marker.extend_from_slice(nonce.as_bytes());
        marker.push(b':');
        Self {
            marker,
            held: Vec::new(),
            tail: Vec::new(),
            ended: false,
        }
    }

    /// Takes a chunk of stdout; answers the bytes to pass on now.
    pub(crate) fn take(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.tail.extend_from_slice(chunk);
        let keep = 2 * RECORD_MAX;
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
        if self.ended {
            return Vec::new();
        }
        self.held.extend_from_slice(chunk);
        if let Some(at) = find(&self.held, &self.marker) {
            self.ended = true;
            let out = self.held[..at].to_vec();
            self.held = Vec::new();
            return out;
        }
        // The longest end of what is held that could begin the marker.
        let hold = (1..self.marker.len().min(self.held.len() + 1))
            .rev()
            .find(|&len| self.held.ends_with(&self.marker[..len]))
            .unwrap_or(0);
        let pass = self.held.len() - hold;
        self.held.drain(..pass).collect()
    }

    /// Whether bytes are held back.
    pub(crate) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// The bytes held back, to pass on now: nothing followed them within
    /// [`HOLD_AT_MOST`], so they are not the init's record.
    pub(crate) fn release(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// The stream's last bytes, where the init's record is once it came.
    pub(crate) fn tail(&self) -> &[u8] {
        &self.tail
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_passes_at_once_and_the_record_never() {
        let mut relay = Relay::new("n0nce");
        assert_eq!(relay.take(b"500000000\n"), b"500000000\n");
        assert_eq!(relay.take(b"higher\n"), b"higher\n");
        // The record, cut across chunks: nothing of it passes.
        assert_eq!(relay.take(b"=\n\0code-run"), b"=\n");
        assert_eq!(relay.take(b"ner-init:n0nce:0:0:1:2:0\n"), b"");
        assert!(relay
            .tail()
            .ends_with(b"\0code-runner-init:n0nce:0:0:1:2:0\n"));
        assert_eq!(relay.take(b"late"), b"");
    }

    #[test]
    fn a_nul_that_is_not_the_record_is_passed_on_with_the_next_bytes() {
        let mut relay = Relay::new("n0nce");
        assert_eq!(relay.take(b"ab\0"), b"ab");
        assert!(relay.holding());
        assert_eq!(relay.take(b"x"), b"\0x");
        // A NUL at the end of a message, nothing after it: released.
        assert_eq!(relay.take(b"hello\0"), b"hello");
        assert_eq!(relay.release(), b"\0");
        assert!(!relay.holding());
        // A forged record with another nonce is just bytes.
        assert_eq!(
            relay.take(b"\0code-runner-init:other:0\n"),
            b"\0code-runner-init:other:0\n"
        );
    }
}
