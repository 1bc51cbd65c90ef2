import NIOCore
import ProtoWire

/// `inference.InferTensorContents`: a tensor's elements as typed repeated fields, flattened in
/// row-major order. Only the field matching the tensor's datatype is set.
public struct InferTensorContents: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.InferTensorContents"

    /// BOOL.
    public var boolContents: [Bool] = []  // = 1
    /// INT8, INT16, INT32.
    public var intContents: [Int32] = []  // = 2
    /// INT64.
    public var int64Contents: [Int64] = []  // = 3
    /// UINT8, UINT16, UINT32.
    public var uintContents: [UInt32] = []  // = 4
    /// UINT64.
    public var uint64Contents: [UInt64] = []  // = 5
    /// FP32.
    public var fp32Contents: [Float] = []  // = 6
    /// FP64.
    public var fp64Contents: [Double] = []  // = 7
    /// BYTES: one element per entry, as slices of the incoming buffer.
    public var bytesContents: [ByteBuffer] = []  // = 8
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readRepeated(ProtoBool.self, tag, into: &boolContents)
        case 2: try reader.readRepeated(ProtoInt32.self, tag, into: &intContents)
        case 3: try reader.readRepeated(ProtoInt64.self, tag, into: &int64Contents)
        case 4: try reader.readRepeated(ProtoUInt32.self, tag, into: &uintContents)
        case 5: try reader.readRepeated(ProtoUInt64.self, tag, into: &uint64Contents)
        case 6: try reader.readRepeated(ProtoFloat.self, tag, into: &fp32Contents)
        case 7: try reader.readRepeated(ProtoDouble.self, tag, into: &fp64Contents)
        case 8: bytesContents.append(try reader.readBytes(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writePacked(ProtoBool.self, field: 1, boolContents)
        writer.writePacked(ProtoInt32.self, field: 2, intContents)
        writer.writePacked(ProtoInt64.self, field: 3, int64Contents)
        writer.writePacked(ProtoUInt32.self, field: 4, uintContents)
        writer.writePacked(ProtoUInt64.self, field: 5, uint64Contents)
        writer.writePacked(ProtoFloat.self, field: 6, fp32Contents)
        writer.writePacked(ProtoDouble.self, field: 7, fp64Contents)
        for value in bytesContents { writer.writeBytes(field: 8, value) }
        unknownFields.encode(to: &writer)
    }
}
