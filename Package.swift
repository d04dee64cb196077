// swift-tools-version:6.0
import PackageDescription

// One settings list for every Swift target.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Release builds skip dynamic exclusivity checks on the hot path (debug builds and tests keep them).
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Tollgate",
    products: [
        .executable(name: "tollgate", targets: ["tollgate"]),
        .executable(name: "fake-ollama", targets: ["fake-ollama"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // The usage ledger's embedded database (TollgateIO/SQLiteDatabase.swift is its only user).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "CTollgate",
            dependencies: ["COpenSSL"],
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto"), .linkedLibrary("crypt")]
        ),
        .target(name: "TollgateHTTP", swiftSettings: swiftSettings),
        .target(name: "TollgateIO", dependencies: ["CTollgate", "COpenSSL", "CSQLite"], swiftSettings: swiftSettings),
        .target(name: "Tollgate", dependencies: ["TollgateHTTP", "TollgateIO"], swiftSettings: swiftSettings),
        .target(name: "FakeOllama", dependencies: ["TollgateIO"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "tollgate",
            dependencies: ["Tollgate", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "fake-ollama", dependencies: ["FakeOllama", "TollgateIO"], swiftSettings: swiftSettings),
        .testTarget(name: "TollgateHTTPTests", dependencies: ["TollgateHTTP"], swiftSettings: swiftSettings),
        // Helpers for more than one test target (a redis-server child, sample setting values); not a product, not
        // in any executable.
        .target(
            name: "TollgateTestSupport",
            dependencies: ["Tollgate", "TollgateIO"],
            path: "Tests/TollgateTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TollgateTests",
            dependencies: ["Tollgate", "TollgateTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FakeOllamaTests", dependencies: ["FakeOllama"], swiftSettings: swiftSettings),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Tollgate", "TollgateIO", "FakeOllama", "COpenSSL", "TollgateTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
