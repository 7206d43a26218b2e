//! The Judge0 routes in the service's OpenAPI document, tagged `judge0`
//! (added to the generated document as JSON, only while they are served).
//!
//! Judge0 casts its inputs as Rails does (`"language_id": "71"` is a number,
//! `base64_encoded=true` changes what a valid `source_code` is), which a
//! JSON Schema cannot state; the schemas below describe the usual shapes.

use serde_json::{json, Value};

use super::request::{Limits, MIN_MEMORY_LIMIT_KB};
use super::response::ALL_FIELDS;
use super::tables::IDS;
use super::MAX_BATCH;
use crate::state::ApiConfig;

fn error_body(example: &str) -> Value {
    json!({"description": example, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Judge0Error"}}}})
}

fn json_body(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// Adds the Judge0 paths, schemas and tag to `doc`.
pub(crate) fn add_paths(doc: &mut Value, config: &ApiConfig) {
    let limits = Limits::of(config);
    let ids: Vec<u32> = IDS.iter().map(|m| m.id).collect();
    let schemas = &mut doc["components"]["schemas"];
    schemas["Judge0Submission"] = json!({
        "type": "object",
        "description": "A Judge0 submission (docs/judge0.md). With `base64_encoded=true`, `source_code`, `stdin` and `expected_output` are base64.",
        "required": ["source_code", "language_id"],
        "properties": {
            "source_code": {"type": "string", "pattern": "\\S", "description": "Not blank"},
            "language_id": {"type": "integer", "enum": ids},
            "stdin": {"type": ["string", "null"]},
            "expected_output": {"type": ["string", "null"]},
            "compiler_options": {"type": ["string", "null"], "maxLength": 512, "description": "Accepted, not applied"},
            "command_line_arguments": {"type": ["string", "null"], "maxLength": 512},
            "cpu_time_limit": {"type": "number", "minimum": 0, "maximum": limits.max_cpu_time_limit, "description": "Seconds"},
            "cpu_extra_time": {"type": "number", "minimum": 0, "maximum": 5, "description": "Accepted, not applied"},
            "wall_time_limit": {"type": "number", "minimum": 1, "maximum": limits.max_wall_time_limit, "description": "Seconds"},
            "memory_limit": {"type": "integer", "minimum": MIN_MEMORY_LIMIT_KB, "maximum": limits.max_memory_limit, "description": "KB"},
            "stack_limit": {"type": "integer", "minimum": 0, "maximum": 128_000},
            "max_processes_and_or_threads": {"type": "integer", "minimum": 1, "maximum": 120},
            "enable_per_process_and_thread_time_limit": {"type": "boolean"},
            "enable_per_process_and_thread_memory_limit": {"type": "boolean"},
            "max_file_size": {"type": "integer", "minimum": 0, "maximum": 4096},
            "redirect_stderr_to_stdout": {"type": "boolean"},
            "enable_network": {"type": "boolean", "enum": [false]},
            "number_of_runs": {"type": "integer", "minimum": 1, "maximum": 20},
            "callback_url": {"type": ["string", "null"], "description": "An http:// URL; PUT when finished"},
        },
    });
    // Judge0 reads `null` as absent: every optional field may be null.
    if let Some(properties) = schemas["Judge0Submission"]["properties"].as_object_mut() {
        for (name, property) in properties.iter_mut() {
            if name == "source_code" || name == "language_id" {
                continue;
            }
            if let Some(kind) = property["type"].as_str() {
                property["type"] = json!([kind, "null"]);
            }
            if let Some(values) = property.get_mut("enum").and_then(Value::as_array_mut) {
                values.push(Value::Null);
            }
        }
    }
    schemas["Judge0Result"] = json!({
        "type": "object",
        "description": "The submission's fields asked for with `fields` (default: token, time, memory, stdout, stderr, compile_output, message, status; `*`: all 35).",
        "properties": {
            "token": {"type": "string", "format": "uuid"},
            "status": {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 14}, "description": {"type": "string"}}},
            "stdout": {"type": ["string", "null"]},
            "stderr": {"type": ["string", "null"]},
            "compile_output": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]},
            "time": {"type": ["string", "null"], "description": "CPU seconds, e.g. \"0.012\""},
            "memory": {"type": ["integer", "null"], "description": "KB"},
        },
    });
    schemas["Judge0Error"] = json!({
        "type": "object",
        "description": "`{\"error\": \"...\"}`; a 404 adds `\"status\": 404`.",
        "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    });
    schemas["Judge0ValidationError"] = json!({
        "type": "object",
        "description": "Each invalid field and its messages",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    });
    let query = |name: &str, description: &str| json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}});
    let base64 = query("base64_encoded", "`true`: text fields are base64");
    let mut fields = query("fields", "Comma-separated field names, or `*`");
    fields["schema"]["pattern"] = json!(format!(
        "^(\\*|({names})(,({names}))*)?$",
        names = ALL_FIELDS.join("|")
    ));
    let tokens = json!({"name": "tokens", "in": "query", "required": true,
        "description": "Comma-separated tokens, at most 20 (or a `tokens` header)",
        "schema": {"type": "string", "pattern": "^,*[^,]+(,+[^,]+){0,19},*$"}});
    let token = json!({"name": "token", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let submission = json!({"$ref": "#/components/schemas/Judge0Submission"});
    let result = json!({"$ref": "#/components/schemas/Judge0Result"});
    let invalid = json_body(
        "Invalid fields",
        json!({"$ref": "#/components/schemas/Judge0ValidationError"}),
    );
    let refusals = |mut responses: Value| {
        for (status, text) in [
            (
                "401",
                "API key missing or wrong (only when keys are configured)",
            ),
            ("413", "Body too large"),
            ("429", "Rate limit or unfinished-jobs cap"),
            ("503", "Queue full or unavailable"),
        ] {
            responses[status] = error_body(text);
        }
        responses
    };
    let paths = &mut doc["paths"];
    paths["/submissions"] = json!({"post": {
        "tags": ["judge0"], "operationId": "judge0_create_submission",
        "summary": "Create a submission (Judge0)",
        "parameters": [base64, query("wait", "`true`: answer once finished"), fields],
        "requestBody": {"required": true, "content": {"application/json": {"schema": submission}}},
        "responses": refusals(json!({
            "201": json_body("`{\"token\"}`; with `wait=true`, the submission", result.clone()),
            "400": error_body("Invalid `fields` or malformed JSON"),
            "422": invalid,
        })),
    }});
    paths["/submissions/{token}"] = json!({"get": {
        "tags": ["judge0"], "operationId": "judge0_get_submission",
        "summary": "Get a submission (Judge0)",
        "parameters": [token, base64, fields],
        "responses": refusals(json!({
            "200": json_body("The submission", result.clone()),
            "400": error_body("Invalid `fields`"),
            "404": error_body("Unknown token"),
        })),
    }});
    paths["/submissions/batch"] = json!({
        "post": {
            "tags": ["judge0"], "operationId": "judge0_create_batch",
            "summary": "Create up to 20 submissions (Judge0)",
            "parameters": [base64],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["submissions"],
                "properties": {"submissions": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": submission}},
            }}}},
            "responses": refusals(json!({
                "201": json_body("A token or an error object per submission", json!({"type": "array", "items": {"type": "object"}})),
                "400": error_body("No submission, or more than 20"),
                "422": json_body("Every submission is invalid", json!({"type": "array", "items": {"type": "object"}})),
            })),
        },
        "get": {
            "tags": ["judge0"], "operationId": "judge0_get_batch",
            "summary": "Get up to 20 submissions (Judge0)",
            "parameters": [tokens, base64, fields],
            "responses": refusals(json!({
                "200": json_body("`{\"submissions\": [...]}`, `null` for an unknown token", json!({
                    "type": "object", "properties": {"submissions": {"type": "array", "items": {"anyOf": [result, {"type": "null"}]}}},
                })),
                "400": error_body("No token, more than 20, or invalid `fields`"),
            })),
        },
    });
    let table = |operation: &str, summary: &str| {
        json!({"get": {
            "tags": ["judge0"], "operationId": operation, "summary": summary,
            "responses": {"200": json_body(summary, json!({}))},
        }})
    };
    paths["/languages/all"] = table("judge0_all_languages", "Every accepted Judge0 language id");
    paths["/languages/{id}"] = json!({"get": {
        "tags": ["judge0"], "operationId": "judge0_language", "summary": "A Judge0 language",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "responses": {
            "200": json_body("The language", json!({"type": "object"})),
            "404": error_body("Not a language id this service accepts"),
        },
    }});
    paths["/statuses"] = table("judge0_statuses", "Judge0's 14 statuses");
    paths["/about"] = table("judge0_about", "Judge0 version this API follows (1.13.1)");
    paths["/config_info"] = table("judge0_config_info", "Judge0's 39 configuration keys");
    paths["/workers"] = json!({"get": {
        "tags": ["judge0"], "operationId": "judge0_workers", "summary": "The queue and the workers' slots",
        "responses": {
            "200": json_body("One queue", json!({"type": "array"})),
            "401": error_body("API key missing or wrong (only when keys are configured)"),
            "503": error_body("Queue unavailable"),
        },
    }});
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(
            json!({"name": "judge0", "description": "Judge0 CE 1.13.1's API (docs/judge0.md)"}),
        );
    }
    if !config.access.api_keys.is_empty() {
        for (path, method) in [
            ("/submissions", "post"),
            ("/submissions/{token}", "get"),
            ("/submissions/batch", "post"),
            ("/submissions/batch", "get"),
            ("/workers", "get"),
        ] {
            doc["paths"][path][method]["security"] = json!([{"bearer": []}, {"apiKey": []}]);
        }
    }
    if config.access.rate_limit.is_none() {
        for path in ["/submissions", "/submissions/batch"] {
            if let Some(responses) = doc["paths"][path]["post"]["responses"].as_object_mut() {
                responses.remove("429");
            }
        }
    }
}
