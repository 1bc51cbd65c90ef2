@testable import Gateway
import NIOHTTP1
import XCTest

/// The admin listener's routing and bearer-token rules, without a socket.
final class AdminRouteTableTests: XCTestCase {
    let routes = [
        AdminRoute(.GET, "/healthz", requiresToken: false) { _ in .text("ok") },
        AdminRoute(.GET, "/workers") { _ in .json([]) },
        AdminRoute(.POST, "/models/{model}/drain") { request in .text(request.parameters["model"] ?? "") },
        AdminRoute(.POST, "/models/{model}/versions/{version}/drain") { request in .text(request.parameters["version"] ?? "") },
    ]

    /// The route's pattern and parameters, or the refusal's status.
    private func outcome(_ table: AdminRouteTable, _ method: HTTPMethod, _ uri: String, authorization: String? = nil) -> String {
        switch table.decide(method: method, uri: uri, authorization: authorization, remote: "test") {
        case .route(let route, let request):
            let parameters = request.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return ([route.pattern] + parameters).joined(separator: " ")
        case .refuse(let response):
            return "\(response.status.code)"
        }
    }

    func testRequestsFindTheirRouteOrTheRightRefusal() {
        let table = AdminRouteTable(routes: routes, bearerToken: nil)
        let cases: [(HTTPMethod, String, String)] = [
            (.GET, "/healthz", "/healthz"),
            (.HEAD, "/healthz", "/healthz"),
            (.GET, "/healthz?verbose=1", "/healthz"),
            (.GET, "/workers", "/workers"),
            (.POST, "/models/simple/drain", "/models/{model}/drain model=simple"),
            (.POST, "/models/simple/versions/2/drain", "/models/{model}/versions/{version}/drain model=simple version=2"),
            (.POST, "/models/a%2Eb/drain", "/models/{model}/drain model=a.b"),
            (.POST, "/models/a%2Fb/drain", "400"),
            (.POST, "/models/%zz/drain", "400"),
            (.GET, "/nothing", "404"),
            (.GET, "/", "404"),
            (.POST, "/workers", "405"),
            (.GET, "/models/simple/drain", "405"),
            (.POST, "/models/simple/drain/more", "404"),
        ]
        for (method, uri, expected) in cases {
            XCTAssertEqual(outcome(table, method, uri), expected, "\(method) \(uri)")
        }
    }

    func testA405SaysWhichMethodsAreAllowed() {
        let table = AdminRouteTable(routes: routes, bearerToken: nil)
        guard case .refuse(let response) = table.decide(method: .DELETE, uri: "/workers", authorization: nil, remote: "test") else {
            return XCTFail()
        }
        XCTAssertEqual(response.headers.first { $0.name == "allow" }?.value, "GET, HEAD")
    }

    func testWithATokenEverythingButTheProbesNeedsIt() {
        let table = AdminRouteTable(routes: routes, bearerToken: "s3cret")
        let cases: [(HTTPMethod, String, String?, String)] = [
            (.GET, "/healthz", nil, "/healthz"),
            (.HEAD, "/healthz", "Bearer wrong", "/healthz"),
            (.GET, "/workers", nil, "401"),
            (.GET, "/workers", "", "401"),
            (.GET, "/workers", "Bearer wrong", "401"),
            (.GET, "/workers", "Bearer s3cre", "401"),
            (.GET, "/workers", "Bearer s3cret2", "401"),
            (.GET, "/workers", "Basic s3cret", "401"),
            (.GET, "/workers", "Bearer s3cret", "/workers"),
            (.GET, "/workers", "bearer  s3cret ", "/workers"),
            (.GET, "/nothing", nil, "401"),
            (.GET, "/nothing", "Bearer s3cret", "404"),
            (.POST, "/healthz", nil, "401"),
        ]
        for (method, uri, authorization, expected) in cases {
            XCTAssertEqual(outcome(table, method, uri, authorization: authorization), expected, "\(method) \(uri) \(authorization ?? "-")")
        }
    }

    func testA401ChallengesAndNeverEchoesTheToken() {
        let table = AdminRouteTable(routes: routes, bearerToken: "s3cret")
        guard case .refuse(let response) = table.decide(method: .GET, uri: "/workers", authorization: "Bearer guess-123", remote: "test") else {
            return XCTFail()
        }
        XCTAssertEqual(response.status, .unauthorized)
        XCTAssertTrue(response.headers.contains { $0.name == "www-authenticate" && $0.value.hasPrefix("Bearer") })
        XCTAssertFalse(response.body.contains("guess-123"))
        XCTAssertFalse(response.body.contains("s3cret"))
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(AdminRouteTable.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(AdminRouteTable.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        XCTAssertFalse(AdminRouteTable.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        XCTAssertFalse(AdminRouteTable.constantTimeEqual([], Array("a".utf8)))
    }

    func testOnlyLoopbackAdminAddressesGoWithoutAToken() {
        let cases: [(String, Bool)] = [
            ("127.0.0.1:8002", true), ("127.1.2.3:8002", true), ("localhost:8002", true), ("[::1]:8002", true),
            ("0.0.0.0:8002", false), ("10.0.0.5:8002", false), ("[::]:8002", false), ("127.0.0.1.example:8002", false),
        ]
        for (text, loopback) in cases {
            var configuration = GatewayConfiguration()
            configuration.adminListener = GatewayConfiguration.Address(parsing: text)
            XCTAssertEqual(configuration.adminListener?.isLoopback, loopback, text)
            XCTAssertEqual((try? configuration.validate()) != nil, loopback, text)
            configuration.adminToken = "token"
            XCTAssertNoThrow(try configuration.validate(), text)
        }
    }
}
