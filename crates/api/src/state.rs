//! What every handler shares: the queue, the language table and the limits.
//!
//! Everything a request needs is computed here once, at start-up (alias
//! lookup, the "Input should be ..." text of the unknown-language error, the
//! body limit), so the handlers only read it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use code_runner_queue::Queue;

use crate::access::{AccessConfig, Submissions};

/// A language the workers can run, as the API shows and accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedLanguage {
    /// Canonical name, the one put in jobs (`python`, `javascript`, `java`,
    /// `cpp`, `c` for the seed's five). Matched case-sensitively.
    pub name: String,
    /// Human-readable toolchain version, e.g. `3.11`.
    pub version: String,
    /// Other names accepted in requests (e.g. `py`), resolved to `name`.
    pub aliases: Vec<String>,
    /// The name the program's source is saved as (`main.py`; `Main.java`
    /// for Java, or the name of its public class). Extra files may not
    /// take it.
    pub file_name: String,
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Largest accepted `code`, in UTF-8 bytes of the decoded string; larger
    /// code is refused with `413` before anything is queued. Extra `files`
    /// count towards it too.
    pub max_code_bytes: usize,
    /// Largest accepted `stdin`, in UTF-8 bytes of the decoded string;
    /// larger is refused with `413` naming the field. With the code limit
    /// it bounds what one job holds in memory and in Redis.
    pub max_stdin_bytes: usize,
    /// Largest `time_limit_ms` a request may ask for: the workers' own limit.
    pub max_time_limit_ms: u64,
    /// Largest `memory_limit_mb` a request may ask for: the workers' own limit.
    pub max_memory_limit_mb: u64,
    /// Longest a request may wait for its result (`?wait`), in seconds.
    pub max_wait_secs: u64,
    /// Most event streams (`GET /results/{id}/events`) one client may hold
    /// open at once (`429` beyond).
    pub max_event_streams_per_client: usize,
    /// Judge mode: most tests one request may give (`422` above it).
    pub max_tests: usize,
    /// Judge mode: largest total of the tests' stdin, expected output and
    /// arguments, in UTF-8 bytes (`413` above it).
    pub max_test_bytes: usize,
    /// Test sets: the largest `POST /testsets` body, in bytes (`413` above
    /// it, before reading it when its `Content-Length` says so).
    pub max_testset_bytes: usize,
    /// Test sets: how long a set is kept after it was last stored, read or
    /// named by a run request.
    pub testset_ttl: std::time::Duration,
    /// API keys, rate limit and CORS; all off by default.
    pub access: AccessConfig,
    /// Judge0's API (`/submissions`, ...): on by default.
    pub judge0: crate::Judge0Config,
    /// Serve the Piston v2 API (`/api/v2/...`, see `piston`); on by default.
    pub piston_api: bool,
}

impl ApiConfig {
    /// Room for JSON framing, `language`, `args` and the other small fields
    /// on top of the code and stdin themselves.
    const BODY_OVERHEAD: usize = 64 * 1024;

    /// The largest request body read at all. Twice the code, stdin and
    /// test-data limits because JSON escapes inflate text (every `"`, `\`
    /// and newline takes two bytes), so code, stdin and tests just under
    /// their limits must still fit in their body.
    pub fn max_body_bytes(&self) -> usize {
        self.max_code_bytes
            .saturating_add(self.max_stdin_bytes)
            .saturating_add(self.max_test_bytes)
            .saturating_mul(2)
            .saturating_add(Self::BODY_OVERHEAD)
    }

    /// The largest `POST /api/v2/execute` body (Piston's API): its files
    /// (the code, up to twice as long hex-encoded) and stdin, doubled for
    /// JSON escapes as [`Self::max_body_bytes`]; no test data.
    pub fn max_piston_body_bytes(&self) -> usize {
        self.max_code_bytes
            .saturating_mul(2)
            .saturating_add(self.max_stdin_bytes)
            .saturating_mul(2)
            .saturating_add(Self::BODY_OVERHEAD)
    }

    /// The largest `POST /submissions` body (Judge0's API): its code,
    /// stdin and expected output, doubled for JSON escapes as
    /// [`Self::max_body_bytes`] (which also covers their base64 form, a
    /// third longer); no test data.
    pub fn max_judge0_body_bytes(&self) -> usize {
        self.max_code_bytes
            .saturating_add(self.max_stdin_bytes.saturating_mul(2))
            .saturating_mul(2)
            .saturating_add(Self::BODY_OVERHEAD)
    }

    /// The largest `POST /submissions/batch` body: as many submissions as
    /// a batch may hold (20), each within [`Self::max_judge0_body_bytes`].
    pub fn max_judge0_batch_body_bytes(&self) -> usize {
        self.max_judge0_body_bytes()
            .saturating_mul(crate::judge0::MAX_BATCH)
    }

