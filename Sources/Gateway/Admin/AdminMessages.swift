import NIOCore
import ProtoWire

/// `switchyard.admin.v1.ReloadTLSRequest` (Protos/switchyard/admin.proto): no fields.
public struct ReloadTLSRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "switchyard.admin.v1.ReloadTLSRequest"
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.preserveUnknownField(tag, in: &unknownFields)
    }

    public func encode(to writer: inout ProtoWriter) {
        unknownFields.encode(to: &writer)
    }
}

/// `switchyard.admin.v1.CertificateInfo`: the identity in a certificate, as clients see it.
public struct CertificateInfo: ProtoMessage, Hashable {
    public static let protoMessageName = "switchyard.admin.v1.CertificateInfo"
    public var commonName = ""  // = 1
    public var dnsNames: [String] = []  // = 2
    public var sha256Fingerprint = ""  // = 3
    public var notAfterUnixSeconds: Int64 = 0  // = 4
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: commonName = try reader.readString(tag)
        case 2: dnsNames.append(try reader.readString(tag))
        case 3: sha256Fingerprint = try reader.readString(tag)
        case 4: notAfterUnixSeconds = try reader.read(ProtoInt64.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !commonName.isEmpty { writer.writeString(field: 1, commonName) }
        for name in dnsNames { writer.writeString(field: 2, name) }
        if !sha256Fingerprint.isEmpty { writer.writeString(field: 3, sha256Fingerprint) }
        if notAfterUnixSeconds != 0 { writer.write(ProtoInt64.self, field: 4, notAfterUnixSeconds) }
        unknownFields.encode(to: &writer)
    }
}

/// `switchyard.admin.v1.ReloadTLSResponse`: the certificates served from now on.
public struct ReloadTLSResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "switchyard.admin.v1.ReloadTLSResponse"
    public var certificates: [CertificateInfo] = []  // = 1
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: certificates.append(try reader.readMessage(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for certificate in certificates { writer.writeMessage(field: 1, certificate) }
        unknownFields.encode(to: &writer)
    }
}
