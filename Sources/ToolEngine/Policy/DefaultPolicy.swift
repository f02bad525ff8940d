import ToolProtocol

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
        {"name": "bearer_token", "pattern": "(?i)\\bbearer\\s+[A-Za-z0-9\\-._~+/]{8,}=*",
         "opens": "(?i)\\bbearer(?=\\s+\\z)"},
        {"name": "aws_access_key", "pattern": "\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b"},
        {"name": "aws_secret_key", "pattern": "(?i)\\baws_secret_access_key\\s*[=:]\\s*[A-Za-z0-9/+=]{40}",
         "opens": "(?i)\\baws_secret_access_key(?=\\s*(?:[=:]\\s*)?\\z)"},
        {"name": "password", "pattern": "(?i)\\b(?:password|passwd|pwd|secret|api_key|apikey|token)\\s*[=:]\\s*(?!(?<=(?-i:\\bPWD=))/)[^\\s\"',;]+",
         "opens": "(?i)\\b(?:password|passwd|pwd|secret|api_key|apikey|token)(?=\\s*(?:[=:]\\s*)?\\z)"}
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

    /// The patterns of the shipped redaction rules that come with an `opens`, read from `json`. A policy
    /// written by an earlier install may hold one without it (`bearer_token`, `aws_secret_key` and
    /// `password` gained theirs later): it loads with a warning, since a stream then matches it within one
    /// release only, and a value printed on the line after its label goes out in clear.
    static let patternsWithOpens: Set<String> = {
        guard case .object(let top)? = try? JSONCoding.parse(Array(json.utf8)),
            case .object(let principals)? = top["principals"], case .object(let everyone)? = principals["*"],
            case .array(let rules)? = everyone["redact"]
        else { return [] }
        return Set(rules.compactMap { rule -> String? in
            guard case .object(let o) = rule, o["opens"] != nil, case .string(let pattern)? = o["pattern"] else { return nil }
            return pattern
        })
    }()

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
        #"(?i)\b(?:password|passwd|pwd|secret|api_key|apikey|token)\s*[=:]\s*[^\s"',;]+"#:
            "it takes the shell's PWD=/… (the working directory, in every `env` listing) for a password",
    ]
}
