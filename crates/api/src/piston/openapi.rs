//! The Piston routes in the OpenAPI document, tagged `piston`, with the
//! values of this configuration (language names, the largest limits).
//!
//! Written as JSON rather than derived: the request is read by hand
//! (`request`) and its limits are unions (`-1`, `0`, or a range) that are
//! plainer to state directly. The WebSocket `/api/v2/connect` is not an
//! HTTP operation OpenAPI can describe; the tag's description mentions it.
//! Two rules of a request no JSON Schema states: that `version` (a SemVer
//! range) selects an installed version, and that a `base64`/`hex` file
//! decodes to UTF-8 text; requests breaking only those get a `400`.

use serde_json::{json, Value};

use crate::request::{FILE_NAME_PATTERN, MAX_ARGS, MAX_ARG_CHARS, MAX_FILES, MIN_MEMORY_LIMIT_MB};
use crate::state::{ApiConfig, Languages};

use super::runtimes::Runtimes;

const MIB: u64 = 1024 * 1024;

/// Adds the Piston paths and schemas to `doc`, when the API is on.
pub(crate) fn document(doc: &mut Value, config: &ApiConfig, languages: &Languages) {
    if !config.piston_api {
        return;
    }
    let runtimes = Runtimes::new(languages.all());
    let names: Vec<&str> = runtimes
        .all()
        .iter()
        .flat_map(|r| {
            std::iter::once(r.language.as_str()).chain(r.aliases.iter().map(String::as_str))
        })
        .collect();
    let error = json!({"$ref": "#/components/schemas/PistonError"});
    let answer = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error}}});
    let nullable_limit = |maximum: Option<u64>, description: &str| {
        let mut range = json!({"type": "number", "minimum": 0});
        if let Some(maximum) = maximum {
            range["maximum"] = json!(maximum);
        }
        json!({
            "description": description,
            "anyOf": [{"type": "null"}, {"const": -1}, range],
        })
    };
    let max_bytes = config.max_memory_limit_mb * MIB;
    let paths = json!({
        "/api/v2/execute": {"post": {
            "tags": ["piston"],
            "operationId": "piston_execute",
            "summary": "Run a program and answer when it is done (Piston v2)",
            "description": "Piston's `POST /api/v2/execute`: runs `files[0]` (the other files \
                are written next to it) and answers its compile and run stages. The body is read \
                as JSON whatever its `Content-Type`. See docs/piston.md.",
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PistonExecuteRequest"}
            }}},
            "responses": {
                "200": {"description": "The program ran (or could not be run: `run.status` says so)",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/PistonExecuteResponse"}}}},
                "400": answer("Invalid request (Piston's message)"),
                "401": answer("API key missing or wrong (only when keys are configured)"),
                "408": answer("The body did not arrive within the body-read timeout"),
                "413": answer("Files, stdin or body over the limit"),
                "429": answer("Rate limit exceeded, or too many unfinished jobs"),
                "503": answer("Queue unavailable or full, or too many connections"),
            },
        }},
        "/api/v2/runtimes": {"get": {
            "tags": ["piston"],
            "operationId": "piston_runtimes",
            "summary": "The languages, Piston's way (Piston v2)",
            "responses": {"200": {"description": "Every runtime", "content": {"application/json": {
                "schema": {"type": "array",
                           "items": {"$ref": "#/components/schemas/PistonRuntime"}}}}}},
        }},
    });
    let stage = json!({
        "type": "object",
        "required": ["stdout", "stderr", "output", "code", "signal", "message", "status",
                     "cpu_time", "wall_time", "memory"],
        "properties": {
            "stdout": {"type": "string"},
            "stderr": {"type": "string"},
            "output": {"type": "string", "description": "stdout, then stderr"},
            "code": {"type": ["integer", "null"], "description": "Exit code; null when killed"},
            "signal": {"type": ["string", "null"], "description": "Signal name, e.g. SIGKILL"},
            "message": {"type": ["string", "null"]},
            "status": {"description": "null on success; RE, SG, TO, OL or XX",
                       "anyOf": [{"type": "null"},
                                 {"type": "string", "enum": ["RE", "SG", "TO", "OL", "EL", "XX"]}]},
            "cpu_time": {"type": ["integer", "null"], "minimum": 0, "description": "Milliseconds"},
            "wall_time": {"type": ["integer", "null"], "minimum": 0, "description": "Milliseconds"},
            "memory": {"type": ["integer", "null"], "minimum": 0, "description": "Peak, in bytes"},
        },
    });
    let schemas = json!({
        "PistonExecuteRequest": {
            "type": "object",
            "required": ["language", "version", "files"],
            "properties": {
                "language": {"type": "string", "enum": names,
                             "description": "A language name or alias (see GET /api/v2/runtimes)"},
                "version": {"type": "string", "examples": ["*", "3.x", "3.11.0"],
                            "description": "A node-semver range the runtime's version must satisfy"},
                "files": {
                    "type": "array", "minItems": 1, "maxItems": MAX_FILES + 1,
                    "description": "files[0] is the program; the others are written next to it",
                    "items": {
                        "type": "object",
                        "required": ["content"],
                        "properties": {
                            "name": {"type": ["string", "null"],
                                     "pattern": format!("^$|{FILE_NAME_PATTERN}")},
                            "content": {"type": "string"},
                            "encoding": {"type": ["string", "null"],
                                         "description": "utf8 (default), base64 or hex; others are utf8"},
                        },
                    },
                },
                "stdin": {"type": ["string", "null"],
                          "description": "A newline is appended when it does not end with one"},
                "args": {"type": ["array", "null"], "maxItems": MAX_ARGS,
                         "items": {"type": "string", "maxLength": MAX_ARG_CHARS,
                                   "pattern": "^[^\\u0000]*$"}},
                "run_timeout": nullable_limit(Some(config.max_time_limit_ms),
                    "Wall-time limit of the run, in ms; -1: the server's maximum; 0 or absent: 3000"),
                "run_cpu_time": nullable_limit(Some(config.max_time_limit_ms),
                    "CPU-time limit of the run, in ms (the smaller of it and run_timeout applies)"),
                "compile_timeout": nullable_limit(None, "Checked, not applied (ms)"),
                "compile_cpu_time": nullable_limit(None, "Checked, not applied (ms)"),
                "compile_memory_limit": nullable_limit(None, "Checked, not applied (bytes)"),
                "run_memory_limit": {
                    "description": "Memory limit of the run, in bytes (whole MiB apply); -1, 0 or absent: the server's maximum",
                    "anyOf": [{"type": "null"}, {"const": -1}, {"const": 0},
                              {"type": "number", "minimum": MIN_MEMORY_LIMIT_MB * MIB,
                               "maximum": max_bytes}],
                },
            },
        },
        "PistonExecuteResponse": {
            "type": "object",
            "required": ["language", "version", "run"],
            "properties": {
                "language": {"type": "string"},
                "version": {"type": "string"},
                "run": {"$ref": "#/components/schemas/PistonStage"},
                "compile": {"$ref": "#/components/schemas/PistonStage"},
            },
        },
        "PistonStage": stage,
        "PistonRuntime": {
            "type": "object",
            "required": ["language", "version", "aliases"],
            "properties": {
                "language": {"type": "string"},
                "version": {"type": "string"},
                "aliases": {"type": "array", "items": {"type": "string"}},
                "runtime": {"type": "string"},
            },
        },
        "PistonError": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": {"type": "string"}},
        },
    });
    if let (Some(all), Value::Object(mine)) = (doc["paths"].as_object_mut(), paths) {
        all.extend(mine);
    }
    if let (Some(all), Value::Object(mine)) =
        (doc["components"]["schemas"].as_object_mut(), schemas)
    {
        all.extend(mine);
    }
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({
            "name": "piston",
            "description": "The Piston v2 API: a Piston client works with base URL \
                `http://<host>/api/v2`. The WebSocket `/api/v2/connect` is refused (501): \
                live input and output are not supported yet. See docs/piston.md.",
        }));
    }
    if !config.access.api_keys.is_empty() {
        doc["paths"]["/api/v2/execute"]["post"]["security"] =
            json!([{"bearer": []}, {"apiKey": []}]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SupportedLanguage;

    fn languages() -> Languages {
        Languages::new(vec![SupportedLanguage {
            name: "cpp".into(),
            version: "g++ 12".into(),
            aliases: vec!["c++".into()],
            file_name: "main.cpp".into(),
        }])
    }

    #[test]
    fn the_paths_are_tagged_and_configured() {
        let doc: Value = serde_json::from_slice(&crate::openapi::document(
            &ApiConfig::default(),
            &languages(),
        ))
        .unwrap();
        for (path, method) in [("/api/v2/execute", "post"), ("/api/v2/runtimes", "get")] {
            assert_eq!(
                doc["paths"][path][method]["tags"],
                json!(["piston"]),
                "{path}"
            );
        }
        let request = &doc["components"]["schemas"]["PistonExecuteRequest"]["properties"];
        assert_eq!(request["language"]["enum"], json!(["c++", "cpp", "g++"]));
        assert_eq!(request["run_timeout"]["anyOf"][2]["maximum"], json!(10_000));
        assert!(doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tag| tag["name"] == "piston"));

        let off = ApiConfig {
            piston_api: false,
            ..ApiConfig::default()
        };
        let doc: Value =
            serde_json::from_slice(&crate::openapi::document(&off, &languages())).unwrap();
        assert!(doc["paths"].get("/api/v2/execute").is_none());
    }
}
