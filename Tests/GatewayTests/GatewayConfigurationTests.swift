import Gateway
import XCTest

final class GatewayConfigurationTests: XCTestCase {
    func testAddressParsesHostPortAndBracketedIPv6() {
        XCTAssertEqual(GatewayConfiguration.Address(parsing: "127.0.0.1:8001"), .init(host: "127.0.0.1", port: 8001))
        XCTAssertEqual(GatewayConfiguration.Address(parsing: "[::1]:8443"), .init(host: "::1", port: 8443))
        XCTAssertEqual(GatewayConfiguration.Address(parsing: "[::1]:8443")?.description, "[::1]:8443")
    }

    func testAddressRefusesMissingHostOrBadPort() {
        XCTAssertNil(GatewayConfiguration.Address(parsing: ":8001"))
        XCTAssertNil(GatewayConfiguration.Address(parsing: "localhost"))
        XCTAssertNil(GatewayConfiguration.Address(parsing: "localhost:70000"))
        XCTAssertNil(GatewayConfiguration.Address(parsing: "localhost:http"))
    }
}
