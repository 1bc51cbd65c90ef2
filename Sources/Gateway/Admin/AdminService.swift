import Foundation
import H2Transport
import Logging
import NIOCore

/// `switchyard.admin.v1.Admin`: operations on the running gateway (Protos/switchyard/admin.proto).
/// Registered only on the admin listener's registry, never on the public listeners.
public struct AdminService: Sendable {
    public static let servicePath = "/switchyard.admin.v1.Admin/"

    /// Reloads TLS material; returns the identity of each listener's certificate.
    let reloadTLS: @Sendable () throws -> [PeerIdentity]
    /// Whether any TLS listener exists.
    let hasTLSListener: Bool
    let logger: Logger

    public init(hasTLSListener: Bool, logger: Logger, reloadTLS: @escaping @Sendable () throws -> [PeerIdentity]) {
        self.reloadTLS = reloadTLS
        self.hasTLSListener = hasTLSListener
        self.logger = logger
    }

    public func register(on registry: GRPCServiceRegistry) {
        let reloadTLS = self.reloadTLS
        let hasTLSListener = self.hasTLSListener
        let logger = self.logger
        registry.registerImmediateUnary(
            Self.servicePath + "ReloadTLS", request: ReloadTLSRequest.self, response: ReloadTLSResponse.self
        ) { _, call in
            guard hasTLSListener else {
                throw RPCError(code: .unavailable, message: "this gateway has no TLS listener (--tls-address none); there is nothing to reload")
            }
            let identities: [PeerIdentity]
            do {
                identities = try reloadTLS()
            } catch {
                logger.error(
                    "TLS reload failed; the previous certificate stays in use",
                    metadata: ["error": "\(error)", "requested_by": "\(call.connection.remoteAddress)"])
                throw RPCError(
                    code: .failedPrecondition,
                    message: "TLS reload failed; the previous certificate stays in use: \(error)")
            }
            logger.notice(
                "TLS material reloaded",
                metadata: ["certificates": "\(identities.map(\.sha256Fingerprint))", "requested_by": "\(call.connection.remoteAddress)"])
            var response = ReloadTLSResponse()
            response.certificates = identities.map { identity in
                var info = CertificateInfo()
                info.commonName = identity.commonName ?? ""
                info.dnsNames = identity.dnsNames
                info.sha256Fingerprint = identity.sha256Fingerprint
                info.notAfterUnixSeconds = Int64(identity.notAfter.timeIntervalSince1970)
                return info
            }
            return response
        }
    }
}
