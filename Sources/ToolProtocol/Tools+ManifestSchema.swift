// Generated from protocol/schema/tool.manifest.json (ToolManifestSchemaTests checks they are equal).

extension ToolManifest {
    /// The JSON Schema of a manifest (`protocol/schema/tool.manifest.json`), embedded so the static daemon
    /// needs no resource files. The daemon validates every manifest against it before its own checks.
    public static let jsonSchema: String = #"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://toold.local/schema/tool.manifest.json",
  "title": "tool manifest",
  "description": "A tool: what the model reads (name, description, input_schema) and how the sandbox runs it (command, mode, limits). Checks a schema cannot express (input_schema compiles and describes an object; placeholders are whole argv elements naming declared properties; argv[0] is fixed) are made by the daemon at load; see PROTOCOL.md.",
  "type": "object",
  "required": [
    "name",
    "description",
    "category",
    "risk",
    "input_schema",
    "command"
  ],
  "additionalProperties": false,
  "properties": {
    "name": {
      "type": "string",
      "pattern": "^[a-z0-9][a-z0-9_.-]*$",
      "minLength": 1,
      "maxLength": 64,
      "description": "Unique. In the openai and anthropic schema formats '.' reads as '_'; two tools may not differ by that alone."
    },
    "version": {
      "type": "string",
      "minLength": 1,
      "maxLength": 64
    },
    "title": {
      "type": "string",
      "minLength": 1,
      "maxLength": 200
    },
    "description": {
      "type": "string",
      "minLength": 1,
      "maxLength": 8192
    },
    "category": {
      "enum": [
        "computation",
        "web_access",
        "file_system",
        "database",
        "communication",
        "system",
        "custom"
      ]
    },
    "risk": {
      "enum": [
        "low",
        "medium",
        "high",
        "critical"
      ]
    },
    "tags": {
      "type": "array",
      "items": {
        "type": "string",
        "pattern": "^[a-z0-9][a-z0-9_.-]*$",
        "minLength": 1,
        "maxLength": 64
      },
      "uniqueItems": true
    },
    "author": {
      "type": "string",
      "minLength": 1
    },
    "license": {
      "type": "string",
      "minLength": 1
    },
    "documentation_url": {
      "type": "string",
      "pattern": "^https?://[^\\s]+$"
    },
    "input_schema": {
      "type": "object",
      "description": "JSON Schema draft 2020-12 of the arguments, with \"type\": \"object\"; compiled once at load."
    },
    "output_schema": {
      "type": [
        "object",
        "boolean"
      ],
      "description": "JSON Schema of output.value; a mismatch gives status invalid_output."
    },
    "command": {
      "type": "object",
      "required": [
        "argv"
      ],
      "additionalProperties": false,
      "properties": {
        "argv": {
          "type": "array",
          "minItems": 1,
          "items": {
            "type": "string"
          },
          "description": "Never through a shell. An element that is exactly \"{{name}}\" is replaced by the argument (one element, never split); argv[0] is fixed."
        },
        "env": {
          "type": "object",
          "additionalProperties": {
            "type": "string"
          },
          "propertyNames": {
            "pattern": "^[^=]+$",
            "minLength": 1
          },
          "description": "Laid over the base environment; a value that is exactly \"{{name}}\" takes the argument."
        },
        "cwd": {
          "type": "string",
          "pattern": "^/"
        },
        "stdin": {
          "type": "string",
          "pattern": "^(json|none|\\{\\{[A-Za-z0-9_.-]+\\}\\})$",
          "description": "json (default): the arguments object as JSON; none: /dev/null; \"{{name}}\": that string argument."
        }
      }
    },
    "mode": {
      "enum": [
        "sandbox",
        "read_only",
        "network",
        "trusted"
      ]
    },
    "mounts": {
      "type": "array",
      "description": "Host paths bound into the sandbox (admin-installed tools only). Not supported by the sandbox yet: a manifest with mounts is skipped.",
      "items": {
        "type": "object",
        "required": [
          "source",
          "target"
        ],
        "additionalProperties": false,
        "properties": {
          "source": {
            "type": "string",
            "pattern": "^/"
          },
          "target": {
            "type": "string",
            "pattern": "^/"
          },
          "read_only": {
            "type": "boolean"
          }
        }
      }
    },
    "timeout_ms": {
      "type": "integer",
      "minimum": 1
    },
    "limits": {
      "type": "object",
      "additionalProperties": false,
      "description": "As in exec; each value is clamped to the daemon's maximum when the tool runs.",
      "properties": {
        "memory_bytes": {
          "type": "integer",
          "minimum": 4194304
        },
        "pids": {
          "type": "integer",
          "minimum": 1
        },
        "cpu_millicores": {
          "type": "integer",
          "minimum": 10
        },
        "output_bytes": {
          "type": "integer",
          "minimum": 0
        },
        "file_bytes": {
          "type": "integer",
          "minimum": 0
        },
        "tmp_bytes": {
          "type": "integer",
          "minimum": 1048576
        }
      }
    },
    "parallel": {
      "type": "boolean",
      "description": "false: calls of this tool run one at a time."
    },
    "cacheable": {
      "type": "boolean"
    },
    "cache_ttl_s": {
      "type": "integer",
      "minimum": 0,
      "description": "How long a cached result stays valid (default 3600). 0 disables caching."
    },
    "cache_shared": {
      "type": "boolean",
      "description": "true: one cache for every caller (the result does not depend on who asks); default false: per caller uid."
    },
    "idempotent": {
      "type": "boolean"
    },
    "retry": {
      "type": "object",
      "required": [
        "max_attempts"
      ],
      "additionalProperties": false,
      "description": "Only with \"idempotent\": true.",
      "properties": {
        "max_attempts": {
          "type": "integer",
          "minimum": 1,
          "maximum": 10
        },
        "initial_backoff_ms": {
          "type": "integer",
          "minimum": 0,
          "maximum": 60000
        },
        "max_backoff_ms": {
          "type": "integer",
          "minimum": 0,
          "maximum": 600000
        },
        "on": {
          "type": "array",
          "uniqueItems": true,
          "minItems": 1,
          "items": {
            "enum": [
              "exited",
              "signaled",
              "timeout",
              "oom",
              "output_limit",
              "failed_to_start",
              "invalid_output"
            ]
          },
          "description": "Statuses that cause another attempt (default [\"exited\", \"timeout\"]); exited means a non-zero exit code."
        }
      }
    },
    "required_permissions": {
      "type": "array",
      "items": {
        "type": "string",
        "minLength": 1
      },
      "uniqueItems": true
    },
    "requires_approval": {
      "type": "boolean"
    }
  },
  "dependentSchemas": {
    "retry": {
      "required": [
        "idempotent"
      ],
      "properties": {
        "idempotent": {
          "const": true
        }
      }
    }
  }
}
"""#
}
