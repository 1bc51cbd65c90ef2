import Foundation
import H2Transport

/// `-H 'name: value'` metadata lines.
public enum MetadataLine {
    /// The metadata of `lines` (names lowercased; `-bin` values base64-decoded by the transport
    /// are not supported here: give text values).
    ///
    /// - Throws: `LoadTestError` for a line without `:`, an invalid name, a reserved one
    ///   (`grpc-*`, pseudo-headers) or a value with characters HTTP/2 refuses.
    public static func parse(_ lines: [String]) throws -> GRPCMetadata {
        var metadata = GRPCMetadata()
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw LoadTestError("-H '\(line)': expected 'name: value'")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard GRPCMetadata.isValidName(name), !GRPCMetadata.isReservedName(name), !GRPCMetadata.isBinaryName(name) else {
                throw LoadTestError("-H '\(line)': '\(name)' cannot be sent as custom metadata")
            }
            guard GRPCMetadata.isValidASCIIValue(value) else {
                throw LoadTestError("-H '\(line)': the value must be printable ASCII")
            }
            metadata.add(name, value)
        }
        return metadata
    }
}
