import DurableStreams
import Foundation
import XCTest

/// Runs against a Durable Streams server whose base URL is in `DS_SERVER_URL`
/// (start one with `node tests/server/start.mjs` from the repository root).
final class DurableStreamsTests: XCTestCase {
    private func streamURL() throws -> String {
        guard let base = ProcessInfo.processInfo.environment["DS_SERVER_URL"] else {
            throw XCTSkip("set DS_SERVER_URL to a running server")
        }
        return "\(base)/v1/stream/swift-\(UUID().uuidString)"
    }

    func testCreateAppendRead() async throws {
        let stream = try DurableStream(url: try streamURL())
        let created = try await stream.create(options: CreateOptions(contentType: "application/json"))
        XCTAssertTrue(created.created)
        try await stream.append(#"{"n":1}"#)
        try await stream.append(#"{"n":2}"#)
        let response = try await stream.stream(options: ReadOptions(live: .off))
        var items: [String] = []
        for try await batch in response.jsonBatches {
            items += batch.items
        }
        XCTAssertEqual(items, [#"{"n":1}"#, #"{"n":2}"#])
        XCTAssertTrue(response.upToDate())
    }

    func testErrorsAreTyped() async throws {
        let stream = try DurableStream(url: try streamURL())
        do {
            _ = try await stream.head()
            XCTFail("head of a missing stream succeeded")
        } catch let error as DurableStreamError {
            guard case .NotFound = error else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(error.fields.status, 404)
            XCTAssertEqual(error.fields.code, "NOT_FOUND")
        }
    }

    func testProducerWithAutoClaim() async throws {
        let stream = try DurableStream(url: try streamURL())
        _ = try await stream.create(options: CreateOptions(contentType: "text/plain"))
        let producer = try stream.producer(producerId: "swift", options: ProducerOptions(autoClaim: true))
        try await producer.append("a")
        let receipt = try await producer.append("b")
        try await producer.flush()
        let delivery = try await receipt.wait()
        XCTAssertFalse(delivery.duplicate)
        let final = try await producer.closeStream()
        XCTAssertNotNil(final)
        let text = try await stream.stream(options: ReadOptions(live: .off)).text()
        XCTAssertEqual(text, "ab")
    }
}
