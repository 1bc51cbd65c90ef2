/// How requests for one model name are spread over its versions: weighted A/B and canary,
/// sticky assignment by a key, an override header for testing, and a shadow copy.
///
/// A request that names a version gets that version (NOT_FOUND when it is not configured);
/// the route decides only for requests that leave `model_version` empty.
public struct ModelRoute: Sendable, Hashable {
    /// One version and its share in percent: the configuration file and `POST /routes/NAME`
    /// take weights that add up to 100. A weight of 0 takes no unversioned traffic (it can
    /// still be asked for by version). The router itself treats weights as relative, so that
    /// a variant skipped (drained, not loaded) gives its share to the others in proportion.
    public struct Variant: Sendable, Hashable {
        public var version: String
        public var weight: Int

        public init(version: String, weight: Int) {
            self.version = version
            self.weight = weight
        }
    }

    /// A mirrored copy of a share of the calls, sent to `version`; its answer never reaches the
    /// client. It is compared with the primary's answer (see `ShadowComparison`): integer, BOOL
    /// and BYTES outputs must be equal, floating-point ones close within the tolerances.
    public struct Shadow: Sendable, Hashable {
        /// numpy's `isclose` defaults are 1e-8 and 1e-5; the absolute one is looser here, so that
        /// float32 noise around 0 does not count as a difference.
        public static let defaultAbsoluteTolerance = 1e-6
        public static let defaultRelativeTolerance = 1e-5

        public var version: String
        /// 0 ... 1: the fraction of calls copied.
        public var fraction: Double
        /// Floating-point elements `a` (primary) and `b` (shadow) match when
        /// `|a - b| <= absoluteTolerance + relativeTolerance * |b|` (numpy's `isclose`), or
        /// both are NaN. Default 1e-6.
        public var absoluteTolerance: Double
        /// Default 1e-5.
        public var relativeTolerance: Double

        public init(
            version: String, fraction: Double, absoluteTolerance: Double = Shadow.defaultAbsoluteTolerance,
            relativeTolerance: Double = Shadow.defaultRelativeTolerance
        ) {
            self.version = version
            self.fraction = fraction
            self.absoluteTolerance = absoluteTolerance
            self.relativeTolerance = relativeTolerance
        }
    }

    /// The model name clients send.
    public var model: String
    /// The versions that take unversioned requests, in a fixed order.
    public var variants: [Variant]
    /// A request metadata name (e.g. `x-user-id`) whose value pins a caller to one variant:
    /// the same value always gets the same variant, and changing weights moves only the keys
    /// the change must move. Nil: every call is drawn independently.
    public var stickyKey: String?
    /// Whether `x-switchyard-variant: VERSION` in the request metadata may force a variant
    /// (for testing a canary by hand). Default false: such a request is refused.
    public var allowOverride: Bool = false
    /// A shadow copy of a share of the calls; nil for none.
    public var shadow: Shadow?

    public init(model: String, variants: [Variant], stickyKey: String? = nil, allowOverride: Bool = false, shadow: Shadow? = nil) {
        self.model = model
        self.variants = variants
        self.stickyKey = stickyKey
        self.allowOverride = allowOverride
        self.shadow = shadow
    }
}
