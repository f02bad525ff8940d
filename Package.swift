// swift-tools-version: 6.1
import PackageDescription

// toold: a sandboxed tool-execution daemon for local AI agents.
// Module map (one job each; see docs/ARCHITECTURE.md):
//   ToolProtocol  wire types, frame codec, JSON-RPC envelope (no I/O)
//   JSONSchema    draft 2020-12 validator over ToolProtocol.JSONValue
//   CSystemd      libsystemd (sd_listen_fds, sd_notify, sd_journal_send)
//   CSandbox      the C child side: namespaces, mounts, seccomp, init, exec
//   Sandbox       Swift side of a sandbox: spawn, cgroups v1/v2, accounting
//   ToolEngine    executions, (later) registry, policy, scheduler, records
//   ToolDaemon    listener, connections, dispatcher, config, systemd integration
//   ToolClient    blocking client used by toolc and the tests


// toold and toolc link the Swift runtime and Foundation statically, so they run on machines, containers
// and VMs without a Swift toolchain, and toolc starts fast. The -l flags fill gaps in
// Foundation's static autolink lists (Swift 6.3, Linux). Tests link dynamically (no static Testing).
let staticSwiftRuntime: [LinkerSetting] = [
    .unsafeFlags([
        "-static-stdlib", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims",
        "-Xlinker", "-lswiftSynchronization", "-Xlinker", "-lCoreFoundation", "-Xlinker", "-l_FoundationICU",
        "-Xlinker", "-lstdc++",
    ], .when(platforms: [.linux]))
]

let package = Package(
    name: "toold",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "toold", targets: ["toold"]),
        .executable(name: "toolc", targets: ["toolc"]),
        // The sandbox zygote: C only, a few hundred kilobytes (toold falls back to re-running itself without it).
        .executable(name: "toold-sandbox-zygote", targets: ["ToolZygote"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .target(name: "ToolProtocol"),
        // ICU's C API from the toolchain's Foundation, for regex matching with a time limit.
        .target(name: "CRegex", linkerSettings: [.linkedLibrary("_FoundationICU")]),
        .target(name: "JSONSchema", dependencies: ["ToolProtocol", "CRegex"]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(
            name: "CSandbox",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("seccomp")]
        ),
        .target(name: "Sandbox", dependencies: ["CSandbox", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "ToolEngine",
            dependencies: ["ToolProtocol", "JSONSchema", "Sandbox", "ToolRecords", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "ToolDaemon",
            dependencies: [
                "ToolProtocol", "ToolEngine", "ToolRecords", "CSystemd", "Sandbox", "ToolClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "ToolClient", dependencies: ["ToolProtocol"]),
        .target(
            name: "ToolRecords",
            dependencies: [
                "ToolProtocol", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "toold",
            dependencies: ["ToolDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: staticSwiftRuntime
        ),
        .executableTarget(
            name: "toolc",
            dependencies: ["ToolClient", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: staticSwiftRuntime
        ),
        // Links no Swift runtime: --as-needed drops the libraries SwiftPM adds but nothing here uses.
        .executableTarget(
            name: "ToolZygote", dependencies: ["CSandbox"],
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--as-needed"], .when(platforms: [.linux]))]),
        .executableTarget(
            name: "ToolBench",
            dependencies: [
                "JSONSchema", "ToolProtocol", "ToolEngine", "ToolRecords", .product(name: "Logging", package: "swift-log"),
            ]),
        // scripts/bench's kernel floor: a clone into toold's namespaces and an exec of /bin/true, nothing more (C only).
        .executableTarget(name: "SpawnFloor"),
        .testTarget(name: "ToolProtocolTests", dependencies: ["ToolProtocol"]),
        .testTarget(name: "JSONSchemaTests", dependencies: ["JSONSchema", "ToolProtocol"]),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox"]),
        .testTarget(name: "ToolEngineTests", dependencies: ["ToolEngine", "JSONSchema", "ToolProtocol"]),
        .testTarget(name: "ToolRecordsTests", dependencies: ["ToolRecords", "ToolProtocol"]),
        .testTarget(name: "IntegrationTests", dependencies: ["ToolProtocol", "ToolClient", "JSONSchema"]),
    ],
    swiftLanguageModes: [.v6]
)
