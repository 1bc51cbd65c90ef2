import Foundation
import H2Transport
import InferenceProtocol
import NIOCore
import ProtoWire

/// A request checked and ready for a pool.
struct PreparedInfer {
    let pool: WorkerPool
    let workerRequest: WorkerProtocol.InferRequest
    let model: String
    let id: String
    let batchSize: Int64
    let decoupled: Bool
    let wantsEmptyFinal: Bool
}

/// Decodes, looks up and validates one ModelInferRequest; the error is the gRPC status.
func prepareInfer(_ bytes: ByteBuffer, repository: ModelRepository, limits: ProtoLimits, deadline: NIODeadline?) throws(RPCError) -> PreparedInfer {
    let request: ModelInferRequest
    do {
        request = try ModelInferRequest(decoding: bytes, limits: limits)
    } catch {
        throw RPCError(code: .invalidArgument, message: "request is not a valid inference.ModelInferRequest: \(error)")
    }
    guard repository.knows(request.modelName) else {
        throw RPCError(code: .notFound, message: "unknown model '\(request.modelName)'; RepositoryIndex lists the known ones")
    }
    guard request.modelVersion.isEmpty || request.modelVersion == "1" else {
        throw RPCError(code: .notFound, message: "unknown version '\(request.modelVersion)' of model '\(request.modelName)'; it has version 1")
    }
    guard let pool = repository.pool(for: request.modelName) else {
        throw RPCError(code: .unavailable, message: "model '\(request.modelName)' is not loaded; RepositoryModelLoad loads it")
    }
    guard let descriptor = pool.modelDescriptor, let config = descriptor.config else {
        throw RPCError(code: .unavailable, message: "no worker of model '\(request.modelName)' is ready; try again shortly")
    }
    let batchSize: Int64
    do {
        batchSize = try InferRequestValidator.validate(request, config: config)
    } catch {
        throw RPCError(code: .invalidArgument, message: error.description)
    }
    var workerRequest = WorkerProtocol.InferRequest()
    workerRequest.modelName = request.modelName
    workerRequest.modelVersion = "1"
    workerRequest.request = bytes
    if let deadline {
        let remaining = deadline - .now()
        workerRequest.deadlineUnixNanos = Int64(Date().timeIntervalSince1970 * 1e9) + remaining.nanoseconds
    }
    var wantsEmptyFinal = false
    if case .bool(true)? = request.parameters["triton_enable_empty_final_response"]?.choice { wantsEmptyFinal = true }
    return PreparedInfer(
        pool: pool, workerRequest: workerRequest, model: request.modelName, id: request.id, batchSize: batchSize,
        decoupled: descriptor.decoupled, wantsEmptyFinal: wantsEmptyFinal)
}

extension GRPCStatus.Code {
    init(workerCode: Int32) {
        self = GRPCStatus.Code(rawValue: Int(workerCode)) ?? .unknown
    }
}

/// ModelInfer: one request, one response.
final class ModelInferCallHandler: GRPCServerCallHandler {
    private let call: GRPCServerCall
    private let repository: ModelRepository
    private let limits: ProtoLimits
    private var request: ByteBuffer?
    private var ticket: PoolTicket?
    private var pool: WorkerPool?

    init(call: GRPCServerCall, repository: ModelRepository, limits: ProtoLimits) {
        self.call = call
        self.repository = repository
        self.limits = limits
    }

    func callReceived(message: ByteBuffer) {
        guard request == nil else {
            call.finish(GRPCStatus(code: .internalError, message: "ModelInfer takes one request message; use ModelStreamInfer for many"))
            return
        }
        request = message
    }

    func callReceivedEnd() {
        guard let request, !call.isFinished else {
            if !call.isFinished { call.finish(GRPCStatus(code: .internalError, message: "ModelInfer received no request message")) }
            return
        }
        let prepared: PreparedInfer
        do {
            prepared = try prepareInfer(request, repository: repository, limits: limits, deadline: call.head.deadline)
        } catch {
            call.finish(error)
            return
        }
        if prepared.decoupled {
            call.finish(GRPCStatus(code: .invalidArgument, message: "model '\(prepared.model)' is decoupled (it may answer with many responses); use ModelStreamInfer"))
            return
        }
        let started = NIODeadline.now()
        let loopBound = NIOLoopBound(call, eventLoop: call.eventLoop)
        let repository = self.repository
        let ticketBox = NIOLoopBound(TicketBox(), eventLoop: call.eventLoop)
        pool = prepared.pool
        ticket = prepared.pool.submit(prepared.workerRequest) { reply in
            loopBound.eventLoop.execute {
                let call = loopBound.value
                guard !call.isFinished else { return }
                let elapsed = UInt64((NIODeadline.now() - started).nanoseconds)
                switch reply {
                case .response(let bytes, _, let timing):
                    repository.record(
                        model: prepared.model, success: true, nanoseconds: elapsed,
                        queueNanoseconds: ticketBox.value.ticket?.queueNanoseconds ?? 0, batchSize: UInt64(prepared.batchSize),
                        timing: timing)
                    call.sendMessage(bytes)
                    call.finish(.ok)
                case .streamEnd:
                    call.finish(GRPCStatus(code: .internalError, message: "model '\(prepared.model)' sent no response"))
                case .failed(let code, let message):
                    repository.record(model: prepared.model, success: false, nanoseconds: elapsed, batchSize: 0)
                    call.finish(GRPCStatus(code: GRPCStatus.Code(workerCode: code), message: message))
                }
            }
        }
        ticketBox.value.ticket = ticket
    }

