// The idiomatic layer over the generated bindings: everything the generated module offers is
// re-exported (async methods, records with default arguments, the `DurableStreamError` enum),
// and this file adds AsyncSequence reads, String conveniences and the common error fields.

@_exported import DurableStreamsFFI
import Foundation

/// The batches of a read as an `AsyncSequence`. Iteration ends at the tail (when not live),
/// at the end of a closed stream, or after `cancel()`; cancelling the iterating task cancels
/// the pending request.
public struct StreamBatches<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Element
    let response: StreamResponse
    let pull: @Sendable (StreamResponse) async throws -> Element?

    public func makeAsyncIterator() -> Iterator {
        Iterator(response: response, pull: pull)
    }

    /// Pulls one batch per `next()`.
    public struct Iterator: AsyncIteratorProtocol {
        let response: StreamResponse
        let pull: @Sendable (StreamResponse) async throws -> Element?

        public mutating func next() async throws -> Element? {
            try await pull(response)
        }
    }
}

extension StreamResponse {
    /// The batches of bytes, one per response (or SSE event group).
    public var batches: StreamBatches<ByteBatch> {
        StreamBatches(response: self) { try await $0.nextBatch() }
    }

    /// The batches as text, UTF-8 decoded across batch boundaries.
    public var textBatches: StreamBatches<TextBatch> {
        StreamBatches(response: self) { try await $0.nextTextBatch() }
    }

    /// The batches of JSON messages, each message as its own JSON text.
    public var jsonBatches: StreamBatches<JsonBatch> {
        StreamBatches(response: self) { try await $0.nextJsonBatch() }
    }
}

extension DurableStream {
    /// Appends one message given as UTF-8 text (one JSON value on a JSON stream).
    @discardableResult
    public func append(_ text: String, options: AppendOptions = AppendOptions()) async throws -> AppendResult {
        try await append(data: Data(text.utf8), options: options)
    }
}

extension IdempotentProducer {
    /// Queues a message given as UTF-8 text.
    @discardableResult
    public func append(_ text: String) async throws -> Receipt {
        try await append(data: Data(text.utf8))
    }
}

extension DurableStreamError {
    /// The stable error code, e.g. `"STREAM_CLOSED"`, the HTTP status, and the description.
    public var fields: (code: String, status: Int32?, reason: String) {
        let p = parts
        return (p.code, p.status, p.reason)
    }

    /// The URL, the server's own message and a subscription refusal's code, when known.
    public var details: ErrorDetails { parts.details }

    private var parts: (code: String, status: Int32?, reason: String, details: ErrorDetails) {
        switch self {
        case let .NotFound(reason, code, status, details),
             let .StreamExists(reason, code, status, details),
             let .Conflict(reason, code, status, details),
             let .StreamClosed(reason, code, status, details, _),
             let .StaleEpoch(reason, code, status, details, _, _, _),
             let .SequenceGap(reason, code, status, details, _, _),
             let .ProducerSessionConflict(reason, code, status, details, _, _, _),
             let .Unavailable(reason, code, status, details, _),
             let .Http(reason, code, status, details),
             let .Network(reason, code, status, details),
             let .Timeout(reason, code, status, details),
             let .Parse(reason, code, status, details),
             let .InvalidArgument(reason, code, status, details),
             let .InvalidState(reason, code, status, details),
             let .BufferFull(reason, code, status, details, _, _, _),
             let .Cancelled(reason, code, status, details),
             let .Subscription(reason, code, status, details, _),
             let .InvalidSignature(reason, code, status, details, _),
             let .Internal(reason, code, status, details):
            return (code, status, reason, details)
        }
    }
}
