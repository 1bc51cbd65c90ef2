import NIOCore
import ProtoWire

/// `inference.LogSettingsRequest`: asks to update log settings and get the resulting
/// settings back.
public struct LogSettingsRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.LogSettingsRequest"

    /// `inference.LogSettingsRequest.SettingValue`: a setting's value, one of bool, uint32 or string.
    public struct SettingValue: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.LogSettingsRequest.SettingValue"

        /// `oneof parameter_choice`.
        public enum Choice: Sendable, Hashable {
            case bool(Bool)  // = 1
            case uint32(UInt32)  // = 2
            case string(String)  // = 3
        }

        /// The value; nil when none of the oneof's fields was set.
        public var choice: Choice?

        public init() {}

        /// A setting holding `choice`.
        public init(_ choice: Choice) {
            self.choice = choice
        }

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: choice = .bool(try reader.read(ProtoBool.self, tag))
            case 2: choice = .uint32(try reader.read(ProtoUInt32.self, tag))
            case 3: choice = .string(try reader.readString(tag))
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            // A oneof member is written even when it holds its type's default: that is its presence.
            switch choice {
            case .bool(let value): writer.write(ProtoBool.self, field: 1, value)
            case .uint32(let value): writer.write(ProtoUInt32.self, field: 2, value)
            case .string(let value): writer.writeString(field: 3, value)
            case nil: break
            }
        }
    }

    /// Settings to update.
    public var settings: [String: SettingValue] = [:]  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readMapEntry(tag, into: &settings)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMap(field: 1, settings)
    }
}

/// `inference.LogSettingsResponse`: the current log settings.
public struct LogSettingsResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.LogSettingsResponse"

    /// `inference.LogSettingsResponse.SettingValue`: a setting's value, one of bool, uint32 or string.
    public struct SettingValue: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.LogSettingsResponse.SettingValue"

        /// `oneof parameter_choice`; the same cases as the request's, so a value can be echoed.
        public typealias Choice = LogSettingsRequest.SettingValue.Choice

        /// The value; nil when none of the oneof's fields was set.
        public var choice: Choice?

        public init() {}

        /// A setting holding `choice`.
        public init(_ choice: Choice) {
            self.choice = choice
        }

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: choice = .bool(try reader.read(ProtoBool.self, tag))
            case 2: choice = .uint32(try reader.read(ProtoUInt32.self, tag))
            case 3: choice = .string(try reader.readString(tag))
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            // A oneof member is written even when it holds its type's default: that is its presence.
            switch choice {
            case .bool(let value): writer.write(ProtoBool.self, field: 1, value)
            case .uint32(let value): writer.write(ProtoUInt32.self, field: 2, value)
            case .string(let value): writer.writeString(field: 3, value)
            case nil: break
            }
        }
    }

    /// The current settings.
    public var settings: [String: SettingValue] = [:]  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readMapEntry(tag, into: &settings)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMap(field: 1, settings)
    }
}