    /// A warning to log when the API listens on `address`, beyond loopback,
    /// with neither API keys nor a rate limit: anyone who reaches it may run
    /// code as fast as the workers go.
    pub fn exposure_warning(&self, address: SocketAddr) -> Option<String> {
        let access = &self.access;
        if address.ip().is_loopback() || !access.api_keys.is_empty() || access.rate_limit.is_some()
        {
            return None;
        }
        Some(format!(
            "the API listens beyond loopback ({address}) with neither API keys nor a rate \
             limit: anyone who can reach it may run code and fill the queue; set \
             CODE_RUNNER_API_KEYS or CODE_RUNNER_RATE_LIMIT_PER_MINUTE (or bind 127.0.0.1)"
        ))
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_code_bytes: 1024 * 1024,
            max_stdin_bytes: 256 * 1024,
            max_time_limit_ms: 10_000,
            max_memory_limit_mb: 256,
            max_wait_secs: 60,
            max_event_streams_per_client: 16,
            max_tests: 1_000,
            max_test_bytes: 16 * 1024 * 1024,
            max_testset_bytes: 64 * 1024 * 1024,
            testset_ttl: std::time::Duration::from_secs(24 * 60 * 60),
            access: AccessConfig::default(),
            judge0: crate::Judge0Config::default(),
            piston_api: true,
        }
    }
}

/// The state shared by all handlers. Cloning it is one reference-count
/// increment, as axum does for every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<dyn Queue>,
    languages: Languages,
    config: ApiConfig,
    /// The rate limiter of `POST /run-code`, when one is configured.
    submissions: Option<Submissions>,
    /// The rate limiter of `?wait=` and `DELETE /results/{id}`, when one is
    /// configured.
    waits: Option<Submissions>,
    /// `GET /openapi.json`, generated once from the code and this configuration.
    openapi: Bytes,
    /// Open event streams, per client and in all.
    watchers: crate::live::sse::Watchers,
}

impl AppState {
    /// Builds the state the router serves from.
    ///
    /// Names are matched exactly (case-sensitively). Should a name or alias
    /// appear twice, the first language that claims it keeps it; the language
    /// table is validated where it is loaded, not here.
    pub fn new(
        queue: Arc<dyn Queue>,
        languages: Vec<SupportedLanguage>,
        config: ApiConfig,
    ) -> Self {
        let languages = Languages::new(languages);
        let openapi = crate::openapi::document(&config, &languages);
        Self {
            inner: Arc::new(Inner {
                queue,
                languages,
                submissions: config
                    .access
                    .rate_limit
                    .map(|limit| Submissions::new(limit, "submissions")),
                waits: config
                    .access
                    .wait_rate_limit
                    .map(|limit| Submissions::new(limit, "waits and cancels")),
                config,
                openapi,
                watchers: crate::live::sse::Watchers::default(),
            }),
        }
    }

    pub(crate) fn submissions(&self) -> Option<&Submissions> {
        self.inner.submissions.as_ref()
    }

    pub(crate) fn waits(&self) -> Option<&Submissions> {
        self.inner.waits.as_ref()
    }

    /// Whether requests need their peer address (see `access`): the server
    /// then puts it in each request's extensions.
    pub fn needs_peer_address(&self) -> bool {
        self.inner.config.access.needs_peer_address()
    }

    pub(crate) fn openapi(&self) -> &Bytes {
        &self.inner.openapi
    }

    pub(crate) fn queue(&self) -> &dyn Queue {
        self.inner.queue.as_ref()
    }

    pub(crate) fn languages(&self) -> &Languages {
        &self.inner.languages
    }

    pub(crate) fn watchers(&self) -> &crate::live::sse::Watchers {
        &self.inner.watchers
    }

