import H2Transport
import InferenceProtocol
import NIOCore

/// gRPC server reflection, `grpc.reflection.v1` and `v1alpha` (same messages): lists the
/// services served and hands out the descriptors of Protos/, so grpcurl, Postman and
/// grpc_cli work without local .proto files.
struct ReflectionService {
    private let registry: GRPCServiceRegistry
    private let pool: DescriptorPool

    init(registry: GRPCServiceRegistry) {
        self.registry = registry
        // The embedded descriptors are generated from Protos/ and checked by a test; a
        // failure here is a build defect, not an input error.
        self.pool = try! DescriptorPool(
            serializedFiles: EmbeddedDescriptors.files.map { ByteBuffer(bytes: Base64.decode(Array($0.utf8))!) })
    }

    func register() {
        for package in ["grpc.reflection.v1", "grpc.reflection.v1alpha"] {
            let pool = self.pool
            let registry = self.registry
            registry.register("/\(package).ServerReflection/ServerReflectionInfo") { call in
                ReflectionCallHandler(call: call, pool: pool, registry: registry)
            }
        }
    }
}

/// One ServerReflectionInfo stream: a response for each request, in order.
private final class ReflectionCallHandler: GRPCServerCallHandler {
    let call: GRPCServerCall
    let pool: DescriptorPool
    let registry: GRPCServiceRegistry

    init(call: GRPCServerCall, pool: DescriptorPool, registry: GRPCServiceRegistry) {
        self.call = call
        self.pool = pool
        self.registry = registry
    }

    func callReceived(message: ByteBuffer) {
        let request: ServerReflectionRequest
        do {
            request = try ServerReflectionRequest(decoding: message)
        } catch {
            call.finish(GRPCStatus(code: .invalidArgument, message: "request is not a valid ServerReflectionRequest: \(error)"))
            return
        }
        var response = ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        response.messageResponse = answer(request.messageRequest)
        call.sendMessage(response.encoded())
    }

    func callReceivedEnd() {
        call.finish(.ok)
    }

    func callCancelled(_ status: GRPCStatus) {}

    private func answer(_ request: ServerReflectionRequest.MessageRequest?) -> ServerReflectionResponse.MessageResponse {
        switch request {
        case .listServices:
            return .listServicesResponse(ListServiceResponse(service: registry.serviceNames.map { ServiceResponse(name: $0) }))
        case .fileByFilename(let name):
            guard let files = pool.fileWithDependencies(name) else {
                return notFound("no file named '\(name)'")
            }
            return .fileDescriptorResponse(FileDescriptorResponse(fileDescriptorProto: files.map(\.bytes)))
        case .fileContainingSymbol(let symbol):
            guard let name = pool.fileDefiningSymbol[symbol], let files = pool.fileWithDependencies(name) else {
                return notFound("no symbol named '\(symbol)'")
            }
            return .fileDescriptorResponse(FileDescriptorResponse(fileDescriptorProto: files.map(\.bytes)))
        case .fileContainingExtension(let request):
            return notFound("no extension \(request.extensionNumber) of '\(request.containingType)': the served protos define no extensions")
        case .allExtensionNumbersOfType(let type):
            guard pool.fileDefiningSymbol[type] != nil else { return notFound("no type named '\(type)'") }
            var response = ExtensionNumberResponse()
            response.baseTypeName = type
            return .allExtensionNumbersResponse(response)
        case nil:
            var error = ErrorResponse()
            error.errorCode = Int32(GRPCStatus.Code.invalidArgument.rawValue)
            error.errorMessage = "the request names no question (file_by_filename, file_containing_symbol, list_services, …)"
            return .errorResponse(error)
        }
    }

    private func notFound(_ message: String) -> ServerReflectionResponse.MessageResponse {
        var error = ErrorResponse()
        error.errorCode = Int32(GRPCStatus.Code.notFound.rawValue)
        error.errorMessage = message
        return .errorResponse(error)
    }
}
