// swift-tools-version:5.9
// The Swift package of durable-streams-client. Build the binary target first (macOS):
// swift/build-xcframework.sh
import PackageDescription

let package = Package(
    name: "DurableStreams",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "DurableStreams", targets: ["DurableStreams"]),
    ],
    targets: [
        // The Rust library (static, per platform) with its C header and module map.
        .binaryTarget(name: "DurableStreamsFFIC", path: "DurableStreamsFFIC.xcframework"),
        // The uniffi-generated Swift API (swift/generate.sh).
        .target(
            name: "DurableStreamsFFI",
            dependencies: ["DurableStreamsFFIC"],
            // What the Rust HTTP stack (reqwest: system proxy settings) links against on Apple.
            linkerSettings: [
                .linkedFramework("SystemConfiguration"),
                .linkedFramework("CoreFoundation"),
                .linkedFramework("Security"),
            ]
        ),
        // The hand-written layer: AsyncSequence reads, String conveniences, error fields.
        .target(name: "DurableStreams", dependencies: ["DurableStreamsFFI"]),
        .testTarget(name: "DurableStreamsTests", dependencies: ["DurableStreams"]),
    ]
)
