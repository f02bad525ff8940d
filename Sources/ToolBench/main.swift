// ToolBench: in-process microbenchmarks for scripts/bench.
//
// Times the per-call work toold does in-process that later issues budget against `exec`'s p50:
//   - JSON Schema validation of a typical tool call (issue 4: ~20 properties, nested objects, patterns,
//     enums), with a schema compiled once as the registry does when a manifest loads;
//   - the same with the argument bytes parsed first (what a call costs end to end when arguments arrive
//     as JSON text), an invalid instance (error reporting path) and compiling the schema (load time);
//   - the policy check of one call (issue 5): `PolicyService.authorize` under the shipped default policy
//     with rates, a cooldown and a deny pattern added (so every step runs), for a caller in two groups,
//     on a clock that moves one second per call; and redacting a 1 KiB output with the shipped patterns
//     (every result is redacted before it leaves);
//   - recording one execution (issue 6): the start and the end record of an `exec`, two SQLite
//     transactions on a fresh database in a temporary directory, as the daemon writes them. This one is
//     wall time (SQLite waits on the file system), also the median of batches.
//
// Usage: ToolBench [--json] [--quick]
// Times are CPU time of the benchmarking thread (CLOCK_THREAD_CPUTIME_ID), median of the batches.
// Prints one line per benchmark (or one JSON object with --json). Exit status 1 when the schema does not
// compile or the instances do not validate as expected (a broken measurement, not a slow one).

import Foundation
import JSONSchema
import Logging
import ToolEngine
import ToolProtocol
import ToolRecords

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Fixtures