    func callCancelled(_ status: GRPCStatus) {
        if let ticket, let pool { pool.cancel(ticket, reason: "\(status)") }
    }
}

/// Holds a ticket that the reply callback reads after `submit` returned it.
final class TicketBox {
    var ticket: PoolTicket?
}

/// ModelStreamInfer: many requests in flight on one stream; each response carries its request
/// id; a failed request is reported in `error_message` and the stream goes on.
final class ModelStreamInferCallHandler: GRPCServerCallHandler {
    private let call: GRPCServerCall
    private let repository: ModelRepository
    private let limits: ProtoLimits
    private var nextKey = 0
    private var pendingKeys: Set<Int> = []
    private var tickets: [Int: (WorkerPool, PoolTicket)] = [:]
    private var clientDone = false

    init(call: GRPCServerCall, repository: ModelRepository, limits: ProtoLimits) {
        self.call = call
        self.repository = repository
        self.limits = limits
        call.sendHeaders()
    }

    func callReceived(message: ByteBuffer) {
        let prepared: PreparedInfer
        do {
            prepared = try prepareInfer(message, repository: repository, limits: limits, deadline: call.head.deadline)
        } catch {
            sendError(error.message)
            return
        }
        let key = nextKey
        nextKey += 1
        pendingKeys.insert(key)
        let started = NIODeadline.now()
        let loopBound = NIOLoopBound(self, eventLoop: call.eventLoop)
        let ticket = prepared.pool.submit(prepared.workerRequest) { reply in
            loopBound.eventLoop.execute {
                loopBound.value.handle(reply, key: key, prepared: prepared, started: started)
            }
        }
        if let ticket { tickets[key] = (prepared.pool, ticket) }
    }

    private func handle(_ reply: WorkerReply, key: Int, prepared: PreparedInfer, started: NIODeadline) {
        guard pendingKeys.contains(key), !call.isFinished else { return }
        let elapsed = UInt64((NIODeadline.now() - started).nanoseconds)
        switch reply {
        case .response(let bytes, let final, let timing):
            sendResponse(bytes)
            if final && !prepared.decoupled {
                repository.record(
                    model: prepared.model, success: true, nanoseconds: elapsed, queueNanoseconds: tickets[key]?.1.queueNanoseconds ?? 0,
                    batchSize: UInt64(prepared.batchSize), timing: timing)
                complete(key)
            }
        case .streamEnd:
            repository.record(
                model: prepared.model, success: true, nanoseconds: elapsed, queueNanoseconds: tickets[key]?.1.queueNanoseconds ?? 0,
                batchSize: UInt64(prepared.batchSize))
            if prepared.wantsEmptyFinal {
                var empty = ModelInferResponse()
                empty.modelName = prepared.model
                empty.modelVersion = "1"
                empty.id = prepared.id
                empty.parameters["triton_final_response"] = InferParameter(.bool(true))
                sendResponse(empty.encoded())
            }
            complete(key)
        case .failed(let code, let message):
            repository.record(model: prepared.model, success: false, nanoseconds: elapsed, batchSize: 0)
            let status = GRPCStatus(code: GRPCStatus.Code(workerCode: code), message: message)
            sendError("request '\(prepared.id)' failed: \(status.code): \(message)")
            complete(key)
        }
    }

    private func sendResponse(_ inferResponse: ByteBuffer) {
        // ModelStreamInferResponse { infer_response = 2 }: the worker's bytes, embedded as they are.
        var writer = ProtoWriter(capacity: inferResponse.readableBytes + 8)
        writer.writeBytes(field: 2, inferResponse)
        call.sendMessage(writer.buffer)
    }

    private func sendError(_ message: String) {
        var response = ModelStreamInferResponse()
        response.errorMessage = message
        call.sendMessage(response.encoded())
    }

    private func complete(_ key: Int) {
        pendingKeys.remove(key)
        tickets.removeValue(forKey: key)
        if clientDone && pendingKeys.isEmpty { call.finish(.ok) }
    }

    func callReceivedEnd() {
        clientDone = true
        if pendingKeys.isEmpty { call.finish(.ok) }
    }

    func callCancelled(_ status: GRPCStatus) {
        for (pool, ticket) in tickets.values { pool.cancel(ticket, reason: "\(status)") }
        tickets.removeAll()
        pendingKeys.removeAll()
    }
}
