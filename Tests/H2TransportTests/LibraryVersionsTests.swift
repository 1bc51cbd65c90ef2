import XCTest

@testable import H2Transport

final class LibraryVersionsTests: XCTestCase {
    func testLinkedLibrariesReportTheirVersions() {
        XCTAssertTrue(LibraryVersions.nghttp2.hasPrefix("1."), LibraryVersions.nghttp2)
        XCTAssertTrue(LibraryVersions.openSSL.hasPrefix("OpenSSL 3"), LibraryVersions.openSSL)
    }
}