/// A realistic tool-argument schema, as a manifest would ship it: 20 top-level properties, nested
/// objects (limits, mounts[], output), arrays, enums, a const, numeric bounds and seven patterns.
let schemaText = #"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["command", "cwd"],
  "properties": {
    "command": {"type": "string", "minLength": 1, "maxLength": 4096},
    "args": {"type": "array", "items": {"type": "string", "maxLength": 4096}, "maxItems": 256},
    "cwd": {"type": "string", "pattern": "^/[^\\u0000]*$"},
    "env": {
      "type": "object",
      "propertyNames": {"pattern": "^[A-Z_][A-Z0-9_]*$"},
      "additionalProperties": {"type": "string"}
    },
    "timeoutMs": {"type": "integer", "minimum": 1, "maximum": 600000},
    "memoryMiB": {"type": "integer", "minimum": 16, "maximum": 65536, "multipleOf": 16},
    "cpuShares": {"type": "number", "exclusiveMinimum": 0, "maximum": 64},
    "network": {"enum": ["none", "loopback", "full"]},
    "stdin": {"type": ["string", "null"]},
    "encoding": {"const": "utf-8"},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9-]+$"}, "uniqueItems": true},
    "priority": {"type": "integer", "enum": [0, 1, 2, 3]},
    "dryRun": {"type": "boolean"},
    "user": {"type": "string", "pattern": "^[a-z_][a-z0-9_-]{0,31}$"},
    "retries": {"type": "integer", "minimum": 0, "maximum": 5},
    "requestId": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
    "limits": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "pids": {"type": "integer", "minimum": 1, "maximum": 4096},
        "openFiles": {"type": "integer", "minimum": 3},
        "outputBytes": {"type": "integer", "minimum": 0}
      }
    },
    "mounts": {
      "type": "array",
      "items": {
        "type": "object",
        "required": ["source", "target"],
        "additionalProperties": false,
        "properties": {
          "source": {"type": "string", "pattern": "^/"},
          "target": {"type": "string", "pattern": "^/"},
          "readOnly": {"type": "boolean"}
        }
      }
    },
    "labels": {"type": "object", "maxProperties": 16, "additionalProperties": {"type": "string", "maxLength": 256}},
    "output": {
      "type": "object",
      "properties": {"format": {"enum": ["text", "json"]}, "maxLines": {"type": "integer", "minimum": 1}}
    }
  }
}
"""#

/// A typical call's arguments: every property present, nested values filled in.
let instanceText = #"""
{
  "command": "/usr/bin/python3",
  "args": ["-c", "print(1)"],
  "cwd": "/work",
  "env": {"PATH": "/usr/bin", "LANG": "C.UTF-8"},
  "timeoutMs": 30000,
  "memoryMiB": 512,
  "cpuShares": 1.5,
  "network": "none",
  "stdin": null,
  "encoding": "utf-8",
  "tags": ["build", "ci"],
  "priority": 2,
  "dryRun": false,
  "user": "agent",
  "retries": 0,
  "requestId": "0f8fad5b-d9cb-469f-a165-70867728950e",
  "limits": {"pids": 64, "openFiles": 256, "outputBytes": 1048576},
  "mounts": [{"source": "/data", "target": "/mnt/data", "readOnly": true}],
  "labels": {"team": "infra"},
  "output": {"format": "json", "maxLines": 100}
}
"""#

/// The same call with seven typical mistakes (all reported).
let invalidText = #"""
{
  "command": "/usr/bin/python3",
  "args": ["-c", "print(1)"],
  "env": {"path": "/usr/bin"},
  "timeoutMs": 0,
  "memoryMiB": 500,
  "colour": "blue",
  "mounts": [{"source": "data"}]
}
"""#

// MARK: - Timing

/// This thread's CPU time, not wall time: on a busy machine (builds, VMs beside the benchmark) wall time
/// counts the periods the thread was preempted, which would make the figures measure the load.
@inline(__always) func nowNs(_ clock: clockid_t = CLOCK_THREAD_CPUTIME_ID) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Keeps results observable so the optimizer cannot drop the work.
nonisolated(unsafe) var sink = 0

struct Measurement {
    var name: String
    var nsPerOp: Double  // median over batches
    var minNsPerOp: Double
    var maxNsPerOp: Double
    var iterations: Int
    var batches: Int
}

/// Runs `body` in batches sized to about `batchNs`, after a warm-up; reports the median batch's ns/op.
/// `clock`: thread CPU time by default; `CLOCK_MONOTONIC` for work done on other threads (SQLite's queue).
func measure(
    _ name: String, batches: Int, batchNs: UInt64, clock: clockid_t = CLOCK_THREAD_CPUTIME_ID, _ body: () -> Int
) -> Measurement {
    func nowNs() -> UInt64 { ToolBench.nowNs(clock) }
    // Warm-up: run for half a batch's time (first calls pay for lazy initialisation and cold caches).
    let warmUpEnd = nowNs() + batchNs / 2
    repeat { sink &+= body() } while nowNs() < warmUpEnd
    // Calibration: grow the batch until it takes a quarter of the target.
    var perBatch = 1
    while true {
        let start = nowNs()
        for _ in 0..<perBatch { sink &+= body() }
        let elapsed = nowNs() - start
        // At least 8 calls unless one batch is already slow: one stray slow call must not size the batches.
        if (elapsed >= batchNs / 4 && perBatch >= 8) || elapsed >= batchNs || perBatch >= 1 << 24 {
            let perOp = max(1.0, Double(elapsed) / Double(perBatch))
            perBatch = max(1, Int(Double(batchNs) / perOp))
            break
        }
        perBatch *= 2
    }
    var samples: [Double] = []
    samples.reserveCapacity(batches)
    for _ in 0..<batches {
        let start = nowNs()
        for _ in 0..<perBatch { sink &+= body() }
        samples.append(Double(nowNs() - start) / Double(perBatch))
    }
    samples.sort()
    return Measurement(
        name: name, nsPerOp: samples[samples.count / 2], minNsPerOp: samples.first!, maxNsPerOp: samples.last!,
        iterations: perBatch * batches, batches: batches)
}

func fail(_ message: String) -> Never {
    let line = Array("ToolBench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

// MARK: - Main

let arguments = CommandLine.arguments.dropFirst()
let jsonOutput = arguments.contains("--json")
let quick = arguments.contains("--quick")
if let unknown = arguments.first(where: { !["--json", "--quick"].contains($0) }) {
    fail("unknown argument \(unknown); usage: ToolBench [--json] [--quick]")
}

let schemaValue: JSONValue
let instance: JSONValue
let invalidInstance: JSONValue
do {
    schemaValue = try JSONCoding.parse(Array(schemaText.utf8))
    instance = try JSONCoding.parse(Array(instanceText.utf8))
    invalidInstance = try JSONCoding.parse(Array(invalidText.utf8))
} catch {
    fail("fixture does not parse: \(error)")
}
let instanceBytes = Array(instanceText.utf8)

let compiled: CompiledSchema
do {
    compiled = try CompiledSchema(schemaValue)
} catch {
    fail("schema does not compile: \(error)")
}
guard case .object(let properties) = schemaValue["properties"] ?? .null else { fail("schema has no properties") }
guard compiled.validate(instance).isEmpty else {
    fail("typical instance is reported invalid: \(compiled.validate(instance))")
}
let invalidErrors = compiled.validate(invalidInstance).count
guard invalidErrors >= 7 else { fail("invalid instance: expected 7 errors, got \(invalidErrors)") }

let batches = quick ? 7 : 21
let batchNs: UInt64 = quick ? 5_000_000 : 20_000_000

var results: [Measurement] = []
results.append(measure("validate", batches: batches, batchNs: batchNs) { compiled.validate(instance).count })
results.append(measure("is_valid", batches: batches, batchNs: batchNs) { compiled.isValid(instance) ? 1 : 0 })
results.append(
    measure("parse_and_validate", batches: batches, batchNs: batchNs) {
        guard let value = try? JSONCoding.parse(instanceBytes) else { return -1 }
        return compiled.validate(value).count
    })
results.append(measure("validate_invalid", batches: batches, batchNs: batchNs) { compiled.validate(invalidInstance).count })
results.append(
    measure("compile_schema", batches: max(3, batches / 3), batchNs: batchNs) {
        (try? CompiledSchema(schemaValue)) == nil ? 0 : 1
    })

// Policy: the shipped default with every per-call step switched on for the `toold` group.
let benchPolicyText = DefaultPolicy.json.replacingOccurrences(
    of: #""concurrency": 4"#,
    with: #""concurrency": 4, "cooldown_ms": 500, "rate": {"per_minute": 1000000, "per_hour": 100000000, "per_tool_per_minute": 1000000}, "deny_patterns": [{"name": "wipe", "pattern": "rm\\s+-rf\\s+/"}]"#)
let benchClock = ManualPolicyClock()
let policyService: PolicyService
do {
    policyService = PolicyService(document: try PolicyDocument(json: Array(benchPolicyText.utf8), source: "bench"), clock: benchClock)
} catch {
    fail("bench policy does not load: \(error)")
}
let benchCaller = CallerIdentity(uid: 1000, gid: 1000, pid: 42, user: "agent", groups: ["agent", "toold", "docker"], admin: false)
let shellFacts = PolicyToolFacts(name: "shell", category: .computation, risk: .medium, mode: .sandbox, requiresApproval: false)
let callStrings = ["/bin/sh", "-c", "cd /workspace && python3 -m pytest -q tests/ 2>&1 | tail -n 20", "PYTHONHASHSEED", "0"]
do {
    _ = try policyService.authorize(benchCaller, tool: shellFacts) { callStrings }
} catch {
    fail("the bench call is refused: \(error)")
}
let typicalOutput = Array(String(repeating: "test_module.py::test_case PASSED [ 42%] elapsed 0.01s ok\n", count: 18).utf8.prefix(1024))
let shippedRedactor = policyService.effective(for: PolicySubject(benchCaller)).redactor
results.append(
    measure("policy_authorize", batches: batches, batchNs: batchNs) {
        benchClock.advance(byMs: 1000)
        return (try? policyService.authorize(benchCaller, tool: shellFacts) { callStrings }) == nil ? 0 : 1
    })
results.append(measure("redact_output_1k", batches: batches, batchNs: batchNs) { shippedRedactor.redact(typicalOutput).bytes.count })

// Recording: a fresh database, the records the daemon writes for one exec.
let recordsDir = FileManager.default.temporaryDirectory.appendingPathComponent("toolbench-records-\(getpid())")
try? FileManager.default.createDirectory(at: recordsDir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: recordsDir) }
let recordStore: RecordStore
do {
    // Silent: the store's notices (migrated, …) would land in the benchmark's output.
    recordStore = try RecordStore(
        path: recordsDir.appendingPathComponent("toold.db").path,
        logger: Logger(label: "toolbench", factory: { _ in SwiftLogNoOpLogHandler() }))
} catch {
    fail("record store does not open: \(error)")
}
let benchResult = ExecResult(
    executionId: "", status: .exited, exitCode: 0, signal: nil, stdout: "ok\n", stdoutEncoding: .utf8, stderr: "",
    stderrEncoding: .utf8, stdoutTruncated: false, stderrTruncated: false, durationMs: 7, cpuMs: 2,
    memoryPeakBytes: 1 << 20, violations: [], failure: nil)
var recordFailures = 0
results.append(
    measure("record_execution", batches: max(5, batches / 3), batchNs: batchNs, clock: CLOCK_MONOTONIC) {
        let id = ExecutionService.newExecutionID()
        do {
            try recordStore.executionStarted(
                ExecutionStart(
                    executionID: id, requestID: .int(1), method: .exec, tool: "exec", caller: benchCaller, startedAt: .now(),
                    arguments: ["argv": ["/bin/true"]], decision: "allow", rule: "group:toold allow \"exec\""))
            try recordStore.executionFinished(id, ExecutionOutcome(benchResult, status: .exited, attempts: 1))
            return 1
        } catch {
            recordFailures += 1
            return 0
        }
    })
if recordFailures > 0 { fail("\(recordFailures) records could not be written") }

func oneDecimal(_ value: Double) -> Double { (value * 10).rounded() / 10 }
func whole(_ value: Double) -> String { String(Int(value.rounded())) }

if jsonOutput {
    var benchmarks: [String: JSONValue] = [:]
    for m in results {
        benchmarks[m.name] = [
            "ns_per_op": .double(oneDecimal(m.nsPerOp)),
            "min_ns_per_op": .double(oneDecimal(m.minNsPerOp)),
            "max_ns_per_op": .double(oneDecimal(m.maxNsPerOp)),
            "iterations": .int(Int64(m.iterations)),
            "batches": .int(Int64(m.batches)),
        ]
    }
    let output: JSONValue = [
        "schema": [
            "top_level_properties": .int(Int64(properties.count)),
            "instance_bytes": .int(Int64(instanceBytes.count)),
            "invalid_instance_errors": .int(Int64(invalidErrors)),
        ],
        "benchmarks": .object(benchmarks),
        "sink": .int(Int64(truncatingIfNeeded: sink)),
    ]
    print(JSONCoding.serializeString(output))
} else {
    print("schema: \(properties.count) top-level properties; instance \(instanceBytes.count) bytes; invalid instance \(invalidErrors) errors")
    for m in results {
        let pad = String(repeating: " ", count: max(0, 20 - m.name.count))
        print("\(m.name)\(pad) \(whole(m.nsPerOp)) ns/op  (min \(whole(m.minNsPerOp)), max \(whole(m.maxNsPerOp)); \(m.iterations) iterations)")
    }
}
