/// The policy toold ships: what `toold --print-default-policy` prints, what `scripts/install.sh` writes to
/// `/etc/toold/policy.json` when there is none, and what applies when that file is missing. The README
/// explains it line by line (a test keeps that copy identical).
public enum DefaultPolicy {
    public static let json = #"""
{
  "comment": "toold policy. Principals: \"*\", \"user:<name|uid>\", \"group:<name|gid>\". See README, Policy.",
  "approval_timeout_ms": 300000,
  "principals": {
    "*": {
      "comment": "Everyone: nothing allowed; secrets are redacted from every output and record.",
      "redact": [
        {"name": "private_key", "pattern": "-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----BEGIN )[\\s\\S])*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
         "opens": "-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"},
        {"name": "bearer_token", "pattern": "(?i)\\bbearer\\s+[A-Za-z0-9\\-._~+/]{8,}=*"},
        {"name": "aws_access_key", "pattern": "\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b"},
        {"name": "aws_secret_key", "pattern": "(?i)\\baws_secret_access_key\\s*[=:]\\s*[A-Za-z0-9/+=]{40}"},
        {"name": "password", "pattern": "(?i)\\b(?:password|passwd|pwd|secret|api_key|apikey|token)\\s*[=:]\\s*[^\\s\"',;]+"}
      ]
    },
    "group:toold": {
      "comment": "Members of the socket group: the sandboxed built-ins and low-risk tools, no network.",
      "allow": ["shell", "python", "exec", "risk:low"],
      "modes": ["sandbox", "read_only"],
      "limits": {"timeout_ms": 120000, "memory_bytes": 1073741824, "pids": 256, "cpu_millicores": 2000,
                 "output_bytes": 16777216, "file_bytes": 268435456, "tmp_bytes": 268435456},
      "rate": {"per_minute": 120, "per_hour": 3000},
      "concurrency": 4
    },
    "group:toold-admin": {
      "comment": "Admins: every tool in every mode, up to the daemon's maxima.",
      "allow": ["*"],
      "modes": ["sandbox", "read_only", "network", "trusted"]
    },
    "user:root": {
      "comment": "root is an admin.",
      "allow": ["*"],
      "modes": ["sandbox", "read_only", "network", "trusted"]
    }
  }
}
"""#

    /// Redaction rules an earlier toold shipped and later replaced, with why. `scripts/install.sh` never
    /// overwrites an installed policy file, so one written by an older install keeps its rule; a policy
    /// that holds one loads, with a warning (`PolicyDocument.warnings`: journal, `daemon.status`).
    static let superseded: [String: String] = [
        #"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"#:
            "its matching time grows with the square of the text on a run of BEGIN lines without an END, so a sandbox can make its output withheld whole",
        #"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:(?!-----)[\s\S])*-----END [A-Z0-9 ]*PRIVATE KEY-----"#:
            "it misses a key removed in a unified diff (------END) and can overflow the regex engine's stack on a long key",
        #"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:(?!-----BEGIN )[\s\S])*?-----END [A-Z0-9 ]*PRIVATE KEY-----"#:
            "it misses PGP PRIVATE KEY BLOCKs",
    ]
}
