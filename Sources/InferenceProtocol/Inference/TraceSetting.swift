import NIOCore
import ProtoWire

/// `inference.TraceSettingRequest`: asks to update trace settings (globally or for one model)
/// and get the resulting settings back.
public struct TraceSettingRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.TraceSettingRequest"

    /// `inference.TraceSettingRequest.SettingValue`: a setting's value(s).
    public struct SettingValue: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.TraceSettingRequest.SettingValue"

        /// The values.
        public var value: [String] = []  // = 1

        public init() {}

        /// A setting holding `value`.
        public init(_ value: [String]) {
            self.value = value
        }

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: value.append(try reader.readString(tag))
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            for element in value { writer.writeString(field: 1, element) }
        }
    }

    /// Settings to update; an empty value clears the setting.
    public var settings: [String: SettingValue] = [:]  // = 1
    /// Model whose settings apply; empty means the global settings.
    public var modelName: String = ""  // = 2

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readMapEntry(tag, into: &settings)
        case 2: modelName = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMap(field: 1, settings)
        if !modelName.isEmpty { writer.writeString(field: 2, modelName) }
    }
}

/// `inference.TraceSettingResponse`: the current trace settings.
public struct TraceSettingResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.TraceSettingResponse"

    /// `inference.TraceSettingResponse.SettingValue`: a setting's value(s).
    public struct SettingValue: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.TraceSettingResponse.SettingValue"

        /// The values.
        public var value: [String] = []  // = 1

        public init() {}

        /// A setting holding `value`.
        public init(_ value: [String]) {
            self.value = value
        }

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: value.append(try reader.readString(tag))
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            for element in value { writer.writeString(field: 1, element) }
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