    pub(crate) fn config(&self) -> &ApiConfig {
        &self.inner.config
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("languages", &self.inner.languages.names)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Name and alias lookup for request validation.
pub(crate) struct Languages {
    /// Canonical names, in table order (the order error messages list them).
    names: Vec<String>,
    /// Every accepted name, canonical or alias, to its index in `names`.
    lookup: HashMap<String, usize>,
    /// pydantic's rendering of the choices: `'python', 'java' or 'c'`.
    expected: String,
    /// The accepted languages in full, parallel to `names` (`GET /languages`).
    entries: Vec<SupportedLanguage>,
}

impl Languages {
    pub(crate) fn new(languages: Vec<SupportedLanguage>) -> Self {
        let mut names = Vec::with_capacity(languages.len());
        let mut entries = Vec::with_capacity(languages.len());
        let mut lookup = HashMap::new();
        for language in languages {
            if lookup.contains_key(&language.name) {
                tracing::warn!(
                    name = %language.name,
                    "language listed twice or shadowed by an alias; ignoring this entry"
                );
                continue;
            }
            let index = names.len();
            lookup.insert(language.name.clone(), index);
            for alias in &language.aliases {
                lookup.entry(alias.clone()).or_insert(index);
            }
            names.push(language.name.clone());
            entries.push(language);
        }
        let expected = pydantic_choices(&names);
        Self {
            names,
            lookup,
            expected,
            entries,
        }
    }

    /// Every accepted language, in table order.
    pub(crate) fn all(&self) -> &[SupportedLanguage] {
        &self.entries
    }

    /// True when `name` is the source file name of any language: an extra
    /// file of that name could clash with a program's own source. (One rule
    /// for every language, so the OpenAPI schema can state it.)
    pub(crate) fn is_source_file_name(&self, name: &str) -> bool {
        self.entries.iter().any(|l| l.file_name == name)
    }

    /// The name the program `code` of `language` (a canonical name) is saved
    /// under: its `file_name`, or for Java the code's public class's
    /// (see `main_file`).
    pub(crate) fn main_file_name<'a>(&'a self, language: &str, code: &str) -> Option<Cow<'a, str>> {
        let entry = &self.entries[*self.lookup.get(language)?];
        Some(crate::main_file::main_file_name(&entry.file_name, code))
    }

    /// The source file names of every language (see `is_source_file_name`).
    pub(crate) fn source_file_names(&self) -> Vec<&str> {
        self.entries.iter().map(|l| l.file_name.as_str()).collect()
    }

    /// The canonical name for `name`, if it is a name or alias we accept.
    pub(crate) fn resolve(&self, name: &str) -> Option<&str> {
        self.lookup
            .get(name)
            .map(|&index| self.names[index].as_str())
    }

    /// The accepted canonical names as pydantic lists them in an enum error.
    pub(crate) fn expected(&self) -> &str {
        &self.expected
    }
}

/// Formats choices the way pydantic v2 does in `enum` errors, so seed clients
/// that show or match the message see the same text: `'a'`, `'a' or 'b'`,
/// `'a', 'b' or 'c'`.
fn pydantic_choices(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_read_like_pydantic() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pydantic_choices(&names(&[])), "");
        assert_eq!(pydantic_choices(&names(&["c"])), "'c'");
        assert_eq!(pydantic_choices(&names(&["java", "c"])), "'java' or 'c'");
        assert_eq!(
            pydantic_choices(&names(&["python", "javascript", "java", "cpp", "c"])),
            "'python', 'javascript', 'java', 'cpp' or 'c'"
        );
    }

    #[test]
    fn first_claim_on_a_name_wins() {
        let language = |name: &str, aliases: &[&str]| SupportedLanguage {
            name: name.into(),
            version: "1".into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            file_name: format!("{name}.x"),
        };
        let table = Languages::new(vec![
            language("python", &["py"]),
            language("pyret", &["py", "python"]),
            language("python", &[]),
        ]);
        assert_eq!(table.resolve("py"), Some("python"));
        assert_eq!(table.resolve("pyret"), Some("pyret"));
        assert_eq!(table.resolve("python"), Some("python"));
        assert_eq!(table.resolve("Python"), None);
        assert_eq!(table.expected(), "'python' or 'pyret'");
    }

    #[test]
    fn only_an_open_listener_beyond_loopback_is_warned_of() {
        let address = |text: &str| text.parse::<SocketAddr>().unwrap();
        let config = ApiConfig::default();
        assert!(config.exposure_warning(address("0.0.0.0:8000")).is_some());
        assert!(config.exposure_warning(address("[::]:8000")).is_some());
        assert!(config.exposure_warning(address("127.0.0.1:8000")).is_none());
        assert!(config.exposure_warning(address("[::1]:8000")).is_none());
        let mut limited = ApiConfig::default();
        limited.access.rate_limit = Some(crate::RateLimit {
            per_minute: 10,
            burst: 10,
        });
        assert!(limited.exposure_warning(address("0.0.0.0:8000")).is_none());
        let mut keyed = ApiConfig::default();
        keyed.access.api_keys = crate::ApiKeys::parse("some-key-0001").unwrap();
        assert!(keyed.exposure_warning(address("0.0.0.0:8000")).is_none());
    }

    #[test]
    fn the_body_limit_has_room_for_escaped_code_and_stdin() {
        let config = ApiConfig::default();
        assert_eq!(
            config.max_body_bytes(),
            2 * (1024 * 1024 + 256 * 1024 + 16 * 1024 * 1024) + 64 * 1024,
            "code, stdin and judge mode's tests, each escaped"
        );
    }
}
