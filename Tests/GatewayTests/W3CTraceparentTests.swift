@testable import Gateway
import XCTest

/// The sampling decision's reading of a client's `traceparent` (W3C trace context, level 1):
/// the sampled flag of a well-formed value, nil (treated as absent) for anything else.
final class W3CTraceparentTests: XCTestCase {
    func testTheSampledFlagOfWellFormedValues() {
        let cases: [(String, Bool)] = [
            ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true),
            ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", false),
            // Other flag bits do not matter; only bit 0 is "sampled".
            ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03", true),
            ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02", false),
            // A later version may append fields after a dash.
            ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", true),
            ("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", false),
        ]
        for (value, sampled) in cases {
            XCTAssertEqual(W3CTraceparent.sampledFlag(of: value), sampled, value)
        }
    }

    func testMalformedValuesAreTreatedAsAbsent() {
        let malformed = [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  // version 00 is exactly 55
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // version ff is invalid
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",  // all-zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  // all-zero parent id
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  // uppercase
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        ]
        for value in malformed {
            XCTAssertNil(W3CTraceparent.sampledFlag(of: value), value)
        }
    }
}
