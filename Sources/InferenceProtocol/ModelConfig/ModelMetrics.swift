import NIOCore
import ProtoWire

/// `inference.ModelMetrics`: per-model customization of metric families (e.g. histogram
/// buckets).
public struct ModelMetrics: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelMetrics"

    /// `inference.ModelMetrics.MetricControl`: the settings of one metric family.
    public struct MetricControl: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelMetrics.MetricControl"

        /// `inference.ModelMetrics.MetricControl.MetricIdentifier`: which metric family.
        public struct MetricIdentifier: ProtoMessage, Hashable {
            /// The fully-qualified protobuf name.
            public static let protoMessageName = "inference.ModelMetrics.MetricControl.MetricIdentifier"

            /// The metric family's name.
            public var family: String = ""  // = 1
            /// Fields this build does not know, kept so that re-encoding loses nothing.
            public var unknownFields = UnknownFields()

            /// An identifier with every field at its default.
            public init() {}

            /// The identifier of `family`.
            public init(family: String) {
                self.family = family
            }

            /// Decodes one field whose tag has just been read.
            public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                switch tag.fieldNumber {
                case 1: family = try reader.readString(tag)
                default: try reader.preserveUnknownField(tag, in: &unknownFields)
                }
            }

            /// Appends the fields that differ from their defaults, in field-number order.
            public func encode(to writer: inout ProtoWriter) {
                if !family.isEmpty { writer.writeString(field: 1, family) }
                unknownFields.encode(to: &writer)
            }
        }

        /// `inference.ModelMetrics.MetricControl.HistogramOptions`: a histogram's buckets.
        public struct HistogramOptions: ProtoMessage, Hashable {
            /// The fully-qualified protobuf name.
            public static let protoMessageName = "inference.ModelMetrics.MetricControl.HistogramOptions"

            /// The bucket boundaries.
            public var buckets: [Double] = []  // = 1
            /// Fields this build does not know, kept so that re-encoding loses nothing.
            public var unknownFields = UnknownFields()

            /// Options with every field at its default.
            public init() {}

            /// Options with the given bucket boundaries.
            public init(buckets: [Double]) {
                self.buckets = buckets
            }

            /// Decodes one field whose tag has just been read.
            public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                switch tag.fieldNumber {
                case 1: try reader.readRepeated(ProtoDouble.self, tag, into: &buckets)
                default: try reader.preserveUnknownField(tag, in: &unknownFields)
                }
            }

            /// Appends the fields that differ from their defaults, in field-number order.
            public func encode(to writer: inout ProtoWriter) {
                writer.writePacked(ProtoDouble.self, field: 1, buckets)
                unknownFields.encode(to: &writer)
            }
        }

        /// `oneof metric_options`.
        public enum MetricOptions: Sendable, Hashable {
            /// Histogram settings.
            case histogramOptions(HistogramOptions)  // = 2
        }

        /// Which metric family; nil when not set.
        public var metricIdentifier: MetricIdentifier?  // = 1
        /// The family's options; nil when none of the oneof's fields was set.
        public var metricOptions: MetricOptions?
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A metric control with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1:
                try reader.merge(tag, into: &metricIdentifier)
            case 2:
                var value = HistogramOptions()
                if case .histogramOptions(let current)? = metricOptions { value = current }
                metricOptions = nil  // `value` must hold the only reference, or merging copies it
                try reader.merge(tag, into: &value)
                metricOptions = .histogramOptions(value)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults (and the oneof member, always),
        /// in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if let metricIdentifier { writer.writeMessage(field: 1, metricIdentifier) }
            switch metricOptions {
            case .histogramOptions(let value): writer.writeMessage(field: 2, value)
            case nil: break
            }
            unknownFields.encode(to: &writer)
        }
    }

    /// The settings, one per metric family.
    public var metricControl: [MetricControl] = []  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// Metric settings with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: metricControl.append(try reader.readMessage(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in metricControl { writer.writeMessage(field: 1, value) }
        unknownFields.encode(to: &writer)
    }
}
