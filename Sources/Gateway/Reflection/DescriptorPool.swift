import NIOCore
import ProtoWire

/// The serialized `FileDescriptorProto`s that reflection serves, indexed by file name and by
/// every symbol they define (messages, nested messages, enums, services, methods), so that
/// `file_containing_symbol` is a dictionary lookup.
struct DescriptorPool: Sendable {
    struct File: Sendable {
        let name: String
        let package: String
        let dependencies: [String]
        let bytes: ByteBuffer
    }

    private(set) var files: [String: File] = [:]
    private(set) var fileDefiningSymbol: [String: String] = [:]

    /// Indexes `serializedFiles`; throws if one is not a valid FileDescriptorProto.
    init(serializedFiles: [ByteBuffer]) throws {
        for bytes in serializedFiles {
            var name = "", package = ""
            var dependencies: [String] = []
            var symbols: [String] = []
            var reader = try ProtoReader(buffer: bytes)
            var topLevel: [(ProtoTag, ByteBuffer)] = []
            while let tag = try reader.nextTag() {
                switch tag.fieldNumber {
                case 1: name = try reader.readString(tag)
                case 2: package = try reader.readString(tag)
                case 3: dependencies.append(try reader.readString(tag))
                case 4, 5, 6: topLevel.append((tag, try reader.readBytes(tag)))
                default: try reader.skipField(tag)
                }
            }
            let prefix = package.isEmpty ? "" : package + "."
            for (tag, body) in topLevel {
                switch tag.fieldNumber {
                case 4: try Self.collectMessage(body, prefix: prefix, into: &symbols)
                case 5: symbols.append(prefix + (try Self.name(of: body)))
                default: try Self.collectService(body, prefix: prefix, into: &symbols)
                }
            }
            files[name] = File(name: name, package: package, dependencies: dependencies, bytes: bytes)
            for symbol in symbols { fileDefiningSymbol[symbol] = name }
        }
    }

    /// The file and everything it imports, transitively, the file itself first.
    func fileWithDependencies(_ name: String) -> [File]? {
        guard files[name] != nil else { return nil }
        var ordered: [File] = []
        var seen: Set<String> = []
        var pending = [name]
        while let next = pending.popLast() {
            guard seen.insert(next).inserted, let file = files[next] else { continue }
            ordered.append(file)
            pending.append(contentsOf: file.dependencies.reversed())
        }
        return ordered
    }

    private static func name(of body: ByteBuffer) throws -> String {
        var reader = try ProtoReader(buffer: body)
        while let tag = try reader.nextTag() {
            if tag.fieldNumber == 1 { return try reader.readString(tag) }
            try reader.skipField(tag)
        }
        return ""
    }

    private static func collectMessage(_ body: ByteBuffer, prefix: String, into symbols: inout [String]) throws {
        var reader = try ProtoReader(buffer: body)
        var name = ""
        var nested: [(Int, ByteBuffer)] = []
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 3, 4: nested.append((tag.fieldNumber, try reader.readBytes(tag)))
            default: try reader.skipField(tag)
            }
        }
        let fullName = prefix + name
        symbols.append(fullName)
        for (field, child) in nested {
            if field == 3 {
                try collectMessage(child, prefix: fullName + ".", into: &symbols)
            } else {
                symbols.append(fullName + "." + (try Self.name(of: child)))
            }
        }
    }

    private static func collectService(_ body: ByteBuffer, prefix: String, into symbols: inout [String]) throws {
        var reader = try ProtoReader(buffer: body)
        var name = ""
        var methods: [String] = []
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: methods.append(try Self.name(of: try reader.readBytes(tag)))
            default: try reader.skipField(tag)
            }
        }
        let fullName = prefix + name
        symbols.append(fullName)
        for method in methods { symbols.append(fullName + "." + method) }
    }
}
