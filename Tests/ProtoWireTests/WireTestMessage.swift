import NIOCore
import ProtoWire

/// `switchyard.wiretest.Inner` (Fixtures/wire_test.proto).
struct Inner: ProtoMessage, Hashable {
    static let protoMessageName = "switchyard.wiretest.Inner"
    var a: Int32 = 0  // = 1
    var b: [Int32] = []  // = 2
    var s: String = ""  // = 3

    mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: a = try reader.read(ProtoInt32.self, tag)
        case 2: try reader.readRepeated(ProtoInt32.self, tag, into: &b)
        case 3: s = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    func encode(to writer: inout ProtoWriter) {
        if a != 0 { writer.write(ProtoInt32.self, field: 1, a) }
        writer.writePacked(ProtoInt32.self, field: 2, b)
        if !s.isEmpty { writer.writeString(field: 3, s) }
    }
}

/// `switchyard.wiretest.AllTypes`: one field of every kind ProtoWire handles.
struct AllTypes: ProtoMessage, Hashable {
    static let protoMessageName = "switchyard.wiretest.AllTypes"
    enum Choice: Hashable { case name(String), number(Int64) }

    var i32: Int32 = 0  // = 1
    var i64: Int64 = 0  // = 2
    var u32: UInt32 = 0  // = 3
    var u64: UInt64 = 0  // = 4
    var s32: Int32 = 0  // = 5
    var s64: Int64 = 0  // = 6
    var flag: Bool = false  // = 7
    var color: Int32 = 0  // = 8 (enum Color)
    var f32: UInt32 = 0  // = 9
    var f64: UInt64 = 0  // = 10
    var sf32: Int32 = 0  // = 11
    var sf64: Int64 = 0  // = 12
    var real: Float = 0  // = 13
    var dbl: Double = 0  // = 14
    var text: String = ""  // = 15
    var blob = ByteBuffer()  // = 16
    var inner: Inner?  // = 17
    var children: [AllTypes] = []  // = 18
    var packedInts: [Int32] = []  // = 19
    var packedFloats: [Float] = []  // = 20
    var labels: [String: String] = [:]  // = 21
    var choice: Choice?  // = 22, 23
    var sints: [Int64] = []  // = 24 (sint64)
    var doubles: [Double] = []  // = 25
    var strings: [String] = []  // = 26
    var unknownFields = UnknownFields()

    mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: i32 = try reader.read(ProtoInt32.self, tag)
        case 2: i64 = try reader.read(ProtoInt64.self, tag)
        case 3: u32 = try reader.read(ProtoUInt32.self, tag)
        case 4: u64 = try reader.read(ProtoUInt64.self, tag)
        case 5: s32 = try reader.read(ProtoSInt32.self, tag)
        case 6: s64 = try reader.read(ProtoSInt64.self, tag)
        case 7: flag = try reader.read(ProtoBool.self, tag)
        case 8: color = try reader.read(ProtoEnum.self, tag)
        case 9: f32 = try reader.read(ProtoFixed32.self, tag)
        case 10: f64 = try reader.read(ProtoFixed64.self, tag)
        case 11: sf32 = try reader.read(ProtoSFixed32.self, tag)
        case 12: sf64 = try reader.read(ProtoSFixed64.self, tag)
        case 13: real = try reader.read(ProtoFloat.self, tag)
        case 14: dbl = try reader.read(ProtoDouble.self, tag)
        case 15: text = try reader.readString(tag)
        case 16: blob = try reader.readBytes(tag)
        case 17:
            var value = inner ?? Inner()
            try reader.merge(tag, into: &value)
            inner = value
        case 18: children.append(try reader.readMessage(tag))
        case 19: try reader.readRepeated(ProtoInt32.self, tag, into: &packedInts)
        case 20: try reader.readRepeated(ProtoFloat.self, tag, into: &packedFloats)
        case 21: try reader.readMapEntry(tag, into: &labels)
        case 22: choice = .name(try reader.readString(tag))
        case 23: choice = .number(try reader.read(ProtoInt64.self, tag))
        case 24: try reader.readRepeated(ProtoSInt64.self, tag, into: &sints)
        case 25: try reader.readRepeated(ProtoDouble.self, tag, into: &doubles)
        case 26: strings.append(try reader.readString(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    func encode(to writer: inout ProtoWriter) {
        if i32 != 0 { writer.write(ProtoInt32.self, field: 1, i32) }
        if i64 != 0 { writer.write(ProtoInt64.self, field: 2, i64) }
        if u32 != 0 { writer.write(ProtoUInt32.self, field: 3, u32) }
        if u64 != 0 { writer.write(ProtoUInt64.self, field: 4, u64) }
        if s32 != 0 { writer.write(ProtoSInt32.self, field: 5, s32) }
        if s64 != 0 { writer.write(ProtoSInt64.self, field: 6, s64) }
        if flag { writer.write(ProtoBool.self, field: 7, flag) }
        if color != 0 { writer.write(ProtoEnum.self, field: 8, color) }
        if f32 != 0 { writer.write(ProtoFixed32.self, field: 9, f32) }
        if f64 != 0 { writer.write(ProtoFixed64.self, field: 10, f64) }
        if sf32 != 0 { writer.write(ProtoSFixed32.self, field: 11, sf32) }
        if sf64 != 0 { writer.write(ProtoSFixed64.self, field: 12, sf64) }
        if real.bitPattern != 0 { writer.write(ProtoFloat.self, field: 13, real) }
        if dbl.bitPattern != 0 { writer.write(ProtoDouble.self, field: 14, dbl) }
        if !text.isEmpty { writer.writeString(field: 15, text) }
        if blob.readableBytes > 0 { writer.writeBytes(field: 16, blob) }
        if let inner { writer.writeMessage(field: 17, inner) }
        for child in children { writer.writeMessage(field: 18, child) }
        writer.writePacked(ProtoInt32.self, field: 19, packedInts)
        writer.writePacked(ProtoFloat.self, field: 20, packedFloats)
        writer.writeMap(field: 21, labels)
        switch choice {
        case .name(let value): writer.writeString(field: 22, value)
        case .number(let value): writer.write(ProtoInt64.self, field: 23, value)
        case nil: break
        }
        writer.writePacked(ProtoSInt64.self, field: 24, sints)
        writer.writePacked(ProtoDouble.self, field: 25, doubles)
        for value in strings { writer.writeString(field: 26, value) }
        unknownFields.encode(to: &writer)
    }
}
