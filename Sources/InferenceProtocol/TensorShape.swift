/// The shape of a tensor: its dimensions, outermost first (`[1, 16]`), as `InferInputTensor`
/// and `InferOutputTensor` carry it.
///
/// Up to `inlineCapacity` dimensions are stored in the value itself, so the shapes requests
/// actually have (`[1, 16]`, `[batch, channels, height, width]`) cost no heap allocation to
/// decode, copy or free; a longer shape keeps its dimensions in an array. Otherwise it behaves as
/// an `[Int64]` would: a random-access, mutable, range-replaceable collection that compares,
/// hashes and prints (`[1, 16]`) by its elements and is written as an array literal.
public struct TensorShape: Sendable {
    /// How many dimensions are stored without a heap allocation.
    public static let inlineCapacity = 4

    // Invariant: `spilled == nil` exactly when `inlineCount <= inlineCapacity`; then the first
    // `inlineCount` slots of `inline` are the dimensions (the others are 0). Otherwise all the
    // dimensions are in `spilled` and `inlineCount` is its count.
    @usableFromInline
    var inline: (Int64, Int64, Int64, Int64)
    @usableFromInline
    var inlineCount: Int
    @usableFromInline
    var spilled: [Int64]?

    /// A shape of no dimensions (a scalar).
    @inlinable
    public init() {
        inline = (0, 0, 0, 0)
        inlineCount = 0
        spilled = nil
    }

    /// A shape of `dimensions`.
    @inlinable
    public init<Dimensions: Sequence<Int64>>(_ dimensions: Dimensions) {
        self.init()
        for dimension in dimensions { append(dimension) }
    }

    /// A shape of `dimensions`; an array longer than `inlineCapacity` is kept as it is.
    @inlinable
    public init(_ dimensions: [Int64]) {
        self.init()
        if dimensions.count > Self.inlineCapacity {
            inlineCount = dimensions.count
            spilled = dimensions
        } else {
            for dimension in dimensions { append(dimension) }
        }
    }

    /// The dimensions as an array.
    @inlinable
    public var dimensions: [Int64] { spilled ?? Array(self) }

    /// Calls `body` with the dimensions as contiguous memory, valid only inside `body` (the
    /// inline dimensions are a temporary copy).
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Int64>) throws -> R) rethrows -> R {
        if let spilled { return try spilled.withUnsafeBufferPointer(body) }
        return try withUnsafeBytes(of: inline) { raw in
            try body(UnsafeBufferPointer(rebasing: raw.bindMemory(to: Int64.self)[0..<inlineCount]))
        }
    }

    /// Appends one dimension.
    @inlinable
    public mutating func append(_ dimension: Int64) {
        if inlineCount < Self.inlineCapacity {
            withUnsafeMutableBytes(of: &inline) {
                $0.storeBytes(of: dimension, toByteOffset: inlineCount &* 8, as: Int64.self)
            }
            inlineCount &+= 1
        } else {
            appendSpilling(dimension)
        }
    }

    @usableFromInline
    mutating func appendSpilling(_ dimension: Int64) {
        if spilled == nil {
            var array = [Int64]()
            array.reserveCapacity(Self.inlineCapacity * 2)
            withUnsafeBytes(of: inline) { array.append(contentsOf: $0.bindMemory(to: Int64.self)) }
            inline = (0, 0, 0, 0)
            spilled = array
        }
        spilled!.append(dimension)
        inlineCount &+= 1
    }
}

extension TensorShape: RandomAccessCollection, MutableCollection {
    public typealias Index = Int
    public typealias Indices = Range<Int>

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { inlineCount }
    @inlinable public var count: Int { inlineCount }
    @inlinable public var isEmpty: Bool { inlineCount == 0 }
    @inlinable public var indices: Range<Int> { 0..<inlineCount }
    @inlinable public func index(after i: Int) -> Int { i &+ 1 }
    @inlinable public func index(before i: Int) -> Int { i &- 1 }

    @inlinable
    public subscript(position: Int) -> Int64 {
        get {
            precondition(position >= 0 && position < inlineCount, "TensorShape index out of range")
            if let spilled { return spilled[position] }
            return withUnsafeBytes(of: inline) { $0.load(fromByteOffset: position &* 8, as: Int64.self) }
        }
        set {
            precondition(position >= 0 && position < inlineCount, "TensorShape index out of range")
            if spilled != nil {
                spilled![position] = newValue
            } else {
                withUnsafeMutableBytes(of: &inline) {
                    $0.storeBytes(of: newValue, toByteOffset: position &* 8, as: Int64.self)
                }
            }
        }
    }
}

extension TensorShape: RangeReplaceableCollection {
    @inlinable
    public mutating func replaceSubrange<C: Collection<Int64>>(_ subrange: Range<Int>, with newElements: C) {
        precondition(subrange.lowerBound >= 0 && subrange.upperBound <= inlineCount, "TensorShape range out of bounds")
        if subrange.isEmpty && subrange.lowerBound == inlineCount {
            for dimension in newElements { append(dimension) }
            return
        }
        var all = dimensions
        all.replaceSubrange(subrange, with: newElements)
        self = TensorShape(all)
    }

    @inlinable
    public mutating func reserveCapacity(_ n: Int) {
        if n > Self.inlineCapacity { spilled?.reserveCapacity(n) }
    }

    @inlinable
    public mutating func removeAll(keepingCapacity keepCapacity: Bool = false) {
        self = TensorShape()
    }
}

extension TensorShape: ExpressibleByArrayLiteral {
    @inlinable
    public init(arrayLiteral dimensions: Int64...) {
        self.init(dimensions)
    }
}

extension TensorShape: Hashable {
    @inlinable
    public static func == (lhs: TensorShape, rhs: TensorShape) -> Bool {
        lhs.elementsEqual(rhs)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(inlineCount)
        for dimension in self { hasher.combine(dimension) }
    }
}

extension TensorShape: CustomStringConvertible, CustomDebugStringConvertible {
    /// The dimensions as an array prints them: `[1, 16]`.
    public var description: String { dimensions.description }
    public var debugDescription: String { "TensorShape(\(description))" }
}
