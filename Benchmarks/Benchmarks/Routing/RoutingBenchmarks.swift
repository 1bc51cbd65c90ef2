// The router's decision for one request, `router.route(request, catalog:)`, on its own: no
// route, a 90/10 weighted draw, a 90/10 sticky choice (with and without a shadow), a named
// version, and a sticky choice among 5 variants. The issue asks for no allocation and no lock
// per call; the end-to-end cost per ModelInfer is in loadtest/RESULTS.md ("Routing per
// ModelInfer"). See Benchmarks/README.md.

import Benchmark
import Gateway
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One catalog with a model per scenario, its pools made but never started (no worker process),
/// and one prepared request per benchmark.
struct RoutingFixture {
    /// Kept alive for the pools' shards; never used to run anything.
    let group: MultiThreadedEventLoopGroup
    let catalog: ModelCatalog
    let requests: [(label: String, router: any InferenceRouter, request: InferenceRouteRequest)]

    /// A realistic sticky key value: a user id as a UUID, 38 bytes (a heap-allocated String,
    /// unlike a short one that Swift stores inline).
    static let userID = "u-4f9c2a1e-7b3d-4c8a-9e21-5d6f0a8b3c74"

    init() {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Never started: the pools only keep a reference for their workers' start.
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        let launcher = WorkerLauncher(executable: "/nonexistent", socketDirectory: "/tmp")
        let logger = Logger(label: "routing-benchmark", factory: { _ in SwiftLogNoOpLogHandler() })
        func model(_ name: String, versions: [String], route: ModelRoute?) -> ModelCatalog.Model {
            var pools: [String: WorkerPool] = [:]
            for version in versions {
                pools[version] = WorkerPool(
                    deployment: ModelDeployment(model: name, version: version, workers: 1), launcher: launcher, group: group,
                    control: group.next(), threadPool: threadPool, logger: logger)
            }
            return ModelCatalog.Model(name: name, versions: versions, pools: pools, route: route.map(CompiledRoute.init))
        }
        let ninetyTen: [ModelRoute.Variant] = [.init(version: "1", weight: 90), .init(version: "2", weight: 10)]
        var built = ModelCatalog()
        for entry in [
            model("plain", versions: ["1", "2"], route: nil),
            model("draw", versions: ["1", "2"], route: ModelRoute(model: "draw", variants: ninetyTen)),
            model("sticky", versions: ["1", "2"], route: ModelRoute(model: "sticky", variants: ninetyTen, stickyKey: "x-user-id")),
            model(
                "shadowed", versions: ["1", "2", "3"],
                route: ModelRoute(model: "shadowed", variants: ninetyTen, stickyKey: "x-user-id", shadow: .init(version: "3", fraction: 0.1))),
            model(
                "five", versions: ["1", "2", "3", "4", "5"],
                route: ModelRoute(
                    model: "five", variants: [60, 10, 10, 10, 10].enumerated().map { .init(version: "\($0.offset + 1)", weight: $0.element) },
                    stickyKey: "x-user-id")),
        ] {
            built.models[entry.name] = entry
        }

        // GRPCMetadata and HTTP2ConnectionInfo come from H2Transport, which the main package does
        // not export as a product: they are made through InferenceRouteRequest's parameter types.
        let base = InferenceRouteRequest(
            modelName: "", modelVersion: "", requestID: "42", parameters: [:], metadata: .init(),
            connection: .init(remoteAddress: "10.0.0.7:53412", localAddress: "10.0.0.1:8001", isSecure: false))
        func request(_ model: String, version: String = "", withUserID: Bool) -> InferenceRouteRequest {
            var request = base
            request.modelName = model
            request.modelVersion = version
            if withUserID { request.metadata = .init(["x-user-id": Self.userID]) }
            return request
        }
        // A caller authenticated by an API key, allowed every version of the model: the router
        // also checks each candidate version against its permissions.
        var policy = AuthPolicy()
        policy.principals["team"] = AuthPolicy.Permissions(models: ["sticky:*"], methods: [.inference])
        var authenticated = request("sticky", withUserID: true)
        authenticated.principal = CompiledAuthPolicy(policy, generation: 1).principal(named: "team")
        self.group = group
        self.catalog = built
        self.requests = [
            ("Route none", VersionRouter(), request("plain", withUserID: false)),
            ("Route 90/10 draw", WeightedRouter(), request("draw", withUserID: false)),
            ("Route 90/10 sticky", WeightedRouter(), request("sticky", withUserID: true)),
            ("Route 90/10 sticky+shadow", WeightedRouter(), request("shadowed", withUserID: true)),
            ("Route named version", WeightedRouter(), request("sticky", version: "2", withUserID: true)),
            ("Route 5 variants sticky", WeightedRouter(), request("five", withUserID: true)),
            ("Route 90/10 sticky, principal", WeightedRouter(), authenticated),
        ]
    }

    /// Outside the measured loops: every request is forwarded, to the version expected where it is
    /// fixed, the sticky ones always to the same one, and the shadow copy goes with about 10 %.
    func verify() {
        func forwarded(_ route: InferenceRoute) -> (version: String, shadow: String?) {
            guard case .forward(let pool, let shadow) = route else { fatalError("refused: \(route)") }
            return (pool.deployment.version, shadow?.deployment.version)
        }
        for (label, router, request) in requests {
            let runs = (0..<10_000).map { _ in forwarded(router.route(request, catalog: catalog)) }
            let versions = Set(runs.map(\.version))
            let shadows = runs.filter { $0.shadow != nil }
            switch label {
            case "Route none": precondition(versions == ["2"], "\(label): \(versions)")
            case "Route named version": precondition(versions == ["2"], "\(label): \(versions)")
            case "Route 90/10 draw": precondition(versions == ["1", "2"], "\(label): \(versions)")
            default: precondition(versions.count == 1, "\(label): a sticky key went to \(versions)")
            }
            if label == "Route 90/10 sticky+shadow" {
                precondition((800...1200).contains(shadows.count) && shadows.allSatisfy { $0.shadow == "3" }, "\(label): \(shadows.count) shadows")
            } else {
                precondition(shadows.isEmpty, "\(label): unexpected shadow")
            }
        }
    }
}

/// CPU time of the calling thread, in nanoseconds: the harness's cpuTotal comes from
/// /proc/self/stat in scheduler ticks (10 ms), far coarser than a measured iteration here.
@inline(__always)
func threadCPUNanoseconds() -> Int {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return time.tv_sec * 1_000_000_000 + time.tv_nsec
}

let benchmarks: @Sendable () -> Void = {
    let fixture = RoutingFixture()
    fixture.verify()

    let cpu = BenchmarkMetric.custom("cpuThread (ns)", polarity: .prefersSmaller, useScalingFactor: true)
    // As the other suites: sub-microsecond operations run 1000 times per measured iteration.
    let config = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, cpu, .mallocCountTotal, .mallocBytesCount],
        timeUnits: .nanoseconds,
        units: [.throughput: .count, .mallocCountTotal: .count, .mallocBytesCount: .count],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    let catalog = fixture.catalog
    for (label, router, request) in fixture.requests {
        Benchmark(label, configuration: config) { benchmark in
            let start = threadCPUNanoseconds()
            for _ in benchmark.scaledIterations {
                blackHole(router.route(request, catalog: catalog))
            }
            benchmark.measurement(cpu, threadCPUNanoseconds() - start)
        }
    }
}
