import NIOCore
import ProtoWire

/// The payload messages of the worker protocol, package `switchyard.worker`
/// (Protos/switchyard/worker.proto).
public enum WorkerProtocol {
    /// The protocol version this build speaks, sent in `Hello.protocolVersion`.
    public static let version: UInt32 = 1

    /// HELLO: who the worker is and what it serves.
    public struct Hello: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.Hello"
        /// Version of the protocol the worker speaks.
        public var protocolVersion: UInt32 = 0  // = 1
        /// The worker's process id.
        public var pid: Int32 = 0  // = 2
        /// Models the worker serves.
        public var models: [ModelDescriptor] = []  // = 3
        /// A name for logs and metrics.
        public var workerID: String = ""  // = 4

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: protocolVersion = try reader.read(ProtoUInt32.self, tag)
            case 2: pid = try reader.read(ProtoInt32.self, tag)
            case 3: models.append(try reader.readMessage(tag))
            case 4: workerID = try reader.readString(tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if protocolVersion != 0 { writer.write(ProtoUInt32.self, field: 1, protocolVersion) }
            if pid != 0 { writer.write(ProtoInt32.self, field: 2, pid) }
            for model in models { writer.writeMessage(field: 3, model) }
            if !workerID.isEmpty { writer.writeString(field: 4, workerID) }
        }
    }

    /// One model a worker serves.
    public struct ModelDescriptor: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.ModelDescriptor"
        public var name: String = ""  // = 1
        public var versions: [String] = []  // = 2
        /// Largest batch; 0 when the model does not batch.
        public var maxBatchSize: Int32 = 0  // = 3
        /// True when the model may answer one request with zero, one or many responses.
        public var decoupled: Bool = false  // = 4
        /// The model's full configuration, which the gateway serves and validates against.
        public var config: ModelConfig?  // = 5

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: versions.append(try reader.readString(tag))
            case 3: maxBatchSize = try reader.read(ProtoInt32.self, tag)
            case 4: decoupled = try reader.read(ProtoBool.self, tag)
            case 5: try reader.merge(tag, into: &config)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            for version in versions { writer.writeString(field: 2, version) }
            if maxBatchSize != 0 { writer.write(ProtoInt32.self, field: 3, maxBatchSize) }
            if decoupled { writer.write(ProtoBool.self, field: 4, decoupled) }
            if let config { writer.writeMessage(field: 5, config) }
        }
    }

    /// INFER_REQUEST: the client's request bytes and the router's choice of model and version.
    public struct InferRequest: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.InferRequest"
        public var modelName: String = ""  // = 1
        /// Empty lets the worker choose.
        public var modelVersion: String = ""  // = 2
        /// The `inference.ModelInferRequest` exactly as the client sent it.
        public var request = ByteBuffer()  // = 3
        /// Nanoseconds since the Unix epoch; 0 for none.
        public var deadlineUnixNanos: Int64 = 0  // = 4
        /// The request's trace context: the W3C `traceparent` and `tracestate` of the gateway's
        /// span for the worker's execution. Empty when the call is not traced.
        public var trace = TraceContext()  // = 5, 6
        /// The call's `x-request-id`, for the worker's log lines; empty when it has none.
        public var clientRequestID: String = ""  // = 7

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: modelName = try reader.readString(tag)
            case 2: modelVersion = try reader.readString(tag)
            case 3: request = try reader.readBytes(tag)
            case 4: deadlineUnixNanos = try reader.read(ProtoInt64.self, tag)
            case 5: trace.traceparent = try reader.readString(tag)
            case 6: trace.tracestate = try reader.readString(tag)
            case 7: clientRequestID = try reader.readString(tag)
            default: try reader.skipField(tag)
            }
        }

        /// Writes field 3, the request bytes, last (after the others), so that the encoding is
        /// the same, byte for byte, as `frameHead` followed by the request bytes.
        public func encode(to writer: inout ProtoWriter) {
            Self.writeEnvelope(
                modelName: modelName, modelVersion: modelVersion, deadlineUnixNanos: deadlineUnixNanos, trace: trace,
                clientRequestID: clientRequestID, to: &writer)
            if request.readableBytes > 0 { writer.writeBytes(field: 3, request) }
        }

        /// The head of an INFER_REQUEST frame whose `request` field holds `requestByteCount`
        /// bytes that the caller writes right after it: frame length, kind, `requestID`, the
        /// envelope's other fields (1, 2, 4, 5, 6, 7), and the tag and length of field 3.
        ///
        /// For a sender that forwards a client's request without copying it: write this head,
        /// then the request `ByteBuffer`, as two writes on the channel (one `writev`). The two
        /// together are the bytes of `WorkerFrame(kind: .inferRequest, requestID:, message:)`
        /// for the same message. Empty strings and a zero deadline are left out, as the encoder
        /// leaves them out.
        ///
        /// - Precondition: the frame's length fits its `u32`; the caller bounds requests far
        ///   below that (and below the worker's frame limit, `WorkerFrame.defaultMaxFrameSize`).
        public static func frameHead(
            requestID: UInt64, modelName: String, modelVersion: String, deadlineUnixNanos: Int64,
            trace: TraceContext = TraceContext(), clientRequestID: String = "", requestByteCount: Int,
            allocator: ByteBufferAllocator = ByteBufferAllocator()
        ) -> ByteBuffer {
            let strings = modelName.utf8.count + modelVersion.utf8.count + trace.byteCount + clientRequestID.utf8.count
            var buffer = allocator.buffer(capacity: WorkerFrame.headerSize + strings + 48)
            writeFrameHead(
                requestID: requestID, modelName: modelName, modelVersion: modelVersion, deadlineUnixNanos: deadlineUnixNanos,
                trace: trace, clientRequestID: clientRequestID, requestByteCount: requestByteCount, to: &buffer)
            return buffer
        }

        /// `frameHead`, appended to `buffer`: for a sender that gathers the frames of one
        /// event-loop tick in one buffer (and may append small requests' bytes right after).
        public static func writeFrameHead(
            requestID: UInt64, modelName: String, modelVersion: String, deadlineUnixNanos: Int64,
            trace: TraceContext = TraceContext(), clientRequestID: String = "", requestByteCount: Int,
            to buffer: inout ByteBuffer
        ) {
            precondition(requestByteCount >= 0, "a request of \(requestByteCount) bytes")
            let start = buffer.writerIndex
            var writer = ProtoWriter(buffer: buffer)
            buffer = ByteBuffer()  // the writer holds the only reference while it appends
            // The length is known only once the envelope is written: it is filled in after.
            WorkerFrame.writeHeader(kind: .inferRequest, requestID: requestID, payloadLength: 0, to: &writer.buffer)
            writeEnvelope(
                modelName: modelName, modelVersion: modelVersion, deadlineUnixNanos: deadlineUnixNanos, trace: trace,
                clientRequestID: clientRequestID, to: &writer)
            if requestByteCount > 0 {
                writer.writeTag(3, .lengthDelimited)
                writer.writeVarint(UInt64(requestByteCount))
            }
            let length = writer.buffer.writerIndex - start - 4 + requestByteCount
            precondition(length <= Int(UInt32.max), "an INFER_REQUEST frame of \(length) bytes")
            writer.buffer.setInteger(UInt32(length), at: start, endianness: .big)
            buffer = writer.buffer
        }

        /// Fields 1, 2, 4, 5, 6 and 7: everything but the request bytes.
        private static func writeEnvelope(
            modelName: String, modelVersion: String, deadlineUnixNanos: Int64, trace: TraceContext, clientRequestID: String,
            to writer: inout ProtoWriter
        ) {
            if !modelName.isEmpty { writer.writeString(field: 1, modelName) }
            if !modelVersion.isEmpty { writer.writeString(field: 2, modelVersion) }
            if deadlineUnixNanos != 0 { writer.write(ProtoInt64.self, field: 4, deadlineUnixNanos) }
            if !trace.traceparent.isEmpty { writer.writeString(field: 5, trace.traceparent) }
            if !trace.tracestate.isEmpty { writer.writeString(field: 6, trace.tracestate) }
            if !clientRequestID.isEmpty { writer.writeString(field: 7, clientRequestID) }
        }
    }

    /// W3C trace context (https://www.w3.org/TR/trace-context/) as the worker protocol carries
    /// it: the `traceparent` and `tracestate` header values, as text. Both empty: not traced.
    public struct TraceContext: Hashable, Sendable {
        /// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`; empty for none.
        public var traceparent: String
        /// Vendor entries, `key=value` separated by commas; empty for none.
        public var tracestate: String

        public init(traceparent: String = "", tracestate: String = "") {
            self.traceparent = traceparent
            self.tracestate = tracestate
        }

        /// The trace id of a well-formed `traceparent` (32 lowercase hex digits, not all zero),
        /// else nil: what a worker writes into its log lines.
        public var traceID: Substring? {
            let utf8 = traceparent.utf8
            guard utf8.count >= 55 else { return nil }
            let start = utf8.index(utf8.startIndex, offsetBy: 3)
            let end = utf8.index(start, offsetBy: 32)
            var allZero = true
            for byte in utf8[start..<end] {
                guard (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f")) else {
                    return nil
                }
                if byte != UInt8(ascii: "0") { allZero = false }
            }
            // Every byte is ASCII, so both ends are character boundaries.
            return allZero ? nil : traceparent[start..<end]
        }

        var byteCount: Int { traceparent.utf8.count + tracestate.utf8.count }
    }

    /// INFER_RESPONSE: a `ModelInferResponse` or an error status.
    public struct InferResponse: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.InferResponse"
        /// The `inference.ModelInferResponse` bytes; empty with an error status.
        public var response = ByteBuffer()  // = 1
        /// Absent or code 0 means OK.
        public var status: Status?  // = 2
        /// True on the last response for the request id.
        public var final: Bool = false  // = 3
        /// Where the worker spent its time on the request.
        public var timing: Timing?  // = 4

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: response = try reader.readBytes(tag)
            case 2:
                try reader.merge(tag, into: &status)
            case 3: final = try reader.read(ProtoBool.self, tag)
            case 4: try reader.merge(tag, into: &timing)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if response.readableBytes > 0 { writer.writeBytes(field: 1, response) }
            if let status { writer.writeMessage(field: 2, status) }
            if final { writer.write(ProtoBool.self, field: 3, final) }
            if let timing { writer.writeMessage(field: 4, timing) }
        }

        /// Writes an InferResponse that carries `response` (an `inference.ModelInferResponse`)
        /// with no status, encoding `response` in place instead of into a buffer of its own.
        /// Decodes to the same message as `encode` with `response` encoded first.
        ///
        /// - Parameter timing: asked for after `response` is written, so that it can count the
        ///   time the encoding took; nil leaves the field out.
        public static func write<Response: ProtoMessage>(
            response: Response, final: Bool, to writer: inout ProtoWriter, timing: () -> Timing? = { nil }
        ) {
            writer.writeMessage(field: 1, response)
            if final { writer.write(ProtoBool.self, field: 3, final) }
            if let timing = timing() { writer.writeMessage(field: 4, timing) }
        }
    }

    /// Where a request's time went inside the worker (for ModelStatistics).
    public struct Timing: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.Timing"
        /// Waiting in the worker's batch queue, nanoseconds.
        public var queueNs: UInt64 = 0  // = 1
        /// Preparing inputs, nanoseconds.
        public var computeInputNs: UInt64 = 0  // = 2
        /// Running the model (the whole batch), nanoseconds.
        public var computeInferNs: UInt64 = 0  // = 3
        /// Building the response, nanoseconds.
        public var computeOutputNs: UInt64 = 0  // = 4
        /// True on exactly one request of each model execution (batch).
        public var countsExecution: Bool = false  // = 5

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: queueNs = try reader.read(ProtoUInt64.self, tag)
            case 2: computeInputNs = try reader.read(ProtoUInt64.self, tag)
            case 3: computeInferNs = try reader.read(ProtoUInt64.self, tag)
            case 4: computeOutputNs = try reader.read(ProtoUInt64.self, tag)
            case 5: countsExecution = try reader.read(ProtoBool.self, tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if queueNs != 0 { writer.write(ProtoUInt64.self, field: 1, queueNs) }
            if computeInputNs != 0 { writer.write(ProtoUInt64.self, field: 2, computeInputNs) }
            if computeInferNs != 0 { writer.write(ProtoUInt64.self, field: 3, computeInferNs) }
            if computeOutputNs != 0 { writer.write(ProtoUInt64.self, field: 4, computeOutputNs) }
            if countsExecution { writer.write(ProtoBool.self, field: 5, countsExecution) }
        }
    }

    /// A gRPC status: the payload of ERROR and part of `InferResponse`.
    public struct Status: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.Status"
        /// gRPC status code.
        public var code: Int32 = 0  // = 1
        /// A message a person can act on.
        public var message: String = ""  // = 2

        public init() {}

        public init(code: Int32, message: String) {
            self.code = code
            self.message = message
        }

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: code = try reader.read(ProtoInt32.self, tag)
            case 2: message = try reader.readString(tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if code != 0 { writer.write(ProtoInt32.self, field: 1, code) }
            if !message.isEmpty { writer.writeString(field: 2, message) }
        }
    }

    /// CANCEL: why the gateway gave up on a request.
    public struct Cancel: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.Cancel"
        public var reason: String = ""  // = 1

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: reason = try reader.readString(tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !reason.isEmpty { writer.writeString(field: 1, reason) }
        }
    }

    /// PING: a health check; the worker echoes nonce and time in a PONG.
    public struct Ping: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.Ping"
        public var nonce: UInt64 = 0  // = 1
        public var sentUnixNanos: Int64 = 0  // = 2

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: nonce = try reader.read(ProtoUInt64.self, tag)
            case 2: sentUnixNanos = try reader.read(ProtoInt64.self, tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if nonce != 0 { writer.write(ProtoUInt64.self, field: 1, nonce) }
            if sentUnixNanos != 0 { writer.write(ProtoInt64.self, field: 2, sentUnixNanos) }
        }
    }

    /// PONG: the answer to a PING, with the worker's current load.
    public struct Pong: ProtoMessage, Hashable {
        public static let protoMessageName = "switchyard.worker.Pong"
        public var nonce: UInt64 = 0  // = 1
        public var sentUnixNanos: Int64 = 0  // = 2
        /// Requests executing now.
        public var inFlight: UInt32 = 0  // = 3
        /// Requests waiting in the worker's queue.
        public var queued: UInt32 = 0  // = 4

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: nonce = try reader.read(ProtoUInt64.self, tag)
            case 2: sentUnixNanos = try reader.read(ProtoInt64.self, tag)
            case 3: inFlight = try reader.read(ProtoUInt32.self, tag)
            case 4: queued = try reader.read(ProtoUInt32.self, tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if nonce != 0 { writer.write(ProtoUInt64.self, field: 1, nonce) }
            if sentUnixNanos != 0 { writer.write(ProtoInt64.self, field: 2, sentUnixNanos) }
            if inFlight != 0 { writer.write(ProtoUInt32.self, field: 3, inFlight) }
            if queued != 0 { writer.write(ProtoUInt32.self, field: 4, queued) }
        }
    }
}
